#!/bin/bash
# vhost-user behind the IOMMU: a DPDK switch on the host (Debian's dpdk,
# dpdk-testpmd with two net_vhost ports, iommu-support=1, no huge pages,
# forwarding between them) and an x86_64 guest whose two virtio-net NICs
# (iommu_platform=on, -netdev vhost-user) sit on those ports behind
# virtio-iommu.  The guest side is tests/guest/image/test-vhostuser.sh:
# one NIC in its own network namespace, a checksummed 64 MiB payload each
# way, pings, then the guest unbinds a NIC.
#
#   tests/guest/run-vhost-user-tests.sh [CONFIG...]
#
# CONFIG is BUILD-MODE with BUILD ours (build/qemu) or upstream
# (build/upstream, QEMU's own device) and MODE strict (iommu.strict=1) or
# lazy (DMA-FQ); default: ours-strict ours-lazy upstream-strict
# upstream-lazy (upstream skipped, with the reason, if build/upstream has
# no vhost-user).  Prints TAP.  Per run, the host checks from QEMU's trace
# of the IOTLB messages (patches/qemu/0002, tests/guest/vhost-iotlb.py)
# that the backend was sent translations, and that testpmd forwarded the
# payload; it prints what the unbound NIC's backend had cached, what was
# invalidated and what was still cached when QEMU stopped it.  Logs in
# build/guest-tests/vhost-user/; one line per run in results.tsv there
# (for tests/bench/run-bench.sh):
#   config updates invalidates update_bytes moved_bytes seconds complete
# (moved_bytes: what arrived in the two transfers; complete: 1 when both
# passed)
# Environment: VHU_MIB (default 64) MiB each way, VHU_TIMEOUT (default 600)
# seconds per guest, VHU_RESULTS the results file; for debugging,
# VHU_TRACE (more QEMU -trace options, e.g. "-trace vhost_iotlb_miss
# -trace viommu_fault*"), VHU_DPDK_LOG (more EAL options, e.g.
# "--log-level=lib.vhost.*:debug"), VHU_NIC_OPTS (",prop=value..." for both
# virtio-net devices; default: checksum and segmentation offloads off) and
# VHU_PORT_OPTS (",key=value..." for both net_vhost ports, e.g.
# ",tso=1,legacy-ol-flags=1" with VHU_NIC_OPTS= to pass offloads through).
set -uo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/scripts/lib.sh"
. "$top/tests/guest/guest-lib.sh"

MIB=${VHU_MIB:-64}
LIMIT=${VHU_TIMEOUT:-600}
logdir=$(guest_logdir)/vhost-user
mkdir -p "$logdir"
RESULTS=${VHU_RESULTS:-$logdir/results.tsv}
: > "$RESULTS"
n=0
failed=0

CHECKS="modules-loaded driver-bound endpoint-groups domain-type vhu-setup vhu-a-to-b vhu-b-to-a vhu-ping vhu-unbind no-iommu-errors no-kernel-oops"

# start_switch DIR: dpdk-testpmd with two vhost-user server sockets
# DIR/vhost0.sock and DIR/vhost1.sock, io forwarding port 0 <-> port 1.
# Sets SW_PID.
start_switch() {
    local dir=$1
    rm -f "$dir"/vhost[01].sock
    # A packet for the guest whose buffer misses in the backend's IOTLB is
    # not enqueued (the miss goes to QEMU); without retry testpmd would drop
    # it, and TCP would crawl from retransmission to retransmission.
    printf 'set fwd io retry\nset burst tx delay 50 retry 2000\n' > "$dir/testpmd.cmds"
    # --no-huge: anonymous memory for the mbufs; the guest's memory comes
    # from QEMU's memfd over the vhost-user socket.  --stats-period keeps
    # testpmd running without a terminal.
    # shellcheck disable=SC2086  # VHU_DPDK_LOG: extra EAL words
    dpdk-testpmd -l 0-1 --no-huge -m 256 --no-pci ${VHU_DPDK_LOG:-} \
        --file-prefix="vhu$$" \
        --vdev "net_vhost0,iface=$dir/vhost0.sock,queues=1,iommu-support=1$VHU_PORT_OPTS" \
        --vdev "net_vhost1,iface=$dir/vhost1.sock,queues=1,iommu-support=1$VHU_PORT_OPTS" \
        -- --cmdline-file="$dir/testpmd.cmds" --auto-start --nb-cores=1 \
        --total-num-mbufs=16384 --stats-period=30 \
        < /dev/null > "$dir/testpmd.log" 2>&1 &
    SW_PID=$!
    for _ in $(seq 100); do
        [ -S "$dir/vhost0.sock" ] && [ -S "$dir/vhost1.sock" ] && return 0
        kill -0 "$SW_PID" 2> /dev/null || break
        sleep 0.2
    done
    return 1
}

stop_switch() {
    kill -INT "$SW_PID" 2> /dev/null
    for _ in $(seq 50); do
        kill -0 "$SW_PID" 2> /dev/null || break
        sleep 0.2
    done
    kill -KILL "$SW_PID" 2> /dev/null
    wait "$SW_PID" 2> /dev/null
}

# The QEMU arguments of the scenario: guest memory shared with the switch,
# the IOMMU, and the two NICs on the switch's ports.  This is what
# docs/system/devices/virtio-iommu.rst shows.
# shellcheck disable=SC2054
vhu_args() {
    local dir=$1
    # No checksum offload: testpmd's io forwarding passes a packet from one
    # guest NIC to the other as it is, and a partial checksum (offloaded by
    # the sender) would reach the receiver unmarked and be dropped there.
    local nic=iommu_platform=on,disable-legacy=on,romfile=$VHU_NIC_OPTS
    VHU_ARGS=(-object memory-backend-memfd,id=mem,size=1G,share=on
              -machine memory-backend=mem
              -device virtio-iommu-pci
              -chardev "socket,id=vhu0,path=$dir/vhost0.sock"
              -netdev vhost-user,id=n0,chardev=vhu0
              -device "virtio-net-pci,netdev=n0,mac=52:54:00:00:10:01,$nic"
              -chardev "socket,id=vhu1,path=$dir/vhost1.sock"
              -netdev vhost-user,id=n1,chardev=vhu1
              -device "virtio-net-pci,netdev=n1,mac=52:54:00:00:10:02,$nic")
}

VHU_NO_OFFLOAD=,csum=off,guest_csum=off,gso=off,guest_tso4=off,guest_tso6=off,guest_ecn=off,guest_ufo=off,host_tso4=off,host_tso6=off,host_ecn=off,host_ufo=off
VHU_NIC_OPTS=${VHU_NIC_OPTS-$VHU_NO_OFFLOAD}
VHU_PORT_OPTS=${VHU_PORT_OPTS-}

has_vhost_user() {
    grep -q '^#define CONFIG_VHOST_USER$' "$1/config-host.h" 2> /dev/null
}

run_config() {
    local cfg=$1 build mode qdir strict dir log trace rc=0 out
    build=${cfg%-*} mode=${cfg#*-}
    case "$build" in
        ours) qdir=$top/build/qemu ;;
        upstream) qdir=$top/build/upstream ;;
        *) tap not-ok "$cfg: unknown build '$build'"; return ;;
    esac
    case "$mode" in
        strict) strict=1 ;;
        lazy) strict=0 ;;
        *) tap not-ok "$cfg: unknown mode '$mode'"; return ;;
    esac
    if [ ! -x "$qdir/qemu-system-x86_64" ]; then
        tap not-ok "$cfg: $qdir/qemu-system-x86_64 is built"
        return
    fi
    if ! has_vhost_user "$qdir"; then
        if [ "$build" = upstream ] && [ -z "${VHU_REQUIRE_UPSTREAM:-}" ]; then
            tap ok "$cfg: # SKIP $qdir configured without vhost-user (scripts/build-qemu.sh --upstream configures it)"
        else
            tap not-ok "$cfg: $qdir configured with vhost-user"
        fi
        return
    fi
    dir=$logdir/$cfg
    rm -rf "$dir"
    mkdir -p "$dir"
    log=$dir/console.log
    trace=$dir/trace.log
    if ! start_switch "$dir"; then
        tap not-ok "$cfg: dpdk-testpmd listens on two vhost-user sockets" \
            "$(tail -n 5 "$dir/testpmd.log")"
        stop_switch
        return
    fi
    vhu_args "$dir"
    local seed=$(( ($(date +%s) + RANDOM) % 1000000 + 1 ))
    # shellcheck disable=SC2086  # VHU_TRACE: extra QEMU words
    QEMU_BUILD=$qdir guest_boot x86_64 "$log" "$LIMIT" \
        "viommu.timeout=$((LIMIT - 20)) viommu.test=vhostuser viommu.net_mib=$MIB viommu.seed=$seed iommu.strict=$strict" \
        "${VHU_ARGS[@]}" \
        -msg timestamp=on -trace 'vhost_backend_iotlb_*' -trace 'vhost_dev_st*' ${VHU_TRACE:-} \
        -D "$trace" || rc=$?
    stop_switch
    echo "# $cfg: guest ran ${BOOT_SECONDS}s, QEMU exit status $rc, log $log"
    # shellcheck disable=SC2086
    tap_guest_checks "$cfg: " "$log" $CHECKS
    tap_guest_verdict "$cfg: " "$log" "QEMU exit status $rc"
    # The switch forwarded the payload both ways
    local fwd
    # (The range starts at the banner and ends at the next "+++" line.)
    fwd=$(sed -n '/Accumulated forward/,/+++/s/.*TX-packets: *\([0-9]*\).*/\1/p' \
          "$dir/testpmd.log" | tail -n 1)
    if [ "${fwd:-0}" -gt $((MIB * 2 * 1048576 / 1500)) ]; then
        tap ok "$cfg: testpmd forwarded $fwd packets"
    else
        tap not-ok "$cfg: testpmd forwarded the payload" \
            "TX-packets ${fwd:-none}; $(tail -n 3 "$dir/testpmd.log" | tr '\n' ' ')"
    fi
    out=$(python3 "$top/tests/guest/vhost-iotlb.py" "$trace")
    echo "$out" | sed 's/^/# iotlb: /'
    local updates invalidates ubytes cranges iranges sranges
    updates=$(sed -n 's/^updates=\([0-9]*\).*/\1/p' <<< "$out")
    invalidates=$(sed -n 's/.* invalidates=\([0-9]*\).*/\1/p' <<< "$out")
    ubytes=$(sed -n 's/.* update_bytes=\([0-9]*\).*/\1/p' <<< "$out")
    cranges=$(sed -n 's/^cached_ranges=\([0-9]*\).*/\1/p' <<< "$out")
    iranges=$(sed -n 's/.* invalidated_ranges=\([0-9]*\).*/\1/p' <<< "$out")
    sranges=$(sed -n 's/^stop_cached_ranges=\([0-9]*\).*/\1/p' <<< "$out")
    if [ "${updates:-0}" -gt 0 ]; then
        tap ok "$cfg: the backend asked QEMU for translations ($updates IOTLB updates, $invalidates invalidations)"
    else
        tap not-ok "$cfg: the backend asked QEMU for translations" "$out"
    fi
    echo "# $cfg: unbound NIC: $cranges ranges cached, $iranges invalidated, $sranges still cached at its stop"
    # What the two transfers moved (bytes that arrived) and their seconds,
    # from the guest; complete when both passed
    local moved secs complete=0
    moved=$(guest_lines "$log" | sed -n 's/^VIOMMU-INFO vhu-transfer .* bytes \([0-9]*\) .*/\1/p' |
            awk '{ s += $1 } END { print s + 0 }')
    secs=$(guest_lines "$log" | sed -n 's/^VIOMMU-INFO vhu-transfer .* seconds \([0-9.]*\).*/\1/p' |
           awk '{ s += $1 } END { printf "%.2f", s }')
    [ "$(guest_checks "$log" | grep -cE '^vhu-(a-to-b|b-to-a) PASS')" = 2 ] && complete=1
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$cfg" "${updates:-0}" "${invalidates:-0}" \
        "${ubytes:-0}" "$moved" "$secs" "$complete" >> "$RESULTS"
}

command -v dpdk-testpmd > /dev/null ||
    die "dpdk-testpmd not found (scripts/install-deps.sh installs Debian's dpdk)"
out=$(bash "$top/tests/guest/build-guest.sh" x86_64 2>&1) ||
    { echo "$out" | tail -n 5; die "building the x86_64 guest failed"; }
[ $# -gt 0 ] || set -- ours-strict ours-lazy upstream-strict upstream-lazy
for cfg in "$@"; do
    run_config "$cfg"
done
echo "1..$n"
[ "$failed" -eq 0 ]
