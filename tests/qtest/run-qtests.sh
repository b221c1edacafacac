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

# What -device virtio-iommu-pci,help shows users: no test hook (those are
# in the iommu-testdev test device), and a description for every property
# of the device's own
help=$("$bin" -device virtio-iommu-pci,help 2>&1)
hooks=$(grep -E '^  x-(record|notif|replay|test)' <<< "$help" || true)
if [ -z "$hooks" ] && grep -q '^  vectors=' <<< "$help"; then
    echo "ok - $arch: virtio-iommu-pci,help lists no test hook"
else
    echo "not ok - $arch: virtio-iommu-pci,help lists test hooks: $hooks"
fi
undescribed=
for p in aw-bits boot-bypass class granule max-domain-id max-domains \
         max-mappings max-pending-faults migrate-pending-faults primary-bus \
         reserved-regions stats vectors; do
    grep -qE "^  $p=<.*> +- +[^ (]" <<< "$help" ||
        undescribed="$undescribed $p"
done
if [ -z "$undescribed" ]; then
    echo "ok - $arch: every virtio-iommu-pci property of ours has a description"
else
    echo "not ok - $arch: virtio-iommu-pci properties without a description:$undescribed"
fi

export QTEST_QEMU_BINARY=$bin
paths=$("$qos" -l | grep '/virtio-iommu' || true)
[ -n "$paths" ] || die "qos-test lists no virtio-iommu test for $arch"
args=()
for p in $paths; do
    args+=(-p "$p")
done
"$qos" --tap -k "${args[@]}"
