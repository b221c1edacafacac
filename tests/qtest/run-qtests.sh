#!/bin/bash
# Run the virtio-iommu qos tests of our QEMU build for one target
# (x86_64: pc and q35 machines; aarch64: virt), in TAP.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/scripts/lib.sh"

arch=${1:?usage: run-qtests.sh x86_64|aarch64}
out=${QEMU_BUILD:-$BUILD/qemu}
qos=$out/tests/qtest/qos-test
bin=$out/qemu-system-$arch
[ -x "$qos" ] && [ -x "$bin" ] || die "$qos or $bin not built"

export QTEST_QEMU_BINARY=$bin
paths=$("$qos" -l | grep '/virtio-iommu' || true)
[ -n "$paths" ] || die "qos-test lists no virtio-iommu test for $arch"
args=()
for p in $paths; do
    args+=(-p "$p")
done
"$qos" --tap -k "${args[@]}"
