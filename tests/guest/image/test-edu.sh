# shellcheck shell=sh
# shellcheck disable=SC2034  # dut is read by init.sh
# Test module `edu` (viommu.test=...,edu), sourced by the guest's /init
# (tests/guest/image/init.sh), which provides check, info, wait_for,
# pci_find, expect_fault, fault_logged and $dut.
#
# QEMU's edu device (-device edu, PCI 1234:11e8) is a DMA engine.  The
# guest binds it to vfio-pci and /bin/viommu-vfio (viommu-vfio.c here)
# drives it from userspace through VFIO's type1 IOMMU, choosing the IOVAs
# and permissions itself: a copy through read-write mappings, a read of a
# read-only one, a write to it, and a read and a write at an IOVA that was
# mapped, used and unmapped.  Each RESULT line of the tool becomes a check
# edu-NAME; edu-maploop runs the benchmark's MAP/UNMAP loop for a second.
# Then the Linux driver's fault messages
#     virtio_iommu virtioN: page fault from EP <id> at <iova> [R|W]
# must name the edu's endpoint ID, each IOVA and the direction.  Exactly
# those lines go into $expected_faults, so that no-iommu-errors still fails
# on any other fault.
#
# Needs vfio_iommu_type1.allow_unsafe_interrupts=1 on the kernel command
# line: virtio-iommu has no interrupt remapping.

edu_bdfs=""

# A PCIe-to-PCI bridge shares the IOMMU group of the functions behind it
# (their DMA carries its alias); with its hot-plug driver bound (shpchp, built
# into the arm64 kernel) VFIO finds the group not viable.  Unbind it, as a
# user assigning such a device does.
edu_free_group() {
    for _d in "/sys/bus/pci/devices/$1/iommu_group/devices/"*; do
        _drv=$(readlink "$_d/driver" 2> /dev/null) || continue
        [ "${_drv##*/}" = shpchp ] || continue
        echo "${_d##*/}" > "$_d/driver/unbind" &&
            info "edu group: unbound ${_d##*/} from shpchp"
    done
}

prepare_edu() {
    edu_bdfs=$(pci_find 0x1234 0x11e8 | tr '\n' ' ')
    edu_bdfs=${edu_bdfs% }
    if [ -z "$edu_bdfs" ]; then
        check edu-bound FAIL "no edu device (1234:11e8) on the PCI bus"
        return
    fi
    for _b in $edu_bdfs; do
        _p=/sys/bus/pci/devices/$_b
        echo vfio-pci > "$_p/driver_override"
        if [ -e "$_p/driver" ]; then
            echo "$_b" > "$_p/driver/unbind"
        fi
        echo "$_b" > /sys/bus/pci/drivers_probe 2> /dev/null
        if ! wait_for 10 sh -c "readlink $_p/driver | grep -q '/vfio-pci\$'"; then
            check edu-bound FAIL "$_b not bound to vfio-pci: $(dmesg | grep -i vfio | tail -n 2 | tr '\n' ' ')"
            return
        fi
        edu_free_group "$_b"
        dut="$dut $_b"
    done
    check edu-bound PASS "$edu_bdfs bound to vfio-pci"
}

test_edu() {
    [ -n "$edu_bdfs" ] || return
    # The first edu device is the one under test.
    _b=${edu_bdfs%% *}
    viommu-vfio edu-faults "$_b" > /tmp/edu.out 2>&1
    _rc=$?
    _faults=""
    while read -r _l; do
        _kind=${_l%% *} _r=${_l#* }
        case "$_kind" in
            RESULT)
                # RESULT NAME PASS|FAIL DETAIL
                _name=${_r%% *} _r=${_r#* }
                check "edu-$_name" "${_r%% *}" "${_r#* }" ;;
            INFO) info "edu $_r" ;;
            FAULT)
                # FAULT NAME R|W ENDPOINT IOVA
                _faults="$_faults $(echo "$_r" | tr ' ' /)" ;;
            *) info "edu output: $_l" ;;
        esac
    done < /tmp/edu.out
    case "$_rc" in
        0|1) check edu-tool-ran PASS "viommu-vfio edu-faults $_b exit status $_rc" ;;
        *) check edu-tool-ran FAIL "viommu-vfio edu-faults $_b exit status $_rc: $(tail -n 2 /tmp/edu.out | tr '\n' ' ')" ;;
    esac
    # The benchmark's MAP/UNMAP loop (tests/bench/guest/test-bench.sh),
    # briefly.
    _ml=$(viommu-vfio maploop "$_b" 1 2>&1)
    case "$_ml" in
        "maploop pairs="[1-9]*) check edu-maploop PASS "$_ml" ;;
        *) check edu-maploop FAIL "$(echo "$_ml" | tr '\n' ' ')" ;;
    esac
    for _f in $_faults; do
        # NAME/DIR/EP/IOVA
        _name=${_f%%/*} _f=${_f#*/}
        _dir=${_f%%/*} _f=${_f#*/}
        _ep=${_f%%/*}
        # Behind a PCIe-to-PCI bridge the DMA carries the alias, the
        # secondary bus with devfn 0: the fault names that
        # (viommu.edu_ep=bridge-alias)
        [ "$(arg edu_ep own)" = bridge-alias ] && _ep=$(( (_ep >> 8) << 8 ))
        _line="page fault from EP $_ep at ${_f#*/} [$_dir]"
        expect_fault "$_line"
        fault_logged "edu-fault-$_name-logged" "$_line"
    done
    info "edu expected faults: ${expected_faults:-none}"
}
