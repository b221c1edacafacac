#!/bin/bash
# Write the device as a patch series QEMU can take: `git format-patch`
# output against Debian's pristine QEMU 10.0 source (the one
# scripts/build-qemu.sh builds), the core fixes first, then the device as a
# sequence of reviewable commits.
#
#   bash scripts/export-series.sh OUTDIR
#
# Applied with `git am OUTDIR/*.patch` to a fresh unpack of the same source
# (`dpkg-source -x`, then one commit of everything), the series gives the
# tree scripts/build-qemu.sh builds: our files (scripts/files.sh) byte for
# byte, QEMU's build files as patches/device/ changes them.
# tests/series/check-series.sh checks exactly that, and checkpatch.
#
# Each file of ours and each patch of patches/ goes into exactly one
# commit; the script stops if one is left over or claimed twice.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/lib.sh"
. "$top/scripts/files.sh"

out=${1:?usage: export-series.sh OUTDIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)

AUTHOR="virtio-iommu project <devel@localhost>"
export GIT_AUTHOR_NAME="virtio-iommu project" GIT_AUTHOR_EMAIL=devel@localhost
export GIT_COMMITTER_NAME=$GIT_AUTHOR_NAME GIT_COMMITTER_EMAIL=$GIT_AUTHOR_EMAIL
# Reproducible output: the same date on every commit
export GIT_AUTHOR_DATE="2026-01-01T00:00:00Z" GIT_COMMITTER_DATE="2026-01-01T00:00:00Z"

# unpack_base DIR: Debian's QEMU source in DIR, as one git commit
unpack_base() {
    local dsc
    dsc=$(ls "$DL"/qemu_10.0.*.dsc 2>/dev/null | sort -V | tail -n 1)
    [ -n "$dsc" ] || die "no QEMU source in $DL (bash scripts/build-qemu.sh)"
    dpkg-source --no-check -x "$dsc" "$1" > /dev/null ||
        die "dpkg-source -x $dsc failed"
    # No automatic gc: it forks into the background and races the clean-up
    (cd "$1" && git init -q && git config gc.auto 0 && git add -A -f &&
     git commit -q -m "QEMU $(basename "$dsc" .dsc | sed 's/^qemu_//'), as Debian's source package unpacks") ||
        die "cannot make the base commit"
}

claimed=" "
used_patches=" "

# take PATTERN...: our files matching the shell patterns into $taken,
# each file once in the whole series
take() {
    local f p
    taken=()
    for f in $VIOMMU_FILES; do
        for p in "$@"; do
            # shellcheck disable=SC2053
            [[ $f == $p ]] || continue
            case "$claimed" in *" $f "*) die "$f claimed twice" ;; esac
            claimed="$claimed$f "
            taken+=("$f")
        done
    done
}

# commit_step SUBJECT "PATTERNS" "PATCH-PREFIXES" < BODY: copy the files,
# apply the build patches, commit with BODY and a Signed-off-by
commit_step() {
    local subject=$1 patterns=$2 prefixes=$3 body f p n=0
    body=$(cat)
    # The patterns are matched against our file list, not the tree
    set -f
    # shellcheck disable=SC2086
    take $patterns
    set +f
    for f in "${taken[@]}"; do
        mkdir -p "$(dirname "$f")"
        cp "$top/$f" "$f"
        git add -f "$f"
        n=$((n + 1))
    done
    for p in $prefixes; do
        f=$(ls "$top"/patches/device/"$p"-*.patch 2>/dev/null) ||
            die "no patches/device/$p-*.patch"
        case "$used_patches" in *" $p "*) die "patch $p used twice" ;; esac
        used_patches="$used_patches$p "
        # The patch's own header is for the overlay; its diff goes here
        git apply --index "$f" || die "patches/device/$(basename "$f") does not apply"
        n=$((n + 1))
    done
    [ "$n" -gt 0 ] || return 0
    git commit -q -F - <<MSG
$subject

$body

Signed-off-by: $AUTHOR
MSG
}

# The fixes to QEMU's core, as they are
core_fixes() {
    local p
    for p in "$top"/patches/qemu/*.patch; do
        [ -e "$p" ] || continue
        git am -q "$p" || die "git am $(basename "$p") failed"
    done
}

device_series() {
    commit_step "standard-headers: virtio_iommu.h from the specification" \
        "include/standard-headers/linux/virtio_iommu.h" "" <<'BODY'
The virtio-iommu structures and constants written from the IOMMU device
chapter of the virtio specification (1.2 onwards), with the names and
layout of Linux's uapi header, so that every user in QEMU stays as it is.
BODY
    commit_step "virtio-iommu: device logic apart from QEMU's device model" \
        "include/hw/virtio/virtio-iommu-core.h
         include/hw/virtio/virtio-iommu-cache.h
         hw/virtio/virtio-iommu-core.c hw/virtio/virtio-iommu-core-translate.c
         tests/unit/*" "0005 0007" <<'BODY'
Everything a request can change, and every check the virtio
specification asks for, without virtqueues, memory regions or QOM:
request decoding and validation, domains, endpoint attachments, a GTree
interval map of mappings per domain (a request either succeeds or
changes nothing), and the translation policy: an endpoint's mode, what
a DMA access gets (permissions, MSI pass-through, fault reason), the one
block rule for translations and notifier events, and the reserved
regions of an endpoint with a host IOMMU device.  A lock-free
translation cache (a seqlock over a few ways) serves translate on
vCPU threads and iothreads.

Unit tests build the core on its own: the spec's UNMAP examples,
requests with every defect, endpoint modes, translate, the block rule,
host reserved regions, and the cache raced against UNMAP in threads.
BODY
    commit_step "virtio-iommu: the endpoints' DMA address spaces" \
        "hw/virtio/virtio-iommu-internal.h hw/virtio/virtio-iommu-as.c" "" \
        <<'BODY'
One address space per PCI function behind the IOMMU, whose root holds
an IOMMU memory region and an alias of system memory, one of them
enabled as the endpoint's mode says.  translate answers from the cache
or the core's policy, with the largest naturally aligned block a
mapping allows and only the mapping's permissions.  IOMMU notifiers
(VFIO, vhost) hear every change as naturally aligned blocks, after the
device lock is dropped; replay notifies only the notifier it is given.
An unplugged function leaves no endpoint state behind.

Built from the commit that replaces the device.
BODY
    commit_step "virtio-iommu: host IOMMU devices" \
        "hw/virtio/virtio-iommu-host.c" "" <<'BODY'
What a VFIO device's host IOMMU cannot map becomes RESERVED regions of
that endpoint; its page sizes narrow page_size_mask until machine init
and must fit the granule afterwards.

Built from the commit that replaces the device.
BODY
    commit_step "virtio-iommu: migration" \
        "hw/virtio/virtio-iommu-migration.c" "" <<'BODY'
The stream of QEMU 10.0's device, so that VMs migrate both ways between
it and this one: saving builds its domain tree from the core, loading
replays it through the core's own ATTACH and MAP handlers, so that a
hostile or inconsistent stream fails the migration.  Fault reports
still waiting for an eventq buffer move only with
migrate-pending-faults=on, in a subsection the old device cannot load.

Built from the commit that replaces the device.
BODY
    commit_step "virtio-iommu: replace the device" \
        "include/hw/virtio/virtio-iommu.h hw/virtio/virtio-iommu.c" "0001" \
        <<'BODY'
The VirtIODevice on the new core: the request queue, fault reports on
the event queue (queued while the driver has no buffer posted), config
space and features, reset, realize, properties (limits on domains,
mappings and pending faults, so that no guest grows host memory without
bound) and live statistics.  The guest ABI stays that of QEMU 10.0's
device on every machine type.  Trace events, one group per file.
BODY
    commit_step "virtio-iommu-pci: opt-in MSI-X, reserved-regions set twice" \
        "hw/virtio/virtio-iommu-pci.c" "" <<'BODY'
vectors=3 gives the function one MSI-X vector per virtqueue and one for
config changes; the default stays INTx, QEMU 10.0's guest ABI.  A
reserved-regions list may now be set more than once (user, then the
machine's pre_plug MSI window) instead of aborting QEMU.
BODY
    commit_step "hw/misc: IOMMU test device" \
        "hw/misc/iommu-testdev.c" "0002" <<'BODY'
iommu-testdev records what IOMMU notifiers on an endpoint receive and
plays host IOMMU devices, through the interfaces VFIO and vhost use, so
that qtests can check what a vIOMMU tells its consumers without host
hardware.  Built with TEST_DEVICES, as edu.
BODY
    commit_step "tests/qtest: virtio-iommu" \
        "tests/qtest/libqos/* tests/qtest/virtio-iommu*" "0004" <<'BODY'
A libqos driver that sends requests of any layout, and qtests for
every normative statement of the specification: config and the guest
ABI field by field, every request and its statuses, malformed layouts,
features, bypass, reset, DMA and faults through the IOMMU with edu and
virtio endpoints, limits, a model-checked request storm, IOMMU
notifier events and replay, host IOMMU devices, hot-unplug, and
migration (including corrupted streams).
BODY
    commit_step "tests/qtest/fuzz: virtio-iommu" \
        "tests/qtest/fuzz/*" "0003" <<'BODY'
A qos fuzz target on q35: requestq chains of any layout, config and
transport writes, resets, and DMA through the IOMMU by edu devices,
with the device's invariants checked after every step.
BODY
    commit_step "docs/system: virtio-iommu" \
        "docs/system/devices/virtio-iommu.rst" "0006" <<'BODY'
What the device does and how to use it: machines, properties, guest
modes, behaviour, where it differs from the previous device, guest ABI
and migration, hot-plug, host IOMMU devices, testing.
BODY
}

# Everything ours must be in the series
check_complete() {
    local f p
    for f in $VIOMMU_FILES; do
        case "$claimed" in *" $f "*) ;; *) die "$f is in no commit" ;; esac
    done
    for p in "$top"/patches/device/*.patch; do
        p=$(basename "$p" | cut -d- -f1)
        case "$used_patches" in *" $p "*) ;; *) die "patches/device/$p-* is in no commit" ;; esac
    done
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
unpack_base "$work/qemu"
cd "$work/qemu"
base=$(git rev-parse HEAD)
core_fixes
device_series
check_complete
rm -f "$out"/*.patch
git format-patch -q --no-signature -o "$out" "$base"..HEAD
echo "export-series: $(ls "$out"/*.patch | wc -l) patches in $out"
