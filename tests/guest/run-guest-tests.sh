#!/bin/bash
# Guest part of the test suite: boot real Linux guests (Debian 6.12 kernel,
# busybox initramfs from scripts/guest/build-guest.sh) under QEMU TCG with
# virtio-iommu-pci and check, inside the guest, that the Linux driver binds,
# groups the endpoints and that DMA through the IOMMU is correct.
#
#   tests/guest/run-guest-tests.sh [--list] [SCENARIO...]   (default: all
#   default scenarios; --list shows them and the extra ones)
#
# Uses QEMU from ${QEMU_BUILD:-build/qemu} (must already be built).  Builds
# the guests if needed (a missing kernel package is a failure).  Prints TAP:
# one line per check, "ok N - scenario: check"; exits non-zero if any check
# failed or a scenario could not run.  Console logs go to
# build/guest-tests/SCENARIO.log.  GUEST_TESTS="a b" selects scenarios like
# the arguments do.
#
# A scenario is a function scenario_NAME (dashes in NAME become
# underscores) that calls run_guest; add new ones below and to SCENARIOS.
set -uo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/scripts/lib.sh"
. "$top/scripts/guest/guest-lib.sh"

SCENARIOS="x86-demo x86-net x86-strict x86-identity x86-no-boot-bypass aarch64-demo"
# Not run by default (time), but selectable by name.
EXTRA_SCENARIOS="aarch64-net"

logdir=$BUILD/guest-tests
mkdir -p "$logdir"


declare -A guest_built=()
ensure_guest() {
    local arch=$1 out
    [ -n "${guest_built[$arch]:-}" ] && return "${guest_built[$arch]}"
    if out=$(bash "$top/scripts/guest/build-guest.sh" "$arch" 2>&1); then
        guest_built[$arch]=0
        echo "# guest $arch: $(cat "$BUILD/guest/$arch/kernel-version")"
    else
        guest_built[$arch]=1
        tap not-ok "$arch: build guest" "$(echo "$out" | grep -E 'ERROR|error' | tail -n 1)"
    fi
    return "${guest_built[$arch]}"
}

# run_guest SCENARIO ARCH TIMEOUT "APPEND" "REQUIRED CHECKS" [QEMU ARGS...]
# Boots the guest, turns every VIOMMU-CHECK line into a TAP line, and fails
# required checks the guest did not report.  Sets LOG.
run_guest() {
    local sc=$1 arch=$2 limit=$3 append=$4 required=$5
    shift 5
    LOG=$logdir/$sc.log
    ensure_guest "$arch" || { tap not-ok "$sc: could not run (no $arch guest)"; return 1; }
    local rc=0
    guest_boot "$arch" "$LOG" "$limit" \
        "viommu.timeout=$((limit - 20)) $append" "$@" || rc=$?
    echo "# $sc: guest ran ${BOOT_SECONDS:-?}s, QEMU exit status $rc, log $LOG"
    if ! grep -q VIOMMU "$LOG"; then
        tap not-ok "$sc: guest ran the tests" \
            "no results on the console; last lines: $(tail -n 3 "$LOG" | tr -d '\r' | tr '\n' ' ')"
        return 1
    fi
    local name res detail seen=" "
    while read -r name res detail; do
        [ -n "$name" ] || continue
        seen="$seen$name "
        if [ "$res" = PASS ]; then
            tap ok "$sc: $name"
        else
            tap not-ok "$sc: $name" "$detail"
        fi
    done < <(guest_checks "$LOG")
    for name in $required; do
        case "$seen" in
            *" $name "*) ;;
            *) tap not-ok "$sc: $name" "not reported by the guest" ;;
        esac
    done
    if guest_done "$LOG"; then
        tap ok "$sc: guest finished its checks"
    else
        tap not-ok "$sc: guest finished its checks" \
            "no VIOMMU-DONE, QEMU exit status $rc$(rc_meaning "$rc")"
    fi
    if [ "$rc" = 0 ]; then
        tap ok "$sc: guest powered off"
    else
        tap not-ok "$sc: guest powered off" \
            "QEMU exit status $rc$(rc_meaning "$rc")"
    fi
}

rc_meaning() {
    case "$1" in
        124) echo " (killed at the hard timeout)" ;;
        125) echo " (guest hung after its tests: no power-off)" ;;
    esac
}

DEMO_CHECKS="modules-loaded driver-bound endpoint-groups domain-type disk-pattern no-iommu-errors no-kernel-oops"
NET_CHECKS="modules-loaded driver-bound endpoint-groups domain-type net-setup net-virtio-to-e1000e net-e1000e-to-virtio net-ping no-iommu-errors no-kernel-oops"

# Disk scenarios: a fresh 64 MiB image; after the run the host checks that
# it holds the pattern for the seed.
MIB=8
new_disk() {
    DISK=$logdir/$1.img
    SEED=$(( ($(date +%s) + RANDOM) % 1000000 + 1 ))
    rm -f "$DISK"
    truncate -s 64M "$DISK"
}

host_disk_check() {
    local sc=$1 bytes=$((MIB * 1048576)) want got
    want=$(pattern_bytes "$SEED" "$bytes" | sha256sum | cut -d' ' -f1)
    got=$(head -c "$bytes" "$DISK" | sha256sum | cut -d' ' -f1)
    if [ "$want" = "$got" ]; then
        tap ok "$sc: host sees the guest's data in the disk image"
    else
        tap not-ok "$sc: host sees the guest's data in the disk image" \
            "want $want got $got (seed $SEED)"
    fi
    rm -f "$DISK"
}

# demo_scenario NAME ARCH TIMEOUT "EXTRA APPEND" [EXTRA QEMU ARGS...]
demo_scenario() {
    local sc=$1 arch=$2 limit=$3 append=$4
    shift 4
    new_disk "$sc"
    run_guest "$sc" "$arch" "$limit" \
        "viommu.test=demo viommu.seed=$SEED viommu.mib=$MIB $append" "$DEMO_CHECKS" \
        "$@" \
        -drive "file=$DISK,if=none,id=d0,format=raw" \
        -device virtio-blk-pci,drive=d0,iommu_platform=on,disable-legacy=on ||
        return 1
    host_disk_check "$sc"
}

# ---------------------------------------------------------------- scenarios

# The demo's run: q35, default (lazy) DMA domains.
scenario_x86_demo() {
    demo_scenario x86-demo x86_64 150 "" -device virtio-iommu-pci
}

# virtio-net and e1000e, both behind the IOMMU, on one QEMU hub: the guest
# puts the e1000e in its own network namespace and sends a pattern both ways.
# shellcheck disable=SC2054
NET_ARGS=(-netdev hubport,id=n0,hubid=0 -netdev hubport,id=n1,hubid=0
          -device virtio-net-pci,netdev=n0,iommu_platform=on,disable-legacy=on,mac=52:54:00:00:00:01,romfile=
          -device e1000e,netdev=n1,mac=52:54:00:00:00:02,romfile=)
scenario_x86_net() {
    run_guest x86-net x86_64 150 "viommu.test=net" "$NET_CHECKS" \
        -device virtio-iommu-pci "${NET_ARGS[@]}"
}

# Strict invalidation (unmap waits for the device) with disk and network.
scenario_x86_strict() {
    new_disk x86-strict
    run_guest x86-strict x86_64 150 \
        "iommu.strict=1 viommu.expect_type=DMA viommu.test=demo,net viommu.seed=$SEED viommu.mib=$MIB" \
        "$DEMO_CHECKS $NET_CHECKS" \
        -device virtio-iommu-pci "${NET_ARGS[@]}" \
        -drive "file=$DISK,if=none,id=d0,format=raw" \
        -device virtio-blk-pci,drive=d0,iommu_platform=on,disable-legacy=on ||
        return 1
    host_disk_check x86-strict
}

# Identity domains (ATTACH with the bypass flag).
scenario_x86_identity() {
    demo_scenario x86-identity x86_64 150 \
        "iommu.passthrough=1 viommu.expect_type=identity" -device virtio-iommu-pci
}

# No DMA before the driver attaches the endpoints.
scenario_x86_no_boot_bypass() {
    demo_scenario x86-no-boot-bypass x86_64 150 "" \
        -device virtio-iommu-pci,boot-bypass=off
}

# arm virt, device tree (no firmware, so no ACPI VIOT): the iommu-map path.
scenario_aarch64_demo() {
    demo_scenario aarch64-demo aarch64 300 "" -device virtio-iommu-pci
}

# The network scenario on arm virt (extra).
scenario_aarch64_net() {
    run_guest aarch64-net aarch64 300 "viommu.test=net" "$NET_CHECKS" \
        -device virtio-iommu-pci "${NET_ARGS[@]}"
}

# ---------------------------------------------------------------- main

if [ "${1:-}" = --list ]; then
    echo "default: $SCENARIOS"
    echo "extra:   $EXTRA_SCENARIOS"
    exit 0
fi
selected=${*:-${GUEST_TESTS:-$SCENARIOS}}

echo "TAP version 13"
echo "# QEMU build: $(qemu_build_dir)"
for sc in $selected; do
    fn=scenario_${sc//-/_}
    if ! declare -F "$fn" > /dev/null; then
        tap not-ok "$sc: unknown scenario (known: $SCENARIOS $EXTRA_SCENARIOS)"
        continue
    fi
    "$fn" || true
done
echo "1..$n"
if [ "$failed" -ne 0 ] || [ "$n" -eq 0 ]; then
    echo "# $failed of $n checks failed"
    exit 1
fi
echo "# all $n checks passed"
