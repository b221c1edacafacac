# shellcheck shell=sh
# shellcheck disable=SC2034  # dut is read by init.sh
# Test module `vhostuser` (viommu.test=vhostuser), sourced by the guest's
# /init (tests/guest/image/init.sh), which provides check, info, wait_for,
# pci_of, make_pattern, netns_pair, arg, now and $dut.
#
# Two virtio-net NICs (MACs 52:54:00:00:10:01 and :02), both behind the
# IOMMU (iommu_platform=on), whose backends are two net_vhost ports of a
# DPDK testpmd on the host that forwards between them
# (tests/guest/run-vhost-user-tests.sh).  The second NIC goes into its own
# network namespace, so that traffic between 10.98.0.1 and 10.98.0.2
# crosses the host switch.  Checks:
#   vhu-setup       both NICs up, a ping answered across the switch
#   vhu-a-to-b      viommu.net_mib MiB (default 64) of the seeded pattern
#   vhu-b-to-a      from each side to the other, sha256 compared
#   vhu-ping        200 pings of 1400 bytes, none lost
#   vhu-unbind      the first NIC unbound from virtio-pci: the driver
#                   resets it and unmaps all its buffers and rings
# The host reads the IOTLB messages QEMU sent the backend (trace events)
# and checks the invalidations; init.sh checks that no IOMMU fault was
# logged.

vhu_a="" vhu_b=""

# Its loop variable must not be wait_for's counter (_n): wait_for calls it.
vhu_if_by_mac() {
    for _vhu_if in /sys/class/net/*; do
        [ "$(cat "$_vhu_if/address" 2>/dev/null)" = "$1" ] && { echo "${_vhu_if##*/}"; return 0; }
    done
    return 1
}

prepare_vhostuser() {
    wait_for 20 vhu_if_by_mac 52:54:00:00:10:01 > /dev/null
    wait_for 20 vhu_if_by_mac 52:54:00:00:10:02 > /dev/null
    vhu_a=$(vhu_if_by_mac 52:54:00:00:10:01) || vhu_a=""
    vhu_b=$(vhu_if_by_mac 52:54:00:00:10:02) || vhu_b=""
    vhu_pci_a="" vhu_pci_b=""
    [ -n "$vhu_a" ] && vhu_pci_a=$(pci_of "/sys/class/net/$vhu_a/device")
    [ -n "$vhu_b" ] && vhu_pci_b=$(pci_of "/sys/class/net/$vhu_b/device")
    info "vhu nics a=${vhu_a:-none} ($vhu_pci_a) b=${vhu_b:-none} ($vhu_pci_b)"
    dut="$dut $vhu_pci_a $vhu_pci_b"
}

# vhu_transfer NAME FROM_PREFIX TO_PREFIX TO_IP PORT: send /tmp/vhupattern
# with nc, compare sha256; prints the seconds it took.
vhu_transfer() {
    _name=$1 _from=$2 _to=$3 _ip=$4 _port=$5
    rm -f /tmp/vhurx
    # nc -l ends when the sender closes; its stdin must stay open until then.
    # shellcheck disable=SC2086
    (sleep "$_vt" | $_to nc -l -p "$_port" > /tmp/vhurx) &
    _lpid=$!
    _ok="" _t0="" _t1=""
    for _try in 1 2 3 4 5 6 7 8 9 10; do
        usleep 300000
        _t0=$(now)
        # shellcheck disable=SC2086
        if $_from timeout "$_vt" nc "$_ip" "$_port" < /tmp/vhupattern; then
            _ok=1
            break
        fi
        # Retry only a refused connection, not one that stalled
        [ "$(awk -v a="$_t0" -v b="$(now)" 'BEGIN { print (b - a > 5) }')" = 1 ] && break
    done
    if [ -n "$_ok" ]; then
        wait_for 60 sh -c "[ \"\$(stat -c %s /tmp/vhurx 2>/dev/null)\" = $_vbytes ]"
    fi
    _t1=$(now)
    usleep 200000
    _got=$(sha256sum < /tmp/vhurx | cut -d' ' -f1)
    _size=$(stat -c %s /tmp/vhurx 2>/dev/null)
    kill "$_lpid" 2>/dev/null
    for _p in /proc/[0-9]*; do
        [ "$(tr '\0' ' ' 2>/dev/null < "$_p/cmdline")" = "sleep $_vt " ] &&
            kill "${_p##*/}" 2>/dev/null
    done
    rm -f /tmp/vhurx
    info "vhu-transfer $_name bytes $_size seconds $(awk -v a="$_t0" -v b="$_t1" 'BEGIN { printf "%.2f", b - a }')"
    if [ -n "$_ok" ] && [ "$_got" = "$_vwant" ]; then
        check "$_name" PASS "$_size bytes to $_ip in $(awk -v a="$_t0" -v b="$_t1" 'BEGIN { printf "%.1f", b - a }')s, sha256 $_got"
    else
        check "$_name" FAIL "sent=${_ok:-no} received $_size of $_vbytes bytes, want $_vwant got $_got"
    fi
}

test_vhostuser() {
    if [ -z "$vhu_a" ] || [ -z "$vhu_b" ]; then
        check vhu-setup FAIL "need the two virtio-net NICs 52:54:00:00:10:01/02 (got '$vhu_a' '$vhu_b')"
        return
    fi
    netns_pair "$vhu_a" "$vhu_b" 10.98.0 vhu-setup 30 || return
    check vhu-setup PASS "$vhu_a 10.98.0.1 <-> $vhu_b (own netns) 10.98.0.2 through the host's vhost-user switch"
    _vbytes=$(($(arg net_mib 64) * 1048576))
    # Each transfer gets a fifth of the watchdog's time (generating the
    # pattern takes some too): one that stalls still reports how much
    # arrived, and the other checks still run.
    _vt=$(($(arg timeout 240) / 5))
    make_pattern "$(($(arg seed 1) + 11))" "$_vbytes" /tmp/vhupattern
    _vwant=$(sha256sum < /tmp/vhupattern | cut -d' ' -f1)
    vhu_transfer vhu-a-to-b "" "$ns" 10.98.0.2 5101
    vhu_transfer vhu-b-to-a "$ns" "" 10.98.0.1 5102
    rm -f /tmp/vhupattern
    # Where a lost segment went: checksum errors, drops, retransmissions
    for _w in a b; do
        _pre=""
        [ "$_w" = b ] && _pre=$ns
        # shellcheck disable=SC2086
        $_pre cat /proc/net/snmp | awk -v w="$_w" '
            /^(Ip|Tcp|Udp):/ { if (h[$1]) { n = split(h[$1], k); for (i = 2; i <= n; i++)
                if ($i != 0 && k[i] ~ /Err|Discard|Drop|Retrans|Csum|Unknown/) printf "%s%s=%s ", $1, k[i], $i }
                else h[$1] = $0 }
            END { printf "\n" }' | sed "s/^/VIOMMU-INFO vhu-snmp $_w /"
    done
    _loss=$(ping -c 200 -i 0.01 -W 2 -s 1400 10.98.0.2 2>&1 | grep -o '[0-9]*% packet loss')
    case "$_loss" in
        "0% packet loss") check vhu-ping PASS "200 pings of 1400 bytes: $_loss" ;;
        *) check vhu-ping FAIL "200 pings of 1400 bytes: ${_loss:-no summary}" ;;
    esac
    kill "$nspid" 2>/dev/null
    # Unbind the first NIC: the driver resets it, then unmaps every buffer
    # and ring it had mapped.  The host checks the invalidations.
    ip link set "$vhu_a" down
    echo "VIOMMU-WAIT vhu-unbind"
    if echo "$vhu_pci_a" > "/sys/bus/pci/devices/$vhu_pci_a/driver/unbind" &&
       wait_for 10 sh -c "! test -e /sys/bus/pci/devices/$vhu_pci_a/driver"; then
        # Lazy domains unmap from the flush queue: give it time.
        sleep 1
        check vhu-unbind PASS "$vhu_pci_a ($vhu_a) unbound from virtio-pci"
    else
        check vhu-unbind FAIL "$vhu_pci_a still bound"
    fi
    echo "VIOMMU-WAIT vhu-unbound"
}
