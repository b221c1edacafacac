#!/bin/bash
# The whole test suite: style, unit tests of the core, libqos qtests on
# x86_64 (pc, q35) and aarch64 (virt), and real Linux guests.  Builds what
# it needs first.  Every section prints TAP lines; this script counts them
# and ends with the time of each section and "N passed, N failed, N
# skipped".  A TAP "# SKIP" counts as skipped, never as passed, and fails
# the run unless its reason matches ALLOWED_SKIPS (an extended regex, for
# what a machine cannot run; none on the project's machines).  Exit status
# is non-zero on any failure, including a section that could not run.
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/lib.sh"
cd "$top"

LOGDIR=$BUILD/test-logs
mkdir -p "$LOGDIR"
passed=0
failed=0
skipped=0
times=()
ALLOWED_SKIPS=${ALLOWED_SKIPS:-}

# Run one section; its TAP "ok"/"not ok" lines count, its exit status too.
section() {
    local name=$1 log="$LOGDIR/$1.log" rc ok nok skip bad start=$SECONDS
    shift
    echo "==> $name"
    "$@" > "$log" 2>&1
    rc=$?
    grep -E '^(not )?ok ' "$log"
    skip=$(grep -cE '^ok .*# SKIP' "$log")
    ok=$(($(grep -cE '^ok ' "$log") - skip))
    nok=$(grep -cE '^not ok ' "$log")
    passed=$((passed + ok))
    failed=$((failed + nok))
    skipped=$((skipped + skip))
    # A skip this machine could have run is a failure
    bad=$(grep -E '^ok .*# SKIP' "$log" |
          { if [ -n "$ALLOWED_SKIPS" ]; then grep -vE "$ALLOWED_SKIPS"; else cat; fi; } |
          wc -l)
    if [ "$bad" -gt 0 ]; then
        echo "not ok - $name: $bad test(s) skipped that this machine can run"
        failed=$((failed + 1))
    fi
    if [ "$rc" -ne 0 ] && [ "$nok" -eq 0 ]; then
        echo "not ok - $name: exited with status $rc (log: $log)"
        tail -n 20 "$log" | sed 's/^/#   /'
        failed=$((failed + 1))
    elif [ "$ok" -eq 0 ] && [ "$nok" -eq 0 ]; then
        echo "not ok - $name: ran no test (log: $log)"
        failed=$((failed + 1))
    fi
    echo "# $name: $((SECONDS - start))s"
    times+=("$(printf '%-16s %5ds' "$name" $((SECONDS - start)))")
}

summary() {
    local t
    echo "# time per section:"
    for t in "${times[@]}"; do
        echo "#   $t"
    done
    echo "#   total            $((SECONDS))s"
    echo "$passed passed, $failed failed, $skipped skipped"
}

tap_step() {
    local what=$1
    shift
    if "$@"; then
        echo "ok - $what"
    else
        echo "not ok - $what"
        return 1
    fi
}

build_all() {
    tap_step "install dependencies" bash scripts/install-deps.sh &&
    tap_step "build QEMU with our virtio-iommu" bash scripts/build-qemu.sh &&
    tap_step "build x86_64 guest" bash tests/guest/build-guest.sh x86_64 &&
    tap_step "build aarch64 guest" bash tests/guest/build-guest.sh aarch64 &&
    tap_step "build x86_64 guest, Linux 7.x" \
        env GUEST_KERNEL=7 bash tests/guest/build-guest.sh x86_64 &&
    tap_step "build aarch64 guest, Linux 7.x" \
        env GUEST_KERNEL=7 bash tests/guest/build-guest.sh aarch64
}

section build build_all || true
if grep -q '^not ok' "$LOGDIR/build.log"; then
    echo "The build failed; nothing else can run."
    summary
    exit 1
fi
section checkpatch bash tests/checkpatch.sh
# The device as a patch series for QEMU: applies, gives the overlay tree
section series bash tests/series/check-series.sh
section unit bash tests/unit/run-unit-tests.sh
section fuzz bash tests/fuzz/run-fuzz.sh
# The sanitize flavour (clang, ASan, UBSan, libFuzzer; x86_64 only): the
# device fuzz target, then our qtests and a guest with any report fatal.
section build-sanitize tap_step "build QEMU with ASan, UBSan and libFuzzer" \
    bash scripts/build-qemu.sh --sanitize
section device-fuzz bash tests/fuzz/run-device-fuzz.sh
section qtest-x86_64 bash tests/qtest/run-qtests.sh x86_64
section qtest-aarch64 bash tests/qtest/run-qtests.sh aarch64
section mutants env MUTANTS="cache-flush readonly-write unmap-split" bash tests/mutation/run-mutants.sh
section sanitizers bash tests/sanitize/run-sanitize-tests.sh
section guest bash tests/guest/run-guest-tests.sh
# The main guest scenarios again on the newest Linux 7.x of Debian testing /
# trixie-backports (the 6.12 guests above are bookworm-backports').
section guest-linux7 env GUEST_KERNEL=7 bash tests/guest/run-guest-tests.sh --main
# DPDK's testpmd in the guest on two virtio-net NICs bound to vfio-pci
# (x86_64), on Linux 6.12 and on 7.x.
guest_dpdk() {
    local rc=0
    bash tests/guest/run-dpdk-guest-test.sh || rc=1
    GUEST_KERNEL=7 DPDK_SCENARIO=x86-dpdk-linux7 \
        bash tests/guest/run-dpdk-guest-test.sh || rc=1
    return $rc
}
section guest-dpdk guest_dpdk
# Stock QEMU (the same source with QEMU's own device), never shipped: the
# other side of the migration and libvirt tests.  Mostly ccache hits.
section build-upstream tap_step "build stock QEMU for comparison" \
    bash scripts/build-qemu.sh --upstream
section migration bash tests/migration/run-cross-migration.sh
section libvirt bash tests/libvirt/run-libvirt-test.sh

summary
[ "$failed" -eq 0 ]
