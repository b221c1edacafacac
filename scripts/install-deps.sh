#!/bin/bash
# Install the build and runtime dependencies with apt.  Idempotent: packages
# already installed are not touched.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

die() { echo "install-deps: $*" >&2; exit 1; }

bash "$here/setup-apt.sh" || die "apt setup failed"

# Build of QEMU 10.0 (meson >= 1.5 and pycotap come from backports).
backports="meson python3-pycotap"
build="dpkg-dev ninja-build pkg-config gcc make libglib2.0-dev libfdt-dev
       libpixman-1-dev zlib1g-dev python3-venv python3-setuptools flex bison
       ccache perl xz-utils libslirp-dev clang libclang-rt-14-dev kmod"
# Runtime: firmware and tools the demo and tests use.
runtime="seabios ipxe-qemu cpio gzip qemu-efi-aarch64 busybox-static
         libglib2.0-bin"
# The vhost-user switch of the vhost-user guest tests and benchmark
# (dpdk-testpmd with the net_vhost driver).
runtime="$runtime dpdk"
# The guest tools (tests/guest/image/*.c, tests/bench/guest/*.c), static
# binaries for both guests.
runtime="$runtime libc6-dev gcc-aarch64-linux-gnu libc6-dev-arm64-cross"

missing=""
for p in $build $runtime $backports; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q "ok installed" ||
        missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "install-deps: installing:$missing"
    export DEBIAN_FRONTEND=noninteractive
    # shellcheck disable=SC2086
    apt-get install -y -q --no-install-recommends $build $runtime ||
        die "apt-get install of build/runtime packages failed"
    # shellcheck disable=SC2086
    apt-get install -y -q --no-install-recommends -t bookworm-backports \
        $backports || die "apt-get install of backports packages failed"
fi

v=$(meson --version 2>/dev/null || echo 0)
dpkg --compare-versions "$v" ge 1.5 ||
    die "meson $v is too old (need >= 1.5 from bookworm-backports)"
