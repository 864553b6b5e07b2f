# shellcheck shell=bash
# Sourced by the project's scripts: pinned tool versions, cache locations, and
# the environment every pulumi invocation runs with. Sets nothing secret.

# Versions (see README "Toolchain"). The CLI must be at least as new as the SDK in package.json.
AMARKTAI_NODE_VERSION="22.23.3"
AMARKTAI_PULUMI_VERSION="3.274.1"

AMARKTAI_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
AMARKTAI_CACHE_DIR="${AMARKTAI_CACHE_DIR:-$HOME/.cache/amarktai-infra}"
AMARKTAI_NODE_DIR="$AMARKTAI_CACHE_DIR/node-$AMARKTAI_NODE_VERSION"
AMARKTAI_PULUMI_DIR="$AMARKTAI_CACHE_DIR/pulumi-$AMARKTAI_PULUMI_VERSION"
export AMARKTAI_REPO AMARKTAI_CACHE_DIR AMARKTAI_NODE_DIR AMARKTAI_PULUMI_DIR AMARKTAI_NODE_VERSION AMARKTAI_PULUMI_VERSION

# A project-local Node.js when the system one is older than 22.
if [ -x "$AMARKTAI_NODE_DIR/bin/node" ]; then
  PATH="$AMARKTAI_NODE_DIR/bin:$PATH"
fi
# The pinned Pulumi CLI built by setup.sh, unless a pulumi of that version is already on PATH.
if [ -x "$AMARKTAI_PULUMI_DIR/bin/pulumi" ]; then
  PATH="$AMARKTAI_PULUMI_DIR/bin:$PATH"
fi
export PATH

export PULUMI_HOME="${PULUMI_HOME:-$AMARKTAI_CACHE_DIR/pulumi-home}"
export PULUMI_SKIP_UPDATE_CHECK=true
# Never download a plugin: everything this project needs is installed by setup.sh.
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
# Local stacks: file backend in the checkout and a generated passphrase, unless the user chose otherwise.
if [ -z "${PULUMI_BACKEND_URL:-}" ]; then
  export PULUMI_BACKEND_URL="file://$AMARKTAI_REPO/.pulumi-state"
fi
if [ -z "${PULUMI_CONFIG_PASSPHRASE:-}" ] && [ -z "${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ] && [ -f "$AMARKTAI_REPO/.pulumi-state/passphrase" ]; then
  export PULUMI_CONFIG_PASSPHRASE_FILE="$AMARKTAI_REPO/.pulumi-state/passphrase"
fi

# Prints a progress line with the seconds since the script started.
amarktai_step() {
  printf '[%4ss] %s\n' "$SECONDS" "$*"
}
