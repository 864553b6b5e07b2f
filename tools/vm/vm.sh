#!/usr/bin/env bash
# Disposable test VMs (Debian 13 guests under QEMU/TCG) restored in seconds
# from the RAM snapshot made by tools/vm/build-image.sh.
#
# Usage:
#   vm.sh start NAME [--cold]      start VM NAME (restore; --cold: full boot),
#                                  prints "NAME PORT" on stdout
#   vm.sh stop NAME                kill its QEMU (by pid) and delete its state
#   vm.sh stop-all                 stop every VM in the state dir
#   vm.sh ssh NAME [--root] [-- CMD...]
#                                  run CMD in the guest as ubuntu (or root);
#                                  one CMD word is a shell command line, more
#                                  words are quoted as separate arguments
#   vm.sh info NAME                connection details as JSON
#   vm.sh forward NAME             forward one more free loopback port to the
#                                  guest's sshd (the same machine on a second
#                                  port, e.g. to test a port change); prints it
#   vm.sh list                     running VMs ("NAME PORT PID")
#   vm.sh paths                    cache dir, key paths and pinned host key
#
# Env: AMARKTAI_CACHE_DIR (default $HOME/.cache/amarktai-infra),
#      AMARKTAI_VM_STATE_DIR (default $AMARKTAI_CACHE_DIR/vm-run).
# Progress goes to stderr; machine-readable output to stdout.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=tools/vm/lib.sh
source "${SCRIPT_DIR}/lib.sh"

usage() {
  sed -n '2,22s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
}

vm_dir() { printf '%s/%s\n' "${VM_STATE_DIR}" "$1"; }

# Is VM NAME's QEMU running? (pid file + /proc check, never by process name)
vm_running() {
  local dir pid
  dir="$(vm_dir "$1")"
  pid="$(vm_qemu_pid "${dir}")"
  [[ -n "${pid}" ]] && vm_pid_is_our_qemu "${pid}" "${dir}/"
}

vm_port() {
  local dir port=""
  dir="$(vm_dir "$1")"
  [[ -s "${dir}/port" ]] && read -r port <"${dir}/port"
  printf '%s\n' "${port}"
}

require_running() {
  local name="$1"
  vm_check_name "${name}"
  vm_running "${name}" || vm_die "VM '${name}' is not running (vm.sh start ${name})"
  [[ -n "$(vm_port "${name}")" ]] || vm_die "VM '${name}' has no port file"
}

ensure_image() {
  if ! vm_image_ready; then
    vm_log "image ${AMARKTAI_VM_IMAGE_VERSION} not built yet; running build-image.sh"
    bash "${SCRIPT_DIR}/build-image.sh" >&2
  fi
  vm_image_ready || vm_die "image not ready"
  local built current
  built="$(sed -n 's/^QEMU_VERSION=//p' "${VM_META_FILE}")"
  current="$(qemu-system-x86_64 --version | head -n 1)"
  if [[ "${built}" != "${current}" ]]; then
    vm_log "WARNING: snapshot made with '${built}', running '${current}'; use --cold or rebuild (build-image.sh --force) if restore fails"
  fi
}

# ---------------------------------------------------------------------------
cmd_start() {
  local name="" cold=0 arg
  for arg in "$@"; do
    case "${arg}" in
      --cold) cold=1 ;;
      -*) vm_die "start: unknown option ${arg}" ;;
      *) [[ -z "${name}" ]] || vm_die "start: one NAME only"; name="${arg}" ;;
    esac
  done
  [[ -n "${name}" ]] || vm_die "usage: vm.sh start NAME [--cold]"
  vm_check_name "${name}"
  vm_require_runtime
  vm_check_path "${VM_STATE_DIR}"
  ensure_image

  local dir t0
  dir="$(vm_dir "${name}")"
  t0="$(vm_now_ms)"
  mkdir -p "${VM_STATE_DIR}"

  # Serialise port choice + QEMU launch between concurrent starts.
  exec 8>"${VM_STATE_DIR}/.lock"
  flock 8
  if vm_running "${name}"; then
    flock -u 8
    exec 8>&-
    local port
    port="$(vm_port "${name}")"
    vm_log "VM ${name} already running on port ${port}"
    printf '%s %s\n' "${name}" "${port}"
    return 0
  fi
  rm -rf "${dir}"
  mkdir -p "${dir}"
  local backing incoming="" mode
  if [[ "${cold}" == 1 ]]; then
    backing="${VM_BASE_IMAGE}"
    mode="cold boot"
  else
    backing="${VM_TEMPLATE_DISK}"
    incoming="exec:zstd -dc '${VM_SNAPSHOT}'"
    mode="restore"
  fi
  qemu-img create -q -f qcow2 -F qcow2 -b "${backing}" "${dir}/disk.qcow2"
  local port="" i started=0
  for ((i = 0; i < 10; i++)); do
    port="$(vm_pick_port)"
    if vm_qemu_launch "${VM_QEMU_ARGS_FILE}" "${dir}" "${dir}/disk.qcow2" "${port}" "${incoming}"; then
      started=1
      break
    fi
    if ! grep -q 'host forwarding' "${dir}/qemu.log" 2>/dev/null; then
      break
    fi
    vm_log "port ${port} was taken; retrying"
  done
  flock -u 8
  exec 8>&-
  if [[ "${started}" != 1 ]]; then
    vm_dump_failure "${dir}"
    vm_die "QEMU failed to start for VM ${name}"
  fi
  printf '%s\n' "${port}" >"${dir}/port"
  vm_write_known_hosts "${port}" "${dir}/known_hosts"
  local pid
  pid="$(vm_qemu_pid "${dir}")"
  vm_log "VM ${name}: QEMU pid ${pid}, ${mode}, ssh 127.0.0.1:${port}"

  if [[ "${cold}" == 0 ]] && ! vm_wait_running "${dir}" 120; then
    vm_dump_failure "${dir}"
    cmd_stop "${name}" >/dev/null 2>&1 || true
    vm_die "VM ${name}: snapshot restore failed (try --cold, or rebuild: build-image.sh --force)"
  fi
  [[ "${cold}" == 0 ]] && vm_log "VM ${name}: snapshot loaded in $(vm_elapsed "${t0}")s"

  # Wait for SSH; the first successful connection also sets the guest clock
  # (frozen at snapshot time after a restore) and checks the DHCP address.
  local timeout_s=120 result=""
  [[ "${cold}" == 1 ]] && timeout_s=900
  while :; do
    if result="$(vm_sync_guest "${port}" "${dir}/known_hosts")"; then
      break
    fi
    if ! vm_running "${name}"; then
      vm_dump_failure "${dir}"
      vm_die "QEMU for VM ${name} exited during start"
    fi
    if (($(vm_now_ms) - t0 > timeout_s * 1000)); then
      vm_dump_failure "${dir}"
      cmd_stop "${name}" >/dev/null 2>&1 || true
      vm_die "VM ${name}: SSH not ready within ${timeout_s}s"
    fi
    sleep 0.5
  done
  if [[ "${cold}" == 1 ]]; then
    local state
    vm_ssh_opts "${port}" "${dir}/known_hosts"
    state="$(timeout 600 ssh "${VM_SSH_OPTS[@]}" ubuntu@127.0.0.1 'systemctl is-system-running --wait' </dev/null 2>/dev/null || true)"
    vm_log "VM ${name}: system state '${state:-unknown}'"
  fi
  vm_rekey "${dir}" "${port}" || { vm_dump_failure "${dir}"; cmd_stop "${name}" >/dev/null 2>&1 || true; vm_die "VM ${name}: could not give it its own host key"; }
  local _ok guest_epoch addr skew
  read -r _ok guest_epoch addr <<<"${result}"
  skew="$(awk -v g="${guest_epoch}" -v h="${EPOCHREALTIME/,/.}" 'BEGIN { printf "%.2f", h - g }')"
  vm_log "VM ${name} ready in $(vm_elapsed "${t0}")s (${mode}; guest ${addr}, clock set, host-guest skew ${skew}s)"
  printf '%s\n' "$(vm_elapsed "${t0}")" >"${dir}/start-seconds"
  printf '%s %s\n' "${name}" "${port}"
}

cmd_stop() {
  local name="${1:-}"
  [[ -n "${name}" ]] || vm_die "usage: vm.sh stop NAME"
  vm_check_name "${name}"
  local dir pid
  dir="$(vm_dir "${name}")"
  if [[ ! -d "${dir}" ]]; then
    vm_log "VM ${name} is not running"
    return 0
  fi
  pid="$(vm_qemu_pid "${dir}")"
  if [[ -n "${pid}" ]]; then
    vm_kill_qemu "${pid}" "${dir}/"
    vm_wait_reaped "${pid}"
  fi
  rm -rf "${dir}"
  vm_log "VM ${name} stopped"
}

cmd_stop_all() {
  local d
  [[ -d "${VM_STATE_DIR}" ]] || return 0
  for d in "${VM_STATE_DIR}"/*/; do
    [[ -d "${d}" ]] || continue
    d="${d%/}"
    cmd_stop "${d##*/}"
  done
}

# Sets VM_LOC_PORT and VM_LOC_KNOWN_HOSTS for running VM NAME (for vm_ssh_command).
locate() {
  require_running "$1"
  VM_LOC_PORT="$(vm_port "$1")"
  VM_LOC_KNOWN_HOSTS="$(vm_dir "$1")/known_hosts"
}

cmd_ssh() { vm_ssh_command vm.sh locate "$@"; }

cmd_info() {
  local name="${1:-}"
  [[ -n "${name}" ]] || vm_die "usage: vm.sh info NAME"
  require_running "${name}"
  local dir
  dir="$(vm_dir "${name}")"
  vm_info_json "$(vm_port "${name}")" "${dir}/ssh_host_ed25519_key.pub" "${dir}/known_hosts"
}

cmd_forward() {
  local name="${1:-}"
  [[ -n "${name}" ]] || vm_die "usage: vm.sh forward NAME"
  require_running "${name}"
  local dir port i reply
  dir="$(vm_dir "${name}")"
  exec 8>"${VM_STATE_DIR}/.lock"
  flock 8
  for ((i = 0; i < 10; i++)); do
    port="$(vm_pick_port)"
    reply="$(vm_monitor "${dir}/monitor.sock" "hostfwd_add n0 tcp:127.0.0.1:${port}-:22")"
    if [[ "${reply}" != *rror* ]] && vm_port_in_use "${port}"; then
      flock -u 8
      printf '[127.0.0.1]:%s %s\n' "${port}" "$(vm_host_key "${dir}/ssh_host_ed25519_key.pub")" >>"${dir}/known_hosts"
      printf '%s\n' "${port}"
      return 0
    fi
  done
  flock -u 8
  vm_die "VM ${name}: could not forward a second port (${reply})"
}

cmd_list() {
  local d name
  [[ -d "${VM_STATE_DIR}" ]] || return 0
  for d in "${VM_STATE_DIR}"/*/; do
    [[ -d "${d}" ]] || continue
    d="${d%/}"
    name="${d##*/}"
    if vm_running "${name}"; then
      printf '%s %s %s\n' "${name}" "$(vm_port "${name}")" "$(vm_qemu_pid "${d}")"
    fi
  done
}

cmd_paths() {
  printf 'cache_dir=%s\n' "${VM_CACHE_DIR}"
  printf 'image_dir=%s\n' "${VM_IMAGE_DIR}"
  printf 'state_dir=%s\n' "${VM_STATE_DIR}"
  printf 'image_ready=%s\n' "$(vm_image_ready && echo yes || echo no)"
  printf 'private_key=%s\n' "${VM_PRIVATE_KEY}"
  printf 'public_key=%s\n' "${VM_PUBLIC_KEY}"
  printf 'host_key_file=%s\n' "${VM_HOST_KEY_FILE}"
  if [[ -s "${VM_HOST_KEY_FILE}" ]]; then
    printf 'host_key=%s\n' "$(vm_host_key)"
  else
    printf 'host_key=\n'
  fi
}

main() {
  local cmd="${1:-}"
  (($# > 0)) && shift
  case "${cmd}" in
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    stop-all) cmd_stop_all ;;
    ssh) cmd_ssh "$@" ;;
    info) cmd_info "$@" ;;
    forward) cmd_forward "$@" ;;
    list) cmd_list ;;
    paths) cmd_paths ;;
    -h | --help | help) usage ;;
    *) usage >&2; exit 2 ;;
  esac
}

main "$@"
