#!/bin/bash
# Migrate a running Linux guest in the middle of an O_DIRECT disk write
# through the IOMMU, between QEMU builds: ours -> ours, and when the
# comparison build exists, stock QEMU's device -> ours and ours -> stock.
# The guest's read-back of the whole pattern, its IOMMU checks, and the
# host's check of the disk image must all pass on the destination.  TAP.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/scripts/lib.sh"
. "$top/scripts/guest/guest-lib.sh"
cd "$top"

guest=$BUILD/guest/x86_64
work=$BUILD/migration
mkdir -p "$work"
n=0
rc=0

# boot_args IOMMU-DEVICE-OPTIONS
boot_args() {
    args=(-M q35 -accel tcg -m 1G -display none -no-reboot
        -kernel "$guest/vmlinuz" -initrd "$guest/initramfs.cpio.gz"
        -append "console=ttyS0 viommu.test=demo viommu.mib=32 viommu.seed=7"
        -device "virtio-iommu-pci$1"
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

# pattern_matches SEED MIB: the disk image holds the guest's pattern
pattern_matches() {
    local bytes=$(($2 * 1048576))

    [ "$(pattern_bytes "$1" "$bytes" | sha256sum)" = \
      "$(head -c "$bytes" "$work/disk.img" | sha256sum)" ]
}

# migrate SRC-BUILD SRC-OPTS DST-BUILD DST-OPTS NAME
migrate() {
    local src=$1/qemu-system-x86_64 src_opts=$2
    local dst=$3/qemu-system-x86_64 dst_opts=$4 name=$5
    local args inflight=
    local log=$work/$name
    local ok=true

    rm -f "$log".* "$work/stream"
    # A fresh, zeroed disk: the image check must see this leg's writes
    rm -f "$work/disk.img"
    truncate -s 64M "$work/disk.img"
    boot_args "$src_opts"
    timeout 300 "$src" "${args[@]}" -serial file:"$log.src" \
        -qmp unix:"$log.src.qmp",server,nowait > "$log.src.err" 2>&1 &
    # Stop the moment the guest starts writing its pattern
    python3 tests/migration/qmp.py "$log.src.qmp" \
        --when "$log.src" "disk-pattern writing" stop \
        migrate "{\"uri\": \"exec:cat > $work/stream\"}" > "$log.qmp" 2>&1 ||
        ok=false
    $ok && for _ in $(seq 60); do
        python3 tests/migration/qmp.py "$log.src.qmp" query-migrate \
            > "$log.status" 2>&1
        grep -qE '"status": "(completed|failed)"' "$log.status" && break
        sleep 1
    done
    grep -q '"completed"' "$log.status" 2>/dev/null || ok=false
    python3 tests/migration/qmp.py "$log.src.qmp" quit > /dev/null 2>&1
    wait
    # Diagnostic only (timing): was the write still in flight at the move?
    if pattern_matches 7 32; then
        inflight="the write had already finished"
    else
        inflight="the write was in flight"
    fi

    if $ok; then
        boot_args "$dst_opts"
        timeout 300 "$dst" "${args[@]}" -serial file:"$log.dst" \
            -incoming "exec:cat $work/stream" \
            -qmp unix:"$log.dst.qmp",server,nowait > "$log.dst.err" 2>&1 &
        # The stream loads first ("inmigrate"), then the VM waits paused
        for _ in $(seq 120); do
            python3 tests/migration/qmp.py "$log.dst.qmp" query-status \
                > "$log.dst.status" 2>&1
            grep -q '"status": "inmigrate"' "$log.dst.status" || break
            sleep 1
        done
        python3 tests/migration/qmp.py "$log.dst.qmp" cont > /dev/null 2>&1 ||
            ok=false
        wait_for "$log.dst" "VIOMMU-DONE" 200 || ok=false
        python3 tests/migration/qmp.py "$log.dst.qmp" quit > /dev/null 2>&1
        wait
        grep -q "VIOMMU-DONE checks=[0-9]* failed=0" "$log.dst" || ok=false
        ! grep -q "VIOMMU-CHECK .* FAIL" "$log.dst" || ok=false
        # The write went on after the move: the disk holds all of it
        grep -q "VIOMMU-CHECK disk-pattern PASS" "$log.dst" || ok=false
        pattern_matches 7 32 || ok=false
    fi
    n=$((n + 1))
    if $ok; then
        echo "ok $n - migration $name: guest checks pass after the move" \
             "($inflight)"
    else
        echo "not ok $n - migration $name (logs: $log.*)"
        tail -n 5 "$log.dst" "$log.dst.err" 2>/dev/null | sed 's/^/#   /'
        rc=1
    fi
}

[ -f "$guest/vmlinuz" ] || die "no guest kernel in $guest"
ours=$BUILD/qemu
stock=$BUILD/upstream
migrate "$ours" "" "$ours" "" ours-to-ours
# QEMU's device has no MSI-X: a VM moving to or from it has none either
if [ -x "$stock/qemu-system-x86_64" ]; then
    migrate "$stock" "" "$ours" ",vectors=0" upstream-to-ours
    migrate "$ours" ",vectors=0" "$stock" "" ours-to-upstream
fi
exit $rc
