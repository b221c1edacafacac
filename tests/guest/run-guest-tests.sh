#!/bin/bash
# Guest part of the test suite: boot real Linux guests (Debian 6.12 or 7.x
# kernel, busybox initramfs from tests/guest/build-guest.sh) under QEMU TCG
# with virtio-iommu-pci and check, inside the guest, that the Linux driver
# binds, groups the endpoints and that DMA through the IOMMU is correct.
#
#   [GUEST_KERNEL=6.12|7] tests/guest/run-guest-tests.sh [--list|--main] [SCENARIO...]
#
# Default: all default scenarios; --main: the main ones (MAIN_SCENARIOS,
# what the suite runs on the newest kernel too); --list shows the default,
# main and extra ones.  GUEST_KERNEL chooses the guest kernel (guest_kernel
# in guest-lib.sh): 6.12 (default) or 7, the newest Linux 7.x of Debian
# testing / trixie-backports; logs then go to build/guest-tests/linux-7/.
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
. "$top/tests/guest/guest-lib.sh"

SCENARIOS="x86-demo x86-root-port x86-net x86-strict x86-identity x86-no-boot-bypass x86-reboot x86-reset x86-hotplug x86-edu x86-edu-root-port x86-edu-pci-bridge x86-net-pci-bridge aarch64-demo aarch64-lazy aarch64-identity aarch64-edu aarch64-edu-pci-bridge aarch64-acpi"
# Not run by default (time), but selectable by name.
EXTRA_SCENARIOS="aarch64-net"
# The main scenarios, what the suite also runs on the newest kernel
# (GUEST_KERNEL=7): the disk demo in lazy, strict and identity domains and
# VFIO with exact faults on both architectures, DMA before the driver
# (boot-bypass off and on), hot-plug, reboot with live domains, and the
# DMA aliases behind a PCIe-to-PCI bridge (edu on both architectures, a
# NIC on x86).
MAIN_SCENARIOS="x86-demo x86-strict x86-identity x86-no-boot-bypass x86-edu x86-edu-pci-bridge x86-net-pci-bridge x86-hotplug x86-reboot aarch64-demo aarch64-lazy aarch64-identity aarch64-edu aarch64-edu-pci-bridge"

logdir=$(guest_logdir) || exit 2
mkdir -p "$logdir"


declare -A guest_built=()
ensure_guest() {
    local arch=$1 out
    [ -n "${guest_built[$arch]:-}" ] && return "${guest_built[$arch]}"
    if out=$(bash "$top/tests/guest/build-guest.sh" "$arch" 2>&1); then
        guest_built[$arch]=0
        echo "# guest $arch: $(cat "$(guest_dir "$arch")/kernel-version")"
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
    # shellcheck disable=SC2086
    tap_guest_checks "$sc: " "$LOG" $required
    tap_guest_verdict "$sc: " "$LOG" "QEMU exit status $rc$(rc_meaning "$rc")"
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
        126) echo " (the guest kernel panicked: $(guest_panic "$LOG"))" ;;
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
# DEMO_BLK_OPTS: extra options of the virtio-blk device (",bus=...").
demo_scenario() {
    local sc=$1 arch=$2 limit=$3 append=$4
    shift 4
    new_disk "$sc"
    run_guest "$sc" "$arch" "$limit" \
        "viommu.test=demo viommu.seed=$SEED viommu.mib=$MIB $append" "$DEMO_CHECKS" \
        "$@" \
        -drive "file=$DISK,if=none,id=d0,format=raw" \
        -device "virtio-blk-pci,drive=d0,iommu_platform=on,disable-legacy=on${DEMO_BLK_OPTS:-}" ||
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
# The disk runs in an iothread: its DMA translates (lock-free cache hits,
# locked misses) race the vCPUs' MAP/UNMAP requests on other threads, and
# the pattern check shows no stale translation was used.
scenario_x86_strict() {
    new_disk x86-strict
    run_guest x86-strict x86_64 150 \
        "iommu.strict=1 viommu.expect_type=DMA viommu.test=demo,net viommu.seed=$SEED viommu.mib=$MIB" \
        "$DEMO_CHECKS $NET_CHECKS" \
        -device virtio-iommu-pci "${NET_ARGS[@]}" \
        -object iothread,id=io0 \
        -drive "file=$DISK,if=none,id=d0,format=raw" \
        -device virtio-blk-pci,drive=d0,iommu_platform=on,disable-legacy=on,iothread=io0 ||
        return 1
    host_disk_check x86-strict
}

# Identity domains (ATTACH with the bypass flag).
scenario_x86_identity() {
    demo_scenario x86-identity x86_64 150 \
        "iommu.passthrough=1 viommu.expect_type=identity" -device virtio-iommu-pci
}

# The demo with the disk behind a pcie-root-port (bus 1, not pcie.0).
scenario_x86_root_port() {
    DEMO_BLK_OPTS=,bus=rp1 demo_scenario x86-root-port x86_64 150 "" \
        -device virtio-iommu-pci \
        -device pcie-root-port,id=rp1,chassis=1,slot=1,bus=pcie.0
}

# Reboot with live DMA-FQ domains: the guest runs the demo checks, writes a
# boot marker to the disk and resets the machine with sysrq-b (no device
# shutdown: the disk is still attached to its domain, with mappings); the
# second boot finds the marker, runs the checks again with another seed and
# powers off.
scenario_x86_reboot() {
    reboot_scenario x86-reboot 1
}

# The same with a QMP system_reset from the host while the guest idles with
# its domains live.
scenario_x86_reset() {
    reboot_scenario x86-reset host
}

# reboot_scenario NAME 1|host
reboot_scenario() {
    local sc=$1 how=$2 dones sock drv='' qmpargs=() rc=0
    new_disk "$sc"
    LOG=$logdir/$sc.log
    : > "$LOG"
    if [ "$how" = host ]; then
        sock=$logdir/$sc.qmp
        rm -f "$sock"
        qmpargs=(-qmp "unix:$sock,server=on,wait=off")
        ( if hotplug_wait "$LOG" "VIOMMU-WAIT reset" 200; then
              qmp "$sock" system_reset > /dev/null
          fi ) &
        drv=$!
    fi
    GUEST_REBOOT=1 GUEST_DONES=2 run_guest "$sc" x86_64 240 \
        "viommu.test=demo viommu.reboot=$how viommu.expect_type=DMA-FQ viommu.seed=$SEED viommu.mib=$MIB" \
        "$DEMO_CHECKS" \
        "${qmpargs[@]}" \
        -device virtio-iommu-pci \
        -drive "file=$DISK,if=none,id=d0,format=raw" \
        -device virtio-blk-pci,drive=d0,iommu_platform=on,disable-legacy=on || rc=1
    if [ -n "$drv" ]; then
        kill "$drv" 2>/dev/null
        wait "$drv" 2>/dev/null
        rm -f "$sock"
    fi
    [ "$rc" = 0 ] || return 1
    dones=$(guest_lines "$LOG" | grep -cE '^VIOMMU-DONE checks=[1-9][0-9]* failed=0( |$)')
    if [ "$dones" = 2 ] && guest_lines "$LOG" | grep -q '^VIOMMU-INFO boot 2$'; then
        tap ok "$sc: both boots finished with failed=0"
    else
        tap not-ok "$sc: both boots finished with failed=0" \
            "$(guest_lines "$LOG" | grep -E '^VIOMMU-(DONE|INFO boot)' | tr '\n' ' ')"
    fi
    if [ "$(guest_checks "$LOG" | grep -c '^disk-pattern PASS')" = 2 ]; then
        tap ok "$sc: disk pattern verified on both boots"
    else
        tap not-ok "$sc: disk pattern verified on both boots" \
            "$(guest_checks "$LOG" | grep '^disk-pattern' | cut -c1-100 | tr '\n' ' ')"
    fi
    # The image holds the second boot's pattern.
    SEED=$((SEED + 1000))
    host_disk_check "$sc"
}

# PCIe native hotplug (pciehp) of virtio-blk disks behind a root port.  The
# guest prints "VIOMMU-WAIT hotplug-N" / "unplug-N"; the host answers with
# device_add / device_del over QMP.  Each disk gets a group and a pattern.
HOTPLUG_CHECKS="driver-bound hotplug-1-appeared hotplug-1-group hotplug-1-pattern hotplug-1-removed hotplug-2-appeared hotplug-2-group hotplug-2-pattern hotplug-2-removed no-iommu-errors no-kernel-oops"

# qmp SOCKET CMD [JSON]...
qmp() { python3 "$top/tests/migration/qmp.py" "$@"; }

# hotplug_wait LOG LINE SECONDS: wait for LINE on the console.
hotplug_wait() {
    local i
    for ((i = 0; i < $3 * 2; i++)); do
        tr -d '\r' < "$1" | grep -q "$2" && return 0
        sleep 0.5
    done
    return 1
}

iommu_attached() {
    qmp "$1" qom-get '{"path":"/machine/peripheral/viommu0/virtio-backend","property":"stats"}' |
        grep -oE '"attached-endpoints": *[0-9]+' | grep -oE '[0-9]+$'
}

# hotplug_driver LOG SOCK RESULTS: the host side; one "ok|not-ok|info TEXT"
# line per step in RESULTS.
hotplug_driver() {
    local log=$1 sock=$2 res=$3 i out t0 gone
    local -a with=() without=()
    for i in 1 2; do
        if ! hotplug_wait "$log" "VIOMMU-WAIT hotplug-$i" 200; then
            echo "not-ok hotplug-$i: guest never asked for the disk" >> "$res"
            return
        fi
        t0=$SECONDS
        if out=$(qmp "$sock" device_add \
                 "{\"driver\":\"virtio-blk-pci\",\"id\":\"hpblk$i\",\"drive\":\"hp$i\",\"bus\":\"rp1\",\"addr\":\"0.0\",\"iommu_platform\":true,\"disable-legacy\":\"on\"}" 2>&1); then
            echo "ok host device_add hpblk$i (drive hp$i, bus rp1)" >> "$res"
        else
            echo "not-ok host device_add hpblk$i: $out" >> "$res"
            return
        fi
        hotplug_wait "$log" "VIOMMU-WAIT unplug-$i" 200 || {
            echo "not-ok hotplug-$i: guest never asked for the unplug" >> "$res"
            return
        }
        with[i]=$(iommu_attached "$sock")
        if ! out=$(qmp "$sock" device_del "{\"id\":\"hpblk$i\"}" 2>&1); then
            echo "not-ok host device_del hpblk$i: $out" >> "$res"
            return
        fi
        # After the last unplug the guest powers off as soon as it sees the
        # disk go: its hotplug-2-removed check covers that one.
        if [ "$i" = 2 ]; then
            echo "ok host device_del hpblk$i accepted" >> "$res"
            break
        fi
        gone=""
        for ((t0 = 0; t0 < 240; t0++)); do
            if ! qmp "$sock" query-pci | grep -q '"qdev_id": "hpblk'"$i"'"'; then
                gone=1
                break
            fi
            sleep 0.5
        done
        if [ -n "$gone" ]; then
            echo "ok host device_del hpblk$i: gone from query-pci" >> "$res"
        else
            echo "not-ok host device_del hpblk$i: still in query-pci after 120s" >> "$res"
            return
        fi
        without[i]=$(iommu_attached "$sock")
    done
    # The device's stats: one endpoint more while a disk is plugged.
    local d="with hpblk1 ${with[1]:-?}, after its removal ${without[1]:-?}, with hpblk2 ${with[2]:-?}"
    if [ -z "${with[1]:-}${without[1]:-}${with[2]:-}" ] &&
       ! grep -q "$OUR_MARKER" "$(qemu_build_dir)/qemu-system-x86_64"; then
        # QEMU's own device has no stats property: nothing to compare.
        # Ours has, so for ours a failed read is a failure below.
        echo "info no attached-endpoints in the IOMMU's stats; not checked" >> "$res"
    elif [ -n "${with[1]:-}" ] && [ -n "${without[1]:-}" ] &&
       [ "${with[1]}" = $((without[1] + 1)) ] && [ "${with[2]:-}" = "${with[1]}" ]; then
        echo "ok attached-endpoints in the stats follow the hotplug ($d)" >> "$res"
    else
        echo "not-ok attached-endpoints in the stats follow the hotplug ($d)" >> "$res"
    fi
}

scenario_x86_hotplug() {
    local sc=x86-hotplug sock res drv line d1 d2 seed
    LOG=$logdir/$sc.log
    sock=$logdir/$sc.qmp
    res=$logdir/$sc.host
    rm -f "$sock" "$res"
    : > "$LOG"
    new_disk "$sc-1"; d1=$DISK; seed=$SEED
    new_disk "$sc-2"; d2=$DISK
    hotplug_driver "$LOG" "$sock" "$res" &
    drv=$!
    run_guest "$sc" x86_64 300 "viommu.test=hotplug viommu.seed=$seed viommu.mib=$MIB" \
        "$HOTPLUG_CHECKS" \
        -global ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off \
        -qmp "unix:$sock,server=on,wait=off" \
        -device virtio-iommu-pci,id=viommu0 \
        -device pcie-root-port,id=rp1,chassis=1,slot=1,bus=pcie.0 \
        -drive "file=$d1,if=none,id=hp1,format=raw" \
        -drive "file=$d2,if=none,id=hp2,format=raw"
    local rc=$?
    kill "$drv" 2>/dev/null
    wait "$drv" 2>/dev/null
    [ "$rc" = 0 ] || { rm -f "$sock" "$d1" "$d2"; return 1; }
    touch "$res"
    while read -r line; do
        case "$line" in
            "ok "*) tap ok "$sc: ${line#ok }" ;;
            "not-ok "*) tap not-ok "$sc: ${line#not-ok }" ;;
            "info "*) echo "# $sc: ${line#info }" ;;
        esac
    done < "$res"
    rm -f "$sock"
    SEED=$((seed + 1)) DISK=$d1 host_disk_check "$sc"
    SEED=$((seed + 2)) DISK=$d2 host_disk_check "$sc"
}

# arm virt, device tree (no firmware, so no ACPI VIOT): the iommu-map path.
# Strict DMA domains, Debian's default on arm64 (IOMMU_DEFAULT_DMA_STRICT),
# made explicit.
scenario_aarch64_demo() {
    demo_scenario aarch64-demo aarch64 300 "iommu.strict=1 viommu.expect_type=DMA" \
        -device virtio-iommu-pci
}

# The same with lazy (flush queue) DMA domains and with identity domains.
scenario_aarch64_lazy() {
    demo_scenario aarch64-lazy aarch64 300 "iommu.strict=0 viommu.expect_type=DMA-FQ" \
        -device virtio-iommu-pci
}

scenario_aarch64_identity() {
    demo_scenario aarch64-identity aarch64 300 \
        "iommu.passthrough=1 viommu.expect_type=identity" -device virtio-iommu-pci
}

# The network scenario on arm virt (extra).
scenario_aarch64_net() {
    run_guest aarch64-net aarch64 300 "viommu.test=net" "$NET_CHECKS" \
        -device virtio-iommu-pci "${NET_ARGS[@]}"
}

# ---------------------------------------------------------------- edu, VFIO

# QEMU's edu DMA engine driven from guest userspace through vfio-pci and
# VFIO's type1 IOMMU (tests/guest/image/test-edu.sh, viommu-vfio.c):
# translated DMA both ways, a write to a read-only mapping and a read and a
# write at an unmapped IOVA blocked, and the driver's fault messages naming
# the edu's endpoint, each IOVA and the direction.
EDU_CHECKS="edu-bound edu-vfio-map edu-dma-copy edu-readonly-read edu-readonly-write-blocked edu-unmapped-write-blocked edu-unmapped-read-blocked edu-dma-after-faults edu-vfio-unmap edu-tool-ran edu-maploop edu-fault-readonly-logged edu-fault-unmapped-write-logged edu-fault-unmapped-read-logged"
# virtio-iommu does no interrupt remapping; VFIO's type1 IOMMU refuses
# such a group unless told otherwise.
EDU_APPEND="vfio_iommu_type1.allow_unsafe_interrupts=1"

# edu_scenario NAME ARCH TIMEOUT MIN_BUS [QEMU ARGS...]: the disk demo and
# the edu tests in one boot; the edu's endpoint ID (reported by the guest)
# must be its requester ID with a bus number of at least MIN_BUS.
# EDU_TESTS: the guest's test list (default demo,edu); EDU_EXTRA_APPEND and
# EDU_EXTRA_CHECKS: more kernel parameters and required checks.
edu_scenario() {
    local sc=$1 arch=$2 limit=$3 minbus=$4
    shift 4
    new_disk "$sc"
    run_guest "$sc" "$arch" "$limit" \
        "viommu.test=${EDU_TESTS:-demo,edu} viommu.seed=$SEED viommu.mib=$MIB $EDU_APPEND ${EDU_EXTRA_APPEND:-}" \
        "$DEMO_CHECKS $EDU_CHECKS ${EDU_EXTRA_CHECKS:-}" "$@" \
        -drive "file=$DISK,if=none,id=d0,format=raw" \
        -device virtio-blk-pci,drive=d0,iommu_platform=on,disable-legacy=on ||
        return 1
    host_disk_check "$sc"
    edu_endpoint_check "$sc" "$minbus"
}

# edu_endpoint_check NAME MIN_BUS: "VIOMMU-INFO edu endpoint ID BDF ..."
edu_endpoint_check() {
    local sc=$1 minbus=$2 line ep bdf bus dev fn want
    line=$(guest_lines "$LOG" | grep -m1 '^VIOMMU-INFO edu endpoint ')
    read -r _ _ _ ep bdf _ <<< "$line"
    if [[ "${bdf:-}" =~ ^[0-9a-f]{4}:([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])$ ]]; then
        bus=$((16#${BASH_REMATCH[1]})) dev=$((16#${BASH_REMATCH[2]})) fn=${BASH_REMATCH[3]}
        want=$((bus << 8 | dev << 3 | fn))
        if [ "$ep" = "$want" ] && [ "$bus" -ge "$minbus" ]; then
            tap ok "$sc: edu endpoint ID $ep is the requester ID of $bdf (bus $bus)"
        else
            tap not-ok "$sc: edu endpoint ID $ep is the requester ID of $bdf (bus $bus)" \
                "want $want with a bus number >= $minbus"
        fi
    else
        tap not-ok "$sc: edu endpoint ID reported" "${line:-no 'edu endpoint' line}"
    fi
}

# The early-DMA probe (tests/guest/image/test-earlydma.sh): the edu copies
# RAM -> edu -> RAM before the guest inserts any module, so before the
# virtio-iommu driver attaches anything; edu's buffer is read out through
# VFIO later, so the edu test comes after it.  dma_mask: the RAM pages are
# anywhere in guest RAM.  viommu.earlydma: what the copies must do.
EARLYDMA_TESTS=demo,earlydma,edu
EARLYDMA_EDU=edu,dma_mask=0xffffffffffffffff
EARLYDMA_CHECKS="earlydma-write earlydma-read"

# edu on q35's root bus, next to the demo disk; with boot-bypass on, the
# early DMA goes through (the probe's control).
scenario_x86_edu() {
    EDU_TESTS=$EARLYDMA_TESTS EDU_EXTRA_APPEND=viommu.earlydma=moved \
    EDU_EXTRA_CHECKS=$EARLYDMA_CHECKS \
        edu_scenario x86-edu x86_64 150 0 -device virtio-iommu-pci \
        -device "$EARLYDMA_EDU"
}

# boot-bypass=off: no DMA before the driver attaches the endpoints.  The
# early copies must fault and move nothing, and the driver must log both
# faults (the device queues them: no eventq buffer yet); then the edu
# tests show that DMA works once the endpoint is attached.
scenario_x86_no_boot_bypass() {
    EDU_TESTS=$EARLYDMA_TESTS EDU_EXTRA_APPEND=viommu.earlydma=blocked \
    EDU_EXTRA_CHECKS="$EARLYDMA_CHECKS earlydma-fault-read-logged earlydma-fault-write-logged" \
        edu_scenario x86-no-boot-bypass x86_64 150 0 \
        -device virtio-iommu-pci,boot-bypass=off -device "$EARLYDMA_EDU"
}

# edu behind a PCIe root port: an endpoint ID with a non-zero bus number.
scenario_x86_edu_root_port() {
    edu_scenario x86-edu-root-port x86_64 150 1 -device virtio-iommu-pci \
        -device pcie-root-port,id=rp1,chassis=1,slot=1,bus=pcie.0 \
        -device edu,bus=rp1
}

# The same two on arm virt (device tree).
scenario_aarch64_edu() {
    edu_scenario aarch64-edu aarch64 300 1 -device virtio-iommu-pci \
        -device pcie-root-port,id=rp1,chassis=1,slot=1,bus=pcie.0 \
        -device edu,bus=rp1
}

# ---------------------------------------------------------------- DMA aliases

# Conventional PCI behind a PCIe-to-PCI bridge, as libvirt puts it on q35:
# the DMA of every function there carries the alias (secondary bus, devfn
# 0).  The guest must give the edu an IOMMU group (VFIO drives it), its DMA
# goes through the alias's domain, and the faults name the alias.
PCI_BRIDGE=(-device pcie-pci-bridge,id=br1,bus=pcie.0,addr=0x8)
scenario_x86_edu_pci_bridge() {
    EDU_EXTRA_APPEND=viommu.edu_ep=bridge-alias \
    edu_scenario x86-edu-pci-bridge x86_64 150 1 -device virtio-iommu-pci \
        "${PCI_BRIDGE[@]}" -device edu,bus=br1,addr=0x1
}

scenario_aarch64_edu_pci_bridge() {
    EDU_EXTRA_APPEND=viommu.edu_ep=bridge-alias \
    edu_scenario aarch64-edu-pci-bridge aarch64 300 1 \
        -device virtio-iommu-pci "${PCI_BRIDGE[@]}" \
        -device edu,bus=br1,addr=0x1
}

# A conventional e1000 NIC behind the bridge, strict DMA domains: TCP both
# ways with the virtio-net, through the IOMMU.
scenario_x86_net_pci_bridge() {
    local checks=${NET_CHECKS//e1000e/e1000}
    run_guest x86-net-pci-bridge x86_64 150 \
        "viommu.test=net viommu.nic2=e1000 iommu.strict=1 viommu.expect_type=DMA" \
        "$checks" -device virtio-iommu-pci "${PCI_BRIDGE[@]}" \
        -netdev hubport,id=n0,hubid=0 -netdev hubport,id=n1,hubid=0 \
        -device virtio-net-pci,netdev=n0,iommu_platform=on,disable-legacy=on,mac=52:54:00:00:00:01,romfile= \
        -device e1000,bus=br1,addr=0x2,netdev=n1,mac=52:54:00:00:00:02,romfile=
}

# ---------------------------------------------------------------- ACPI

# arm virt booted through UEFI (Debian's AAVMF): the guest finds the IOMMU
# and its endpoints in the ACPI VIOT table instead of the device tree
# (tests/guest/image/test-acpi.sh), then runs the disk demo and the edu tests
# (edu behind a root port, so the VIOT's PCI range must cover bus 1) behind
# it.
ACPI_CHECKS="acpi-in-use acpi-viot"
scenario_aarch64_acpi() {
    EDU_TESTS=acpi,demo,edu EDU_EXTRA_APPEND=acpi=force \
    EDU_EXTRA_CHECKS=$ACPI_CHECKS GUEST_FIRMWARE=uefi \
        edu_scenario aarch64-acpi aarch64 300 1 -device virtio-iommu-pci \
        -device pcie-root-port,id=rp1,chassis=1,slot=1,bus=pcie.0 \
        -device edu,bus=rp1
}

# ---------------------------------------------------------------- main

case "${1:-}" in
    --list)
        echo "default: $SCENARIOS"
        echo "main:    $MAIN_SCENARIOS"
        echo "extra:   $EXTRA_SCENARIOS"
        exit 0 ;;
    --main)
        shift
        # shellcheck disable=SC2086
        set -- $MAIN_SCENARIOS "$@" ;;
esac
selected=${*:-${GUEST_TESTS:-$SCENARIOS}}

echo "TAP version 13"
echo "# QEMU build: $(qemu_build_dir)"
echo "# guest kernel: GUEST_KERNEL=$(guest_kernel), logs in $logdir"
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
