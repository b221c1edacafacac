#!/bin/bash
# The demo: build QEMU with our virtio-iommu and a Debian 6.12 test guest,
# boot the guest on q35 (TCG) with a virtio-blk disk behind the IOMMU, and
# show that the Linux virtio-iommu driver binds, puts the endpoints in IOMMU
# groups with translated DMA domains, and that data written through the
# IOMMU reaches the disk intact (checked again on the host).
#
#   bash scripts/demo.sh
#   QEMU_BUILD=build/upstream bash scripts/demo.sh   # stock QEMU device
#
# Environment: QEMU_BUILD (default build/qemu; when set, that build must
# already exist), DEMO_TIMEOUT (default 300 s), GUEST_CONSOLE=1 to show the
# guest console while it runs.  Exits 0 only if every guest check passed,
# the guest finished, and the host sees the same data on the disk image.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/lib.sh"
. "$top/tests/guest/guest-lib.sh"

step_build_qemu() {
    if [ -z "${QEMU_BUILD:-}" ]; then
        bash "$top/scripts/build-qemu.sh" || die "scripts/build-qemu.sh failed"
    else
        [ -x "$(qemu_build_dir)/qemu-system-x86_64" ] ||
            die "QEMU_BUILD=$QEMU_BUILD has no qemu-system-x86_64 (build it:" \
                "bash scripts/build-qemu.sh$(case "$QEMU_BUILD" in
                    *upstream*) echo " --upstream" ;; esac))"
    fi
}

step_build_guest() {
    bash "$top/tests/guest/build-guest.sh" x86_64 ||
        die "tests/guest/build-guest.sh x86_64 failed"
}

demo=$BUILD/demo
disk=$demo/disk.img
log=$demo/console.log
MIB=8
seed=$(( $(date +%s) % 1000000 + 1 ))

step_disk() {
    mkdir -p "$demo"
    rm -f "$disk"
    truncate -s 64M "$disk" || die "cannot create $disk"
}

step_boot() {
    local rc=0
    echo "booting $(qemu_build_dir)/qemu-system-x86_64 (q35, TCG); console log: $log"
    guest_boot x86_64 "$log" "${DEMO_TIMEOUT:-300}" \
        "viommu.test=demo viommu.seed=$seed viommu.mib=$MIB" \
        -device virtio-iommu-pci \
        -drive "file=$disk,if=none,id=d0,format=raw" \
        -device virtio-blk-pci,drive=d0,iommu_platform=on,disable-legacy=on ||
        rc=$?
    echo "guest ran ${BOOT_SECONDS}s, QEMU exit status $rc"
    if [ "$rc" != 0 ]; then
        echo "FAIL: QEMU exited with status $rc$(case "$rc" in
            124) echo " (killed after ${DEMO_TIMEOUT:-300}s)" ;;
            125) echo " (the guest finished its checks but hung instead of powering off)" ;;
            esac)"
        fail=1
    fi
}

fail=0
step_summary() {
    local lines name res detail
    lines=$(guest_lines "$log")
    echo
    echo "=== virtio-iommu demo: $(sed -n 's/^VIOMMU-INFO kernel //p' <<< "$lines" | head -n 1)"
    echo "QEMU build: $(qemu_build_dir)"
    echo
    echo "IOMMU:"
    awk '$1 == "VIOMMU-INFO" && $2 == "iommu" {
             printf "  Linux virtio_iommu driver bound to %s (PCI %s), /sys/class/iommu/%s\n", $3, $5, $7 }' <<< "$lines"
    echo
    echo "PCI endpoints behind the IOMMU (IOMMU group, domain type):"
    awk '$1 == "VIOMMU-INFO" && $2 == "endpoint" {
             printf "  %-14s group %-3s type %-9s id %-10s driver %s\n", $3, $5, $7, $9, $11 }' <<< "$lines"
    awk '$1 == "VIOMMU-INFO" && $2 == "unmanaged" {
             printf "  %-14s no group (no driver probed it, id %s)\n", $3, $5 }' <<< "$lines"
    echo
    echo "Disk (virtio-blk, iommu_platform=on):"
    awk '$1 == "VIOMMU-INFO" && $2 == "disk" {
             printf "  wrote %d MiB to %s (seed %s, %s), sha256:\n", $7 / 1048576, $3, $5, $9
             printf "    written           %s\n    read back         %s\n    buffered re-read  %s\n", $11, $13, $15 }' <<< "$lines"
    echo
    echo "Guest checks:"
    while read -r name res detail; do
        [ -n "$name" ] || continue
        printf '  %-4s %-16s %s\n' "$res" "$name" "$detail"
        [ "$res" = PASS ] || fail=1
    done < <(guest_checks "$log")
    if [ -z "$(guest_checks "$log")" ]; then
        echo "  (none: the guest printed no results; last console lines:)"
        tail -n 5 "$log" | tr -d '\r' | sed 's/^/    | /'
        fail=1
    fi
    local verdict
    if verdict=$(guest_verdict "$log"); then
        echo "  guest finished: $verdict"
    else
        echo "  FAIL guest did not finish cleanly ($verdict); see $log"
        fail=1
    fi
}

# The host regenerates the pattern from the seed and reads the disk image:
# both must equal the checksum the guest printed.
step_host_verify() {
    local bytes=$((MIB * 1048576)) guest_sum want got
    guest_sum=$(guest_lines "$log" |
                sed -n 's/^VIOMMU-INFO disk .* written \([0-9a-f]*\) .*/\1/p' | head -n 1)
    want=$(pattern_bytes "$seed" "$bytes" | sha256sum | cut -d' ' -f1)
    got=$(head -c "$bytes" "$disk" | sha256sum | cut -d' ' -f1)
    echo
    echo "Host check of the disk image ($bytes bytes, seed $seed):"
    echo "  expected pattern  $want"
    echo "  guest wrote       ${guest_sum:-(not reported)}"
    echo "  disk image holds  $got"
    if [ "$want" = "$got" ] && [ "$guest_sum" = "$want" ]; then
        echo "  PASS host sees exactly the data the guest wrote through the IOMMU"
    else
        echo "  FAIL disk image does not hold the guest's data"
        fail=1
    fi
}

run_step "build QEMU" step_build_qemu
run_step "build x86_64 guest" step_build_guest
run_step "create disk image" step_disk
run_step "boot guest" step_boot
run_step "summary" step_summary
run_step "host-side disk check" step_host_verify
echo
if [ "$fail" = 0 ]; then
    echo "DEMO PASSED"
else
    echo "DEMO FAILED (console log: $log)"
    exit 1
fi
