# shellcheck shell=sh
# shellcheck disable=SC2034  # dut is read by init.sh
# Test module `dpdk` (viommu.test=dpdk), sourced by the guest's /init
# (tests/guest/image/init.sh, which provides check, info, arg, wait_for,
# pci_find and $dut).  It is not part of the base initramfs: the DPDK
# overlay (tests/guest/build-dpdk-overlay.sh) brings it along with
# dpdk-testpmd and its libraries, and tests/guest/run-dpdk-guest-test.sh
# boots the guest with both archives.
#
# The classic NFV setup: DPDK in the guest drives virtio-net NICs from
# userspace through vfio-pci, so every packet buffer it hands the NICs is
# an IOVA that VFIO mapped through virtio-iommu.  prepare_dpdk moves the
# two modern virtio-net functions (1af4:1041) from virtio-pci to vfio-pci;
# test_dpdk runs testpmd on them (io forwarding, each port sending a first
# burst; the host connects the two NICs through a QEMU hub, so the bursts
# go round), stops it, and checks from its log that EAL used VFIO type 1
# with IOVA as VA, that both ports were probed and that each received and
# sent at least viommu.dpdk_min packets (default 1000).  testpmd's whole
# output is echoed, as it comes, with the prefix "dpdk| ".  The lines
#     VIOMMU-INFO dpdk-run begin / forwarding / end
# bracket the run (and mark the forwarding), so that the host can count
# the IOMMU requests it caused in QEMU's trace on the same console and
# read the device's statistics at each (the guest waits 2 s after begin
# and end).
#
# Parameters: viommu.dpdk_seconds (forwarding time, default 10),
# viommu.dpdk_min, viommu.dpdk_mem (EAL -m, MiB, default 128),
# viommu.dpdk_iova (EAL --iova-mode, default va).
# Needs vfio_iommu_type1.allow_unsafe_interrupts=1 (no interrupt
# remapping) and a CPU with SSE4.2 (Debian builds DPDK for corei7).

dpdk_bdfs=""

prepare_dpdk() {
    dpdk_bdfs=$(pci_find 0x1af4 0x1041 | tr '\n' ' ')
    dpdk_bdfs=${dpdk_bdfs% }
    # shellcheck disable=SC2086  # one word per function
    set -- $dpdk_bdfs
    if [ $# -lt 2 ]; then
        check dpdk-nics-bound FAIL "want two virtio-net (1af4:1041) functions, found: ${dpdk_bdfs:-none}"
        dpdk_bdfs=""
        return
    fi
    for _b in $dpdk_bdfs; do
        _p=/sys/bus/pci/devices/$_b
        echo vfio-pci > "$_p/driver_override"
        [ -e "$_p/driver" ] && echo "$_b" > "$_p/driver/unbind"
        echo "$_b" > /sys/bus/pci/drivers_probe 2> /dev/null
        if ! wait_for 10 sh -c "readlink $_p/driver | grep -q '/vfio-pci\$'"; then
            check dpdk-nics-bound FAIL "$_b not bound to vfio-pci: $(dmesg | grep -i vfio | tail -n 2 | tr '\n' ' ')"
            dpdk_bdfs=""
            return
        fi
        dut="$dut $_b"
    done
    check dpdk-nics-bound PASS "$dpdk_bdfs bound to vfio-pci"
}

# dpdk_stat PORT FIELD: FIELD (RX-packets, TX-packets) of port PORT in
# the "NIC statistics for port N" block of testpmd's show port stats.
dpdk_stat() {
    awk -v port="$1" -v field="$2:" '
        /NIC statistics for port/ { inport = ($(NF - 1) == port) }
        inport { for (i = 1; i < NF; i++) if ($i == field) { print $(i + 1); exit } }
    ' /tmp/testpmd.out
}

test_dpdk() {
    [ -n "$dpdk_bdfs" ] || return
    _secs=$(arg dpdk_seconds 10)
    _min=$(arg dpdk_min 1000)
    _iova=$(arg dpdk_iova va)
    _allow=""
    for _b in $dpdk_bdfs; do _allow="$_allow -a $_b"; done
    export LD_LIBRARY_PATH=/lib/x86_64-linux-gnu
    mkdir -p /var/run
    info "dpdk version $(cat /etc/viommu/dpdk-version)"
    for _b in $dpdk_bdfs; do
        info "dpdk nic $_b iommu_group $(group_of "$_b") vfio $(echo /dev/vfio/*)"
    done
    # The host reads the device's statistics at begin, forwarding and end
    # (QMP, the moment the line appears): 2 s for it each time.
    info "dpdk-run begin"
    sleep 2
    _t0=$(now)
    exec 3>&1
    # Interactive testpmd fed from a pipe: once its ports are up, start
    # with a first burst on each port, forward for $_secs (+3), stop
    # (per-stream statistics), then the ports' own counters.
    # The output goes to the console as it comes (a testpmd that hangs
    # still shows how far it got) and to /tmp/testpmd.out.  SIGKILL: a
    # testpmd spinning on a control queue whose DMA faults ignores SIGTERM.
    rm -f /tmp/testpmd.out
    # shellcheck disable=SC2086  # $_allow: one -a per NIC
    { ( wait_for 150 grep -q '^Checking link statuses' /tmp/testpmd.out
        echo "start tx_first"; sleep 3; info "dpdk-run forwarding" >&3
        sleep "$_secs"; echo "stop"
        echo "show port stats all"; echo "quit" ) |
          timeout -s KILL 180 dpdk-testpmd -l 0-1 -n 1 --no-huge \
              -m "$(arg dpdk_mem 128)" --iova-mode="$_iova" --no-shconf \
              --no-telemetry $_allow -- \
              -i --forward-mode=io --total-num-mbufs=4096 --rxd=256 --txd=256 2>&1
      echo $? > /tmp/testpmd.rc
    } | tee /tmp/testpmd.out | sed 's/^/dpdk| /'
    _rc=$(cat /tmp/testpmd.rc)
    exec 3>&-
    info "dpdk-run end"
    sleep 2
    info "time dpdk-run $_t0-$(now) exit $_rc"
    if grep -q 'VFIO support initialized' /tmp/testpmd.out &&
       grep -qi 'using IOMMU type 1' /tmp/testpmd.out; then
        check dpdk-eal-vfio PASS "$(grep -m1 -i 'using IOMMU type 1' /tmp/testpmd.out)"
    else
        check dpdk-eal-vfio FAIL "no 'VFIO support initialized' / 'using IOMMU type 1': $(grep -m2 -iE 'error|cannot|fail' /tmp/testpmd.out | tr '\n' ' ')"
    fi
    if grep -q "Selected IOVA mode 'VA'" /tmp/testpmd.out; then
        check dpdk-iova-va PASS "Selected IOVA mode 'VA'"
    else
        check dpdk-iova-va FAIL "$(grep -m1 'IOVA mode' /tmp/testpmd.out || echo 'no IOVA mode line')"
    fi
    _ports=$(grep -cE '^Port [0-9]+: [0-9A-Fa-f:]{17}' /tmp/testpmd.out)
    if [ "$_ports" -ge 2 ]; then
        check dpdk-ports PASS "$_ports ports: $(grep -E '^Port [0-9]+: [0-9A-Fa-f:]{17}' /tmp/testpmd.out | tr '\n' ' ')"
    else
        check dpdk-ports FAIL "$_ports ports started: $(grep -m2 -iE 'error|fail|cannot' /tmp/testpmd.out | tr '\n' ' ')"
    fi
    for _port in 0 1; do
        for _dir in RX TX; do
            _v=$(dpdk_stat "$_port" "$_dir-packets")
            _name=dpdk-port$_port-$(echo "$_dir" | tr 'RTX' 'rtx')
            if [ -n "$_v" ] && [ "$_v" -ge "$_min" ]; then
                check "$_name" PASS "$_dir-packets $_v >= $_min in ${_secs}s"
            else
                check "$_name" FAIL "$_dir-packets ${_v:-none}, want >= $_min"
            fi
        done
    done
    if [ "$_rc" = 0 ] && grep -q '^Bye' /tmp/testpmd.out; then
        check dpdk-exit PASS "testpmd quit, exit status 0"
    else
        check dpdk-exit FAIL "testpmd exit status $_rc$(grep -q '^Bye' /tmp/testpmd.out || echo ', no Bye')"
    fi
}
