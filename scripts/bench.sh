#!/usr/bin/env bash
# Benchmark of deployments against fresh test VMs: wall time, SSH sessions,
# remote commands, restarts and daemon-reloads per operation, program startup,
# and one stack with 1 host vs 3 hosts. Installs and builds what is missing,
# makes sure the VM image exists, then runs dist/tools/bench.js.
#   scripts/bench.sh [--runs N] [--hosts-compare | --no-hosts-compare] [--no-installer-compare] [--before DIR] [--json FILE]
#     (--before DIR: the same steps through an older built checkout, in the same run)
#   scripts/bench.sh --hosts 1,10,50,100 [--before DIR] [--real-max N] [--json FILE]
#     (cost against the number of hosts; see tools/bench-hosts.ts)
# The report goes to stdout; progress (and the setup's output) to stderr.
set -euo pipefail
# shellcheck source=scripts/lib/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/env.sh"

bash "$AMARKTAI_REPO/scripts/setup.sh" >&2
# shellcheck source=scripts/lib/env.sh
source "$AMARKTAI_REPO/scripts/lib/env.sh"

amarktai_step "test VM image (built once, then cached)" >&2
bash "$AMARKTAI_REPO/tools/vm/build-image.sh" >&2

# Not cd'ing: a relative --json FILE is taken from the caller's directory.
exec node "$AMARKTAI_REPO/dist/tools/bench.js" "$@"
