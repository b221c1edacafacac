#!/bin/bash
# Build the core on its own (GLib only, ASan + UBSan) and run its unit tests.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/scripts/lib.sh"
cd "$top"

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
