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

VM_NAME="${AMARKTAI_LOCAL_VM:-local}"
STACK="local"
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

amarktai_step "stack '$STACK' (config: $CONFIG_FILE, made from $TEMPLATE)"
if ! pulumi stack ls --json 2>/dev/null | node -e 'const s = JSON.parse(require("fs").readFileSync(0, "utf8")); process.exit(s.some((x) => x.name === process.argv[1]) ? 0 : 1)' "$STACK"; then
  # `stack init` writes the stack file beside Pulumi.yaml: do it in a scratch copy so the template stays untouched.
  scratch="$(mktemp -d)"
  cp Pulumi.yaml "$scratch/"
  (cd "$scratch" && pulumi stack init "$STACK" --non-interactive >/dev/null)
  mkdir -p .pulumi-state
  if [ -f "$scratch/Pulumi.$STACK.yaml" ]; then mv "$scratch/Pulumi.$STACK.yaml" "$CONFIG_FILE"; fi
  rm -rf "$scratch"
fi
[ -f "$CONFIG_FILE" ] || echo "config: {}" > "$CONFIG_FILE"
cfg=(--stack "$STACK" --config-file "$CONFIG_FILE" --non-interactive)
# The template's values, then this VM's address, port, pinned host key and the test key.
pulumi config set-all --json "$(pulumi config --json --stack "$STACK" --config-file "$TEMPLATE")" "${cfg[@]}"
hosts="[{\"name\":\"local-vm\",\"address\":\"$(field host)\",\"port\":$(field port),\"user\":\"$(field user)\",\"hostKey\":\"$(field hostKey)\"}]"
pulumi config set-all --json "{\"amarktai-infra:hosts\":{\"value\":$(node -e 'process.stdout.write(JSON.stringify(process.argv[1]))' "$hosts"),\"objectValue\":$hosts,\"secret\":false}}" "${cfg[@]}"
pulumi config set --secret sshPrivateKey "${cfg[@]}" < "$(field privateKeyPath)"

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
