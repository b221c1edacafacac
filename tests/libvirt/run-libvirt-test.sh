#!/bin/bash
# libvirt test: Debian's libvirt drives our QEMU build with
# <iommu model='virtio'/>, and moves a domain between stock QEMU and ours.
#
#   bash tests/libvirt/run-libvirt-test.sh
#
# Installs libvirt with apt if needed (libvirt-daemon-system,
# libvirt-clients), sets user and group "root" in /etc/libvirt/qemu.conf
# (with /dev/kvm root-only, libvirt otherwise re-probes QEMU for about a
# minute on every start), starts virtlogd and libvirtd (with systemctl when
# systemd runs, else directly as daemons; whatever this script started it
# stops again), then:
#   - checks that libvirt's capability probing of build/qemu/qemu-system-x86_64
#     lists "virtio" among the <iommu> models;
#   - starts a transient TCG q35 domain (docs/libvirt.md has its XML) that
#     boots the test guest (build/guest/x86_64, viommu.test=demo) with a
#     virtio disk behind the virtio IOMMU, waits for VIOMMU-DONE on the
#     serial log, and reports every guest check;
#   - checks the disk image on the host and the QEMU command line libvirt
#     generated (virtio-iommu on pcie.0, the disk with iommu_platform);
#   - starts the same domain on stock QEMU (build/upstream), saves it with
#     virsh save the moment the guest starts writing through the IOMMU,
#     restores it on ours (virsh restore --xml: the saved definition with
#     only <emulator> changed), lets the write and read-back run there,
#     then saves and restores it on stock again, where the guest finishes
#     its checks.
# Prints TAP; exits non-zero on any failure.  Files go to build/libvirt/
# (domain.xml, console.log, disk.img).  Must run as root.
#
# Environment: LIBVIRT_TIMEOUT (guest run, default 300 s), QEMU_BUILD
# (default build/qemu).
set -uo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/scripts/lib.sh"
. "$top/tests/guest/guest-lib.sh"

NAME=viommu-libvirt-test
URI=qemu:///system
LIMIT=${LIBVIRT_TIMEOUT:-300}
MIB=8
dir=$BUILD/libvirt
qdir=$(qemu_build_dir)
emulator=$qdir/qemu-system-x86_64
gdir=$BUILD/guest/x86_64
xml=$dir/domain.xml
console=$dir/console.log
disk=$dir/disk.img
qemulog=/var/log/libvirt/qemu/$NAME.log


finish() {
    echo "1..$n"
    echo "# libvirt: $((n - failed)) passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit
}

# Give up on the rest: report what could not run, then clean up (trap).
bail() {
    tap not-ok "$1" "${2:-}"
    finish
}

vsh() {  # virsh with a bound on every call
    timeout -k 5 "${VSH_TIMEOUT:-120}" virsh -q -c "$URI" "$@"
}

# systemd is the init and systemctl works (not so in containers and CI).
systemd_running() {
    [ -d /run/systemd/system ] && systemctl show --property=Version > /dev/null 2>&1
}

# ------------------------------------------------------------ cleanup

started_systemd=""   # units started with systemctl
started_pids=""      # daemons started directly ("name:pid")

stop_pid() {  # stop_pid NAME PID: TERM, wait up to 15 s, then KILL
    local name=$1 pid=$2
    kill -0 "$pid" 2> /dev/null || return 0
    kill -TERM "$pid" 2> /dev/null
    for _ in $(seq 30); do
        kill -0 "$pid" 2> /dev/null || return 0
        sleep 0.5
    done
    echo "# $name ($pid) did not stop on SIGTERM; killing it"
    kill -KILL "$pid" 2> /dev/null
}

# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
    if command -v virsh > /dev/null 2>&1 && vsh list --all --name 2> /dev/null | grep -qx "$NAME"; then
        VSH_TIMEOUT=30 vsh destroy "$NAME" > /dev/null 2>&1
        VSH_TIMEOUT=30 vsh undefine "$NAME" > /dev/null 2>&1
    fi
    local u p
    for u in $started_systemd; do
        systemctl stop "$u" > /dev/null 2>&1
    done
    # Reverse order: libvirtd before virtlogd.
    for p in $started_pids; do echo "$p"; done | tac | while IFS=: read -r name pid; do
        stop_pid "$name" "$pid"
    done
}
trap cleanup EXIT
trap 'echo "Bail out! interrupted"; exit 130' INT TERM

echo "TAP version 13"
[ "$(id -u)" = 0 ] || bail "runs as root" "libvirt's system daemon needs root"

# ------------------------------------------------------------ install

install_libvirt() {
    local pkgs="libvirt-daemon-system libvirt-clients" p missing=""
    for p in $pkgs; do
        dpkg-query -W -f='${Status}\n' "$p" 2> /dev/null | grep -q "ok installed" ||
            missing="$missing $p"
    done
    [ -n "$missing" ] || return 0
    # Without systemd as init, take the sysvinit flavour of
    # libvirt-daemon-system instead of pulling in systemd-sysv.
    systemd_running || pkgs="$pkgs libvirt-daemon-system-sysv"
    echo "# installing:$pkgs"
    export DEBIAN_FRONTEND=noninteractive
    # shellcheck disable=SC2086
    apt-get install -y -q --no-install-recommends $pkgs > "$dir/apt.log" 2>&1 && return 0
    apt-get update -q >> "$dir/apt.log" 2>&1
    # shellcheck disable=SC2086
    apt-get install -y -q --no-install-recommends $pkgs >> "$dir/apt.log" 2>&1
}

mkdir -p "$dir"
if install_libvirt && command -v virsh > /dev/null && command -v libvirtd > /dev/null; then
    tap ok "libvirt installed ($(libvirtd --version | awk '{print $NF}'))"
else
    bail "libvirt installed" "apt-get failed; see $dir/apt.log: $(tail -n 3 "$dir/apt.log" 2> /dev/null)"
fi

# ------------------------------------------------------------ qemu.conf

conf=/etc/libvirt/qemu.conf
conf_changed=""
# set_conf KEY VALUE: make "KEY = VALUE" the only active setting of KEY.
set_conf() {
    local key=$1 val=$2 re="^[[:space:]]*$1[[:space:]]*="
    [ "$(grep -E "$re" "$conf")" = "$key = $val" ] && return 0
    sed -i -E "/$re/d" "$conf" || return 1
    printf '# %s: set by virtio-iommu tests/libvirt/run-libvirt-test.sh\n%s = %s\n' \
        "$key" "$key" "$val" >> "$conf" || return 1
    conf_changed=1
}
if [ -f "$conf" ] && set_conf user '"root"' && set_conf group '"root"'; then
    tap ok "qemu.conf: user and group root${conf_changed:+ (changed)}"
else
    bail "qemu.conf: user and group root" "$conf missing or not writable"
fi

# ------------------------------------------------------------ daemons

libvirt_up() {
    VSH_TIMEOUT=10 vsh list --all > /dev/null 2>&1
}

pid_alive() {  # pid_alive PIDFILE: prints the pid if that process runs
    local pid
    pid=$(cat "$1" 2> /dev/null) || return 1
    [ -n "$pid" ] && kill -0 "$pid" 2> /dev/null && echo "$pid"
}

# start_daemon NAME: start /usr/sbin/NAME as a daemon (not under systemd)
# unless it runs already; if RESTART is set, restart a running one (which
# is then left running at the end, as it was found).
start_daemon() {
    local name=$1 pidfile=/run/$1.pid pid was_running=""
    if pid=$(pid_alive "$pidfile"); then
        if [ -z "${RESTART:-}" ]; then
            echo "# $name already runs ($pid)"
            return 0
        fi
        echo "# restarting $name ($pid) for the new qemu.conf"
        stop_pid "$name" "$pid"
        was_running=1
    fi
    rm -f "$pidfile"
    # Its own log is in /var/log/libvirt; keep our stdout free of it.
    "/usr/sbin/$name" --daemon --pid-file "$pidfile" < /dev/null > /dev/null 2>&1 ||
        return 1
    for _ in $(seq 50); do
        if pid=$(pid_alive "$pidfile"); then
            [ -n "$was_running" ] || started_pids="$started_pids $name:$pid"
            echo "# started $name ($pid)"
            return 0
        fi
        sleep 0.2
    done
    return 1
}

start_libvirt() {
    local u
    if systemd_running; then
        for u in virtlogd libvirtd; do
            if ! systemctl is-active --quiet "$u"; then
                systemctl start "$u" || return 1
                started_systemd="$u $started_systemd"
            elif [ "$u" = libvirtd ] && [ -n "$conf_changed" ]; then
                systemctl restart "$u" || return 1
            fi
        done
    else
        start_daemon virtlogd || return 1
        RESTART=$conf_changed start_daemon libvirtd || return 1
    fi
    for _ in $(seq 60); do
        libvirt_up && return 0
        sleep 0.5
    done
    return 1
}

if start_libvirt; then
    tap ok "libvirt daemon answers on $URI ($(systemd_running && echo systemd || echo 'no systemd: started directly'))"
else
    bail "libvirt daemon answers on $URI" "$(VSH_TIMEOUT=10 vsh list --all 2>&1 | tail -n 2)"
fi

# ------------------------------------------------------------ capabilities

[ -x "$emulator" ] || bail "QEMU built" "$emulator missing (bash scripts/build-qemu.sh)"
# build-guest.sh is idempotent: quick when the guest is there already.
if ! out=$(bash "$top/tests/guest/build-guest.sh" x86_64 2>&1) ||
   [ ! -f "$gdir/vmlinuz" ] || [ ! -f "$gdir/initramfs.cpio.gz" ]; then
    bail "x86_64 guest built" "tests/guest/build-guest.sh x86_64: $(echo "$out" | tail -n 3)"
fi

# The first query makes libvirt probe our binary (a few seconds; up to a
# minute or more on a slow machine): bounded at 240 s.  libvirt lists IOMMU
# models in the domain capabilities (<iommu supported='yes'><enum
# name='model'>) only from version 11 on; older ones (Debian 12's 9.0) keep
# what the probe found in their capabilities cache, where the flag
# virtio-iommu-pci is what allows <iommu model='virtio'/>.
capcheck="libvirt's capability probing of our QEMU sees virtio-iommu"
t0=$SECONDS
if caps=$(VSH_TIMEOUT=240 vsh domcapabilities --emulatorbin "$emulator" \
              --machine q35 --virttype qemu 2>&1); then
    took=$((SECONDS - t0))
    mtype=$(echo "$caps" | sed -n 's|.*<machine>\(.*\)</machine>.*|\1|p' | head -n 1)
    if echo "$caps" | grep -q '<iommu '; then
        iommu=$(echo "$caps" | awk '/<iommu /{ f = 1 } f { print } /<\/iommu>|<iommu [^>]*\/>/{ f = 0 }')
        models=$(echo "$iommu" | sed -n 's|.*<value>\(.*\)</value>.*|\1|p' | tr '\n' ' ')
        if echo " $models" | grep -q ' virtio '; then
            tap ok "$capcheck: domcapabilities ($mtype) lists iommu models: ${models% } (${took}s)"
        else
            tap not-ok "$capcheck: domcapabilities lists iommu model virtio" "$iommu"
        fi
    else
        cache=$(grep -lF "<emulator>$emulator</emulator>" \
                    /var/cache/libvirt/qemu/capabilities/*.xml 2> /dev/null | head -n 1)
        if [ -n "$cache" ] && grep -qF "<flag name='virtio-iommu-pci'/>" "$cache"; then
            tap ok "$capcheck: domcapabilities ($mtype) answered; libvirt $(libvirtd --version | awk '{print $NF}') lists no iommu models there, its capabilities cache has flag virtio-iommu-pci (${took}s)"
        else
            tap not-ok "$capcheck" \
                "domcapabilities has no <iommu> element and the capabilities cache (${cache:-none found for $emulator}) has no virtio-iommu-pci flag"
        fi
    fi
else
    tap not-ok "$capcheck" \
        "virsh domcapabilities failed after $((SECONDS - t0))s: $(echo "$caps" | tail -n 3)"
fi

# ------------------------------------------------------------ domain

# domain_xml EMULATOR SEED MIB [TESTS [DEVICES]]: the domain
# docs/libvirt.md shows, on EMULATOR, the guest writing MIB MiB of pattern
# SEED; TESTS are the guest's (viommu.test=..., default demo) and DEVICES
# more XML in <devices>
domain_xml() {
    cat <<EOF
<domain type='qemu'>
  <name>$NAME</name>
  <memory unit='MiB'>1024</memory>
  <vcpu>2</vcpu>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
    <kernel>$gdir/vmlinuz</kernel>
    <initrd>$gdir/initramfs.cpio.gz</initrd>
    <cmdline>console=ttyS0 viommu.test=${4:-demo} edd=off panic=-1 viommu.seed=$2 viommu.mib=$3 viommu.timeout=$((LIMIT - 20))</cmdline>
  </os>
  <features>
    <acpi/>
    <apic/>
  </features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>$1</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw' iommu='on'/>
      <source file='$disk'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <controller type='usb' model='none'/>
    <serial type='file'>
      <source path='$console' append='on'/>
      <target port='0'/>
    </serial>
    <memballoon model='none'/>
    <iommu model='virtio'/>${5:-}
  </devices>
</domain>
EOF
}

# A leftover from an interrupted run.
remove_domain() {
    if vsh list --all --name 2> /dev/null | grep -qx "$NAME"; then
        vsh destroy "$NAME" > /dev/null 2>&1
        vsh undefine "$NAME" > /dev/null 2>&1
    fi
}

# fresh_disk: a zeroed image, no console log, and a new seed in $seed
fresh_disk() {
    seed=$(( ($(date +%s) + RANDOM) % 1000000 + 1 ))
    rm -f "$disk" "$console"
    truncate -s 64M "$disk" || bail "create disk image" "cannot create $disk"
}

# start_domain XML WHAT: virsh create, one TAP line
start_domain() {
    remove_domain
    # Only the part of libvirt's per-domain log written from now on.
    log_offset=$(stat -c %s "$qemulog" 2> /dev/null || echo 0)
    t0=$SECONDS
    if out=$(VSH_TIMEOUT=240 vsh create "$1" 2>&1); then
        tap ok "$2: domain started ($((SECONDS - t0))s)"
    else
        bail "$2: domain started" "$out
$(tail -c +"$((log_offset + 1))" "$qemulog" 2> /dev/null | tail -n 5)"
    fi
    started=$SECONDS
}

# wait_guest WHAT MIB REQUIRED-CHECK...: wait for VIOMMU-DONE, then for
# the guest to power off (the transient domain disappears); TAP lines for
# the run, every guest check, and the guest's MIB MiB in the image.
wait_guest() {
    local what=$1 mib=$2 state=running done_at="" ran bytes want got verdict
    shift 2
    while :; do
        if ! vsh domstate "$NAME" 2> /dev/null | grep -q running; then
            state=gone
            break
        fi
        if [ -z "$done_at" ] && guest_done "$console" 2> /dev/null; then
            done_at=$SECONDS
        fi
        [ -n "$done_at" ] && [ $((SECONDS - done_at)) -ge 30 ] && { state=hung; break; }
        [ $((SECONDS - started)) -ge "$LIMIT" ] && { state=timeout; break; }
        sleep 1
    done
    ran=$((SECONDS - started))
    echo "# guest ran ${ran}s, end state: $state; console log $console"

    if verdict=$(guest_verdict "$console"); then
        tap ok "$what: guest finished its checks in ${ran}s ($verdict)"
    else
        tap not-ok "$what: guest finished its checks, none failed, none lost" \
            "$verdict; $state after ${ran}s; last console lines:
$(tail -n 5 "$console" 2> /dev/null | tr -d '\r')"
    fi
    if [ "$state" = gone ]; then
        tap ok "$what: guest powered off"
    else
        tap not-ok "$what: guest powered off" "domain still running ($state)"
    fi

    tap_guest_checks "$what: guest: " "$console" "$@"

    bytes=$((mib * 1048576))
    want=$(pattern_bytes "$seed" "$bytes" | sha256sum | cut -d' ' -f1)
    got=$(head -c "$bytes" "$disk" | sha256sum | cut -d' ' -f1)
    if [ "$want" = "$got" ]; then
        tap ok "$what: host sees the guest's data in the disk image"
    else
        tap not-ok "$what: host sees the guest's data in the disk image" \
            "want $want got $got (seed $seed)"
    fi
}

fresh_disk
domain_xml "$emulator" "$seed" "$MIB" > "$xml"
start_domain "$xml" "ours"
wait_guest "ours" "$MIB" modules-loaded driver-bound endpoint-groups \
    domain-type disk-pattern

# libvirt's generated command line: one argument per line in its log.
cmdline=$(tail -c +"$((log_offset + 1))" "$qemulog" 2> /dev/null)
if echo "$cmdline" | grep -qF "$emulator"; then
    tap ok "libvirt ran our QEMU ($emulator)"
else
    tap not-ok "libvirt ran our QEMU ($emulator)" "not in $qemulog"
fi
dev=$(echo "$cmdline" | grep -F '"driver":"virtio-iommu"' | head -n 1)
if echo "$dev" | grep -qF '"bus":"pcie.0"'; then
    tap ok "libvirt's command line has virtio-iommu on pcie.0: $(echo "$dev" | grep -o '{.*}')"
else
    tap not-ok "libvirt's command line has virtio-iommu on pcie.0" \
        "${dev:-no \"driver\":\"virtio-iommu\" device} in $qemulog"
fi
blk=$(echo "$cmdline" | grep -F '"driver":"virtio-blk-pci"' | head -n 1)
if echo "$blk" | grep -qF '"iommu_platform":true'; then
    tap ok "libvirt's command line has the disk with iommu_platform"
else
    tap not-ok "libvirt's command line has the disk with iommu_platform" "${blk:-no virtio-blk-pci}"
fi

# ------------------------------------------------------------ conventional NIC

# A conventional PCI NIC (e1000) next to a virtio-net, the two wired to
# each other over UDP: on q35 libvirt puts the e1000 on a pcie-pci-bridge
# it adds itself, where the NIC's DMA carries the bridge's alias.  The
# guest moves the e1000 into its own network namespace and sends a pattern
# both ways through the IOMMU (strict domains).
NICS="
    <interface type='udp'>
      <mac address='52:54:00:00:00:01'/>
      <source address='127.0.0.1' port='47001'>
        <local address='127.0.0.1' port='47002'/>
      </source>
      <model type='virtio'/>
      <driver iommu='on'/>
      <rom enabled='no'/>
    </interface>
    <interface type='udp'>
      <mac address='52:54:00:00:00:02'/>
      <source address='127.0.0.1' port='47002'>
        <local address='127.0.0.1' port='47001'/>
      </source>
      <model type='e1000'/>
      <rom enabled='no'/>
    </interface>"
fresh_disk
domain_xml "$emulator" "$seed" "$MIB" \
    "demo,net viommu.nic2=e1000 iommu.strict=1 viommu.expect_type=DMA" \
    "$NICS" > "$dir/nic.xml"
start_domain "$dir/nic.xml" "conventional NIC"
wait_guest "conventional NIC" "$MIB" endpoint-groups domain-type \
    disk-pattern net-setup net-virtio-to-e1000 net-e1000-to-virtio net-ping
cmdline=$(tail -c +"$((log_offset + 1))" "$qemulog" 2> /dev/null)
bridge=$(grep -oE '"driver":"pcie-pci-bridge"[^}]*"id":"[^"]*"' <<< "$cmdline" |
         sed 's/.*"id":"\([^"]*\)"/\1/' | head -n 1)
e1000=$(grep -F '"driver":"e1000"' <<< "$cmdline" | head -n 1)
if [ -n "$bridge" ] && grep -qF "\"bus\":\"$bridge\"" <<< "$e1000"; then
    tap ok "conventional NIC: libvirt put the e1000 on its pcie-pci-bridge $bridge"
else
    tap not-ok "conventional NIC: libvirt put the e1000 on a pcie-pci-bridge" \
        "bridge '${bridge:-none}', e1000: ${e1000:-none}"
fi

# ------------------------------------------------------------ stock <-> ours

# The same domain started by stock QEMU (build/upstream), saved in the
# middle of its disk I/O through the IOMMU, restored on our QEMU with only
# <emulator> changed, saved again and restored on stock QEMU, where it
# finishes: libvirt's own way of moving a VM between QEMU binaries.
stock_emulator=$BUILD/upstream/qemu-system-x86_64
RT_MIB=32

# wait_console TEXT: until the guest printed TEXT (bounded by LIMIT)
wait_console() {
    for _ in $(seq $((LIMIT * 5))); do
        grep -q "$1" "$console" 2> /dev/null && return 0
        sleep 0.2
    done
    tap not-ok "guest printed '$1'" "$(tail -n 3 "$console" 2> /dev/null)"
    return 1
}

# move FROM TO WHAT: virsh save, then virsh restore with TO as emulator
move() {
    local image=$dir/saved.img from=$1 to=$2 what=$3 out
    t0=$SECONDS
    rm -f "$image"
    if ! out=$(VSH_TIMEOUT=240 vsh save "$NAME" "$image" 2>&1); then
        tap not-ok "$what: virsh save" "$out"
        return 1
    fi
    # The saved definition (libvirt's, with its UUID and addresses), only
    # the emulator changed
    if ! out=$(vsh save-image-dumpxml "$image" --security-info 2>&1); then
        tap not-ok "$what: virsh save-image-dumpxml" "$out"
        return 1
    fi
    sed "s|<emulator>.*</emulator>|<emulator>$to</emulator>|" <<< "$out" \
        > "$dir/restore.xml"
    log_offset=$(stat -c %s "$qemulog" 2> /dev/null || echo 0)
    if ! out=$(VSH_TIMEOUT=240 vsh restore "$image" --xml "$dir/restore.xml" 2>&1); then
        tap not-ok "$what: virsh restore with emulator $to" "$out
$(tail -n 5 "$qemulog" 2> /dev/null)"
        return 1
    fi
    rm -f "$image"
    # The command line libvirt started for the restore (the guest may be
    # done and gone already)
    if tail -c +"$((log_offset + 1))" "$qemulog" 2> /dev/null |
       grep -qF "$to"; then
        tap ok "$what: saved from $from, restored on $to ($((SECONDS - t0))s)"
    else
        tap not-ok "$what: the restored domain runs $to" \
            "$(tail -c +"$((log_offset + 1))" "$qemulog" 2> /dev/null | head -n 3)"
        return 1
    fi
}

if [ ! -x "$stock_emulator" ]; then
    tap not-ok "stock QEMU built" \
        "$stock_emulator missing (bash scripts/build-qemu.sh --upstream)"
else
    fresh_disk
    domain_xml "$stock_emulator" "$seed" "$RT_MIB" > "$dir/stock.xml"
    start_domain "$dir/stock.xml" "stock"
    # Leave stock the moment the guest starts writing through the IOMMU
    wait_console "disk-pattern writing"
    # On ours, the whole write and read-back; then back to stock, where
    # the guest's last checks run
    move "$stock_emulator" "$emulator" "stock -> ours" &&
        wait_console "VIOMMU-CHECK disk-pattern" &&
        move "$emulator" "$stock_emulator" "ours -> stock"
    wait_guest "stock -> ours -> stock" "$RT_MIB" domain-type disk-pattern
fi

finish
