#!/bin/bash
# DPDK inside the guest, behind virtio-iommu (issue 17, item 3):
#
#   tests/guest/run-dpdk-guest-test.sh
#
# Boots the x86_64 test guest (tests/guest/build-guest.sh) with the DPDK
# overlay (tests/guest/build-dpdk-overlay.sh) appended to its initramfs, on
# q35 with virtio-iommu-pci and two virtio-net-pci NICs
# (iommu_platform=on, disable-legacy=on) joined by a QEMU hub, so that what
# one sends the other receives.  The guest (tests/guest/dpdk/test-dpdk.sh)
# binds both NICs to vfio-pci and runs Debian's dpdk-testpmd 22.11 on them:
# EAL without huge pages (--no-huge -m 128), IOVA as VA, VFIO type 1, io
# forwarding started with a burst from each port.  Guest checks: one TAP line
# each.  Host checks, on QEMU's console log, which also carries the trace
# of our device's requests (viommu_request, viommu_fault*) and
# -d guest_errors, in the order QEMU wrote them:
#   - testpmd's run (between the guest's "dpdk-run begin" and "end" lines)
#     sent MAP requests, all of them answered OK;
#   - the device's statistics (QMP qom-get, read when the guest prints
#     begin, forwarding and end): while testpmd forwards, the device holds
#     at least the mappings its setup made; after it quit, the device's
#     domains, mappings and attached endpoints are those before it;
#   - no fault was reported or logged, and no guest error.
# Printed: testpmd's packet counts and the requests by type and status.
#
# Uses QEMU from ${QEMU_BUILD:-build/qemu}; GUEST_KERNEL as for the other
# guest tests.  Knobs: DPDK_SECONDS (forwarding time, default 10),
# DPDK_MIN (packets each port must receive and send, default 1000),
# DPDK_IOVA (EAL --iova-mode, default va), DPDK_APPEND (more kernel
# parameters), DPDK_TRACE (one more trace event pattern, e.g.
# viommu_space_mode, for a closer look), DPDK_SCENARIO (the name in the
# TAP lines and of the log, default x86-dpdk), DPDK_VIOMMU_OPTS (more
# options of the IOMMU, ",max-mappings=64" say).  Log: build/guest-tests[/linux-7]/x86-dpdk.log.
set -uo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/scripts/lib.sh"
. "$top/tests/guest/guest-lib.sh"

sc=${DPDK_SCENARIO:-x86-dpdk}
arch=x86_64
limit=${DPDK_TIMEOUT:-360}

logdir=$(guest_logdir) || exit 2
mkdir -p "$logdir"
LOG=$logdir/$sc.log

if ! out=$(bash "$top/tests/guest/build-guest.sh" "$arch" 2>&1); then
    tap not-ok "$sc: build guest" "$(echo "$out" | grep -E 'ERROR|error' | tail -n 1)"
    echo "1..$n"
    exit 1
fi
overlay=$BUILD/guest-dpdk/dpdk.cpio.gz
if ! out=$(bash "$top/tests/guest/build-dpdk-overlay.sh" "$overlay" 2>&1); then
    tap not-ok "$sc: build DPDK overlay" "$(echo "$out" | tail -n 3)"
    echo "1..$n"
    exit 1
fi
echo "# $out"
# guest_boot boots guest_dir of $BUILD: a directory of our own holds the
# guest's kernel and its initramfs with the overlay appended.
base=$(guest_dir "$arch")
dbuild=$BUILD/guest-dpdk/boot
gdir=$(BUILD=$dbuild guest_dir "$arch")
mkdir -p "$gdir"
ln -sf "$base/vmlinuz" "$gdir/vmlinuz"
cat "$base/initramfs.cpio.gz" "$overlay" > "$gdir/initramfs.cpio.gz.tmp" &&
    mv "$gdir/initramfs.cpio.gz.tmp" "$gdir/initramfs.cpio.gz"
echo "# guest $(cat "$base/kernel-version"), DPDK $(dpkg-query -W -f '${Version}' dpdk)"

GUEST_CHECKS="modules-loaded driver-bound dpdk-nics-bound endpoint-groups domain-type dpdk-eal-vfio dpdk-iova-va dpdk-ports dpdk-port0-rx dpdk-port0-tx dpdk-port1-rx dpdk-port1-tx dpdk-exit no-iommu-errors no-kernel-oops"

# The device's statistics (qom-get stats) the moment the guest prints each
# marker, one JSON reply per line in $stats (our device only).
sock=$logdir/$sc.qmp
stats=$logdir/$sc.stats
rm -f "$sock" "$stats"
(
    for m in begin forwarding end; do
        python3 "$top/tests/migration/qmp.py" "$sock" --when "$LOG" "VIOMMU-INFO dpdk-run $m" \
            qom-get '{"path":"/machine/peripheral/viommu0/virtio-backend","property":"stats"}' 2>&1 |
            tr -d '\n' | sed "s/^/$m /"
        echo
    done > "$stats"
) &
statpid=$!

rc=0
# -cpu max: Debian's DPDK needs SSE4.2, which TCG's default qemu64 lacks.
# The trace goes to stderr, into the console log, so that the requests
# fall between the guest's lines.
BUILD=$dbuild guest_boot "$arch" "$LOG" "$limit" \
    "viommu.timeout=$((limit - 20)) viommu.test=dpdk vfio_iommu_type1.allow_unsafe_interrupts=1 viommu.dpdk_seconds=${DPDK_SECONDS:-10} viommu.dpdk_min=${DPDK_MIN:-1000} viommu.dpdk_iova=${DPDK_IOVA:-va} ${DPDK_APPEND:-}" \
    -cpu max -d guest_errors -qmp "unix:$sock,server=on,wait=off" \
    -trace viommu_request -trace 'viommu_fault*' ${DPDK_TRACE:+-trace "$DPDK_TRACE"} \
    -device "virtio-iommu-pci,id=viommu0${DPDK_VIOMMU_OPTS:-}" \
    -netdev hubport,id=hp0,hubid=0 -netdev hubport,id=hp1,hubid=0 \
    -device virtio-net-pci,netdev=hp0,mac=52:54:00:00:17:01,iommu_platform=on,disable-legacy=on,addr=0x4 \
    -device virtio-net-pci,netdev=hp1,mac=52:54:00:00:17:02,iommu_platform=on,disable-legacy=on,addr=0x5 ||
    rc=$?
echo "# $sc: guest ran ${BOOT_SECONDS:-?}s, QEMU exit status $rc, log $LOG"
# The reader gives up on its own (a pattern that never comes, a socket gone).
wait "$statpid"
rm -f "$sock"
if ! grep -q VIOMMU "$LOG"; then
    tap not-ok "$sc: guest ran the tests" \
        "no results on the console; last lines: $(tail -n 3 "$LOG" | tr -d '\r' | tr '\n' ' ')"
    echo "1..$n"
    exit 1
fi
# shellcheck disable=SC2086
tap_guest_checks "$sc: " "$LOG" $GUEST_CHECKS
tap_guest_verdict "$sc: " "$LOG" "QEMU exit status $rc"
if [ "$rc" = 0 ]; then
    tap ok "$sc: guest powered off"
else
    tap not-ok "$sc: guest powered off" "QEMU exit status $rc"
fi

# testpmd's packet counts, as the guest printed them.
tr -d '\r' < "$LOG" | sed -n 's/^dpdk| //p' |
    awk '/NIC statistics for port/ { p = $(NF - 1) }
         /^ *RX-packets:/ && p != "" { rx[p] = $2 }
         /^ *TX-packets:/ && p != "" { tx[p] = $2 }
         END { for (i in rx) printf "# testpmd port %s: RX-packets %s TX-packets %s\n", i, rx[i], tx[i] }' |
    sort

# The device's requests by phase: before testpmd (the kernel's own DMA
# domains, the moves to vfio-pci), from its start to the forwarding
# marker (EAL's setup), from there to its end (forwarding, exit), after.
# virtio-iommu request types: 1 ATTACH 2 DETACH 3 MAP 4 UNMAP 5 PROBE.
counts=$(tr -d '\r' < "$LOG" | awk '
    /VIOMMU-INFO dpdk-run begin/ { phase = "start" }
    /VIOMMU-INFO dpdk-run forwarding/ { phase = "forwarding" }
    /VIOMMU-INFO dpdk-run end/ { phase = "after" }
    match($0, /viommu_request type=[0-9]+ status=-?[0-9]+/) {
        split(substr($0, RSTART, RLENGTH), f, /[ =]/)
        key = (phase == "" ? "before" : phase) " " f[3] " " f[5]
        c[key]++
    }
    END { for (k in c) print k, c[k] }' | sort)
names=(none ATTACH DETACH MAP UNMAP PROBE)
while read -r phase type status count; do
    [ -n "$phase" ] || continue
    echo "# requests $phase: ${names[$type]:-type$type} status $status: $count"
done <<< "$counts"
# count PHASES TYPE STATUS: how many in those phases (a regex), with that
# status (! for any but 0).
count() {
    awk -v p="^($1)\$" -v t="$2" -v s="$3" '
        $1 ~ p && $2 == t && (s == "!" ? $3 != 0 : $3 == s) { c += $4 }
        END { print c + 0 }' <<< "$counts"
}
run_map=$(count 'start|forwarding' 3 0)
run_map_bad=$(count 'start|forwarding' 3 '!')
if ! grep -q 'VIOMMU-INFO dpdk-run end' "$LOG"; then
    tap not-ok "$sc: testpmd's VFIO mappings reached the IOMMU" "the guest never finished the run"
elif [ "$run_map" -gt 0 ] && [ "$run_map_bad" = 0 ]; then
    tap ok "$sc: testpmd's VFIO mappings reached the IOMMU ($run_map MAP requests, all OK)"
else
    tap not-ok "$sc: testpmd's VFIO mappings reached the IOMMU" \
        "$run_map MAP requests answered OK, $run_map_bad refused during testpmd's run"
fi

# stat MARKER NAME: a counter of the device's statistics at MARKER.
stat() {
    sed -n "s/^$1 .*\"$2\": *\([0-9]*\).*/\1/p" "$stats" 2>/dev/null | head -n 1
}
for m in begin forwarding end; do
    echo "# device at $m: domains $(stat "$m" domains) mappings $(stat "$m" mappings) attached-endpoints $(stat "$m" attached-endpoints)"
done
# While testpmd forwards, the device holds every mapping EAL's setup made
# (VFIO's domain: the MAPs since begin, less what was unmapped since).
setup_maps=$(( $(count start 3 0) - $(count start 4 0) ))
m_fwd=$(stat forwarding mappings)
if [ -n "$m_fwd" ] && [ "$m_fwd" -ge "$setup_maps" ] && [ "$setup_maps" -gt 0 ]; then
    tap ok "$sc: the device holds testpmd's mappings while it forwards ($m_fwd mappings, $setup_maps made by its setup)"
else
    tap not-ok "$sc: the device holds testpmd's mappings while it forwards" \
        "${m_fwd:-no} mappings at the forwarding marker, want at least $setup_maps (stats: $(head -c 300 "$stats" 2>/dev/null))"
fi
# After testpmd quit, VFIO's domain is gone with all its mappings: the
# device holds what it held before (the NICs back in their default
# domains, whose mappings Linux replays).
b="$(stat begin domains)/$(stat begin mappings)/$(stat begin attached-endpoints)"
e="$(stat end domains)/$(stat end mappings)/$(stat end attached-endpoints)"
if [ "$b" = "$e" ] && [ "$b" != // ]; then
    tap ok "$sc: testpmd's exit left the device as before (domains/mappings/endpoints $b)"
else
    tap not-ok "$sc: testpmd's exit left the device as before" \
        "domains/mappings/endpoints at begin $b, at end $e"
fi
faults=$(tr -d '\r' < "$LOG" | grep -v '^#' | grep -E 'viommu_fault|virtio-iommu: ' | head -n 5)
if [ -z "$faults" ]; then
    tap ok "$sc: the device reported no fault and logged no guest error"
else
    tap not-ok "$sc: the device reported no fault and logged no guest error" "$faults"
fi
echo "1..$n"
[ "$failed" = 0 ]
