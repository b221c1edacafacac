# shellcheck shell=sh
# Test module `earlydma` (viommu.test=...,earlydma,edu), sourced by the
# guest's /init (tests/guest/image/init.sh), which provides arg, check,
# info, now, pci_find, fault_logged and expect_fault.
#
# DMA before the IOMMU driver.  early_earlydma runs before /init inserts
# any kernel module, so the virtio-iommu driver (a module) has attached
# nothing yet; the virtio core, built into Debian's kernel, has only reset
# the device.  It drives the first edu device (1234:11e8, no driver) from
# sysfs with `viommu-vfio edu-sysfs`: 4 bytes from a RAM page into edu's
# buffer, then from the buffer to a second RAM page, by physical address.
# Once the driver runs, test_earlydma checks what happened against
# viommu.earlydma=blocked|moved (default blocked):
#   earlydma-write  the second page unchanged (blocked), or holding the
#                   first page's bytes (moved: both copies went through)
#   earlydma-read   edu's buffer, read out through VFIO now, without
#                   (blocked) or with (moved) the first page's bytes.
#                   Needs the edu test after this one in viommu.test: it
#                   binds the edu to vfio-pci, and its own DMA overwrites
#                   the buffer
# and, for blocked, that the driver logged the faults the device queued
# while the driver had no eventq buffer posted (EP: the edu's requester
# ID; the addresses: the exact physical addresses of the two copies):
#   earlydma-fault-read-logged   domain fault from EP <ep> at <addr> [R]
#   earlydma-fault-write-logged  domain fault from EP <ep> at <addr> [W]
# Linux posts its eventq buffers right after DRIVER_OK, without a
# notification, so the device delivers the queued faults with the
# driver's first requests, once its probe has finished (6.12's event
# handler crashes on an event that comes earlier).  Exactly these two
# lines go into $expected_faults.
#
# The RAM pages are anywhere in guest RAM: give the edu
# dma_mask=0xffffffffffffffff (its default mask is 28 bits).

earlydma_bdf=""
earlydma_out=/tmp/earlydma.out
# Offset of the 4 bytes in each RAM page and in edu's buffer (hex).
earlydma_off=100
earlydma_when=""

early_earlydma() {
    earlydma_bdf=$(pci_find 0x1234 0x11e8 | head -n 1)
    [ -n "$earlydma_bdf" ] || return
    earlydma_when="at $(now)s, before any module was inserted"
    # The IOMMU driver must not be there yet (it would be if built in).
    [ -d /sys/bus/virtio/drivers/virtio_iommu ] &&
        earlydma_when="AFTER the virtio_iommu driver registered"
    viommu-vfio edu-sysfs "$earlydma_bdf" "$earlydma_off" \
        > "$earlydma_out" 2>&1
    echo "EXIT $?" >> "$earlydma_out"
}

# earlydma_result CHECK FILE NAME WANT: CHECK passes when FILE, the output
# of viommu-vfio, says "RESULT NAME WANT ...".
earlydma_result() {
    _l=$(grep -m1 "^RESULT $3 " "$2")
    _v=$(echo "$_l" | cut -d' ' -f3)
    _d=$(echo "$_l" | cut -d' ' -f4-)
    case "$earlydma_when" in
        AFTER*) check "$1" FAIL "the edu DMA ran $earlydma_when" ;;
        *)  if [ -z "$_l" ]; then
                check "$1" FAIL "no result: $(grep -v '^INFO' "$2" | tail -n 2 | tr '\n' ' ')"
            elif [ "$_v" = "$4" ]; then
                check "$1" PASS "$_v, $earlydma_when: $_d"
            else
                check "$1" FAIL "want $4, got $_v, $earlydma_when: $_d"
            fi ;;
    esac
}

# earlydma_faults REASON FILE: "NAME MESSAGE" for each line "FAULT NAME
# R|W EP ADDRESS" of FILE, MESSAGE the driver's for a fault of REASON.
earlydma_faults() {
    grep '^FAULT ' "$2" | while read -r _ _n _dir _ep _addr; do
        echo "$_n $1 fault from EP $_ep at $_addr [$_dir]"
    done
}

test_earlydma() {
    _want=$(arg earlydma blocked)
    if [ -z "$earlydma_bdf" ]; then
        check earlydma-write FAIL "no edu device (1234:11e8) on the PCI bus"
        return
    fi
    sed -n 's/^INFO /earlydma /p' "$earlydma_out" |
        while read -r _l; do info "$_l"; done
    info "earlydma viommu-vfio edu-sysfs $(tail -n 1 "$earlydma_out")"
    earlydma_result earlydma-write "$earlydma_out" write "$_want"

    _drv=$(readlink "/sys/bus/pci/devices/$earlydma_bdf/driver")
    _drv=${_drv##*/}
    if [ "$_drv" != vfio-pci ]; then
        check earlydma-read FAIL "$earlydma_bdf is on driver ${_drv:-none}, not vfio-pci: the edu test must follow in viommu.test"
    else
        viommu-vfio edu-buffer "$earlydma_bdf" "$earlydma_off" \
            "$(sed -n 's/^PATTERN //p' "$earlydma_out")" \
            > /tmp/earlydma-read.out 2>&1
        earlydma_result earlydma-read /tmp/earlydma-read.out read "$_want"
    fi

    [ "$_want" = blocked ] || return
    earlydma_faults domain "$earlydma_out" > /tmp/earlydma.faults
    if [ ! -s /tmp/earlydma.faults ]; then
        check earlydma-fault-read-logged FAIL "the tool named no faults"
        return
    fi
    while read -r _n _line; do
        expect_fault "$_line"
    done < /tmp/earlydma.faults
    while read -r _n _line; do
        fault_logged "earlydma-fault-$_n-logged" "$_line"
    done < /tmp/earlydma.faults
}
