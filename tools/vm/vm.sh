#!/usr/bin/env bash
# Disposable test VMs (Debian 13 guests under QEMU/TCG) restored in seconds
# from the RAM snapshot made by tools/vm/build-image.sh, or booted cold like a
# fresh cloud VM (--cloud: tools/vm/build-cloud-image.sh, cloud-init, a seed).
#
# Usage:
#   vm.sh start NAME [--cold]      start VM NAME (restore; --cold: full boot),
#                                  prints "NAME PORT" on stdout
#   vm.sh start NAME --cloud --seed DIR
#                                  boot the cloud image cold with the NoCloud
#                                  seed DIR/user-data, DIR/meta-data; prints
#                                  "NAME PORT" once QEMU runs, without waiting
#                                  for the guest (SSH comes up 1-2 min later)
#   vm.sh cloud-seed DIR [--hostname H] [--hold-seconds N]
#                                  write a seed: user ubuntu (test key), a new
#                                  host key, apt locks held N s (default 120)
#   vm.sh wait-ssh NAME [SECONDS]  wait until `ssh ubuntu@` works (default 600)
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
  sed -n '2,33s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
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

# Takes the state dir's lock (fd 8), which serialises port choice + QEMU launch
# between concurrent starts. Fails (lock released, "NAME PORT" printed) if VM
# NAME already runs.
lock_unless_running() {
  local name="$1" port
  # Called in a condition (no errexit here): every step that can fail ends the script.
  mkdir -p "${VM_STATE_DIR}" || exit 1
  exec 8>"${VM_STATE_DIR}/.lock" || exit 1
  flock 8 || exit 1
  if vm_running "${name}"; then
    flock -u 8
    exec 8>&-
    port="$(vm_port "${name}")"
    vm_log "VM ${name} already running on port ${port}"
    printf '%s %s\n' "${name}" "${port}"
    return 1
  fi
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
  local name="" cold=0 cloud=0 seed=""
  while (($# > 0)); do
    case "$1" in
      --cold) cold=1 ;;
      --cloud) cloud=1 ;;
      --seed)
        (($# > 1)) || vm_die "start: --seed needs a directory"
        seed="$2"
        shift
        ;;
      --seed=*) seed="${1#--seed=}" ;;
      -*) vm_die "start: unknown option $1" ;;
      *) [[ -z "${name}" ]] || vm_die "start: one NAME only"; name="$1" ;;
    esac
    shift
  done
  [[ -n "${name}" ]] || vm_die "usage: vm.sh start NAME [--cold] | vm.sh start NAME --cloud --seed DIR"
  vm_check_name "${name}"
  if [[ "${cloud}" == 1 || -n "${seed}" ]]; then
    [[ "${cloud}" == 1 && -n "${seed}" ]] || vm_die "start: --cloud and --seed DIR go together"
    [[ "${cold}" == 0 ]] || vm_die "start: --cloud always boots cold; drop --cold"
    start_cloud "${name}" "${seed}"
    return
  fi
  vm_require_runtime
  vm_check_path "${VM_STATE_DIR}"
  ensure_image

  local dir t0
  dir="$(vm_dir "${name}")"
  t0="$(vm_now_ms)"
  lock_unless_running "${name}" || return 0
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
  local port started=1
  vm_launch_on_free_port "${VM_QEMU_ARGS_FILE}" "${dir}" "${incoming}" || started=0
  port="${VM_LAUNCH_PORT}"
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

ensure_cloud_image() {
  if ! vm_cloud_image_ready; then
    vm_log "cloud image ${AMARKTAI_VM_CLOUD_IMAGE_VERSION} not built yet; running build-cloud-image.sh"
    bash "${SCRIPT_DIR}/build-cloud-image.sh" >&2
  fi
  vm_cloud_image_ready || vm_die "cloud image not ready"
}

# The ed25519 host key the seed gives the guest ("ssh-ed25519 AAAA..."), read
# from the `ed25519_public:` entry of its user-data (cloud-init's ssh_keys).
seed_host_key() {
  local user_data="$1" value kt key _rest
  value="$(sed -n "s/^[[:space:]]*[\"']\{0,1\}ed25519_public[\"']\{0,1\}:[[:space:]]*//p" "${user_data}" | head -n 1)"
  value="${value#[\"\']}"
  value="${value%[\"\']}"
  read -r kt key _rest <<<"${value}" || true
  [[ "${kt}" == ssh-ed25519 && -n "${key}" ]] || return 1
  printf '%s %s\n' "${kt}" "${key}"
}

# start NAME --cloud --seed DIR: a cold boot of the cloud image with a NoCloud
# seed disk. Returns as soon as QEMU runs; the guest is still booting then.
start_cloud() {
  local name="$1" seed="$2"
  local f host_key
  for f in user-data meta-data; do
    [[ -f "${seed}/${f}" ]] || vm_die "start: seed directory '${seed}' has no ${f}"
  done
  host_key="$(seed_host_key "${seed}/user-data")" ||
    vm_die "start: ${seed}/user-data gives no host key (ssh_keys: ed25519_public: ssh-ed25519 ...), so it could not be pinned"
  vm_require_runtime
  vm_require mkfs.vfat:dosfstools mcopy:mtools
  vm_check_path "${VM_STATE_DIR}"
  ensure_cloud_image

  local dir t0
  dir="$(vm_dir "${name}")"
  t0="$(vm_now_ms)"
  lock_unless_running "${name}" || return 0
  rm -rf "${dir}"
  mkdir -p "${dir}/seed"
  : >"${dir}/cloud"
  # The seed disk: vfat labelled CIDATA, as cloud-localds makes it.
  local -a files=()
  for f in user-data meta-data vendor-data network-config; do
    if [[ -f "${seed}/${f}" ]]; then
      install -m 0600 "${seed}/${f}" "${dir}/seed/${f}"
      files+=("${dir}/seed/${f}")
    fi
  done
  mkfs.vfat -n CIDATA -C "${dir}/seed.img" 2048 >/dev/null
  MTOOLS_SKIP_CHECK=1 mcopy -o -i "${dir}/seed.img" "${files[@]}" ::/
  qemu-img create -q -f qcow2 -F qcow2 -b "${VM_CLOUD_IMAGE}" "${dir}/disk.qcow2"
  local port started=1
  vm_launch_on_free_port "${VM_CLOUD_QEMU_ARGS_FILE}" "${dir}" || started=0
  port="${VM_LAUNCH_PORT}"
  flock -u 8
  exec 8>&-
  if [[ "${started}" != 1 ]]; then
    vm_dump_failure "${dir}"
    rm -rf "${dir}"
    vm_die "QEMU failed to start for VM ${name}"
  fi
  vm_now_ms >"${dir}/started-ms"
  printf '%s\n' "${port}" >"${dir}/port"
  printf '%s\n' "${host_key}" >"${dir}/ssh_host_ed25519_key.pub"
  printf '[127.0.0.1]:%s %s\n' "${port}" "${host_key}" >"${dir}/known_hosts"
  vm_log "VM ${name}: QEMU pid $(vm_qemu_pid "${dir}"), cloud image cold boot, ssh 127.0.0.1:${port} (booting; vm.sh wait-ssh ${name}), started in $(vm_elapsed "${t0}")s"
  printf '%s %s\n' "${name}" "${port}"
}

# wait-ssh NAME [SECONDS]: until `ssh ubuntu@` succeeds with the pinned host key.
cmd_wait_ssh() {
  local name="${1:-}" timeout_s="${2:-600}"
  [[ -n "${name}" ]] || vm_die "usage: vm.sh wait-ssh NAME [SECONDS]"
  [[ "${timeout_s}" =~ ^[0-9]+$ ]] || vm_die "wait-ssh: SECONDS must be a whole number"
  require_running "${name}"
  local dir t0 port started=""
  dir="$(vm_dir "${name}")"
  port="$(vm_port "${name}")"
  t0="$(vm_now_ms)"
  vm_ssh_opts "${port}" "${dir}/known_hosts"
  while ! timeout 30 ssh "${VM_SSH_OPTS[@]}" ubuntu@127.0.0.1 true </dev/null >/dev/null 2>&1; do
    vm_running "${name}" || { vm_dump_failure "${dir}"; vm_die "VM ${name}: QEMU exited while waiting for SSH"; }
    (($(vm_now_ms) - t0 < timeout_s * 1000)) || vm_die "VM ${name}: no SSH login within ${timeout_s}s"
    sleep 1
  done
  [[ -s "${dir}/started-ms" ]] && read -r started <"${dir}/started-ms"
  vm_log "VM ${name}: SSH login works (waited $(vm_elapsed "${t0}")s${started:+; $(vm_elapsed "${started}")s after QEMU started})"
}

# cloud-seed DIR [--hostname H] [--hold-seconds N]: a NoCloud seed as a user
# would write it for a fresh cloud VM: the `ubuntu` user with passwordless sudo
# and the test key, a new ed25519 host key (also kept as DIR/ssh_host_ed25519_key),
# and the seconds the first-boot upgrades stand-in holds apt's locks.
cmd_cloud_seed() {
  local dir="" hostname="cloud-vm" hold=120
  while (($# > 0)); do
    case "$1" in
      --hostname) (($# > 1)) || vm_die "cloud-seed: --hostname needs a value"; hostname="$2"; shift ;;
      --hold-seconds) (($# > 1)) || vm_die "cloud-seed: --hold-seconds needs a value"; hold="$2"; shift ;;
      -*) vm_die "cloud-seed: unknown option $1" ;;
      *) [[ -z "${dir}" ]] || vm_die "cloud-seed: one DIR only"; dir="$1" ;;
    esac
    shift
  done
  [[ -n "${dir}" ]] || vm_die "usage: vm.sh cloud-seed DIR [--hostname H] [--hold-seconds N]"
  [[ "${hold}" =~ ^[0-9]+$ ]] || vm_die "cloud-seed: --hold-seconds must be a whole number"
  [[ "${hostname}" =~ ^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$ ]] || vm_die "cloud-seed: invalid hostname '${hostname}'"
  vm_require ssh-keygen:openssh-client
  [[ -s "${VM_PUBLIC_KEY}" ]] || vm_die "no test key ${VM_PUBLIC_KEY} (run tools/vm/build-image.sh)"
  mkdir -p "${dir}"
  local key="${dir}/ssh_host_ed25519_key" user_key
  rm -f "${key}" "${key}.pub"
  ssh-keygen -q -t ed25519 -N '' -C "root@${hostname}" -f "${key}"
  user_key="$(vm_host_key "${VM_PUBLIC_KEY}")"
  {
    printf '#cloud-config\n'
    printf 'users:\n'
    printf '  - name: ubuntu\n'
    printf '    gecos: Ubuntu\n'
    printf '    groups: [adm, sudo]\n'
    printf '    shell: /bin/bash\n'
    printf '    sudo: ALL=(ALL) NOPASSWD:ALL\n'
    printf '    lock_passwd: true\n'
    printf '    ssh_authorized_keys:\n'
    printf '      - %s\n' "${user_key}"
    printf 'ssh_deletekeys: true\n'
    printf 'ssh_keys:\n'
    printf '  ed25519_private: |\n'
    sed 's/^/    /' "${key}"
    printf '  ed25519_public: %s\n' "$(vm_host_key "${key}.pub")"
    printf 'write_files:\n'
    printf '  - path: /etc/default/first-boot-upgrades\n'
    printf '    content: |\n'
    printf '      HOLD_SECONDS=%s\n' "${hold}"
  } >"${dir}/user-data"
  printf 'instance-id: iid-%s\nlocal-hostname: %s\n' "${hostname}" "${hostname}" >"${dir}/meta-data"
  chmod 0600 "${dir}/user-data"
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
  # A cloud VM's root has no key of its own (cloud-init's disable_root).
  if [[ -f "$(vm_dir "$1")/cloud" ]]; then VM_LOC_ROOT_VIA_SUDO=1; fi
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
  printf 'cloud_image_dir=%s\n' "${VM_CLOUD_DIR}"
  printf 'cloud_image_ready=%s\n' "$(vm_cloud_image_ready && echo yes || echo no)"
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
    wait-ssh) cmd_wait_ssh "$@" ;;
    cloud-seed) cmd_cloud_seed "$@" ;;
    forward) cmd_forward "$@" ;;
    list) cmd_list ;;
    paths) cmd_paths ;;
    -h | --help | help) usage ;;
    *) usage >&2; exit 2 ;;
  esac
}

main "$@"
