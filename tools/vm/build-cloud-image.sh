#!/usr/bin/env bash
# Builds, once, the cached "cloud" test-VM image used by `vm.sh start --cloud`:
# a guest that behaves like a fresh Ubuntu 24.04 cloud VM in its first minute.
# Derived from the rootfs of tools/vm/build-image.sh's base.qcow2 (built first
# if needed), plus:
#   * cloud-init, NoCloud datasource only; no SSH host keys, no `ubuntu` user:
#     the seed's user-data creates the login user and installs the host key,
#   * sshd through ssh.socket only (ssh.service not enabled), which listens
#     once cloud-init's network stage has written the host keys (as on Ubuntu),
#   * /var/log as root:syslog 0775 (Ubuntu's layout),
#   * first-boot-upgrades.service: a stand-in for unattended-upgrades at first
#     boot, holding apt's and dpkg's locks for HOLD_SECONDS (default 120, set
#     by the seed in /etc/default/first-boot-upgrades) once cloud-final is done.
# No RAM snapshot: every cloud VM boots cold from a copy-on-write overlay.
#
# Output: <image dir>/cloud-<CLOUD_IMAGE_VERSION>/ (AMARKTAI_VM_CLOUD_IMAGE_VERSION
# in lib.sh: bump it to rebuild; a new base image version rebuilds it too).
#
# Usage: build-cloud-image.sh [--force]     (--force: redo everything)
# Env:   AMARKTAI_CACHE_DIR, AMARKTAI_DEBIAN_MIRROR (default deb.debian.org)
# Needs root (loop mount, chroot); installs missing host packages.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=tools/vm/lib.sh
source "${SCRIPT_DIR}/lib.sh"

ROOTFS="${VM_CLOUD_DIR}/rootfs"
LOG_DIR="${VM_CLOUD_DIR}/logs"
MNT="${VM_CLOUD_DIR}/.base-mnt"
BASE_RAW="${VM_CLOUD_DIR}/.base.raw"
MIRROR="${AMARKTAI_DEBIAN_MIRROR:-}"

usage() {
  sed -n '2,21s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
}

vm_build_start build-cloud-image.sh "loop mount, chroot" \
  "${VM_CLOUD_DIR}" "${VM_CLOUD_READY_MARKER}" "cloud image ${AMARKTAI_VM_CLOUD_IMAGE_VERSION}" "$@"

if ! vm_image_ready; then
  vm_log "base image ${AMARKTAI_VM_IMAGE_VERSION} not built yet; running build-image.sh"
  bash "${SCRIPT_DIR}/build-image.sh" >&2
fi
vm_image_ready || vm_die "base image not ready"

vm_build_lock "${LOG_DIR}"

cleanup() {
  local rc=$?
  vm_unmount_under "${MNT}"
  [[ -d "${ROOTFS}" ]] && vm_unmount_under "${ROOTFS}"
  rm -f "${BASE_RAW}"
  rmdir "${MNT}" 2>/dev/null || true
  if [[ "${rc}" != 0 ]]; then
    vm_log "cloud image build FAILED (rc=${rc}); rerun to resume from the failed phase"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# ---------------------------------------------------------------------------
phase_host_deps() {
  vm_phase_begin "host packages"
  vm_require_runtime
  vm_require mkfs.ext4:e2fsprogs
  vm_phase_end "host packages"
}

# The base image's filesystem as a plain directory (read-only loop mount of a raw copy).
phase_extract() {
  vm_stage_done extract && return 0
  vm_phase_begin "extract the base image's rootfs"
  vm_remove_rootfs "${ROOTFS}"
  vm_unmount_under "${MNT}"
  vm_extract_base_rootfs "${ROOTFS}" "${BASE_RAW}" "${MNT}"
  vm_stage_mark extract
  vm_phase_end "extract"
}

write_guest_files() {
  local r="${ROOTFS}"

  # cloud-init: the NoCloud seed disk only (never probe network metadata
  # services); `None` keeps a seedless boot quiet. The network is the image's
  # own systemd-networkd DHCP config (the same result as cloud-init's fallback).
  mkdir -p "${r}/etc/cloud/cloud.cfg.d"
  cat >"${r}/etc/cloud/cloud.cfg.d/90_dpkg.cfg" <<'EOF'
# Written by the image build: NoCloud (the CIDATA seed disk) only.
datasource_list: [ NoCloud, None ]
EOF
  cat >"${r}/etc/cloud/cloud.cfg.d/99-network-from-image.cfg" <<'EOF'
# The image configures DHCP on en* with systemd-networkd itself.
network: {config: disabled}
EOF

  # Ubuntu 24.04 ships OpenSSH 9.6, which has no per-source penalties: a
  # client probing port 22 while the guest boots must not get locked out.
  cat >"${r}/etc/ssh/sshd_config.d/91-cloud-like.conf" <<'EOF'
PerSourcePenalties no
EOF

  # Ubuntu's /var/log layout, re-applied at every boot (the earliest tmpfiles
  # file name wins over systemd's own `d /var/log 0755`).
  cat >"${r}/etc/tmpfiles.d/00rsyslog.conf" <<'EOF'
z /var/log 0775 root syslog -
EOF

  # The unattended-upgrades stand-in.
  install -d -m 0755 "${r}/usr/local/lib/first-boot-upgrades"
  cat >"${r}/usr/local/lib/first-boot-upgrades/hold-apt-locks" <<'EOF'
#!/usr/bin/python3
"""Stand-in for unattended-upgrades at first boot.

Takes apt's and dpkg's locks exactly as apt does (POSIX fcntl write locks on
the whole file, frontend lock first), holds them for HOLD_SECONDS, then
releases them. The process is named like unattended-upgrades, so apt reports
"It is held by process N (unattended-upgr)". Every step is logged with its
wall-clock time (epoch seconds) for tests to read from the journal.
"""
import fcntl
import os
import signal
import sys
import time

LOCKS = [
    "/var/lib/dpkg/lock-frontend",
    "/var/lib/dpkg/lock",
    "/var/lib/apt/lists/lock",
    "/var/cache/apt/archives/lock",
]
STAMP = "/var/lib/first-boot-upgrades/done"


def log(message):
    print(message, flush=True)


def main():
    raw = os.environ.get("HOLD_SECONDS", "120").strip() or "120"
    try:
        seconds = float(raw)
    except ValueError:
        log(f"invalid HOLD_SECONDS={raw!r}; using 120")
        seconds = 120.0
    os.makedirs(os.path.dirname(STAMP), exist_ok=True)
    with open(STAMP, "w") as stamp:
        stamp.write(f"{time.time():.3f}\n")
    if seconds <= 0:
        log("HOLD_SECONDS is 0: not taking the locks")
        return 0
    with open("/proc/self/comm", "w") as comm:
        comm.write("unattended-upgr")
    fds = []
    for path in LOCKS:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o640)
        # Waits if an apt run holds it: like apt, never two lock holders.
        fcntl.lockf(fd, fcntl.LOCK_EX)
        fds.append(fd)
    taken = time.time()
    log(f"locks taken at {taken:.3f}: {' '.join(LOCKS)}; holding them for {seconds:g}s")

    def release(reason):
        for fd in reversed(fds):
            fcntl.lockf(fd, fcntl.LOCK_UN)
            os.close(fd)
        now = time.time()
        log(f"locks released at {now:.3f} after {now - taken:.1f}s ({reason})")

    def on_term(_signum, _frame):
        release("stopped")
        sys.exit(0)

    signal.signal(signal.SIGTERM, on_term)
    time.sleep(seconds)
    release("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
EOF
  chmod 0755 "${r}/usr/local/lib/first-boot-upgrades/hold-apt-locks"

  # Not part of the boot transaction's critical path: DefaultDependencies=no
  # keeps multi-user.target from waiting for it (cloud-final.service is itself
  # ordered after multi-user.target), and Type=exec makes it active as soon as
  # it runs, so `systemctl is-system-running --wait` returns while it holds the locks.
  cat >"${r}/etc/systemd/system/first-boot-upgrades.service" <<'EOF'
[Unit]
Description=First-boot package upgrades (stand-in: holds apt's and dpkg's locks)
DefaultDependencies=no
Requires=sysinit.target
After=sysinit.target basic.target multi-user.target network-online.target cloud-final.service
Before=shutdown.target
Conflicts=shutdown.target
ConditionPathExists=!/var/lib/first-boot-upgrades/done

[Service]
Type=exec
Environment=HOLD_SECONDS=120
EnvironmentFile=-/etc/default/first-boot-upgrades
ExecStart=/usr/local/lib/first-boot-upgrades/hold-apt-locks
SyslogIdentifier=first-boot-upgrades

[Install]
WantedBy=multi-user.target
EOF

  # Name resolution for apt inside the chroot (restored to systemd-resolved's stub below).
  rm -f "${r}/etc/resolv.conf"
  cp -L /etc/resolv.conf "${r}/etc/resolv.conf"

  if [[ -n "${MIRROR}" ]]; then
    printf 'deb %s trixie main\n' "${MIRROR}" >"${r}/tmp/build-sources.list"
  fi
}

# Runs inside the chroot (quoted heredoc: no host-side expansion).
read -r -d '' CHROOT_SCRIPT <<'CHROOT' || true
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8

apt_opts=(-q -o Acquire::Retries=3)
if [[ -f /tmp/build-sources.list ]]; then
  apt_opts+=(-o Dir::Etc::SourceList=/tmp/build-sources.list -o Dir::Etc::SourceParts=-)
fi
apt-get "${apt_opts[@]}" update
# netcat-openbsd: cloud-init's stage units talk to its single process over unix sockets (`nc -U`).
apt-get "${apt_opts[@]}" install -y --no-install-recommends cloud-init netcat-openbsd
rm -f /tmp/build-sources.list

# The image's own login user and keys go: cloud-init creates them from user-data.
if id -u ubuntu >/dev/null 2>&1; then
  userdel --remove ubuntu 2>/dev/null || userdel ubuntu
fi
if getent group ubuntu >/dev/null; then groupdel ubuntu; fi
rm -rf /home/ubuntu
rm -f /etc/sudoers.d/90-ubuntu
rm -rf /root/.ssh
rm -f /etc/ssh/ssh_host_*

# Ubuntu's syslog group and /var/log ownership.
getent group syslog >/dev/null || groupadd --system syslog
chown root:syslog /var/log
chmod 0775 /var/log

# sshd by socket activation only, as on Ubuntu 24.04. ssh.socket listens after
# sysinit.target, which cloud-init's network stage (where the host keys are
# written) is ordered before. cloud-init is the only source of host keys:
# Debian's first-boot `ssh-keygen -A` (not on Ubuntu) would add rsa/ecdsa keys.
systemctl disable ssh.service
systemctl enable ssh.socket
systemctl mask sshd-keygen.service
systemctl enable first-boot-upgrades.service

# A pristine cloud-init state (nothing from this build).
cloud-init clean --logs >/dev/null 2>&1 || true
rm -rf /var/lib/cloud/*

apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/*.log /var/log/apt/* /var/lib/first-boot-upgrades
install -d -m 0755 /var/lib/apt/lists/partial
: >/etc/machine-id
CHROOT

phase_configure() {
  vm_stage_done configure && return 0
  vm_phase_begin "configure rootfs (cloud-init, ssh.socket, /var/log, first-boot upgrades)"
  [[ -d "${ROOTFS}/etc" ]] || vm_die "rootfs missing; remove ${VM_CLOUD_DIR}/.stage-extract and rerun"
  write_guest_files
  vm_chroot_configure "${ROOTFS}" "${CHROOT_SCRIPT}" "${LOG_DIR}/configure.log"
  vm_unmount_under "${ROOTFS}"
  ln -sfn ../run/systemd/resolve/stub-resolv.conf "${ROOTFS}/etc/resolv.conf"
  [[ -z "$(compgen -G "${ROOTFS}/etc/ssh/ssh_host_*" || true)" ]] || vm_die "host keys left in the rootfs"
  [[ -x "${ROOTFS}/usr/bin/python3" ]] || vm_die "python3 missing from the image"
  # shellcheck disable=SC2016 # dpkg-query's own format
  if chroot "${ROOTFS}" dpkg-query -W -f='${Status}' python3-venv 2>/dev/null | grep -q 'ok installed'; then
    vm_die "python3-venv must not be in the image"
  fi
  # shellcheck disable=SC2016 # dpkg-query's own format
  vm_log "cloud-init $(chroot "${ROOTFS}" dpkg-query -W -f='${Version}' cloud-init)"
  vm_stage_mark configure
  vm_phase_end "configure rootfs"
}

phase_disk() {
  vm_stage_done disk && return 0
  vm_phase_begin "cloud disk image (mkfs.ext4 -d, ${VM_DISK_SIZE}) + kernel/initrd"
  [[ -d "${ROOTFS}/boot" ]] || vm_die "rootfs missing; remove ${VM_CLOUD_DIR}/.stage-* and rerun"
  vm_unmount_under "${ROOTFS}"
  vm_install_boot_files "${ROOTFS}" "${VM_CLOUD_KERNEL}" "${VM_CLOUD_INITRD}"

  vm_make_disk "${ROOTFS}" "${VM_CLOUD_ROOT_LABEL}" "${VM_CLOUD_DIR}/cloud.raw" "${VM_CLOUD_IMAGE}" "${LOG_DIR}/mkfs.log"
  vm_stage_mark disk
  vm_remove_rootfs "${ROOTFS}"
  vm_log "cloud image $(du -h "${VM_CLOUD_IMAGE}" | cut -f1) (qcow2)"
  vm_phase_end "cloud disk image"
}

phase_finish() {
  local machine
  machine="$(vm_resolve_machine_type)"
  vm_write_cloud_qemu_args "${machine}" "${VM_CLOUD_QEMU_ARGS_FILE}"
  cat >"${VM_CLOUD_META_FILE}" <<EOF
CLOUD_IMAGE_VERSION=${AMARKTAI_VM_CLOUD_IMAGE_VERSION}
BASE_IMAGE_VERSION=${AMARKTAI_VM_IMAGE_VERSION}
QEMU_VERSION=$(qemu-system-x86_64 --version | head -n 1)
MACHINE=${machine}
BUILT_AT=$(date -u +%Y-%m-%dT%H:%M:%SZ)
EOF
}

vm_log "building cloud image ${AMARKTAI_VM_CLOUD_IMAGE_VERSION} in ${VM_CLOUD_DIR}"
phase_host_deps
phase_extract
phase_configure
phase_disk
phase_finish
touch "${VM_CLOUD_READY_MARKER}"
vm_log "cloud image ready in $(vm_elapsed)s: ${VM_CLOUD_DIR}"
