#!/usr/bin/env bash
# The main job, from a fresh machine: toolchain, the local test VM, and a real
# `pulumi up` of the `local` stack, ending with the service healthy in the VM.
#   scripts/up-local.sh            set up, start the VM (if not running), pulumi up
#   scripts/up-local.sh --stop     stop the VM
# Extra arguments after `--` go to `pulumi up` (e.g. -- --diff).
set -euo pipefail
# shellcheck source=scripts/lib/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/env.sh"
cd "$AMARKTAI_REPO"
export AMARKTAI_T0 # nested scripts continue this timeline

VM_NAME="${AMARKTAI_LOCAL_VM:-local}"
STACK="local"
# The local stack's settings belong to the user: made from the template the first time, never
# overwritten; each run fills in only this VM's details (hosts) and the test key (sshPrivateKey).
TEMPLATE="Pulumi.local.yaml"
CONFIG_FILE=".pulumi-state/Pulumi.$STACK.yaml"

if [ "${1:-}" = "--stop" ]; then
  bash tools/vm/vm.sh stop "$VM_NAME"
  exit 0
fi
if [ "${1:-}" = "--" ]; then shift; fi

amarktai_step "toolchain"
bash scripts/setup.sh
# shellcheck source=scripts/lib/env.sh
source scripts/lib/env.sh
# The local stack: the file backend and generated passphrase in this checkout.
amarktai_use_backend "$STACK"

amarktai_step "test VM '$VM_NAME'"
if ! bash tools/vm/vm.sh info "$VM_NAME" >/dev/null 2>&1; then
  bash tools/vm/vm.sh start "$VM_NAME" >/dev/null
fi
info="$(bash tools/vm/vm.sh info "$VM_NAME")"
field() { node -e 'const i = JSON.parse(process.argv[1]); process.stdout.write(String(i[process.argv[2]]))' "$info" "$1"; }

amarktai_step "stack '$STACK': your settings are in $CONFIG_FILE (made from $TEMPLATE once; only this VM's details are filled in)"
hosts="[{\"name\":\"local-vm\",\"address\":\"$(field host)\",\"port\":$(field port),\"user\":\"$(field user)\",\"hostKey\":\"$(field hostKey)\"}]"
node dist/scripts/lib/local-config.js "$CONFIG_FILE" "$TEMPLATE" "$hosts" | sed 's/^/        /'
if ! pulumi stack ls --json 2>/dev/null | node -e 'const s = JSON.parse(require("fs").readFileSync(0, "utf8")); process.exit(s.some((x) => x.name === process.argv[1]) ? 0 : 1)' "$STACK"; then
  # `stack init` writes the stack file beside Pulumi.yaml: do it in a scratch copy, then keep only its
  # encryption salt (the user's file stays as it is otherwise).
  scratch="$(mktemp -d)"
  cp Pulumi.yaml "$scratch/"
  cp "$CONFIG_FILE" "$scratch/Pulumi.$STACK.yaml"
  (cd "$scratch" && pulumi stack init "$STACK" --non-interactive >/dev/null)
  node dist/scripts/lib/local-config.js --salt-from "$scratch/Pulumi.$STACK.yaml" "$CONFIG_FILE"
  rm -rf "$scratch"
fi
cfg=(--stack "$STACK" --config-file "$CONFIG_FILE" --non-interactive)
# The test key, encrypted in the file: set only when it is not already the one there.
key_sha() { tr -d '\n' | sha256sum | cut -d' ' -f1; }
if [ "$(pulumi config get sshPrivateKey "${cfg[@]}" 2>/dev/null | key_sha)" != "$(key_sha < "$(field privateKeyPath)")" ]; then
  pulumi config set --secret sshPrivateKey "${cfg[@]}" < "$(field privateKeyPath)"
  echo "        set sshPrivateKey (the VM's test key) in $CONFIG_FILE"
fi

amarktai_step "pulumi up"
scripts/pulumi up --yes "${cfg[@]}" "$@"

amarktai_step "checking the service inside the VM"
status="$(bash tools/vm/vm.sh ssh "$VM_NAME" -- "systemctl is-active amarktai-api; curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8000/health")"
echo "$status"
if [ "$(printf '%s\n' "$status" | tail -n 1)" != "200" ]; then
  echo "error: /health did not answer 200" >&2
  exit 1
fi
cat <<EOT

amarktai-api.service is active and /health answers 200 inside the VM '$VM_NAME'
(ssh: tools/vm/vm.sh ssh $VM_NAME; port $(field port) on 127.0.0.1).
  preview a change:  scripts/pulumi preview --diff ${cfg[*]}
  stop the VM:       scripts/up-local.sh --stop
EOT
