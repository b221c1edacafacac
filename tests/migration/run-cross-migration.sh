#!/bin/bash
# Migration between our QEMU and stock QEMU 10.0 (build/upstream: the same
# source with QEMU's own virtio-iommu), with one and the same command line
# on both sides, as an operator moves VMs between hosts:
#
#  - the guest ABI: every property of stock's virtio-iommu-pci exists on
#    ours with the same type, and the ABI qtests (PCI config space,
#    features, config fields, field by field) pass on stock's binary as
#    they pass on ours;
#  - a running Linux guest live-migrated in the middle of an O_DIRECT disk
#    write through the IOMMU: stock -> ours and ours -> stock, with lazy
#    and with strict invalidation; ours -> ours, lazy; and ours -> ours
#    with the opt-in MSI-X (vectors=3).  (ours-ours-strict is one more leg
#    for MIGRATION_LEGS.)  The guest's read-back of the whole pattern,
#    its IOMMU checks, and the host's check of the disk image must all pass
#    on the destination.
#
# TAP.  MIGRATION_LEGS="ours-ours-lazy ..." runs only those legs.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/scripts/lib.sh"
. "$top/tests/guest/guest-lib.sh"
cd "$top"

guest=$BUILD/guest/x86_64
work=$BUILD/migration
ours=$BUILD/qemu
stock=$BUILD/upstream
mkdir -p "$work"

# MiB the guest writes: long enough under TCG that the switch-over lands
# in the middle of it
MIB=64
SEED=7

qmp() {
    python3 tests/migration/qmp.py "$@"
}

# boot_args MODE DEVICE-OPTIONS: the command line, the same on both sides
boot_args() {
    local append="console=ttyS0 viommu.test=demo viommu.mib=$MIB"
    append="$append viommu.seed=$SEED"
    case "$1" in
        lazy) append="$append viommu.expect_type=DMA-FQ" ;;
        strict) append="$append iommu.strict=1 viommu.expect_type=DMA" ;;
    esac
    args=(-M q35 -accel tcg -m 1G -display none -no-reboot
        -kernel "$guest/vmlinuz" -initrd "$guest/initramfs.cpio.gz"
        -append "$append"
        -device "virtio-iommu-pci$2"
        -drive file="$work/disk.img",if=none,id=d0,format=raw
        -device virtio-blk-pci,drive=d0,iommu_platform=on,disable-legacy=on)
}

wait_for() {
    local file=$1 pattern=$2 seconds=$3
    while [ "$seconds" -gt 0 ]; do
        grep -q "$pattern" "$file" 2>/dev/null && return 0
        sleep 1
        seconds=$((seconds - 1))
    done
    return 1
}

# query-migrate until it completed or failed; prints the last reply
wait_migrated() {
    local sock=$1 reply
    for _ in $(seq 240); do
        reply=$(qmp "$sock" query-migrate 2>&1)
        case "$reply" in
            *'"status": "completed"'*|*'"status": "failed"'*) break ;;
        esac
        sleep 0.5
    done
    echo "$reply"
}

# pattern_matches: the disk image holds the guest's whole pattern
pattern_matches() {
    local bytes=$((MIB * 1048576))

    [ "$(pattern_bytes "$SEED" "$bytes" | sha256sum)" = \
      "$(head -c "$bytes" "$work/disk.img" | sha256sum)" ]
}

# migrate SRC-BUILD DST-BUILD MODE NAME [DEVICE-OPTIONS]
migrate() {
    local src=$1/qemu-system-x86_64 dst=$2/qemu-system-x86_64 mode=$3
    local name=$4 opts=${5:-} log=$work/$4 sock=$work/$4.sock
    local ok=true why='' reply inflight downtime

    rm -f "$log".* "$sock"
    # A fresh, zeroed disk: the image check must see this leg's writes
    rm -f "$work/disk.img"
    truncate -s 128M "$work/disk.img"
    boot_args "$mode" "$opts"
    # The destination waits for the stream, then stays paused (-S) so that
    # the host can look at the disk at the moment of the switch-over
    timeout 400 "$dst" "${args[@]}" -S -incoming "unix:$sock" \
        -serial file:"$log.dst" \
        -qmp unix:"$log.dst.qmp",server,nowait > "$log.dst.err" 2>&1 &
    timeout 400 "$src" "${args[@]}" -serial file:"$log.src" \
        -qmp unix:"$log.src.qmp",server,nowait > "$log.src.err" 2>&1 &
    # Live: the guest goes on running while its memory is copied
    qmp "$log.src.qmp" --when "$log.src" "disk-pattern writing" \
        migrate "{\"uri\": \"unix:$sock\"}" > "$log.qmp" 2>&1 ||
        { ok=false; why="migrate command failed"; }
    reply=$(wait_migrated "$log.src.qmp")
    echo "$reply" > "$log.status"
    case "$reply" in
        *'"status": "completed"'*) ;;
        *) ok=false; why=${why:-"migration did not complete"} ;;
    esac
    downtime=$(sed -n 's/.*"downtime": \([0-9]*\).*/\1/p' <<< "$reply")
    qmp "$log.src.qmp" quit > /dev/null 2>&1
    # The guest prints its disk timings once it has read everything back:
    # before that line, its disk DMA through the IOMMU was in flight
    if grep -q "VIOMMU-INFO time disk-pattern" "$log.src"; then
        ok=false
        why="the guest's disk I/O had ended before the switch-over"
    elif pattern_matches; then
        inflight="the read-back was in flight"
    else
        inflight="the write was in flight"
    fi

    if $ok; then
        qmp "$log.dst.qmp" cont > /dev/null 2>&1 ||
            { ok=false; why="cont on the destination failed"; }
        wait_for "$log.dst" "VIOMMU-DONE" 300 ||
            { ok=false; why="no VIOMMU-DONE on the destination"; }
        # The guest's checks: before the move on the source, after it on
        # the destination
        grep -q "VIOMMU-CHECK domain-type PASS" "$log.src" ||
            { ok=false; why=${why:-"guest domain-type check"}; }
        grep -q "VIOMMU-CHECK disk-pattern PASS" "$log.dst" ||
            { ok=false; why=${why:-"guest disk-pattern check"}; }
        # One console over two QEMUs: every check of both, none failed
        guest_verdict "$log.src" "$log.dst" > "$log.verdict" ||
            { ok=false; why=${why:-"guest: $(cat "$log.verdict")"}; }
        # The I/O went on after the move: the disk holds all of it
        pattern_matches || { ok=false; why=${why:-"host image check"}; }
    fi
    qmp "$log.dst.qmp" quit > /dev/null 2>&1
    wait
    if $ok; then
        tap ok "migration $name: guest checks pass after the move" \
            "$inflight at the switch-over; downtime ${downtime:-?} ms"
    else
        tap not-ok "migration $name: $why (logs: $log.*)" \
            "$(tail -n 5 "$log.dst" "$log.dst.err" "$log.src.err" 2>/dev/null)"
    fi
}

# Property names and types of -device virtio-iommu-pci,help
device_props() {
    "$1" -device virtio-iommu-pci,help 2>&1 |
        sed -n 's/^  \([a-z0-9_-]*\)=<\([^>]*\)>.*/\1 \2/p' | sort
}

# Every stock property exists on ours, with the same type
check_props() {
    local missing
    missing=$(comm -23 <(device_props "$stock/qemu-system-x86_64") \
                       <(device_props "$ours/qemu-system-x86_64"))
    if [ -n "$(device_props "$stock/qemu-system-x86_64")" ] &&
       [ -z "$missing" ]; then
        tap ok "abi: every property of stock's virtio-iommu-pci is ours too"
    else
        tap not-ok "abi: stock's virtio-iommu-pci properties missing on ours" \
            "$missing"
    fi
}

# The ABI qtests of our qos-test, run against stock's binary
check_abi_on_stock() {
    local arch=$1 bin=$stock/qemu-system-$1 path args=() out
    [ -x "$bin" ] || { tap not-ok "abi: stock's $arch binary missing"; return; }
    for path in $(QTEST_QEMU_BINARY=$bin "$ours/tests/qtest/qos-test" -l |
                  grep '/virtio-iommu-requests-tests/abi'); do
        args+=(-p "$path")
    done
    out=$(QTEST_QEMU_BINARY=$bin "$ours/tests/qtest/qos-test" --tap -k \
          "${args[@]}" 2>&1)
    if [ "${#args[@]}" -gt 0 ] && ! grep -q '^not ok' <<< "$out" &&
       [ "$(grep -c '^ok' <<< "$out")" -eq $((${#args[@]} / 2)) ]; then
        tap ok "abi: our ABI qtests pass on stock QEMU ($arch, $((${#args[@]} / 2)) tests)"
    else
        tap not-ok "abi: our ABI qtests on stock QEMU ($arch)" \
            "$(grep -E '^(not ok|FAIL)' <<< "$out" | head -n 20)"
    fi
}

[ -f "$guest/vmlinuz" ] || die "no guest kernel in $guest"
[ -x "$stock/qemu-system-x86_64" ] ||
    die "no stock QEMU in $stock (bash scripts/build-qemu.sh --upstream)"

check_props
check_abi_on_stock x86_64
check_abi_on_stock aarch64

legs=${MIGRATION_LEGS:-"ours-ours-lazy stock-ours-lazy stock-ours-strict
    ours-stock-lazy ours-stock-strict ours-ours-msix"}
for leg in $legs; do
    case "$leg" in
        ours-ours-lazy) migrate "$ours" "$ours" lazy "$leg" ;;
        ours-ours-strict) migrate "$ours" "$ours" strict "$leg" ;;
        stock-ours-lazy) migrate "$stock" "$ours" lazy "$leg" ;;
        stock-ours-strict) migrate "$stock" "$ours" strict "$leg" ;;
        ours-stock-lazy) migrate "$ours" "$stock" lazy "$leg" ;;
        ours-stock-strict) migrate "$ours" "$stock" strict "$leg" ;;
        # The opt-in MSI-X is a guest ABI of its own: ours on both sides
        ours-ours-msix) migrate "$ours" "$ours" lazy "$leg" ",vectors=3" ;;
        *) die "unknown leg $leg" ;;
    esac
done
[ "$failed" -eq 0 ]
