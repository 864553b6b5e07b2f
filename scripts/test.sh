#!/usr/bin/env bash
# Runs every test: unit and component tests (no network), then the end-to-end
# tests, each against a fresh VM restored from the cached booted snapshot,
# driven by the real Pulumi CLI. Installs and builds whatever is missing.
#   scripts/test.sh              everything
#   scripts/test.sh --fast       unit and component tests only (no VM)
#   scripts/test.sh FILE...      only these compiled test files (dist/test/...)
set -euo pipefail
# shellcheck source=scripts/lib/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/env.sh"
cd "$AMARKTAI_REPO"
export AMARKTAI_T0 # nested scripts continue this timeline

fast=""
files=()
for arg in "$@"; do
  case "$arg" in
    --fast) fast=1 ;;
    *) files+=("$arg") ;;
  esac
done

missing=()
command -v shellcheck >/dev/null || missing+=(shellcheck)
if [ -z "$fast" ]; then
  command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86)
  command -v qemu-img >/dev/null || missing+=(qemu-utils)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  command -v zstd >/dev/null || missing+=(zstd)
  command -v ssh >/dev/null || missing+=(openssh-client)
  command -v mkfs.ext4 >/dev/null || missing+=(e2fsprogs)
  # The fleet test's container hosts (tools/vm/ct.sh), installed here once rather than by eight
  # containers starting at the same moment.
  command -v systemd-nspawn >/dev/null || missing+=(systemd-container)
  command -v slirp4netns >/dev/null || missing+=(slirp4netns)
  command -v socat >/dev/null || missing+=(socat)
  # The cloud-image-like VMs' NoCloud seed disks (tools/vm/vm.sh start --cloud).
  command -v mkfs.vfat >/dev/null || missing+=(dosfstools)
  command -v mcopy >/dev/null || missing+=(mtools)
fi
if [ "${#missing[@]}" -gt 0 ]; then
  amarktai_step "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

bash scripts/setup.sh
# shellcheck source=scripts/lib/env.sh
source scripts/lib/env.sh

if [ "${#files[@]}" -eq 0 ]; then
  files=(dist/test/unit/*.test.js dist/test/component/*.test.js)
  if [ -z "$fast" ]; then
    amarktai_step "test VM image (built once, then cached)"
    bash tools/vm/build-image.sh
    amarktai_step "cloud-image-like VM image (built once, then cached)"
    bash tools/vm/build-cloud-image.sh
    files+=(dist/test/e2e/*.test.js)
  fi
fi

amarktai_step "running ${#files[@]} test files"
# Every VM and container this run starts is listed here (tools/vm.ts), so cleanup stops only this run's,
# never another run's or the local stack's.
AMARKTAI_TEST_VM_LIST="$(mktemp)"
export AMARKTAI_TEST_VM_LIST
stop_own_vms() {
  while read -r name; do
    case "$name" in
      '') ;;
      ct:*) bash tools/vm/ct.sh stop "${name#ct:}" >/dev/null 2>&1 || true ;;
      *) bash tools/vm/vm.sh stop "$name" >/dev/null 2>&1 || true ;;
    esac
  done < "$AMARKTAI_TEST_VM_LIST"
  rm -f "$AMARKTAI_TEST_VM_LIST"
}
trap stop_own_vms EXIT
fast_files=(); e2e_files=()
for f in "${files[@]}"; do
  case "$f" in */e2e/*) e2e_files+=("$f") ;; *) fast_files+=("$f") ;; esac
done
status=0
if [ "${#fast_files[@]}" -gt 0 ]; then
  node --test --test-concurrency=1 --test-reporter=spec "${fast_files[@]}" || status=$?
fi
# Two end-to-end files at a time: a guest under software emulation spends much of its
# time waiting (SSH round trips, health polls), so two share this machine's two cores
# well, and every test waits on conditions with timeouts sized for a loaded machine.
# AMARKTAI_E2E_CONCURRENCY=1 runs them one by one.
if [ "${#e2e_files[@]}" -gt 0 ]; then
  node --test --test-concurrency="${AMARKTAI_E2E_CONCURRENCY:-2}" --test-reporter=spec "${e2e_files[@]}" || status=$?
fi
amarktai_step "tests finished (exit $status)"
exit "$status"
