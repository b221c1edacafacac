# shellcheck shell=sh
# shellcheck disable=SC2154  # $dut and $viommu_pci come from init.sh
# Test module `acpi` (viommu.test=...,acpi), sourced by the guest's /init
# (tests/guest/image/init.sh), which provides check and info.
#
# Proves that the guest found its IOMMU through ACPI: the kernel runs on
# ACPI (its tables are in /sys/firmware/acpi/tables; on arm64 an ACPI boot
# also means no device tree in /sys/firmware/devicetree), QEMU's VIOT table
# is there and names a virtio-iommu-pci node, and the kernel listed it at
# boot.  The virtio-iommu driver binding and the disk demo (demo module)
# then show that the VIOT's description was right.

# u LEN OFFSET FILE: little-endian unsigned LEN-byte value.
viot_u() {
    od -An -tu"$1" -j"$2" -N"$1" "$3" | tr -d ' '
}

# viot_nodes FILE: " TYPE:DETAIL" for each node of an ACPI VIOT table
# (header 36 bytes, node count at 36, offset of the first node at 38; each
# node: type u8, length u16 at +2).  Type 1: a PCI range (first endpoint
# ID, BDF range, output node offset); type 3: a virtio-iommu-pci (BDF).
viot_nodes() {
    _n=$(viot_u 2 36 "$1")
    _o=$(viot_u 2 38 "$1")
    _i=0
    while [ "$_i" -lt "$_n" ]; do
        _ty=$(viot_u 1 "$_o" "$1")
        _l=$(viot_u 2 $((_o + 2)) "$1")
        case "$_ty" in
            1) printf ' pci-range:ep%d,bdf0x%04x-0x%04x->node%d' \
                   "$(viot_u 4 $((_o + 4)) "$1")" \
                   "$(viot_u 2 $((_o + 12)) "$1")" \
                   "$(viot_u 2 $((_o + 14)) "$1")" \
                   "$(viot_u 2 $((_o + 16)) "$1")" ;;
            3) printf ' virtio-iommu-pci:0x%04x@node%d' \
                   "$(viot_u 2 $((_o + 6)) "$1")" "$_o" ;;
            *) printf ' type%d@node%d' "$_ty" "$_o" ;;
        esac
        [ "${_l:-0}" -gt 0 ] || break
        _o=$((_o + _l))
        _i=$((_i + 1))
    done
}

# bdf_of DDDD:BB:DD.F: 0xBBBB, the 16-bit bus << 8 | devfn.
bdf_of() {
    _bus=$(printf %d "0x$(echo "$1" | cut -d: -f2)")
    _dev=$(printf %d "0x$(echo "$1" | cut -d: -f3 | cut -d. -f1)")
    printf 0x%04x $((_bus << 8 | _dev << 3 | ${1##*.}))
}

test_acpi() {
    _t=/sys/firmware/acpi/tables
    if [ -f "$_t/DSDT" ]; then
        _dt=absent
        [ -d /sys/firmware/devicetree/base ] && _dt=present
        if [ "$(uname -m)" = aarch64 ] && [ "$_dt" = present ]; then
            check acpi-in-use FAIL "ACPI tables present but the kernel also unflattened a device tree"
        else
            _names=$(for _f in "$_t"/*; do printf '%s ' "${_f##*/}"; done)
            check acpi-in-use PASS "tables: ${_names}(device tree $_dt)"
        fi
    else
        check acpi-in-use FAIL "no $_t/DSDT: the kernel did not boot on ACPI"
    fi
    if [ ! -f "$_t/VIOT" ]; then
        check acpi-viot FAIL "no $_t/VIOT"
        return
    fi
    _nodes=$(viot_nodes "$_t/VIOT")
    info "acpi VIOT $(head -c 4 "$_t/VIOT") nodes:$_nodes"
    _boot=$(dmesg | grep -m1 'ACPI: VIOT' | sed 's/^\[[^]]*\] //')
    # The IOMMU node must be the device the driver bound to ($viommu_pci).
    _want=none
    [ -n "$viommu_pci" ] && _want=$(bdf_of "$viommu_pci")
    # Every device under test lies in a PCI range of the table.
    _out=""
    for _d in $dut; do
        _x=$(bdf_of "$_d")
        _in=""
        for _nd in $_nodes; do
            case "$_nd" in pci-range:*) ;; *) continue ;; esac
            # pci-range:epN,bdfLO-HI->nodeO
            _r=${_nd#*,bdf}
            _lo=${_r%%-*} _r=${_r#*-}
            _hi=${_r%%-*}
            [ $((_lo)) -le $((_x)) ] && [ $((_x)) -le $((_hi)) ] && _in=1
        done
        [ -n "$_in" ] || _out="$_out $_d"
    done
    case "$_nodes" in
        *" virtio-iommu-pci:$_want"*)
            if [ -z "$_boot" ]; then
                check acpi-viot FAIL "VIOT present but the kernel did not list it at boot"
            elif [ -n "$_out" ]; then
                check acpi-viot FAIL "devices under test outside the VIOT's PCI ranges:$_out"
            else
                check acpi-viot PASS "VIOT names the IOMMU at $viommu_pci (bdf $_want), its PCI ranges cover$dut; boot: $_boot"
            fi ;;
        *) check acpi-viot FAIL "no virtio-iommu-pci node for $viommu_pci (bdf $_want) in the VIOT:$_nodes" ;;
    esac
}
