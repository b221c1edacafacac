#!/bin/bash
# Run the device fuzz target (tests/qtest/fuzz/virtio_iommu_fuzz.c) of the
# sanitize build: QEMU's qemu-fuzz-x86_64 with ASan, UBSan and libFuzzer.
#
#   tests/fuzz/run-device-fuzz.sh            replay the committed corpus,
#                                            then fuzz for FUZZ_SECONDS
#                                            (default 30)
#   FUZZ_SECONDS=1800 tests/fuzz/run-device-fuzz.sh   the long run
#                                            (docs/fuzzing.md)
#
# Needs `bash scripts/build-qemu.sh --sanitize` (QEMU_BUILD overrides
# build/asan).  New inputs go to build/fuzz/device/corpus/, emptied first
# unless FUZZ_KEEP=1 (at some 20-50 inputs a second, replaying a grown
# corpus would eat a short run).  Prints one TAP line per stage.  A crash, a sanitizer report,
# a broken contract check, a timeout or an out-of-memory fails the run and
# leaves the reproducer in build/fuzz/device/; once the bug is fixed, the
# reproducer goes into tests/fuzz/corpus/device/ as regress-NAME, which
# every run replays.  Reproduce one with
#   build/asan/qemu-fuzz-x86_64 --fuzz-target=virtio-iommu-fuzz FILE
# (VIOMMU_FUZZ_TRACE=1 prints the actions it decodes).
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/scripts/lib.sh"
cd "$top" || exit 1

qemu=${QEMU_BUILD:-$BUILD/asan}
fuzz=$qemu/qemu-fuzz-x86_64
out=$BUILD/fuzz/device
seconds=${FUZZ_SECONDS:-30}
corpus=tests/fuzz/corpus/device
target=--fuzz-target=virtio-iommu-fuzz
[ "${FUZZ_KEEP:-0}" = 1 ] || rm -rf "$out/corpus"
mkdir -p "$out/corpus"

if [ ! -x "$fuzz" ]; then
    echo "not ok - device-fuzz: $fuzz not built (scripts/build-qemu.sh --sanitize)"
    exit 1
fi

# Any sanitizer report ends the process with a report libFuzzer sees.
# The replay checks for leaks at exit (memory no input can reach any
# more); while fuzzing, libFuzzer's per-input leak check would run most
# inputs twice, QEMU's deferred frees looking like leaks to it.
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:abort_on_error=1:print_stacktrace=1}
# -timeout: an input taking that long is a hang; -rss_limit_mb and
# -malloc_limit_mb: growth without bound is a failure.
flags=(-timeout=30 -rss_limit_mb=2048 -malloc_limit_mb=1024 -max_len=4096
       -print_final_stats=1 -artifact_prefix="$out/")

rc=0
if ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
        "$fuzz" "$target" "${flags[@]}" -runs=0 "$corpus" > "$out/replay.log" 2>&1; then
    echo "ok - device-fuzz: corpus replays clean ($(ls "$corpus" | wc -l) inputs)"
else
    tail -n 40 "$out/replay.log"
    echo "not ok - device-fuzz: corpus replay (log: $out/replay.log)"
    rc=1
fi

# New inputs go to a scratch corpus; the committed one stays as it is.
start=$(date +%s)
if ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0} \
        "$fuzz" "$target" "${flags[@]}" -detect_leaks=0 \
        -max_total_time="$seconds" "$out/corpus" "$corpus" \
        > "$out/fuzz.log" 2>&1; then
    execs=$(awk '/stat::number_of_executed_units/ { print $NF }' "$out/fuzz.log")
    rss=$(awk '/stat::peak_rss_mb/ { print $NF }' "$out/fuzz.log")
    cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$out/fuzz.log" | tail -n 1)
    echo "ok - device-fuzz: ${seconds}s, $execs executions, $cov, peak RSS ${rss} MB, no crash"
else
    tail -n 60 "$out/fuzz.log"
    repro=$(grep -oE "Test unit written to [^ ]+" "$out/fuzz.log" | tail -n 1)
    echo "not ok - device-fuzz: failed after $(( $(date +%s) - start ))s (${repro:-see $out/fuzz.log})"
    rc=1
fi
exit $rc
