#!/usr/bin/env bash
# Build, once per machine, the tests' ARM device: an arm64 Debian 12 userland (python3, venv,
# openssh-server) that runs here under qemu-user. The tests start its own sshd in a chroot and treat
# it as a Raspberry-Pi-OS-like board (everything but its speed is real aarch64 code).
#   bash scripts/arm_device.sh            build it at $EDGESDK_ARM_ROOT (default below) unless it is there
# Needs root, qemu-user-static, binfmt-support and debootstrap (installed here when missing).
set -euo pipefail
root="${EDGESDK_ARM_ROOT:-/var/cache/edgesdk/arm64-bookworm}"
mirror="${EDGESDK_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
if ! command -v debootstrap >/dev/null || ! [ -x /usr/bin/qemu-aarch64-static ] || ! command -v update-binfmts >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends qemu-user-static binfmt-support debootstrap >/dev/null
fi
# qemu-user runs aarch64 binaries through the kernel's binfmt_misc table.
if ! [ -e /proc/sys/fs/binfmt_misc/status ]; then
  mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
fi
update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
if ! [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
  update-binfmts --import qemu-aarch64 >/dev/null 2>&1 || true
  update-binfmts --enable qemu-aarch64
fi
if [ -f "$root/.edgesdk-ready" ]; then
  echo "arm64 device userland ready at $root"
  exit 0
fi
partial="$root.partial"
rm -rf "$partial"
mkdir -p "$(dirname "$root")"
echo "building the arm64 device userland at $root (debootstrap, a few minutes)"
debootstrap --arch=arm64 --variant=minbase --include=python3,python3-venv,openssh-server,ca-certificates \
  bookworm "$partial" "$mirror" >"$(dirname "$root")/debootstrap.log" 2>&1 \
  || { tail -20 "$(dirname "$root")/debootstrap.log"; exit 1; }
# This machine reaches PyPI through its own certificate authority: the device must trust it too.
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
  cp /etc/ssl/certs/ca-certificates.crt "$partial/etc/ssl/certs/ca-certificates.crt"
fi
mkdir -p "$partial/run/sshd"
rm -f "$partial"/etc/ssh/ssh_host_*  # each test run makes its own host key
chroot "$partial" /usr/bin/python3 -c 'import platform; assert platform.machine() == "aarch64", platform.machine()'
touch "$partial/.edgesdk-ready"
mv "$partial" "$root"
echo "arm64 device userland ready at $root"
