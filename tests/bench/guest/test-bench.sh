# shellcheck shell=sh
# shellcheck disable=SC2154  # arg, info, check, ... come from init.sh
# viommu.test=bench: the guest side of the benchmark suite
# (tests/bench/run-bench.sh).
# Sourced by init.sh, which runs prepare_bench and test_bench.
#
# Kernel command line:
#   viommu.bench=W[,W...]      workloads, run in this order (default
#                              randread,seqread,net):
#       randread   4 KiB O_DIRECT random reads of the disk, bench_threads
#                  threads, one read in flight each               -> iops
#       seqread    1 MiB O_DIRECT sequential reads, bench_seq_threads
#                  threads, each through its own slice of the disk -> mbps
#       net        TCP from the virtio-net to the e1000e (own netns) and
#                  back, one stream each way, measured at the receiver
#                                                                  -> mbps
#       maploop    viommu-vfio maploop on the edu device, bound to vfio-pci
#                  by test-edu.sh's prepare_edu: VFIO MAP+UNMAP of one 4 KiB
#                  buffer (needs vfio_iommu_type1.allow_unsafe_interrupts=1)
#                                                          -> pairs_per_sec
#   viommu.bench_seconds=S     measured seconds per workload (default 10),
#                              each after a 1 s warm-up
#   viommu.bench_threads=N     randread threads (default 4)
#   viommu.bench_seq_threads=N seqread threads (default 1)
#   viommu.bench_dev=DEV       the disk (default /dev/vda)
#
# Output per workload, for the host:
#   VIOMMU-INFO bench-start NAME              just before it starts
#   VIOMMU-INFO bench NAME key=value ...      the result (viommu-bench or
#                                             viommu-vfio's line)
#   VIOMMU-CHECK bench-NAME PASS|FAIL ...     it ran and produced a result
# The disk and NICs are added to the devices under test (group and domain
# type checks) when a virtio-iommu is present, so a run also proves that the
# expected domain type (viommu.expect_type) was in force.

bench_list() { arg bench randread,seqread,net | tr , ' '; }

bench_has() {
    case " $(bench_list) " in *" $1 "*) return 0 ;; esac
    return 1
}

bench_edu=""

prepare_bench() {
    _dev=$(arg bench_dev /dev/vda)
    if bench_has randread || bench_has seqread; then
        wait_for 20 test -b "$_dev"
        [ -n "$viommu_pci" ] && dut="$dut $(pci_of "/sys/block/${_dev#/dev/}" 2>/dev/null)"
    fi
    if bench_has net; then
        find_net_devices
        [ -n "$viommu_pci" ] && dut="$dut $net_pcis"
    fi
    if bench_has maploop; then
        # test-edu.sh binds the edu device(s) to vfio-pci (check
        # edu-bound) and adds them to the devices under test.
        if [ -f /etc/viommu/test-edu.sh ]; then
            # shellcheck disable=SC1091
            . /etc/viommu/test-edu.sh
            prepare_edu
            bench_edu=${edu_bdfs%% *}
        else
            info "bench-skip maploop: no /etc/viommu/test-edu.sh in this guest"
        fi
    fi
}

# bench_result NAME CMD...: run a workload, report its line.
bench_result() {
    _bn=$1
    shift
    info "bench-start $_bn $(now)"
    if _out=$("$@" 2>&1); then
        _line=$(echo "$_out" | tail -n 1)
        info "bench $_bn ${_line#* }"
        check "bench-$_bn" PASS "$_line"
    else
        echo "$_out" | while read -r _l; do info "bench-error $_bn $_l"; done
        check "bench-$_bn" FAIL "$(echo "$_out" | tail -n 1)"
    fi
}

# The NICs as in init.sh's test_net: the e1000e in its own namespace, so
# that traffic between 10.99.0.1 and 10.99.0.2 crosses the QEMU hub.
bench_net_setup() {
    if [ -z "$vif" ] || [ -z "$eif" ]; then
        check bench-net FAIL "need a virtio_net and an e1000e interface (got '$vif' '$eif')"
        return 1
    fi
    unshare -n sleep 100000 &
    bench_nspid=$!
    usleep 200000
    bench_ns="nsenter -t $bench_nspid -n"
    if ! _err=$( {
        ip link set "$eif" netns "$bench_nspid" &&
        ip addr add 10.99.0.1/24 dev "$vif" && ip link set "$vif" up &&
        $bench_ns ip link set lo up &&
        $bench_ns ip addr add 10.99.0.2/24 dev "$eif" && $bench_ns ip link set "$eif" up
    } 2>&1 ); then
        check bench-net FAIL "setup: $(echo "$_err" | tr '\n' ' ')"
        return 1
    fi
    if ! wait_for 20 ping -c 1 -W 1 10.99.0.2 > /dev/null 2>&1; then
        check bench-net FAIL "no ping reply from 10.99.0.2"
        return 1
    fi
    check bench-net PASS "$vif (virtio-net) 10.99.0.1 <-> $eif (e1000e, own netns) 10.99.0.2"
}

# bench_tcp NAME FROM_NS TO_NS TO_IP PORT: receiver in TO_NS, sender in
# FROM_NS; the receiver's line is the result.
bench_tcp() {
    _tn=$1 _from=$2 _to=$3 _ip=$4 _port=$5
    rm -f /tmp/bench-recv
    # shellcheck disable=SC2086
    $_to viommu-bench tcp-recv "$_port" 30 > /tmp/bench-recv 2>&1 &
    _rpid=$!
    info "bench-start $_tn $(now)"
    # shellcheck disable=SC2086
    _sout=$($_from viommu-bench tcp-send "$_ip" "$_port" "$bench_secs" 2>&1)
    _src=$?
    wait "$_rpid"
    _rrc=$?
    _rout=$(tail -n 1 /tmp/bench-recv)
    info "bench-sender $_tn $_sout"
    if [ "$_src" = 0 ] && [ "$_rrc" = 0 ]; then
        info "bench $_tn ${_rout#* }"
        check "bench-$_tn" PASS "$_rout"
    else
        check "bench-$_tn" FAIL "sender: $_sout; receiver: $_rout"
    fi
}

test_bench() {
    bench_secs=$(arg bench_seconds 10)
    _dev=$(arg bench_dev /dev/vda)
    info "bench workloads $(bench_list) seconds $bench_secs"
    for _w in $(bench_list); do
        case "$_w" in
            randread)
                bench_result randread viommu-bench randread "$_dev" "$bench_secs" \
                    "$(arg bench_threads 4)" 4096 ;;
            seqread)
                bench_result seqread viommu-bench seqread "$_dev" "$bench_secs" \
                    "$(arg bench_seq_threads 1)" 1048576 ;;
            net)
                if bench_net_setup; then
                    bench_tcp net-virtio-to-e1000e "" "$bench_ns" 10.99.0.2 5001
                    bench_tcp net-e1000e-to-virtio "$bench_ns" "" 10.99.0.1 5002
                fi
                [ -n "${bench_nspid:-}" ] && kill "$bench_nspid" 2>/dev/null ;;
            maploop)
                if ! command -v viommu-vfio > /dev/null; then
                    info "bench-skip maploop viommu-vfio is not in this guest"
                    check bench-maploop FAIL "viommu-vfio is not in this guest"
                elif [ -z "$bench_edu" ]; then
                    check bench-maploop FAIL "no edu device bound to vfio-pci"
                else
                    bench_result maploop viommu-vfio maploop "$bench_edu" "$bench_secs"
                fi ;;
            *)  check "bench-$_w" FAIL "unknown workload '$_w'" ;;
        esac
    done
}
