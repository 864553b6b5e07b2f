#!/usr/bin/env bash
# Builds, once, the cached test-VM image used by tools/vm/vm.sh:
#   * a Debian 13 (trixie) rootfs (debootstrap, minbase + systemd, sshd,
#     python3 without python3-venv, like an Ubuntu 24.04 cloud host),
#   * a pristine qcow2 base image plus the kernel and initrd taken from it,
#   * a "template": the image booted once, with its RAM saved as a zstd
#     compressed migration stream, so vm.sh can restore VMs in seconds.
#
# Output: ${AMARKTAI_CACHE_DIR:-$HOME/.cache/amarktai-infra}/vm/<IMAGE_VERSION>/
# (IMAGE_VERSION is AMARKTAI_VM_IMAGE_VERSION in lib.sh: bump it to rebuild).
# Every phase is skipped when already done; `.ready` is written last.
#
# Usage: build-image.sh [--force]     (--force: redo everything)
# Env:   AMARKTAI_CACHE_DIR, AMARKTAI_DEBIAN_MIRROR (default deb.debian.org)
# Needs root (debootstrap, chroot, mounts); installs missing host packages.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=tools/vm/lib.sh
source "${SCRIPT_DIR}/lib.sh"

SUITE=trixie
MIRROR="${AMARKTAI_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
ROOTFS="${VM_IMAGE_DIR}/rootfs"
LOG_DIR="${VM_IMAGE_DIR}/logs"
TEMPLATE_RUN="${VM_IMAGE_DIR}/template-run"
KEYRING="${VM_IMAGE_DIR}/debian-archive-keyring.gpg"

# python3-venv is deliberately absent (Ubuntu cloud images lack it too).
INCLUDE_PKGS=(
  systemd systemd-sysv systemd-resolved dbus udev kmod
  openssh-server sudo python3 curl ca-certificates
  linux-image-amd64 initramfs-tools zstd
  iproute2 procps iputils-ping netbase e2fsprogs tzdata less
)

usage() {
  sed -n '2,16s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
}

vm_build_start build-image.sh "debootstrap, chroot, mount" \
  "${VM_IMAGE_DIR}" "${VM_READY_MARKER}" "image ${AMARKTAI_VM_IMAGE_VERSION}" "$@"

vm_build_lock "${LOG_DIR}"

TEMPLATE_PID=""
cleanup() {
  local rc=$?
  if [[ -n "${TEMPLATE_PID}" ]]; then
    vm_kill_qemu "${TEMPLATE_PID}" "${TEMPLATE_RUN}" || true
  fi
  if [[ -d "${ROOTFS}" ]]; then
    vm_unmount_under "${ROOTFS}"
  fi
  if [[ "${rc}" != 0 ]]; then
    vm_log "build FAILED (rc=${rc}); rerun to resume from the failed phase"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# ---------------------------------------------------------------------------
phase_host_deps() {
  vm_phase_begin "host packages"
  vm_require_runtime
  vm_require debootstrap:debootstrap mkfs.ext4:e2fsprogs
  if ! compgen -G '/usr/share/keyrings/debian-archive-trixie-*.gpg' >/dev/null &&
    [[ ! -f /usr/share/keyrings/debian-archive-keyring.gpg ]]; then
    vm_require __amarktai_no_such_command__:debian-archive-keyring
  fi
  vm_phase_end "host packages"
}

phase_keys() {
  if [[ -s "${VM_PRIVATE_KEY}" && -s "${VM_PUBLIC_KEY}" ]]; then
    return 0
  fi
  vm_phase_begin "test SSH key pair"
  rm -f "${VM_PRIVATE_KEY}" "${VM_PUBLIC_KEY}"
  ssh-keygen -q -t ed25519 -N '' -C "amarktai-vm-test" -f "${VM_PRIVATE_KEY}"
  chmod 0600 "${VM_PRIVATE_KEY}"
  # A new key invalidates everything built with the old one.
  rm -f "${VM_IMAGE_DIR}"/.stage-*
  vm_phase_end "test SSH key pair"
}

phase_debootstrap() {
  vm_stage_done debootstrap && return 0
  vm_phase_begin "debootstrap ${SUITE} (minbase) from ${MIRROR}"
  vm_remove_rootfs "${ROOTFS}"
  local -a keyrings=()
  mapfile -t keyrings < <(compgen -G '/usr/share/keyrings/debian-archive-trixie-*.gpg' || true)
  if ((${#keyrings[@]} > 0)); then
    cat "${keyrings[@]}" >"${KEYRING}"
  else
    cp /usr/share/keyrings/debian-archive-keyring.gpg "${KEYRING}"
  fi
  local include
  include="$(IFS=,; printf '%s' "${INCLUDE_PKGS[*]}")"
  if ! debootstrap --variant=minbase --components=main --include="${include}" \
    --keyring="${KEYRING}" "${SUITE}" "${ROOTFS}" "${MIRROR}" \
    >"${LOG_DIR}/debootstrap.log" 2>&1; then
    tail -n 30 "${LOG_DIR}/debootstrap.log" >&2 || true
    vm_unmount_under "${ROOTFS}"
    vm_die "debootstrap failed (log: ${LOG_DIR}/debootstrap.log)"
  fi
  vm_unmount_under "${ROOTFS}"
  vm_stage_mark debootstrap
  vm_phase_end "debootstrap"
}

write_guest_files() {
  local r="${ROOTFS}"
  printf '%s\n' "${VM_HOSTNAME}" >"${r}/etc/hostname"
  cat >"${r}/etc/hosts" <<EOF
127.0.0.1	localhost
127.0.1.1	${VM_HOSTNAME}
::1	localhost ip6-localhost ip6-loopback
ff02::1	ip6-allnodes
ff02::2	ip6-allrouters
EOF
  # Empty machine-id: systemd generates one on the first (template) boot.
  : >"${r}/etc/machine-id"
  if [[ -d "${r}/var/lib/dbus" ]]; then
    ln -sfn /etc/machine-id "${r}/var/lib/dbus/machine-id"
  fi
  ln -sfn /usr/share/zoneinfo/Etc/UTC "${r}/etc/localtime"
  printf 'Etc/UTC\n' >"${r}/etc/timezone"
  printf 'LANG=C.UTF-8\n' >"${r}/etc/locale.conf"
  printf 'KEYMAP=us\n' >"${r}/etc/vconsole.conf"
  printf '/dev/vda / ext4 defaults 0 1\n' >"${r}/etc/fstab"

  mkdir -p "${r}/etc/systemd/network"
  cat >"${r}/etc/systemd/network/20-wired.network" <<'EOF'
[Match]
Name=en*

[Network]
DHCP=yes

[DHCPv4]
UseDomains=yes
EOF
  # QEMU user-mode networking serves DNS on 10.0.2.3 (also handed out by
  # DHCP); never fall back to public resolvers.
  mkdir -p "${r}/etc/systemd/resolved.conf.d"
  cat >"${r}/etc/systemd/resolved.conf.d/90-amarktai.conf" <<'EOF'
[Resolve]
FallbackDNS=10.0.2.3
LLMNR=no
MulticastDNS=no
EOF

  mkdir -p "${r}/etc/ssh/sshd_config.d"
  cat >"${r}/etc/ssh/sshd_config.d/90-amarktai.conf" <<'EOF'
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
MaxStartups 50:30:200
EOF

  mkdir -p "${r}/etc/sudoers.d"
  printf 'ubuntu ALL=(ALL) NOPASSWD:ALL\n' >"${r}/etc/sudoers.d/90-ubuntu"
  chmod 0440 "${r}/etc/sudoers.d/90-ubuntu"

  rm -f "${r}/etc/apt/sources.list"
  cat >"${r}/etc/apt/sources.list.d/debian.sources" <<'EOF'
Types: deb
URIs: http://deb.debian.org/debian
Suites: trixie trixie-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: trixie-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  printf 'Acquire::Retries "3";\nAcquire::Languages "none";\n' >"${r}/etc/apt/apt.conf.d/80-amarktai"
  # Keep package installs quick under emulation: no man pages / docs.
  cat >"${r}/etc/dpkg/dpkg.cfg.d/90-amarktai-nodoc" <<'EOF'
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
EOF

  local m
  for m in virtio_pci virtio_blk virtio_net ext4; do
    grep -qxF "${m}" "${r}/etc/initramfs-tools/modules" 2>/dev/null ||
      printf '%s\n' "${m}" >>"${r}/etc/initramfs-tools/modules"
  done

  # The host intercepts TLS: trust its extra CAs inside the guest as well.
  mkdir -p "${r}/usr/local/share/ca-certificates"
  local crt
  for crt in /usr/local/share/ca-certificates/*.crt; do
    [[ -f "${crt}" ]] || continue
    install -m 0644 "${crt}" "${r}/usr/local/share/ca-certificates/"
  done

  install -m 0644 "${VM_PUBLIC_KEY}" "${r}/tmp/amarktai-authorized_keys"
}

# Runs inside the chroot (quoted heredoc: no host-side expansion).
read -r -d '' CHROOT_SCRIPT <<'CHROOT' || true
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8

if ! id -u ubuntu >/dev/null 2>&1; then
  useradd --create-home --uid 1000 --user-group --shell /bin/bash --comment Ubuntu ubuntu
fi
usermod -aG sudo ubuntu
usermod -p '!' ubuntu
usermod -p '!' root
visudo -cqf /etc/sudoers.d/90-ubuntu

install -d -m 0700 -o ubuntu -g ubuntu /home/ubuntu/.ssh
install -m 0600 -o ubuntu -g ubuntu /tmp/amarktai-authorized_keys /home/ubuntu/.ssh/authorized_keys
install -d -m 0700 /root/.ssh
install -m 0600 /tmp/amarktai-authorized_keys /root/.ssh/authorized_keys
rm -f /tmp/amarktai-authorized_keys

# Host keys: generated once here (only missing ones), pinned by the tests.
ssh-keygen -A

systemctl enable systemd-networkd.service systemd-resolved.service ssh.service
systemctl disable ssh.socket >/dev/null 2>&1 || true
systemctl set-default multi-user.target
# systemd's ssh generator probes AF_VSOCK and logs a failure on every boot.
mkdir -p /etc/systemd/system-generators
ln -sfn /dev/null /etc/systemd/system-generators/systemd-ssh-generator
# Quiet guest: no periodic maintenance, no interactive first-boot wizard.
systemctl mask apt-daily.timer apt-daily-upgrade.timer man-db.timer \
  e2scrub_all.timer e2scrub_all.service e2scrub_reap.service fstrim.timer \
  dpkg-db-backup.timer systemd-firstboot.service
if command -v debconf-set-selections >/dev/null; then
  echo 'man-db man-db/auto-update boolean false' | debconf-set-selections
fi
rm -f /var/lib/man-db/auto-update

update-ca-certificates >/dev/null

update-initramfs -u -k all >/dev/null 2>&1

# Like a fresh cloud image: no package lists, `apt-get update` is needed.
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/*.log /var/log/apt/*
install -d -m 0755 /var/lib/apt/lists/partial
CHROOT

phase_configure() {
  vm_stage_done configure && return 0
  vm_phase_begin "configure rootfs (users, sshd, networkd, initramfs)"
  [[ -d "${ROOTFS}/etc" ]] || vm_die "rootfs missing; remove ${VM_IMAGE_DIR}/.stage-debootstrap and rerun"
  write_guest_files
  vm_chroot_configure "${ROOTFS}" "${CHROOT_SCRIPT}" "${LOG_DIR}/configure.log"
  # Which virtio drivers does the initrd carry? (Debian builds them as modules.)
  local kver
  kver="$(basename "$(find "${ROOTFS}/lib/modules" -mindepth 1 -maxdepth 1 -type d | sort -V | tail -n 1)")"
  local in_initrd m
  in_initrd="$(chroot "${ROOTFS}" lsinitramfs "/boot/initrd.img-${kver}" 2>/dev/null |
    grep -oE '(virtio_blk|virtio_net|virtio_pci|ext4)\.ko[^/]*$' | sort -u | tr '\n' ' ' || true)"
  vm_log "kernel ${kver}; initrd modules: ${in_initrd:-none found}"
  vm_unmount_under "${ROOTFS}"
  for m in virtio_blk virtio_pci; do
    if [[ "${in_initrd}" != *"${m}.ko"* ]] &&
      ! grep -qE "^CONFIG_$(tr '[:lower:]' '[:upper:]' <<<"${m#virtio_}" | sed 's/^/VIRTIO_/')=y" "${ROOTFS}/boot/config-${kver}"; then
      vm_die "initrd lacks ${m} and it is not built into the kernel"
    fi
  done
  ln -sfn ../run/systemd/resolve/stub-resolv.conf "${ROOTFS}/etc/resolv.conf"
  awk '$1 == "ssh-ed25519" { print $1, $2 }' "${ROOTFS}/etc/ssh/ssh_host_ed25519_key.pub" >"${VM_HOST_KEY_FILE}"
  [[ -s "${VM_HOST_KEY_FILE}" ]] || vm_die "no ed25519 host key in the rootfs"
  vm_stage_mark configure
  vm_phase_end "configure rootfs"
}

phase_disk() {
  vm_stage_done disk && return 0
  vm_phase_begin "base disk image (mkfs.ext4 -d, ${VM_DISK_SIZE}) + kernel/initrd"
  [[ -d "${ROOTFS}/boot" ]] || vm_die "rootfs missing; remove ${VM_IMAGE_DIR}/.stage-* and rerun"
  vm_unmount_under "${ROOTFS}"
  vm_install_boot_files "${ROOTFS}" "${VM_KERNEL}" "${VM_INITRD}"
  printf '%s\n' "${VM_BOOT_KERNEL_VERSION}" >"${VM_IMAGE_DIR}/kernel-version"

  vm_make_disk "${ROOTFS}" amarktai-root "${VM_IMAGE_DIR}/base.raw" "${VM_BASE_IMAGE}" "${LOG_DIR}/mkfs.log"
  vm_stage_mark disk
  # The rootfs is no longer needed once the image exists.
  vm_remove_rootfs "${ROOTFS}"
  vm_log "base image $(du -h "${VM_BASE_IMAGE}" | cut -f1) (qcow2), kernel $(du -h "${VM_KERNEL}" | cut -f1), initrd $(du -h "${VM_INITRD}" | cut -f1)"
  vm_phase_end "base disk image"
}

phase_template() {
  vm_stage_done template && return 0
  vm_phase_begin "template: cold boot + RAM snapshot"
  local machine port kh
  machine="$(vm_resolve_machine_type)"
  # A QEMU left behind by a build that was killed outright.
  local stale_pid
  stale_pid="$(vm_qemu_pid "${TEMPLATE_RUN}")"
  if [[ -n "${stale_pid}" ]]; then
    vm_kill_qemu "${stale_pid}" "${TEMPLATE_RUN}"
  fi
  rm -rf "${TEMPLATE_RUN}"
  mkdir -p "${TEMPLATE_RUN}"
  rm -f "${VM_TEMPLATE_DISK}" "${VM_SNAPSHOT}" "${VM_SNAPSHOT}.partial"
  # The template disk is an overlay over the pristine base; after the snapshot
  # it holds exactly the disk state the saved RAM expects.
  qemu-img create -q -f qcow2 -F qcow2 -b "${VM_BASE_IMAGE}" "${VM_TEMPLATE_DISK}"
  vm_write_qemu_args "${machine}" "${VM_QEMU_ARGS_FILE}"
  kh="${TEMPLATE_RUN}/known_hosts"

  local t_boot started=0 i
  t_boot="$(vm_now_ms)"
  for ((i = 0; i < 5; i++)); do
    port="$(vm_pick_port)"
    if vm_qemu_launch "${VM_QEMU_ARGS_FILE}" "${TEMPLATE_RUN}" "${VM_TEMPLATE_DISK}" "${port}"; then
      started=1
      break
    fi
    vm_port_in_use "${port}" || { vm_dump_failure "${TEMPLATE_RUN}"; vm_die "QEMU failed to start"; }
  done
  [[ "${started}" == 1 ]] || vm_die "QEMU failed to start (ports busy)"
  TEMPLATE_PID="$(vm_qemu_pid "${TEMPLATE_RUN}")"
  vm_log "QEMU pid ${TEMPLATE_PID} (machine ${machine}, TCG), ssh on 127.0.0.1:${port}; serial: ${TEMPLATE_RUN}/serial.log"
  vm_write_known_hosts "${port}" "${kh}"
  vm_wait_ssh "${port}" "${kh}" "${TEMPLATE_RUN}" 900
  vm_log "SSH up after $(vm_elapsed "${t_boot}")s (cold boot)"

  vm_ssh_opts "${port}" "${kh}"
  local state failed
  state="$(timeout 600 ssh "${VM_SSH_OPTS[@]}" ubuntu@127.0.0.1 'systemctl is-system-running --wait' </dev/null 2>/dev/null || true)"
  case "${state}" in
    running) ;;
    degraded)
      failed="$(ssh "${VM_SSH_OPTS[@]}" ubuntu@127.0.0.1 'systemctl --failed --no-legend --plain' </dev/null || true)"
      vm_log "WARNING: system is degraded; failed units:"
      printf '%s\n' "${failed}" >&2
      ;;
    *)
      vm_dump_failure "${TEMPLATE_RUN}"
      vm_die "guest did not reach running/degraded (state: '${state:-no answer}')"
      ;;
  esac
  vm_log "guest state '${state}' after $(vm_elapsed "${t_boot}")s; $(ssh "${VM_SSH_OPTS[@]}" ubuntu@127.0.0.1 'systemd-analyze time 2>/dev/null | head -n 1' </dev/null || true)"

  # Warm the paths vm.sh uses right after a restore, then flush the disk.
  vm_sync_guest "${port}" "${kh}" >/dev/null || vm_die "guest clock/network sync failed"
  ssh "${VM_SSH_OPTS[@]}" ubuntu@127.0.0.1 \
    'python3 -c "import ssl, json, urllib.request" && sudo -n true && sync' </dev/null ||
    vm_die "guest warm-up failed"

  local t_snap mon="${TEMPLATE_RUN}/monitor.sock" status="" out
  t_snap="$(vm_now_ms)"
  vm_monitor "${mon}" 'migrate_set_parameter max-bandwidth 20g' >/dev/null
  vm_monitor "${mon}" 'migrate_set_parameter downtime-limit 2000' >/dev/null
  # QEMU reaps (SIGTERM/SIGKILL) its exec: child as soon as the stream ends,
  # so the compressor runs as a detached job reading a copy of the pipe and
  # renames its output into place only when it has written everything.
  local uri="exec 3<&0; { zstd -q -1 -T0 -f -o '${VM_SNAPSHOT}.partial' <&3 3<&- && mv -f '${VM_SNAPSHOT}.partial' '${VM_SNAPSHOT}'; } & exit 0"
  vm_monitor "${mon}" "migrate -d \"exec:${uri}\"" >/dev/null
  for ((i = 0; i < 1200; i++)); do
    out="$(vm_monitor "${mon}" 'info migrate')"
    status="$(sed -n 's/^Migration status: *\([a-z-]*\).*/\1/p' <<<"${out}" | head -n 1)"
    case "${status}" in
      completed) break ;;
      failed | cancelled) printf '%s\n' "${out}" >&2; vm_die "migration ${status}" ;;
    esac
    sleep 0.5
  done
  [[ "${status}" == completed ]] || vm_die "migration did not complete (status '${status}')"
  for ((i = 0; i < 1200; i++)); do
    [[ -f "${VM_SNAPSHOT}" ]] && break
    sleep 0.1
  done
  [[ -f "${VM_SNAPSHOT}" ]] || vm_die "snapshot file was not finalised"
  vm_monitor "${mon}" 'quit' >/dev/null || true
  vm_kill_qemu "${TEMPLATE_PID}" "${TEMPLATE_RUN}"
  TEMPLATE_PID=""
  zstd -q -t "${VM_SNAPSHOT}" || vm_die "snapshot stream is corrupt"
  local snap_bytes raw_bytes
  snap_bytes="$(stat -c %s "${VM_SNAPSHOT}")"
  raw_bytes="$(zstd -dc "${VM_SNAPSHOT}" | wc -c)"
  vm_log "snapshot: $((snap_bytes / 1048576)) MiB compressed ($((raw_bytes / 1048576)) MiB stream) in $(vm_elapsed "${t_snap}")s"
  cp "${TEMPLATE_RUN}/serial.log" "${LOG_DIR}/template-serial.log" 2>/dev/null || true
  rm -rf "${TEMPLATE_RUN}"

  cat >"${VM_META_FILE}" <<EOF
IMAGE_VERSION=${AMARKTAI_VM_IMAGE_VERSION}
SUITE=${SUITE}
KERNEL_VERSION=$(cat "${VM_IMAGE_DIR}/kernel-version")
QEMU_VERSION=$(qemu-system-x86_64 --version | head -n 1)
MACHINE=${machine}
ACCEL=tcg
CPU_MODEL=${VM_CPU_MODEL}
CPUS=${VM_CPUS}
MEMORY_MIB=${VM_MEMORY_MIB}
TEMPLATE_STATE=${state}
SNAPSHOT_BYTES=${snap_bytes}
BUILT_AT=$(date -u +%Y-%m-%dT%H:%M:%SZ)
EOF
  vm_stage_mark template
  vm_phase_end "template"
}

vm_log "building image ${AMARKTAI_VM_IMAGE_VERSION} in ${VM_IMAGE_DIR}"
phase_host_deps
phase_keys
phase_debootstrap
phase_configure
phase_disk
phase_template
touch "${VM_READY_MARKER}"
vm_log "image ready in $(vm_elapsed)s: ${VM_IMAGE_DIR}"
