#!/bin/sh
# /init of the virtio-iommu test guest (busybox ash).  Copied into the
# initramfs by tests/guest/build-guest.sh.
#
# Kernel command line parameters it reads:
#   viommu.test=demo[,net]   which tests to run (default demo)
#   viommu.seed=N            seed of the data pattern (default 1)
#   viommu.mib=N             MiB written to /dev/vda (default 8)
#   viommu.net_mib=N         MiB sent each way between the NICs (default 4)
#   viommu.expect_type=T[/T] accepted domain types of the devices under test
#                            (default DMA/DMA-FQ; identity for passthrough)
#   viommu.timeout=S         guest-side watchdog (default 240)
#   viommu.reboot=1          demo on two boots: the first writes a boot marker
#                            at 48 MiB of /dev/vda and resets the machine with
#                            sysrq-b (domains still live); the second, which
#                            finds the marker, uses seed+1000 and powers off
#   viommu.reboot=host       the same, but the first boot prints VIOMMU-WAIT
#                            reset and waits for the host's QMP system_reset
#   viommu.test=hotplug      host-driven PCIe hotplug of virtio-blk disks:
#                            prints VIOMMU-WAIT hotplug-N / unplug-N and polls
#                            for the host's device_add / device_del
#   viommu.test=NAME         any other NAME: the test module
#                            /etc/viommu/test-NAME.sh (tests/guest/image/
#                            or tests/bench/guest/), sourced before the
#                            kernel modules are inserted; it defines
#                            test_NAME and may define early_NAME (run at
#                            once, before any module: no IOMMU driver yet)
#                            and prepare_NAME (run before the endpoint
#                            checks; it appends the PCI addresses of its
#                            devices under test to $dut)
#   MOD.PARAM=VALUE          passed to insmod of module MOD
#
# Output, one line each, for the host to parse:
#   VIOMMU-CHECK <name> PASS|FAIL <detail>
#   VIOMMU-INFO <what> ...
#   VIOMMU-DONE checks=N failed=M
# then the guest powers off.

PATH=/bin:/sbin:/usr/bin:/usr/sbin
export PATH
/bin/busybox --install -s /bin

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /tmp
mount -t tmpfs tmpfs /tmp

cmdline=$(cat /proc/cmdline)

# arg NAME DEFAULT: value of viommu.NAME= on the kernel command line.
arg() {
    for w in $cmdline; do
        case "$w" in viommu.$1=*) echo "${w#*=}"; return ;; esac
    done
    echo "$2"
}

nchecks=0
nfail=0
check() {
    _name=$1 _res=$2
    shift 2
    echo "VIOMMU-CHECK $_name $_res $*"
    nchecks=$((nchecks + 1))
    [ "$_res" = PASS ] || nfail=$((nfail + 1))
}
info() { echo "VIOMMU-INFO $*"; }
# Seconds since boot, for the timing lines.
now() { cut -d' ' -f1 /proc/uptime; }

finish() {
    info "time done $(now)"
    if [ "$(arg reboot 0)" != 0 ] && [ "$boot" -lt 2 ]; then
        # Mark the disk for the next boot, then reset at once: no device
        # shutdown, so the endpoints are still attached to their DMA
        # domains, with mappings, when the machine resets.
        printf 'VIOMMU-BOOT-%s' $((boot + 1)) |
            dd of=/dev/vda bs=512 seek=$((48 * 2048)) conv=sync,fsync 2> /dev/null
        sync
        echo "VIOMMU-DONE checks=$nchecks failed=$nfail boot=$boot"
        if [ "$(arg reboot 0)" = host ]; then
            echo "VIOMMU-WAIT reset"
            sleep 60
        else
            info "boot $boot rebooting"
            echo b > /proc/sysrq-trigger
            sleep 10
        fi
    fi
    echo "VIOMMU-DONE checks=$nchecks failed=$nfail"
    # Show the shutdown on the console: a device that hangs the guest on
    # the way down is visible in the log.
    dmesg -n 7
    sync
    quiesce_endpoints
    poweroff -f
    sleep 10
    echo o > /proc/sysrq-trigger
}

# Unbind the drivers of the PCI endpoints behind the IOMMU, then give the
# DMA-FQ flush timer (10 ms) time to run.  Linux 6.12.115 and later mark
# the virtio-iommu's queues broken on device_shutdown() ("virtio: break
# and reset virtio devices on device_shutdown()"); a flush that runs after
# that, for DMA a later device's shutdown unmapped, spins forever in
# __viommu_sync_req (seen once, x86-net on a loaded machine, 2026-12-03).
# Unbinding first does those unmaps while the IOMMU still answers.
quiesce_endpoints() {
    for _d in /sys/bus/pci/devices/*; do
        _b=${_d##*/}
        [ "$_b" = "$viommu_pci" ] && continue
        [ -e "$_d/iommu_group" ] || continue
        [ -e "$_d/driver" ] || continue
        case "$(cat "$_d/class")" in 0x0600*|0x0604*) continue ;; esac
        echo "$_b" > "$_d/driver/unbind" 2> /dev/null
    done
    usleep 200000
}

# wait_for SECONDS CMD...: poll CMD every 0.1 s.
wait_for() {
    _n=$(($1 * 10))
    shift
    while ! "$@"; do
        _n=$((_n - 1))
        [ "$_n" -gt 0 ] || return 1
        usleep 100000
    done
}

# The PCI device (BDF) a sysfs device path belongs to, walking up.
pci_of() {
    _p=$(readlink -f "$1")
    while [ -n "$_p" ] && [ "$_p" != / ]; do
        case "$(readlink "$_p/subsystem")" in
            */bus/pci) echo "${_p##*/}"; return 0 ;;
        esac
        _p=${_p%/*}
    done
    return 1
}

# pci_find VENDOR DEVICE: the BDFs of the PCI devices with these IDs
# (0x1234 0x11e8).
pci_find() {
    for _p in /sys/bus/pci/devices/*; do
        if [ "$(cat "$_p/vendor")" = "$1" ] &&
           [ "$(cat "$_p/device")" = "$2" ]; then
            echo "${_p##*/}"
        fi
    done
}

group_of() {
    _g=$(readlink "/sys/bus/pci/devices/$1/iommu_group" 2>/dev/null) || return 1
    echo "${_g##*/}"
}

type_of() {
    cat "/sys/kernel/iommu_groups/$1/type" 2>/dev/null || echo unknown
}

# ---------------------------------------------------------------- modules

load_modules() {
    _bad=""
    _n=0
    while read -r _m _path; do
        if [ "$_path" = builtin ]; then
            info "module $_m builtin"
            continue
        fi
        # Parameters for this module from the command line (MOD.PARAM=V,
        # with - and _ equivalent).
        _params=""
        for w in $cmdline; do
            _k=$(echo "${w%%.*}" | tr - _)
            case "$w" in *.*=*) ;; *) continue ;; esac
            [ "$_k" = "$_m" ] && _params="$_params ${w#*.}"
        done
        # shellcheck disable=SC2086
        if _err=$(insmod "$_path" $_params 2>&1); then
            _n=$((_n + 1))
        else
            case "$_err" in
                *"File exists"*) ;;
                *) _bad="$_bad $_m"; info "module $_m insmod failed: $_err" ;;
            esac
        fi
    done < /etc/viommu/modules
    if [ -z "$_bad" ]; then
        check modules-loaded PASS "$_n modules inserted"
    else
        check modules-loaded FAIL "failed:$_bad"
    fi
}

# ---------------------------------------------------------------- checks

viommu_pci=""
check_driver_bound() {
    _d=/sys/bus/virtio/drivers/virtio_iommu
    if ! wait_for 20 sh -c "ls $_d 2>/dev/null | grep -q '^virtio'"; then
        check driver-bound FAIL "no device bound to $_d"
        return
    fi
    for _v in "$_d"/virtio*; do _v=${_v##*/}; break; done
    viommu_pci=$(pci_of "$_d/$_v") || viommu_pci=""
    if ! wait_for 5 sh -c 'ls /sys/class/iommu | grep -q .'; then
        check driver-bound FAIL "$_v bound but /sys/class/iommu is empty"
        return
    fi
    _i=$(for _l in /sys/class/iommu/*; do printf '%s ' "${_l##*/}"; done)
    info "iommu $_v pci $viommu_pci sysfs ${_i% }"
    check driver-bound PASS "virtio_iommu bound to $_v (pci $viommu_pci), /sys/class/iommu: ${_i% }"
}

# Every PCI device: group and domain type.  A device is behind the IOMMU
# when it is listed in /sys/class/iommu/*/devices (Linux adds a device there
# when a driver first probes it, so devices without any driver are reported
# as unmanaged).  $1: BDFs that must be behind the IOMMU (the devices under
# test).
check_endpoints() {
    _behind=$(for _l in /sys/class/iommu/*/devices/*; do
                  [ -e "$_l" ] && echo "${_l##*/}"; done | sort -u)
    _missing=""
    _n=0
    for _p in /sys/bus/pci/devices/*; do
        _b=${_p##*/}
        [ "$_b" = "$viommu_pci" ] && continue
        _id="$(sed 's/^0x//' "$_p/vendor"):$(sed 's/^0x//' "$_p/device")"
        _drv=$(readlink "$_p/driver" 2>/dev/null) && _drv=${_drv##*/} || _drv=none
        if echo "$_behind" | grep -qx "$_b"; then
            _n=$((_n + 1))
            if _g=$(group_of "$_b"); then
                info "endpoint $_b group $_g type $(type_of "$_g") id $_id driver $_drv"
            else
                info "endpoint $_b group none type none id $_id driver $_drv"
                _missing="$_missing $_b"
            fi
        else
            # Linux sets up a device's IOMMU (fwspec, group) when a driver
            # probes it; devices without a driver stay unmanaged.
            info "unmanaged $_b id $_id driver $_drv"
        fi
    done
    for _b in $1; do
        echo "$_behind" | grep -qx "$_b" || _missing="$_missing $_b(not-behind-iommu)"
    done
    if [ "$_n" -gt 0 ] && [ -z "$_missing" ]; then
        check endpoint-groups PASS "$_n endpoints behind the IOMMU, all in a group"
    else
        check endpoint-groups FAIL "$_n endpoints behind the IOMMU; without group:${_missing:- (none behind)}"
    fi
}

# The devices under test are in a domain of an accepted type.
check_domain_type() {
    _want=$(arg expect_type DMA/DMA-FQ)
    _bad=""
    _got=""
    for _b in "$@"; do
        _t=none
        _g=$(group_of "$_b") && _t=$(type_of "$_g")
        _got="$_got $_b=$_t"
        case "/$_want/" in */"$_t"/*) ;; *) _bad="$_bad $_b=$_t" ;; esac
    done
    if [ -z "$_bad" ]; then
        check domain-type PASS "want $_want:$_got"
    else
        check domain-type FAIL "want $_want, got:$_bad"
    fi
}

# make_pattern SEED BYTES FILE: deterministic data, no two 4 KiB pages
# equal (tests/guest/image/pattern.sh; the host regenerates it to check the
# disk image).
make_pattern() {
    sh /etc/viommu/pattern.sh "$1" "$2" > "$3"
}

# check_disk_pattern [NAME DEV SEED]: defaults disk-pattern, /dev/vda and
# viommu.seed (plus 1000 per reboot).
check_disk_pattern() {
    _cn=${1:-disk-pattern}
    _dev=${2:-/dev/vda}
    if ! wait_for 20 test -b "$_dev"; then
        check "$_cn" FAIL "$_dev did not appear"
        return
    fi
    _mib=$(arg mib 8)
    _seed=${3:-$(($(arg seed 1) + (boot - 1) * 1000))}
    _bytes=$((_mib * 1048576))
    _t0=$(now)
    make_pattern "$_seed" "$_bytes" /tmp/pattern
    _want=$(sha256sum < /tmp/pattern | cut -d' ' -f1)
    _t1=$(now)
    if dd --help 2>&1 | grep -q 'oflag=[^ ]*direct'; then
        _wflag=oflag=direct _rflag=iflag=direct _method=O_DIRECT
    else
        _wflag="" _rflag="" _method=buffered+drop_caches
    fi
    # The host may act on this line mid-write (tests/migration migrates)
    info "$_cn writing $_mib MiB to $_dev"
    # shellcheck disable=SC2086
    if ! _err=$(dd if=/tmp/pattern of="$_dev" bs=1M $_wflag conv=fsync 2>&1); then
        check "$_cn" FAIL "write failed: $(echo "$_err" | tr '\n' ' ')"
        return
    fi
    sync
    _t2=$(now)
    echo 3 > /proc/sys/vm/drop_caches
    # shellcheck disable=SC2086
    _got=$(dd if="$_dev" bs=1M count="$_mib" $_rflag 2>/dev/null | sha256sum | cut -d' ' -f1)
    # A second, buffered read with another request size.
    echo 3 > /proc/sys/vm/drop_caches
    _got2=$(dd if="$_dev" bs=64k count=$((_mib * 16)) 2>/dev/null | sha256sum | cut -d' ' -f1)
    _t3=$(now)
    info "time disk-pattern generate $_t0-$_t1 write -$_t2 read -$_t3"
    info "disk $_dev seed $_seed bytes $_bytes method $_method written $_want read $_got read-buffered $_got2"
    if [ "$_want" = "$_got" ] && [ "$_want" = "$_got2" ]; then
        check "$_cn" PASS "$_bytes bytes seed $_seed $_method written=$_want read=$_got"
    else
        check "$_cn" FAIL "$_bytes bytes seed $_seed $_method written=$_want read=$_got read-buffered=$_got2"
    fi
}

# check_dmesg_clean NAME WHAT GREP-FLAGS REGEX [EXPECTED]: NAME fails,
# listing the first lines, if dmesg matches REGEX (apart from lines matching
# the extended regex EXPECTED)
check_dmesg_clean() {
    _e=$(dmesg | grep "$3" "$4" | grep -vE "${5:-^\$}" | head -n 5)
    if [ -z "$_e" ]; then
        check "$1" PASS "no $2 in dmesg"
    else
        echo "$_e" | while read -r _l; do info "dmesg $_l"; done
        check "$1" FAIL "$(echo "$_e" | head -n 1)"
    fi
}

# $expected_faults: extended regex of the fault lines a test provoked on
# purpose (test modules add them with expect_fault).
expected_faults=""

# expect_fault LINE: exempt exactly the driver's message LINE from
# no-iommu-errors.
expect_fault() {
    _q=$(printf '%s' "$1" | sed 's/[][\\.*^$+?(){}|]/\\&/g')
    expected_faults="${expected_faults:+$expected_faults|}$_q\$"
}

# fault_logged CHECK LINE: CHECK passes when the virtio-iommu driver logged
# LINE (its fault message without the device prefix) within 5 s.
fault_logged() {
    if wait_for 5 sh -c "dmesg | grep -qF '$2'"; then
        check "$1" PASS "$(dmesg | grep -F "$2" | head -n 1 | sed 's/^\[[^]]*\] //')"
    else
        _other=$(dmesg | grep 'fault from EP' | head -n 3 | sed 's/^\[[^]]*\] //' | tr '\n' ';')
        check "$1" FAIL "no '$2' in dmesg; fault lines: ${_other:-none}"
    fi
}

check_no_iommu_errors() {
    check_dmesg_clean no-iommu-errors "IOMMU fault or DMA error" -iE \
        'fault from EP|unknown fault|iommu fault|DMAR|DMA error|dma.*fault|I/O error|blk_update_request|virtio_iommu.*(fail|error|timeout)|AMD-Vi|transmit (queue )?timed out|Detected Hardware Unit Hang' \
        "${expected_faults:-}"
}

check_no_kernel_oops() {
    check_dmesg_clean no-kernel-oops "oops, warning or stall" -E \
        'BUG:|Oops|general protection fault|Call Trace|kernel BUG|WARNING: CPU|soft lockup|hung_task|rcu.*stall'
}

# ---------------------------------------------------------------- network

# Interface whose device is bound to driver $1.
netif_by_driver() {
    # Not _n: wait_for, which polls this, counts with it (no locals here).
    for _nif in /sys/class/net/*; do
        _d=$(readlink "$_nif/device/driver" 2>/dev/null) || continue
        [ "${_d##*/}" = "$1" ] && { echo "${_nif##*/}"; return 0; }
    done
    return 1
}

# transfer NAME FROM_NS_PREFIX TO_NS_PREFIX TO_IP PORT: send /tmp/netpattern
# with nc, compare checksums.  The prefixes are "" or "nsenter -t PID -n".
transfer() {
    _name=$1 _from=$2 _to=$3 _ip=$4 _port=$5
    rm -f /tmp/rx
    # nc -l ends when the sender closes; its stdin must stay open until then.
    # shellcheck disable=SC2086
    (sleep 120 | $_to nc -l -p "$_port" > /tmp/rx) &
    _lpid=$!
    _ok=""
    for _try in 1 2 3 4 5 6 7 8 9 10; do
        usleep 300000
        # shellcheck disable=SC2086
        if $_from timeout 90 nc "$_ip" "$_port" < /tmp/netpattern; then
            _ok=1
            break
        fi
    done
    wait_for 30 sh -c "[ \"\$(stat -c %s /tmp/rx 2>/dev/null)\" = $_bytes ]"
    usleep 200000
    _got=$(sha256sum < /tmp/rx | cut -d' ' -f1)
    _size=$(stat -c %s /tmp/rx 2>/dev/null)
    kill "$_lpid" 2>/dev/null
    pkill_sleep
    if [ -n "$_ok" ] && [ "$_got" = "$_want" ]; then
        check "$_name" PASS "$_size bytes to $_ip, sha256 $_got"
    else
        check "$_name" FAIL "sent=${_ok:-no} received $_size of $_bytes bytes, want $_want got $_got"
    fi
}

# Kill the `sleep 120` that kept a listener's stdin open.
pkill_sleep() {
    for _p in /proc/[0-9]*; do
        [ "$(tr '\0' ' ' 2>/dev/null < "$_p/cmdline")" = "sleep 120 " ] &&
            kill "${_p##*/}" 2>/dev/null
    done
}

net_pcis=""
# The second NIC's driver: viommu.nic2=e1000 for a conventional PCI NIC
# (behind a PCIe-to-PCI bridge, say); e1000e by default.
nic2=$(arg nic2 e1000e)

find_net_devices() {
    wait_for 20 netif_by_driver virtio_net > /dev/null
    wait_for 20 netif_by_driver "$nic2" > /dev/null
    vif=$(netif_by_driver virtio_net) || vif=""
    eif=$(netif_by_driver "$nic2") || eif=""
    net_pcis=""
    [ -n "$vif" ] && net_pcis="$(pci_of "/sys/class/net/$vif/device")"
    [ -n "$eif" ] && net_pcis="$net_pcis $(pci_of "/sys/class/net/$eif/device")"
    info "nics virtio_net=${vif:-none} $nic2=${eif:-none} pci $net_pcis"
}

# netns_pair A B NET CHECK SECONDS: interface B into a network namespace
# of its own (a sleeping `unshare -n`: $nspid; $ns runs a command in it),
# NET.1/24 on A and NET.2/24 on B, then up to SECONDS for B to answer a
# ping from A.  On failure: CHECK fails, the namespace goes, returns 1.
netns_pair() {
    unshare -n sleep 100000 &
    nspid=$!
    usleep 200000
    ns="nsenter -t $nspid -n"
    if ! _err=$( {
        ip link set "$2" netns "$nspid" &&
        ip addr add "$3.1/24" dev "$1" && ip link set "$1" up &&
        $ns ip link set lo up &&
        $ns ip addr add "$3.2/24" dev "$2" && $ns ip link set "$2" up
    } 2>&1 ); then
        check "$4" FAIL "$(echo "$_err" | tr '\n' ' ')"
        kill "$nspid"
        return 1
    fi
    if ! wait_for "$5" ping -c 1 -W 1 "$3.2" > /dev/null 2>&1; then
        check "$4" FAIL "no ping reply from $3.2 over $1 -> $2"
        kill "$nspid"
        return 1
    fi
}

test_net() {
    if [ -z "$vif" ] || [ -z "$eif" ]; then
        check net-setup FAIL "need a virtio_net and an $nic2 interface (got '${vif}' '${eif}')"
        return
    fi
    # The second NIC goes into its own network namespace so that traffic
    # between the two addresses really crosses the wire.
    netns_pair "$vif" "$eif" 10.99.0 net-setup 20 || return
    check net-setup PASS "$vif (virtio-net) 10.99.0.1 <-> $eif ($nic2, own netns) 10.99.0.2"
    _bytes=$(($(arg net_mib 4) * 1048576))
    make_pattern "$(($(arg seed 1) + 7))" "$_bytes" /tmp/netpattern
    _want=$(sha256sum < /tmp/netpattern | cut -d' ' -f1)
    transfer "net-virtio-to-$nic2" "" "$ns" 10.99.0.2 5001
    transfer "net-$nic2-to-virtio" "$ns" "" 10.99.0.1 5002
    _loss=$(ping -c 200 -i 0.01 -W 2 -s 1400 10.99.0.2 2>&1 | grep -o '[0-9]*% packet loss')
    case "$_loss" in
        "0% packet loss") check net-ping PASS "200 pings of 1400 bytes: $_loss" ;;
        *) check net-ping FAIL "200 pings of 1400 bytes: ${_loss:-no summary}" ;;
    esac
    kill "$nspid" 2>/dev/null
}

# ---------------------------------------------------------------- hotplug

# The host (tests/guest/run-guest-tests.sh, x86-hotplug) device_adds a
# virtio-blk behind a pcie-root-port when it sees "VIOMMU-WAIT hotplug-N"
# and device_dels it on "VIOMMU-WAIT unplug-N"; pciehp does the rest.
test_hotplug() {
    _hwant=$(arg expect_type DMA/DMA-FQ)
    for _hi in 1 2; do
        echo "VIOMMU-WAIT hotplug-$_hi"
        if ! wait_for 120 test -b /dev/vda; then
            check "hotplug-$_hi-appeared" FAIL "/dev/vda did not appear within 120s"
            return
        fi
        _hb=$(pci_of /sys/block/vda)
        check "hotplug-$_hi-appeared" PASS "/dev/vda at $_hb after $(now)s"
        _t=none
        _hg=$(group_of "$_hb") && _t=$(type_of "$_hg")
        case "/$_hwant/" in
            */"$_t"/*) check "hotplug-$_hi-group" PASS "$_hb group $_hg type $_t" ;;
            *) check "hotplug-$_hi-group" FAIL "$_hb group ${_hg:-none} type $_t, want $_hwant" ;;
        esac
        check_disk_pattern "hotplug-$_hi-pattern" /dev/vda $(($(arg seed 1) + _hi))
        echo "VIOMMU-WAIT unplug-$_hi"
        if wait_for 120 sh -c "! test -e /sys/bus/pci/devices/$_hb && ! test -e /dev/vda"; then
            check "hotplug-$_hi-removed" PASS "$_hb and /dev/vda gone after $(now)s"
        else
            check "hotplug-$_hi-removed" FAIL "$_hb still present after 120s"
            return
        fi
    done
}

# ---------------------------------------------------------------- main

timeout_s=$(arg timeout 240)
( sleep "$timeout_s"
  echo "VIOMMU-CHECK watchdog FAIL guest tests did not finish within ${timeout_s}s"
  echo "VIOMMU-DONE checks=0 failed=1"
  poweroff -f ) &

info "kernel $(uname -r) package $(cat /etc/viommu/kernel-version) arch $(uname -m)"
info "cmdline $cmdline"
tests=$(arg test demo | tr , ' ')
# The test modules, and their early hooks before any kernel module is
# inserted: virtio_iommu is a module, so no IOMMU driver has attached
# anything yet.
for t in $tests; do
    case "$t" in
        demo|hotplug|net) ;;
        *)  if [ -f "/etc/viommu/test-$t.sh" ]; then
                . "/etc/viommu/test-$t.sh"
                if command -v "early_$t" > /dev/null; then "early_$t"; fi
            else
                check test-known FAIL "unknown test '$t'"
            fi ;;
    esac
done
load_modules
info "time modules-loaded $(now)"
boot=1

# Devices under test, whose domain type is checked.
dut=""
check_driver_bound
for t in $tests; do
    case "$t" in
        demo)
            wait_for 20 test -b /dev/vda
            if [ "$(arg reboot 0)" != 0 ]; then
                _m=$(dd if=/dev/vda bs=512 skip=$((48 * 2048)) count=1 2> /dev/null |
                     tr -dc 'A-Z0-9-')
                case "$_m" in VIOMMU-BOOT-[0-9]*) boot=${_m#VIOMMU-BOOT-} ;; esac
                info "boot $boot"
            fi
            dut="$dut $(pci_of /sys/block/vda 2>/dev/null)" ;;
        hotplug) ;;
        net)
            find_net_devices
            dut="$dut $net_pcis" ;;
        *)  if command -v "prepare_$t" > /dev/null; then "prepare_$t"; fi ;;
    esac
done
# Quieten the console so that kernel messages do not split result lines;
# the checks below read dmesg.
dmesg -n 1
info "time devices-ready $(now)"
case "$dut" in *[!\ ]*) has_dut=1 ;; *) has_dut="" ;; esac
if [ -n "$has_dut" ]; then
    check_endpoints "$dut"
    # shellcheck disable=SC2086
    check_domain_type $dut
fi
for t in $tests; do
    case "$t" in
        demo) check_disk_pattern ;;
        hotplug) test_hotplug ;;
        net) test_net ;;
        *) if command -v "test_$t" > /dev/null; then "test_$t"; fi ;;
    esac
done
check_no_iommu_errors
check_no_kernel_oops
finish
