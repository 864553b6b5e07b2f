#!/usr/bin/env bash
# Disposable test hosts as systemd-nspawn containers of the test VM's own
# rootfs (the Debian 13 image tools/vm/build-image.sh makes): systemd is PID 1,
# sshd answers on a forwarded loopback port, and the network is user-mode
# (slirp4netns: 10.0.2.x, DNS on 10.0.2.3), exactly as in the QEMU VMs. They run
# at native speed, so a test can afford many hosts. The VM stays the reference:
# a container shares the host's kernel and cgroup setup (resource limits such as
# MemoryMax= are not what a VM would enforce), so use containers only for what
# systemd does the same in both: units, reloads, restarts, health, journal.
#
# Usage (root):
#   ct.sh start NAME     start container NAME, prints "NAME PORT" on stdout
#   ct.sh stop NAME      stop it (its nspawn and slirp4netns, by pid) and delete its state
#   ct.sh ssh NAME [--root] [-- CMD...]
#                        run CMD in it as ubuntu (or root); as vm.sh ssh
#   ct.sh info NAME      connection details as JSON (as vm.sh info)
#   ct.sh list           running containers ("NAME PORT PID")
#
# Each container: an overlay on a read-only copy of the image's rootfs
# (extracted once from base.qcow2 into the image cache), its own network
# namespace, its own ed25519 host key, like a fresh cloud VM.
# Env: AMARKTAI_CACHE_DIR, AMARKTAI_CT_STATE_DIR (default $AMARKTAI_CACHE_DIR/ct-run).
# Progress goes to stderr; machine-readable output to stdout.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=tools/vm/lib.sh
source "${SCRIPT_DIR}/lib.sh"

CT_STATE_DIR="${AMARKTAI_CT_STATE_DIR:-${VM_CACHE_DIR}/ct-run}"
CT_ROOTFS="${VM_IMAGE_DIR}/ct-rootfs"

ct_dir() { printf '%s/%s\n' "${CT_STATE_DIR}" "$1"; }

# Is PID alive with a command line that is PROGRAM and mentions MARKER?
ct_pid_is() {
  local pid="$1" program="$2" marker="$3" cmdline
  [[ "${pid}" =~ ^[0-9]+$ ]] || return 1
  [[ -r "/proc/${pid}/cmdline" ]] || return 1
  cmdline="$(tr '\0' ' ' <"/proc/${pid}/cmdline" 2>/dev/null)" || return 1
  [[ "${cmdline}" == *"${program}"* && "${cmdline}" == *"${marker}"* ]]
}

ct_read() { local v=""; [[ -s "$1" ]] && read -r v <"$1"; printf '%s\n' "${v}"; }

ct_running() {
  local dir
  dir="$(ct_dir "$1")"
  ct_pid_is "$(ct_read "${dir}/nspawn.pid")" systemd-nspawn "${dir}/"
}

require_running() {
  vm_check_name "$1"
  ct_running "$1" || vm_die "container '$1' is not running (ct.sh start $1)"
}

# The image's rootfs as a plain directory, extracted once (read-only loop mount of the raw disk).
ensure_rootfs() {
  [[ -f "${CT_ROOTFS}/.ready" ]] && return 0
  vm_image_ready || bash "${SCRIPT_DIR}/build-image.sh" >&2
  exec 7>"${VM_IMAGE_DIR}/.ct-rootfs.lock"
  flock 7
  if [[ ! -f "${CT_ROOTFS}/.ready" ]]; then
    vm_log "extracting the image's rootfs for containers (once)"
    local raw="${VM_IMAGE_DIR}/.ct-base.raw" mnt="${VM_IMAGE_DIR}/.ct-mnt"
    rm -rf "${CT_ROOTFS}" "${raw}"
    vm_extract_base_rootfs "${CT_ROOTFS}" "${raw}" "${mnt}"
    touch "${CT_ROOTFS}/.ready"
  fi
  flock -u 7
  exec 7>&-
}

cmd_start() {
  local name="${1:-}"
  [[ -n "${name}" ]] || vm_die "usage: ct.sh start NAME"
  vm_check_name "${name}"
  [[ "$(id -u)" == 0 ]] || vm_die "ct.sh must run as root (overlay mounts, network namespaces, nspawn)"
  vm_require systemd-nspawn:systemd-container slirp4netns:slirp4netns socat:socat ssh-keygen:openssh-client
  ensure_rootfs
  local dir t0
  dir="$(ct_dir "${name}")"
  t0="$(vm_now_ms)"
  mkdir -p "${CT_STATE_DIR}"
  if ct_running "${name}"; then
    vm_log "container ${name} already running on port $(ct_read "${dir}/port")"
    printf '%s %s\n' "${name}" "$(ct_read "${dir}/port")"
    return 0
  fi
  cmd_stop "${name}" >/dev/null 2>&1 || true
  mkdir -p "${dir}/upper" "${dir}/work" "${dir}/root"
  mount -t overlay overlay -o "lowerdir=${CT_ROOTFS},upperdir=${dir}/upper,workdir=${dir}/work" "${dir}/root"
  # Its own host key, like a fresh cloud VM (the library treats one key as one machine).
  local key="${dir}/ssh_host_ed25519_key"
  ssh-keygen -q -t ed25519 -N '' -C '' -f "${key}"
  install -m 0600 "${key}" "${dir}/root/etc/ssh/ssh_host_ed25519_key"
  install -m 0644 "${key}.pub" "${dir}/root/etc/ssh/ssh_host_ed25519_key.pub"
  printf '%s\n' "${name}" >"${dir}/root/etc/hostname"

  # Network: a namespace with user-mode networking (as QEMU's), sshd forwarded to a loopback port.
  local netns="amarktai-ct-${name}"
  ip netns add "${netns}"
  printf '%s\n' "${netns}" >"${dir}/netns"
  setsid slirp4netns --configure --mtu=65520 --disable-host-loopback --api-socket "${dir}/slirp.sock" \
    --netns-type=path "/run/netns/${netns}" tap0 </dev/null >"${dir}/slirp.log" 2>&1 &
  printf '%s\n' "$!" >"${dir}/slirp.pid"
  local i port="" reply
  for ((i = 0; i < 100; i++)); do [[ -S "${dir}/slirp.sock" ]] && break; sleep 0.1; done
  exec 8>"${CT_STATE_DIR}/.lock"
  flock 8
  for ((i = 0; i < 10; i++)); do
    port="$(vm_pick_port)"
    reply="$(printf '{"execute":"add_hostfwd","arguments":{"proto":"tcp","host_addr":"127.0.0.1","host_port":%s,"guest_port":22}}' "${port}" |
      socat -t 2 - "UNIX-CONNECT:${dir}/slirp.sock" 2>&1 || true)"
    [[ "${reply}" == *'"return"'* ]] && break
    port=""
  done
  flock -u 8
  exec 8>&-
  [[ -n "${port}" ]] || { cmd_stop "${name}" >/dev/null 2>&1 || true; vm_die "container ${name}: no SSH port forward (${reply})"; }
  printf '%s\n' "${port}" >"${dir}/port"
  printf '[127.0.0.1]:%s %s\n' "${port}" "$(vm_host_key "${key}.pub")" >"${dir}/known_hosts"

  # --register=no/--keep-unit: the machine may have no systemd of its own (no machined, no bus).
  # --system-call-filter: nspawn's default filter refuses pidfd_getfd (EPERM), which a VM allows root; and
  # /proc/sys/net is read-only unless nspawn made the network itself: the port handover of an adoption needs both
  # (pidfd_getfd, net.ipv4.tcp_migrate_req of the container's own network namespace), so containers stay faithful for it.
  SYSTEMD_NSPAWN_API_VFS_WRITABLE=network setsid systemd-nspawn --quiet --directory="${dir}/root" --boot --machine="${name}" --register=no --keep-unit \
    --network-namespace-path="/run/netns/${netns}" --console=passive --system-call-filter=pidfd_getfd \
    </dev/null >"${dir}/console.log" 2>&1 &
  local nspawn_pid="$!"
  printf '%s\n' "${nspawn_pid}" >"${dir}/nspawn.pid"

  vm_ssh_opts "${port}" "${dir}/known_hosts"
  while ! timeout 20 ssh "${VM_SSH_OPTS[@]}" ubuntu@127.0.0.1 'systemctl is-system-running --wait >/dev/null 2>&1; true' </dev/null >/dev/null 2>&1; do
    # By pid alone: until setsid has exec'd nspawn, the process is still this script's fork.
    if ! kill -0 "${nspawn_pid}" 2>/dev/null || [[ "$(ps -o stat= -p "${nspawn_pid}" 2>/dev/null)" == Z* ]]; then
      tail -n 30 "${dir}/console.log" >&2 || true
      cmd_stop "${name}" >/dev/null 2>&1 || true
      vm_die "container ${name} exited during start"
    fi
    if (($(vm_now_ms) - t0 > 120000)); then
      cmd_stop "${name}" >/dev/null 2>&1 || true
      vm_die "container ${name}: SSH not ready within 120s"
    fi
    sleep 0.3
  done
  vm_log "container ${name} ready in $(vm_elapsed "${t0}")s (ssh 127.0.0.1:${port})"
  printf '%s %s\n' "${name}" "${port}"
}

# Stops what start made, each process by its recorded pid (checked against its command line).
cmd_stop() {
  local name="${1:-}"
  [[ -n "${name}" ]] || vm_die "usage: ct.sh stop NAME"
  vm_check_name "${name}"
  local dir pid i netns
  dir="$(ct_dir "${name}")"
  [[ -d "${dir}" ]] || { vm_log "container ${name} is not running"; return 0; }
  pid="$(ct_read "${dir}/nspawn.pid")"
  if ct_pid_is "${pid}" systemd-nspawn "${dir}/"; then
    # SIGTERM: nspawn asks the container's systemd to power off; SIGKILL after 20 s.
    kill -TERM "${pid}" 2>/dev/null || true
    for ((i = 0; i < 200; i++)); do ct_pid_is "${pid}" systemd-nspawn "${dir}/" || break; sleep 0.1; done
    if ct_pid_is "${pid}" systemd-nspawn "${dir}/"; then kill -KILL "${pid}" 2>/dev/null || true; fi
  fi
  pid="$(ct_read "${dir}/slirp.pid")"
  if ct_pid_is "${pid}" slirp4netns "${dir}/"; then kill -TERM "${pid}" 2>/dev/null || true; fi
  mountpoint -q "${dir}/root" && { umount "${dir}/root" 2>/dev/null || umount -l "${dir}/root"; }
  netns="$(ct_read "${dir}/netns")"
  if [[ -n "${netns}" ]]; then ip netns del "${netns}" 2>/dev/null || true; fi
  rm -rf "${dir}"
  vm_log "container ${name} stopped"
}

# Sets VM_LOC_PORT and VM_LOC_KNOWN_HOSTS for running container NAME (for vm_ssh_command).
locate() {
  require_running "$1"
  VM_LOC_PORT="$(ct_read "$(ct_dir "$1")/port")"
  VM_LOC_KNOWN_HOSTS="$(ct_dir "$1")/known_hosts"
}

cmd_ssh() { vm_ssh_command ct.sh locate "$@"; }

cmd_info() {
  local name="${1:-}"
  [[ -n "${name}" ]] || vm_die "usage: ct.sh info NAME"
  require_running "${name}"
  local dir
  dir="$(ct_dir "${name}")"
  vm_info_json "$(ct_read "${dir}/port")" "${dir}/ssh_host_ed25519_key.pub" "${dir}/known_hosts"
}

cmd_list() {
  local d name
  [[ -d "${CT_STATE_DIR}" ]] || return 0
  for d in "${CT_STATE_DIR}"/*/; do
    [[ -d "${d}" ]] || continue
    d="${d%/}"
    name="${d##*/}"
    ct_running "${name}" && printf '%s %s %s\n' "${name}" "$(ct_read "${d}/port")" "$(ct_read "${d}/nspawn.pid")"
  done
  return 0
}

main() {
  local cmd="${1:-}"
  shift || true
  case "${cmd}" in
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    ssh) cmd_ssh "$@" ;;
    info) cmd_info "$@" ;;
    list) cmd_list ;;
    -h | --help | help | "") sed -n '2,24s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" ;;
    *) vm_die "unknown command '${cmd}' (start, stop, ssh, info, list)" ;;
  esac
}

main "$@"
