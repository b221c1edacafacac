#!/bin/bash
# Build the core on its own (GLib only, ASan + UBSan) and run its unit
# tests; then the same tests as QEMU's tree builds them (against QEMU's own
# headers and log), which scripts/build-qemu.sh builds with our QEMU.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/scripts/lib.sh"
. "$top/scripts/files.sh"
cd "$top"

# A UBSan report stops the test, which then fails; the negative control
# shows that it does
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
bash tests/sanitize/ubsan-control.sh gcc unit

dir=$BUILD/unit
mkdir -p "$BUILD"
if [ ! -f "$dir/build.ninja" ]; then
    meson setup "$dir" -Db_sanitize=address,undefined -Db_lundef=false \
        > "$BUILD/unit-setup.log" 2>&1 ||
        { cat "$BUILD/unit-setup.log"; die "meson setup of unit tests failed"; }
fi
ninja -C "$dir" > /dev/null || die "unit test build failed"
"$dir/test-virtio-iommu-core" --tap
"$dir/test-virtio-iommu-translate" --tap
"$dir/test-virtio-iommu-cache" --tap
for t in $VIOMMU_UNIT_TESTS; do
    bin=$BUILD/qemu/$t
    if [ -x "$bin" ]; then
        "$bin" --tap | sed "s|^\(not \)\{0,1\}ok [0-9]* |&[QEMU's tree] |"
    else
        echo "not ok - $t: not built in QEMU's tree (bash scripts/build-qemu.sh)"
    fi
done
