# shellcheck shell=bash
# shellcheck disable=SC2034 # the variables are used by the scripts sourcing this file
# Shared helpers for tools/vm/build-image.sh and tools/vm/vm.sh.
# Sourced, never executed. Everything here must stay shellcheck-clean.

# Bump to force a rebuild of the cached image (a new directory is used).
AMARKTAI_VM_IMAGE_VERSION="trixie-1"

# Guest hardware. The template snapshot can only be restored with exactly the
# same machine type, CPU model, vCPU count and memory size, so these are baked
# into the recorded argument file at build time and read back from it by vm.sh.
VM_MEMORY_MIB=1536
VM_CPUS=2
VM_CPU_MODEL=max
VM_DISK_SIZE=4G
VM_HOSTNAME=amarktai-vm
VM_KERNEL_CMDLINE="root=/dev/vda rw console=ttyS0,115200 net.ifnames=1 random.trust_cpu=on"

VM_CACHE_DIR="${AMARKTAI_CACHE_DIR:-${HOME}/.cache/amarktai-infra}"
VM_IMAGE_DIR="${VM_CACHE_DIR}/vm/${AMARKTAI_VM_IMAGE_VERSION}"
VM_STATE_DIR="${AMARKTAI_VM_STATE_DIR:-${VM_CACHE_DIR}/vm-run}"

VM_PRIVATE_KEY="${VM_IMAGE_DIR}/id_ed25519"
VM_PUBLIC_KEY="${VM_IMAGE_DIR}/id_ed25519.pub"
VM_HOST_KEY_FILE="${VM_IMAGE_DIR}/host_ed25519.pub"
VM_BASE_IMAGE="${VM_IMAGE_DIR}/base.qcow2"
VM_TEMPLATE_DISK="${VM_IMAGE_DIR}/template.qcow2"
VM_SNAPSHOT="${VM_IMAGE_DIR}/snapshot.zst"
VM_KERNEL="${VM_IMAGE_DIR}/vmlinuz"
VM_INITRD="${VM_IMAGE_DIR}/initrd.img"
VM_QEMU_ARGS_FILE="${VM_IMAGE_DIR}/qemu-args"
VM_META_FILE="${VM_IMAGE_DIR}/image.env"
VM_READY_MARKER="${VM_IMAGE_DIR}/.ready"

# The cloud-like target (build-cloud-image.sh, `vm.sh start --cloud`). Derived
# from base.qcow2, so it lives below the base image's directory: a new base
# version rebuilds it as well. Bump to force a rebuild of the cloud image alone.
AMARKTAI_VM_CLOUD_IMAGE_VERSION="cloud-1"
VM_CLOUD_DIR="${VM_IMAGE_DIR}/${AMARKTAI_VM_CLOUD_IMAGE_VERSION}"
VM_CLOUD_IMAGE="${VM_CLOUD_DIR}/cloud.qcow2"
VM_CLOUD_KERNEL="${VM_CLOUD_DIR}/vmlinuz"
VM_CLOUD_INITRD="${VM_CLOUD_DIR}/initrd.img"
VM_CLOUD_QEMU_ARGS_FILE="${VM_CLOUD_DIR}/qemu-args"
VM_CLOUD_META_FILE="${VM_CLOUD_DIR}/image.env"
VM_CLOUD_READY_MARKER="${VM_CLOUD_DIR}/.ready"
# The root filesystem is found by label (as on Ubuntu's cloud images): the
# seed disk is a second virtio disk.
VM_CLOUD_ROOT_LABEL=cloudimg-rootfs
VM_CLOUD_KERNEL_CMDLINE="root=LABEL=${VM_CLOUD_ROOT_LABEL} rw console=ttyS0,115200 net.ifnames=1 random.trust_cpu=on"

# Host loopback port range for the SSH forward (below the usual ephemeral range).
VM_PORT_MIN=20000
VM_PORT_MAX=29999

# ---------------------------------------------------------------------------
# logging / timing

vm_now_ms() {
  local t="${EPOCHREALTIME}"
  t="${t//[.,]/}"
  printf '%s\n' "$((10#${t} / 1000))"
}

# One timeline with the script that runs this one: scripts/up-local.sh and scripts/test.sh export AMARKTAI_T0
# (epoch seconds), and their own progress lines count from it.
if [[ "${AMARKTAI_T0:-}" =~ ^[0-9]+$ ]]; then
  VM_T0_MS="$((AMARKTAI_T0 * 1000))"
else
  VM_T0_MS="$(vm_now_ms)"
fi

# Seconds (one decimal) since a start time in ms (default: script start).
vm_elapsed() {
  local start="${1:-${VM_T0_MS}}" now
  now="$(vm_now_ms)"
  local d=$((now - start))
  printf '%d.%d' "$((d / 1000))" "$(((d % 1000) / 100))"
}

vm_log() {
  printf '[%7ss] %s\n' "$(vm_elapsed "${VM_T0_MS}")" "$*" >&2
}

vm_die() {
  printf '[%7ss] ERROR: %s\n' "$(vm_elapsed "${VM_T0_MS}")" "$*" >&2
  exit 1
}

# ---------------------------------------------------------------------------
# host dependencies

VM_APT_UPDATED=0

# vm_require CMD:PACKAGE ... installs the packages of missing commands.
vm_require() {
  local spec cmd pkg missing=()
  for spec in "$@"; do
    cmd="${spec%%:*}"
    pkg="${spec#*:}"
    if ! command -v "${cmd}" >/dev/null 2>&1; then
      missing+=("${pkg}")
    fi
  done
  if ((${#missing[@]} == 0)); then
    return 0
  fi
  if [[ "$(id -u)" != 0 ]]; then
    vm_die "missing host packages (${missing[*]}); run as root or install them"
  fi
  vm_log "installing host packages: ${missing[*]}"
  # Several hosts start in parallel (the fleet test starts eight containers at once): one apt at a
  # time, each waiting for dpkg's lock rather than failing on it, and none installing twice.
  (
    flock -w 900 5 || vm_die "another package install held the lock for 15 minutes"
    missing=()
    for spec in "$@"; do
      command -v "${spec%%:*}" >/dev/null 2>&1 || missing+=("${spec#*:}")
    done
    ((${#missing[@]} == 0)) && exit 0
    if [[ "${VM_APT_UPDATED}" == 0 ]]; then
      # `update` does not wait for the lists lock (DPkg::Lock::Timeout covers dpkg's only):
      # another apt outside this script may hold it for a while.
      local try
      for ((try = 0; ; try++)); do
        DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update -q >&2 && break
        ((try < 120)) || vm_die "apt-get update kept failing"
        sleep 5
      done
    fi
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${missing[@]}" >&2
  ) 5>/run/amarktai-infra-apt.lock
  VM_APT_UPDATED=1
}

vm_require_runtime() {
  vm_require \
    qemu-system-x86_64:qemu-system-x86 \
    qemu-img:qemu-utils \
    zstd:zstd \
    ssh:openssh-client \
    ssh-keygen:openssh-client \
    flock:util-linux \
    ss:iproute2 \
    socat:socat
}

# ---------------------------------------------------------------------------
# misc

# QEMU option strings use ',' as a separator and the exec: migration URIs go
# through /bin/sh: refuse paths that would need escaping instead of escaping.
vm_check_path() {
  local p="$1"
  case "${p}" in
    *[[:space:],\'\"\\\$\`]*) vm_die "path not supported (contains whitespace, comma or quotes): ${p}" ;;
  esac
}

vm_check_name() {
  local name="$1"
  if [[ ! "${name}" =~ ^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$ ]]; then
    vm_die "invalid VM name '${name}' (use letters, digits, '.', '_', '-')"
  fi
}

vm_image_ready() {
  [[ -f "${VM_READY_MARKER}" ]]
}

vm_cloud_image_ready() {
  [[ -f "${VM_CLOUD_READY_MARKER}" ]]
}

# "ssh-ed25519 AAAA..." without the comment.
vm_host_key() {
  local kt key _rest file="${1:-${VM_HOST_KEY_FILE}}"
  [[ -s "${file}" ]] || file="${VM_HOST_KEY_FILE}"
  read -r kt key _rest <"${file}"
  printf '%s %s\n' "${kt}" "${key}"
}

# Gives the running VM in DIR (sshd on PORT) its own ed25519 host key, like a
# fresh cloud VM: every VM restored from one snapshot would otherwise present
# the image's key, and the library treats one key as one machine. The key is
# generated here, sent on stdin, and pinned in DIR/known_hosts; sshd reads
# host keys per connection, so the next session presents it.
vm_rekey() {
  local dir="$1" port="$2" key="$1/ssh_host_ed25519_key"
  rm -f "${key}" "${key}.pub"
  ssh-keygen -q -t ed25519 -N '' -C '' -f "${key}"
  vm_ssh_opts "${port}" "${dir}/known_hosts"
  local attempt pushed=""
  # Retried with a long timeout: on a loaded machine one SSH session can take a minute.
  for ((attempt = 0; attempt < 3; attempt++)); do
    if timeout 180 ssh "${VM_SSH_OPTS[@]}" ubuntu@127.0.0.1 \
      "sudo -n bash -c 'set -e; umask 077; cat > /etc/ssh/ssh_host_ed25519_key.new; ssh-keygen -y -f /etc/ssh/ssh_host_ed25519_key.new > /etc/ssh/ssh_host_ed25519_key.pub.new; chmod 0644 /etc/ssh/ssh_host_ed25519_key.pub.new; mv -f /etc/ssh/ssh_host_ed25519_key.pub.new /etc/ssh/ssh_host_ed25519_key.pub; mv -f /etc/ssh/ssh_host_ed25519_key.new /etc/ssh/ssh_host_ed25519_key; systemctl reload ssh 2>/dev/null || true'" <"${key}" >/dev/null 2>"${dir}/rekey.log"; then
      pushed=1
      break
    fi
    # Pushed but the reply was lost (sshd restarting)? Then the guest already presents the new key.
    if grep -q "REMOTE HOST IDENTIFICATION HAS CHANGED\|Host key verification failed" "${dir}/rekey.log" 2>/dev/null; then pushed=1; break; fi
    sleep 2
  done
  [[ -n "${pushed}" ]] || { cat "${dir}/rekey.log" >&2; return 1; }
  printf '[127.0.0.1]:%s %s\n' "${port}" "$(vm_host_key "${key}.pub")" >"${dir}/known_hosts"
  # sshd restarts on reload: wait until it answers with the new key.
  local i
  for ((i = 0; i < 60; i++)); do
    timeout 30 ssh "${VM_SSH_OPTS[@]}" ubuntu@127.0.0.1 true </dev/null >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  return 1
}

# Is PID alive and a QEMU process whose command line mentions MARKER?
vm_pid_is_our_qemu() {
  local pid="$1" marker="$2" cmdline
  [[ "${pid}" =~ ^[0-9]+$ ]] || return 1
  [[ -r "/proc/${pid}/cmdline" ]] || return 1
  cmdline="$(tr '\0' ' ' <"/proc/${pid}/cmdline" 2>/dev/null)" || return 1
  [[ "${cmdline}" == *qemu-system* && "${cmdline}" == *"${marker}"* ]]
}

# Kill a QEMU started by us (verified through its command line), wait for it.
vm_kill_qemu() {
  local pid="$1" marker="$2" i
  vm_pid_is_our_qemu "${pid}" "${marker}" || return 0
  kill -TERM "${pid}" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    vm_pid_is_our_qemu "${pid}" "${marker}" || return 0
    sleep 0.1
  done
  kill -KILL "${pid}" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    vm_pid_is_our_qemu "${pid}" "${marker}" || return 0
    sleep 0.1
  done
  vm_die "QEMU pid ${pid} did not exit"
}

# After QEMU died: give the reaper (pid 1 for a daemonized QEMU) a moment so
# the zombie entry disappears too. Never fails.
vm_wait_reaped() {
  local pid="$1" i
  [[ "${pid}" =~ ^[0-9]+$ ]] || return 0
  for ((i = 0; i < 30; i++)); do
    [[ -e "/proc/${pid}" ]] || return 0
    sleep 0.1
  done
  return 0
}

vm_port_in_use() {
  local port="$1"
  [[ -n "$(ss -Htan "( sport = :${port} )" 2>/dev/null)" ]]
}

vm_pick_port() {
  local port i
  for ((i = 0; i < 200; i++)); do
    port=$((VM_PORT_MIN + (RANDOM * 32768 + RANDOM) % (VM_PORT_MAX - VM_PORT_MIN + 1)))
    if ! vm_port_in_use "${port}"; then
      printf '%s\n' "${port}"
      return 0
    fi
  done
  vm_die "no free loopback port found in ${VM_PORT_MIN}-${VM_PORT_MAX}"
}

# Send one HMP command to a monitor socket, print the reply.
vm_monitor() {
  local sock="$1" cmd="$2"
  printf '%s\n' "${cmd}" | socat -t 1 - "UNIX-CONNECT:${sock}" 2>/dev/null | tr -d '\r'
}

# vm_wait_running RUNDIR TIMEOUT_S: wait until the monitor reports the guest
# running (an incoming migration has finished loading). Connecting to the
# forwarded SSH port while the guest is still paused stalls that connection
# for several seconds, so vm.sh waits for this first.
vm_wait_running() {
  local rundir="$1" timeout_s="$2" start out pid
  start="$(vm_now_ms)"
  while :; do
    out="$(printf 'info status\n' | socat -t 0.1 - "UNIX-CONNECT:${rundir}/monitor.sock" 2>/dev/null | tr -d '\r' || true)"
    case "${out}" in
      *"VM status: running"*) return 0 ;;
    esac
    pid="$(vm_qemu_pid "${rundir}")"
    if [[ -z "${pid}" ]] || ! kill -0 "${pid}" 2>/dev/null; then
      return 1
    fi
    if (($(vm_now_ms) - start > timeout_s * 1000)); then
      return 1
    fi
    sleep 0.1
  done
}

# ---------------------------------------------------------------------------
# QEMU command line
#
# The argument list is recorded (one argument per line) in VM_QEMU_ARGS_FILE at
# build time with placeholders for per-instance values:
#   @DISK@ @PORT@ @SERIAL@ @MONITOR@ @PIDFILE@
# The template and every restored VM are started from that very file, so device
# order and PCI addresses (which migration depends on) always match.

vm_write_qemu_args() {
  local machine="$1" out="$2"
  vm_write_machine_args amarktai-vm "${VM_KERNEL}" "${VM_INITRD}" "${VM_KERNEL_CMDLINE}" "${machine}" "${out}" \
    -device vmgenid,guid=auto
}

# The cloud target's arguments: a cold boot (no snapshot), its own kernel and
# initrd, and the NoCloud seed disk (@SEED@, read-only) as a second disk.
vm_write_cloud_qemu_args() {
  local machine="$1" out="$2"
  vm_write_machine_args amarktai-cloud-vm "${VM_CLOUD_KERNEL}" "${VM_CLOUD_INITRD}" "${VM_CLOUD_KERNEL_CMDLINE}" \
    "${machine}" "${out}" \
    -device virtio-blk-pci,drive=seed0,addr=0x6 \
    -drive file=@SEED@,if=none,id=seed0,format=raw,readonly=on
}

# vm_write_machine_args NAME KERNEL INITRD CMDLINE MACHINE OUT [ARG...]: the
# machine both targets share (one argument per line into OUT), with ARG...
# (the target's own devices) after the RNG.
vm_write_machine_args() {
  local name="$1" kernel="$2" initrd="$3" cmdline="$4" machine="$5" out="$6"
  shift 6
  {
    printf '%s\n' \
      -name "${name}" \
      -machine "${machine}" \
      -accel tcg,thread=multi \
      -cpu "${VM_CPU_MODEL}" \
      -smp "${VM_CPUS}" \
      -m "${VM_MEMORY_MIB}" \
      -nodefaults \
      -no-user-config \
      -display none \
      -kernel "${kernel}" \
      -initrd "${initrd}" \
      -append "${cmdline}" \
      -serial file:@SERIAL@ \
      -monitor unix:@MONITOR@,server=on,wait=off \
      -device virtio-net-pci,netdev=n0,addr=0x3,romfile= \
      -netdev user,id=n0,hostfwd=tcp:127.0.0.1:@PORT@-:22 \
      -device virtio-blk-pci,drive=disk0,addr=0x4 \
      -drive file=@DISK@,if=none,id=disk0,format=qcow2,cache=unsafe,discard=unmap \
      -device virtio-rng-pci,addr=0x5 \
      "$@" \
      -pidfile @PIDFILE@ \
      -daemonize
  } >"${out}"
}

# vm_qemu_launch ARGS_FILE RUNDIR DISK PORT [INCOMING_URI]
# Starts a daemonized QEMU; files in RUNDIR: qemu.pid, monitor.sock,
# serial.log, qemu.log (and seed.img, the cloud target's seed disk).
# Returns non-zero if QEMU failed to start.
vm_qemu_launch() {
  local args_file="$1" rundir="$2" disk="$3" port="$4" incoming="${5:-}"
  local -a args=()
  local line
  while IFS= read -r line; do
    line="${line//@DISK@/${disk}}"
    line="${line//@PORT@/${port}}"
    line="${line//@SERIAL@/${rundir}/serial.log}"
    line="${line//@MONITOR@/${rundir}/monitor.sock}"
    line="${line//@PIDFILE@/${rundir}/qemu.pid}"
    line="${line//@SEED@/${rundir}/seed.img}"
    args+=("${line}")
  done <"${args_file}"
  if [[ -n "${incoming}" ]]; then
    args+=(-incoming "${incoming}")
  fi
  rm -f "${rundir}/qemu.pid" "${rundir}/monitor.sock"
  printf '%q ' qemu-system-x86_64 "${args[@]}" >"${rundir}/qemu.cmdline"
  printf '\n' >>"${rundir}/qemu.cmdline"
  # -daemonize: the parent returns once the machine is set up; the daemon
  # chdirs to / (all paths above are absolute).
  # fds 8/9 are the scripts' lock files: do not leak them into the daemon.
  qemu-system-x86_64 "${args[@]}" >"${rundir}/qemu.log" 2>&1 </dev/null 8>&- 9>&-
}

# vm_launch_on_free_port ARGS_FILE RUNDIR [INCOMING_URI]: vm_qemu_launch with
# RUNDIR/disk.qcow2 on a free loopback port, picking another one (10 tries in
# all) while QEMU reports the port taken. Sets VM_LAUNCH_PORT (the last port
# tried); non-zero if QEMU did not start.
vm_launch_on_free_port() {
  local args_file="$1" rundir="$2" incoming="${3:-}" i
  VM_LAUNCH_PORT=""
  for ((i = 0; i < 10; i++)); do
    VM_LAUNCH_PORT="$(vm_pick_port)" || exit 1
    if vm_qemu_launch "${args_file}" "${rundir}" "${rundir}/disk.qcow2" "${VM_LAUNCH_PORT}" "${incoming}"; then
      return 0
    fi
    if ! grep -q 'host forwarding' "${rundir}/qemu.log" 2>/dev/null; then
      return 1
    fi
    vm_log "port ${VM_LAUNCH_PORT} was taken; retrying"
  done
  return 1
}

vm_qemu_pid() {
  local rundir="$1" pid=""
  if [[ -s "${rundir}/qemu.pid" ]]; then
    read -r pid <"${rundir}/qemu.pid" || true
  fi
  printf '%s\n' "${pid}"
}

vm_dump_failure() {
  local rundir="$1"
  if [[ -s "${rundir}/qemu.log" ]]; then
    printf -- '--- qemu.log ---\n' >&2
    tail -n 20 "${rundir}/qemu.log" >&2 || true
  fi
  if [[ -s "${rundir}/serial.log" ]]; then
    printf -- '--- serial.log (tail) ---\n' >&2
    tail -n 40 "${rundir}/serial.log" >&2 || true
  fi
}

# ---------------------------------------------------------------------------
# image builds (build-image.sh, build-cloud-image.sh; ct.sh's rootfs copy)

VM_BUILD_DIR=""
VM_BUILD_READY_MARKER=""
VM_BUILD_WHAT=""
VM_BUILD_FORCE=0
VM_PHASE_T0=0

# vm_build_start SCRIPT NEEDS DIR READY_MARKER WHAT [ARG...]: the start of an
# image build SCRIPT that builds WHAT ("image <version>") into DIR, done once
# READY_MARKER exists. Parses ARG... (--force sets VM_BUILD_FORCE=1; -h/--help
# and anything else print the script's `usage`), exits 0 if WHAT is built
# (unless forced), and dies unless root (NEEDS: what root is needed for).
vm_build_start() {
  local script="$1" needs="$2" arg
  VM_BUILD_DIR="$3"
  VM_BUILD_READY_MARKER="$4"
  VM_BUILD_WHAT="$5"
  shift 5
  VM_BUILD_FORCE=0
  for arg in "$@"; do
    case "${arg}" in
      --force) VM_BUILD_FORCE=1 ;;
      -h | --help) usage; exit 0 ;;
      *) usage >&2; exit 2 ;;
    esac
  done
  vm_check_path "${VM_BUILD_DIR}"
  if [[ "${VM_BUILD_FORCE}" == 0 && -f "${VM_BUILD_READY_MARKER}" ]]; then
    vm_log "${VM_BUILD_WHAT} is ready in ${VM_BUILD_DIR}"
    exit 0
  fi
  [[ "$(id -u)" == 0 ]] || vm_die "${script} must run as root (${needs})"
}

# vm_build_lock LOG_DIR: after vm_build_start, creates the build's directory and
# LOG_DIR, holds DIR/.build.lock on fd 9 for the rest of the script, and exits 0
# if a concurrent run has finished the build meanwhile. --force drops the ready
# marker and every stage (kept in the build's directory, see below).
vm_build_lock() {
  local dir="${VM_BUILD_DIR}" log_dir="$1"
  mkdir -p "${dir}" "${log_dir}"
  exec 9>"${dir}/.build.lock"
  if ! flock -n 9; then
    vm_log "another build holds ${dir}/.build.lock; waiting"
    flock 9
  fi
  if [[ "${VM_BUILD_FORCE}" == 0 && -f "${VM_BUILD_READY_MARKER}" ]]; then
    vm_log "${VM_BUILD_WHAT} was built by a concurrent run"
    exit 0
  fi
  if [[ "${VM_BUILD_FORCE}" == 1 ]]; then
    rm -f "${VM_BUILD_READY_MARKER}" "${dir}"/.stage-*
  fi
}

# Build stages already done (a rerun resumes after the last one).
vm_stage_done() { [[ -f "${VM_BUILD_DIR}/.stage-$1" ]]; }
vm_stage_mark() { touch "${VM_BUILD_DIR}/.stage-$1"; }

vm_phase_begin() {
  VM_PHASE_T0="$(vm_now_ms)"
  vm_log "==> $1"
}
vm_phase_end() {
  vm_log "<== $1 done in $(vm_elapsed "${VM_PHASE_T0}")s"
}

# Unmount everything mounted at or below DIR (deepest first).
vm_unmount_under() {
  local dir="$1" m
  while IFS= read -r m; do
    umount -l "${m}" 2>/dev/null || true
  done < <(awk -v d="${dir}" '$2 == d || index($2, d "/") == 1 { print $2 }' /proc/mounts | sort -r)
}

# Deletes the build's rootfs DIR, refusing while anything is still mounted in it.
vm_remove_rootfs() {
  local rootfs="$1"
  if [[ -e "${rootfs}" ]]; then
    vm_unmount_under "${rootfs}"
    if awk -v d="${rootfs}" 'index($2, d) == 1 { found = 1 } END { exit !found }' /proc/mounts; then
      vm_die "something is still mounted under ${rootfs}"
    fi
    rm -rf --one-file-system "${rootfs}"
  fi
}

# vm_extract_base_rootfs DEST RAW MNT: base.qcow2's filesystem as the plain
# directory DEST, copied from a read-only loop mount (on MNT) of a raw copy
# (RAW); RAW and MNT are removed afterwards.
vm_extract_base_rootfs() {
  local dest="$1" raw="$2" mnt="$3"
  mkdir -p "${mnt}" "${dest}"
  qemu-img convert -f qcow2 -O raw "${VM_BASE_IMAGE}" "${raw}"
  mount -o loop,ro "${raw}" "${mnt}"
  cp -a "${mnt}/." "${dest}/" || { umount "${mnt}"; vm_die "copying the rootfs failed"; }
  umount "${mnt}"
  rm -f "${raw}"
  rmdir "${mnt}"
}

# vm_chroot_configure ROOTFS SCRIPT LOG: runs the bash SCRIPT as root inside
# ROOTFS with /proc, /sys and /dev mounted (still mounted on return: callers
# inspect the rootfs with them, then vm_unmount_under it); on failure shows the
# tail of LOG and dies.
vm_chroot_configure() {
  local rootfs="$1" script="$2" log="$3"
  mount -t proc proc "${rootfs}/proc"
  mount -t sysfs sysfs "${rootfs}/sys"
  mount --bind /dev "${rootfs}/dev"
  mount --bind /dev/pts "${rootfs}/dev/pts"
  if ! chroot "${rootfs}" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
    /bin/bash -c "${script}" >"${log}" 2>&1; then
    tail -n 30 "${log}" >&2 || true
    vm_unmount_under "${rootfs}"
    vm_die "rootfs configuration failed (log: ${log})"
  fi
}

# vm_install_boot_files ROOTFS KERNEL INITRD: installs the newest kernel of
# ROOTFS/boot and its initrd as KERNEL and INITRD; sets VM_BOOT_KERNEL_VERSION.
vm_install_boot_files() {
  local rootfs="$1" kernel_out="$2" initrd_out="$3" kernel initrd
  kernel="$(find "${rootfs}/boot" -maxdepth 1 -name 'vmlinuz-*' | sort -V | tail -n 1)"
  [[ -n "${kernel}" ]] || vm_die "no kernel in ${rootfs}/boot"
  initrd="${rootfs}/boot/initrd.img-${kernel##*/vmlinuz-}"
  [[ -f "${initrd}" ]] || vm_die "no initrd ${initrd}"
  install -m 0644 "${kernel}" "${kernel_out}"
  install -m 0644 "${initrd}" "${initrd_out}"
  VM_BOOT_KERNEL_VERSION="${kernel##*/vmlinuz-}"
}

# vm_make_disk ROOTFS LABEL RAW QCOW2 LOG: QCOW2, an ext4 disk of VM_DISK_SIZE
# labelled LABEL holding ROOTFS's files (mkfs.ext4 -d into RAW, then converted).
vm_make_disk() {
  local rootfs="$1" label="$2" raw="$3" qcow2="$4" log="$5"
  rm -f "${raw}" "${qcow2}"
  truncate -s "${VM_DISK_SIZE}" "${raw}"
  mkfs.ext4 -q -F -L "${label}" -d "${rootfs}" "${raw}" >"${log}" 2>&1 ||
    { cat "${log}" >&2; vm_die "mkfs.ext4 failed"; }
  qemu-img convert -f raw -O qcow2 "${raw}" "${qcow2}"
  rm -f "${raw}"
}

# The versioned name of QEMU's q35 machine type (what the snapshot was made on).
vm_resolve_machine_type() {
  local m
  m="$(qemu-system-x86_64 -machine help | sed -n 's/^q35 .*(alias of \([^)]*\)).*/\1/p' | head -n 1)"
  printf '%s\n' "${m:-q35}"
}

# ---------------------------------------------------------------------------
# SSH

vm_write_known_hosts() {
  local port="$1" out="$2"
  printf '[127.0.0.1]:%s %s\n' "${port}" "$(vm_host_key)" >"${out}"
}

# Fills the global array VM_SSH_OPTS for PORT and KNOWN_HOSTS.
vm_ssh_opts() {
  local port="$1" known_hosts="$2"
  VM_SSH_OPTS=(
    -F /dev/null
    -p "${port}"
    -i "${VM_PRIVATE_KEY}"
    -o IdentitiesOnly=yes
    -o IdentityAgent=none
    -o BatchMode=yes
    -o StrictHostKeyChecking=yes
    -o "UserKnownHostsFile=${known_hosts}"
    -o GlobalKnownHostsFile=/dev/null
    -o HostKeyAlgorithms=ssh-ed25519
    -o UpdateHostKeys=no
    -o CheckHostIP=no
    -o ConnectTimeout=10
    -o ServerAliveInterval=15
    -o ServerAliveCountMax=4
    -o ControlMaster=no
    -o ControlPath=none
    -o LogLevel=ERROR
  )
}

# vm_wait_ssh PORT KNOWN_HOSTS RUNDIR TIMEOUT_S
# Polls until `ssh ubuntu@... true` succeeds; fails early if QEMU died.
vm_wait_ssh() {
  local port="$1" known_hosts="$2" rundir="$3" timeout_s="$4"
  local start pid
  start="$(vm_now_ms)"
  vm_ssh_opts "${port}" "${known_hosts}"
  while :; do
    if timeout 30 ssh "${VM_SSH_OPTS[@]}" ubuntu@127.0.0.1 true </dev/null >/dev/null 2>&1; then
      return 0
    fi
    pid="$(vm_qemu_pid "${rundir}")"
    if [[ -z "${pid}" ]] || ! kill -0 "${pid}" 2>/dev/null; then
      vm_dump_failure "${rundir}"
      vm_die "QEMU exited while waiting for SSH"
    fi
    if (($(vm_now_ms) - start > timeout_s * 1000)); then
      vm_dump_failure "${rundir}"
      vm_die "SSH did not come up within ${timeout_s}s"
    fi
    sleep 1
  done
}

# Guest-side part of vm_sync_guest: runs as root; reads the host's clock from
# stdin only once the connection is fully up, so the SSH handshake cost does
# not end up as clock skew.
# shellcheck disable=SC2016
VM_GUEST_SYNC_SCRIPT='
set -u
echo READY
IFS= read -r t || exit 1
date -u -s "@${t}" >/dev/null || exit 1
has_addr() { ip -4 -o addr show scope global | grep -q "inet "; }
if ! has_addr; then
  for l in /sys/class/net/en*; do networkctl reconfigure "${l##*/}" >/dev/null 2>&1 || true; done
  i=0
  while ! has_addr && [ "$i" -lt 100 ]; do sleep 0.2; i=$((i + 1)); done
fi
addr=$(ip -4 -o addr show scope global | awk "{print \$4; exit}")
echo "OK $(date -u +%s.%N) ${addr:-none}"
'

# vm_sync_guest PORT KNOWN_HOSTS: one SSH connection as ubuntu (sudo) that
# sets the guest clock to the host's clock and makes sure the NIC has an
# address. Prints "OK <guest-epoch> <addr>" on success; non-zero otherwise.
vm_sync_guest() {
  local port="$1" known_hosts="$2" line="" result="" rc=0 remote
  vm_ssh_opts "${port}" "${known_hosts}"
  remote="sudo -n bash -c $(printf '%q' "${VM_GUEST_SYNC_SCRIPT}")"
  coproc VM_SYNC { timeout 60 ssh "${VM_SSH_OPTS[@]}" ubuntu@127.0.0.1 "${remote}" 2>/dev/null; }
  local out_fd="${VM_SYNC[0]}" in_fd="${VM_SYNC[1]}" cpid="${VM_SYNC_PID}"
  if IFS= read -r -t 60 line <&"${out_fd}" && [[ "${line}" == READY ]]; then
    # A write to an ssh that just died must not SIGPIPE this shell (and
    # coproc fds are not usable from a subshell).
    trap '' PIPE
    { printf '%s\n' "${EPOCHREALTIME/,/.}" >&"${in_fd}"; } 2>/dev/null || true
    trap - PIPE
    IFS= read -r -t 60 result <&"${out_fd}" || true
  fi
  wait "${cpid}" || rc=$?
  if [[ "${rc}" != 0 || "${result}" != OK* ]]; then
    return 1
  fi
  printf '%s\n' "${result}"
}

# The `ssh` subcommand of vm.sh and ct.sh: TOOL ssh NAME [--root] [-- CMD...].
# LOCATE NAME must fail unless NAME runs, and set VM_LOC_PORT and VM_LOC_KNOWN_HOSTS
# (and VM_LOC_ROOT_VIA_SUDO=1 where root has no key of its own: --root then logs in
# as ubuntu and runs CMD through `sudo -n`, as on a cloud VM).
# No CMD: an interactive shell; one CMD word: a shell command line; more: each word quoted.
vm_ssh_command() {
  local tool="$1" locate="$2" name="" user=ubuntu
  shift 2
  while (($# > 0)); do
    case "$1" in
      --root) user=root; shift ;;
      --) shift; break ;;
      -*) vm_die "ssh: unknown option $1" ;;
      *)
        if [[ -z "${name}" ]]; then name="$1"; shift; else break; fi
        ;;
    esac
  done
  [[ -n "${name}" ]] || vm_die "usage: ${tool} ssh NAME [--root] -- CMD..."
  VM_LOC_ROOT_VIA_SUDO=0
  "${locate}" "${name}"
  vm_ssh_opts "${VM_LOC_PORT}" "${VM_LOC_KNOWN_HOSTS}"
  local remote=""
  if (($# == 1)); then
    remote="$1"
  elif (($# > 1)); then
    remote="$(printf '%q ' "$@")"
    remote="${remote% }"
  fi
  if [[ "${user}" == root && "${VM_LOC_ROOT_VIA_SUDO}" == 1 ]]; then
    user=ubuntu
    if (($# == 0)); then
      exec ssh -t "${VM_SSH_OPTS[@]}" "${user}@127.0.0.1" 'sudo -n -i'
    fi
    # Single-quoted for whatever POSIX shell the login user has.
    remote="sudo -n -- bash -c '${remote//\'/\'\\\'\'}'"
  fi
  if (($# == 0)); then
    exec ssh -t "${VM_SSH_OPTS[@]}" "${user}@127.0.0.1"
  fi
  exec ssh "${VM_SSH_OPTS[@]}" "${user}@127.0.0.1" "${remote}"
}

vm_json_str() {
  local s="$1"
  s="${s//\\/\\\\}"
  s="${s//\"/\\\"}"
  printf '"%s"' "${s}"
}

# The `info` line of vm.sh and ct.sh: connection details as JSON.
vm_info_json() {
  local port="$1" host_key_file="$2" known_hosts="$3"
  printf '{ "host": "127.0.0.1", "port": %s, "user": "ubuntu", "privateKeyPath": %s, "hostKey": %s, "knownHostsPath": %s }\n' \
    "${port}" "$(vm_json_str "${VM_PRIVATE_KEY}")" "$(vm_json_str "$(vm_host_key "${host_key_file}")")" \
    "$(vm_json_str "${known_hosts}")"
}
