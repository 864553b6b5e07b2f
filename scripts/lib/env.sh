# shellcheck shell=bash
# Sourced by the project's scripts: pinned tool versions, cache locations, and
# the environment every pulumi invocation runs with. Sets nothing secret.

# Versions (see docs/toolchain.md). The CLI must be at least as new as the SDK in package.json.
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

export PULUMI_SKIP_UPDATE_CHECK=true
# Never download a plugin: everything this project needs is installed by setup.sh.
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true

# The file backend in the checkout and its generated passphrase (made by setup.sh). They serve the
# `local` stack (the test VM on this machine), and any stack of a user who has no backend at all.
AMARKTAI_LOCAL_BACKEND_URL="file://$AMARKTAI_REPO/.pulumi-state"
AMARKTAI_LOCAL_PASSPHRASE_FILE="$AMARKTAI_REPO/.pulumi-state/passphrase"
export AMARKTAI_LOCAL_BACKEND_URL AMARKTAI_LOCAL_PASSPHRASE_FILE

# Pulumi flags that take a value as the next argument (`--flag=value` never does).
AMARKTAI_PULUMI_VALUE_FLAGS=" -s --stack -C --cwd -c --config --config-file -t --target --target-replace --replace --exclude -p --parallel -m --message --policy-pack --policy-pack-config --secrets-provider --tracing --color -v --verbose --exec-kind --exec-agent --client --plan --event-log --import-file --profiling --memprofilerate --suppress-permalink "

# Parses pulumi arguments with flags anywhere: sets AMARKTAI_ARG_STACK to the stack named by `-s X`,
# `-sX`, `--stack X` or `--stack=X` (or by `stack init|select|rm X`), empty when none is, and
# AMARKTAI_ARG_COMMAND to the subcommand (the first argument that is neither a flag nor a flag's value).
amarktai_parse_args() {
  local positional=() arg
  AMARKTAI_ARG_STACK=""
  AMARKTAI_ARG_CWD=""
  while [ "$#" -gt 0 ]; do
    arg="$1"
    shift
    case "$arg" in
      --) positional+=("$@"); break ;;
      -C | --cwd) AMARKTAI_ARG_CWD="${1:-}"; [ "$#" -gt 0 ] && shift ;;
      --cwd=*) AMARKTAI_ARG_CWD="${arg#--cwd=}" ;;
      -s | --stack) AMARKTAI_ARG_STACK="${1:-}"; [ "$#" -gt 0 ] && shift ;;
      --stack=*) AMARKTAI_ARG_STACK="${arg#--stack=}" ;;
      -s=*) AMARKTAI_ARG_STACK="${arg#-s=}" ;;
      -s?*) AMARKTAI_ARG_STACK="${arg#-s}" ;;
      -*=*) ;;
      -*) if [[ "$AMARKTAI_PULUMI_VALUE_FLAGS" == *" $arg "* ]] && [ "$#" -gt 0 ]; then shift; fi ;;
      *) positional+=("$arg") ;;
    esac
  done
  # shellcheck disable=SC2034 # read by the scripts that source this file
  AMARKTAI_ARG_COMMAND="${positional[0]:-}"
  if [ -z "$AMARKTAI_ARG_STACK" ] && [ "${#positional[@]}" -ge 3 ] && [ "${positional[0]}" = "stack" ]; then
    case "${positional[1]}" in
      init | select | rm) AMARKTAI_ARG_STACK="${positional[2]}" ;;
    esac
  fi
}

# True when Pulumi itself would find a backend: PULUMI_BACKEND_URL, a Pulumi Cloud access token, or a
# `pulumi login` recorded in PULUMI_HOME (default ~/.pulumi).
amarktai_user_has_backend() {
  [ -n "${PULUMI_BACKEND_URL:-}" ] && return 0
  [ -n "${PULUMI_ACCESS_TOKEN:-}" ] && return 0
  grep -Eq '"current"[[:space:]]*:[[:space:]]*"[^"]' "${PULUMI_HOME:-$HOME/.pulumi}/credentials.json" 2>/dev/null
}

# Chooses the backend for stack "$1" (may be empty: the stack Pulumi has selected):
#   local                     the file backend in the checkout and its passphrase, always;
#   any other, or none named  the user's own backend, login, PULUMI_HOME and passphrase, as plain
#                             `pulumi` would use them; only when the user has no backend at all, the
#                             checkout's, said so on stderr.
amarktai_use_backend() {
  local stack="${1:-}"
  if [ "$stack" != "local" ] && amarktai_user_has_backend; then
    return 0
  fi
  if [ "$stack" != "local" ]; then
    echo "amarktai-infra: no Pulumi backend is configured (no \`pulumi login\`, PULUMI_BACKEND_URL or PULUMI_ACCESS_TOKEN);" \
      "stack '${stack:-(selected)}' keeps its state in this checkout ($AMARKTAI_REPO/.pulumi-state), which is lost with the checkout." \
      "Log in to your own backend first (see docs/state-and-backends.md)." >&2
  fi
  export PULUMI_BACKEND_URL="$AMARKTAI_LOCAL_BACKEND_URL"
  if [ "$stack" = "local" ]; then
    # The local stack's secrets are encrypted with the generated passphrase, whatever the user's shell has.
    unset PULUMI_CONFIG_PASSPHRASE
    [ -f "$AMARKTAI_LOCAL_PASSPHRASE_FILE" ] && export PULUMI_CONFIG_PASSPHRASE_FILE="$AMARKTAI_LOCAL_PASSPHRASE_FILE"
  elif [ -z "${PULUMI_CONFIG_PASSPHRASE:-}" ] && [ -z "${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ] && [ -f "$AMARKTAI_LOCAL_PASSPHRASE_FILE" ]; then
    export PULUMI_CONFIG_PASSPHRASE_FILE="$AMARKTAI_LOCAL_PASSPHRASE_FILE"
  fi
  return 0
}

# One clock for a command and the scripts it runs: a script that runs others exports AMARKTAI_T0
# (up-local.sh, test.sh), so setup.sh's progress lines continue its timeline.
if [ -z "${AMARKTAI_T0:-}" ]; then
  AMARKTAI_T0="$(date +%s)"
fi

# Prints a progress line with the seconds since the outermost script started.
amarktai_step() {
  printf '[%4ss] %s\n' "$(($(date +%s) - AMARKTAI_T0))" "$*"
}
