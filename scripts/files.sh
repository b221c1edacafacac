# Our files in QEMU's tree, at the paths they have there.  Sourced by
# scripts/build-qemu.sh (which symlinks them into the tree) and
# scripts/export-series.sh.  Those of upstream's virtio-iommu files that
# are not here (none, today) are kept as QEMU has them.
# shellcheck disable=SC2034
VIOMMU_FILES="
include/standard-headers/linux/virtio_iommu.h
include/hw/virtio/virtio-iommu-core.h
include/hw/virtio/virtio-iommu-cache.h
hw/virtio/virtio-iommu-core.c
hw/virtio/virtio-iommu-core-translate.c
tests/unit/virtio-iommu-fixture.h
tests/unit/virtio-iommu-fixture.c
tests/unit/test-virtio-iommu-core.c
tests/unit/test-virtio-iommu-translate.c
tests/unit/test-virtio-iommu-cache.c
include/hw/virtio/virtio-iommu.h
hw/virtio/virtio-iommu-internal.h
hw/virtio/virtio-iommu.c
hw/virtio/virtio-iommu-pci.c
hw/virtio/virtio-iommu-as.c
hw/virtio/virtio-iommu-host.c
hw/virtio/virtio-iommu-migration.c
hw/misc/iommu-testdev.c
tests/qtest/libqos/virtio-iommu.h
tests/qtest/libqos/virtio-iommu.c
tests/qtest/libqos/edu.h
tests/qtest/virtio-iommu-test.c
tests/qtest/virtio-iommu-test.h
tests/qtest/virtio-iommu-test-utils.c
tests/qtest/virtio-iommu-dma-test.c
tests/qtest/virtio-iommu-hotplug-test.c
tests/qtest/virtio-iommu-notify-test.c
tests/qtest/virtio-iommu-migration-test.c
tests/qtest/virtio-iommu-scale-test.c
tests/qtest/fuzz/virtio_iommu_fuzz.c
docs/system/devices/virtio-iommu.rst
"

# What the comparison build (build-qemu.sh --upstream) gets of ours: the
# IOMMU test device, a separate test-only device that uses only QEMU's
# public interfaces, so that the benchmarks can drive upstream's device
# through it (replay, DMA reads); and the one patch that builds it.
# Upstream's virtio-iommu files stay as QEMU has them.
VIOMMU_UPSTREAM_FILES="
hw/misc/iommu-testdev.c
"
VIOMMU_UPSTREAM_PATCHES="
0002-hw-misc-iommu-test-devices.patch
"

# The core's unit tests in QEMU's tree (tests/unit/meson.build)
VIOMMU_UNIT_TESTS="
tests/unit/test-virtio-iommu-core
tests/unit/test-virtio-iommu-translate
tests/unit/test-virtio-iommu-cache
"
