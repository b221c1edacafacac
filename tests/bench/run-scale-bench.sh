#!/bin/bash
# The scale benchmark: what the device's cost does as a guest gives it more
# mappings, our device and QEMU's own side by side in one run, no guest.
#
#   bash tests/bench/run-scale-bench.sh        (also run by `make bench`)
#
# The qtest scale-K-N (tests/qtest/virtio-iommu-scale-test.c, registered
# only with -m perf) gives a device N mappings of 4 KiB (K=4k) or 2 MiB
# (K=2m) over four domains of two endpoints, and measures memory, MAP rate,
# translation through the memory API, replay to an IOMMU notifier, the
# device's part of a live migration, one UNMAP of everything and system
# reset; scale-0 is the migration baseline without mappings.  Each test
# runs on ours (build/qemu) and on upstream's device (build/upstream, built
# by scripts/build-qemu.sh --upstream with our IOMMU test device), one
# right after the other, alternating which goes first.  The report
# (tests/bench/scale-report.py) prints the table, the ratios ours/upstream,
# each goal and whether it is met, writes docs/benchmarks-scale.md, and its
# last line is `scale: all targets met` or `scale: N targets missed`.
#
# Environment:
#   BENCH_SCALE_MAX=1000000    largest number of mappings (1000, 10000,
#                              100000, 1000000: the sizes up to it)
#   BENCH_SCALE_RUNS=1         rounds over all tests (figures: medians)
#   BENCH_SCALE_TIMEOUT=600    seconds one test may take on one device;
#                              past it the device "did not finish"
#   BENCH_SCALE_OUT=FILE       the report (default docs/benchmarks-scale.md)
# Work files and logs: build/bench-scale/.  Exits 0 when every test gave
# its figures on ours (a missed target is reported, not failed; upstream
# not finishing is a finding, not a failure).
set -uo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/scripts/lib.sh"

MAX=${BENCH_SCALE_MAX:-1000000}
RUNS=${BENCH_SCALE_RUNS:-1}
TIMEOUT=${BENCH_SCALE_TIMEOUT:-600}
OUT=${BENCH_SCALE_OUT:-$top/docs/benchmarks-scale.md}
for v in MAX RUNS TIMEOUT; do
    case "${!v}" in
        ''|*[!0-9]*) die "BENCH_SCALE_$v must be a number, not '${!v}'" ;;
    esac
done
[ "$MAX" -ge 1000 ] || die "BENCH_SCALE_MAX must be at least 1000"
[ "$RUNS" -ge 1 ] || die "BENCH_SCALE_RUNS must be at least 1"

work=$BUILD/bench-scale
logs=$work/logs
mkdir -p "$logs"
rm -f "$work"/results.tsv "$work"/status.tsv "$work"/meta.env "$logs"/*.log
touch "$work/results.tsv" "$work/status.tsv"
t_start=$SECONDS

ours_bin=$BUILD/qemu/qemu-system-x86_64
up_bin=$BUILD/upstream/qemu-system-x86_64
qos=$BUILD/qemu/tests/qtest/qos-test
[ -x "$ours_bin" ] || die "$ours_bin is not built (bash scripts/build-qemu.sh)"
[ -x "$qos" ] || die "$qos is not built (bash scripts/build-qemu.sh)"
grep -aqF "$OUR_MARKER" "$ours_bin" ||
    die "$ours_bin does not contain our device (marker '$OUR_MARKER')"
[ -x "$up_bin" ] ||
    die "$up_bin is not built (bash scripts/build-qemu.sh --upstream)"
grep -aqF "$OUR_MARKER" "$up_bin" && die "$up_bin contains our device, not upstream's"
"$up_bin" -device help 2>/dev/null | grep -q '"iommu-testdev"' ||
    die "$up_bin has no iommu-testdev: rebuild it (bash scripts/build-qemu.sh --upstream)"

# The tests, smallest first: scale-0, then each size, 4 KiB then 2 MiB
paths=$(QTEST_QEMU_BINARY=$ours_bin "$qos" -m perf -l 2>/dev/null | grep '/scale-')
tests=()
for t in scale-0 $(for n in 1000 10000 100000 1000000; do
                       [ "$n" -le "$MAX" ] && echo "scale-4k-$n scale-2m-$n"
                   done); do
    p=$(echo "$paths" | grep -m 1 "/$t\$") ||
        die "$qos has no test $t (is tests/qtest/virtio-iommu-scale-test.c built?)"
    tests+=("$p")
done

meta() { printf '%s=%s\n' "$1" "$2" >> "$work/meta.env"; }
cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
hv=$(lscpu 2>/dev/null | sed -n 's/^Hypervisor vendor: *//p')
meta date_start "$(date -u '+%F %T UTC')"
meta cpu_model "$cpu_model"
meta cpus "$(nproc)"
meta hypervisor "${hv:-none (bare metal)}"
meta memory "$(free -g | awk '/^Mem:/ { print $2 " GiB" }')"
meta host_kernel "$(uname -srm)"
meta load_start "$(cut -d' ' -f1-3 /proc/loadavg)"
meta qemu_version "$("$ours_bin" --version | head -n 1)"
meta git_commit "$(git -C "$top" log -1 --format='%h %s' 2>/dev/null)"
meta git_dirty "$(git -C "$top" status --porcelain --untracked-files=no -- hw tests/qtest 2>/dev/null |
                  awk '{ print $2 }' | tr '\n' ' ')"
meta bins "$(sha256sum "$ours_bin" "$up_bin" | cut -c1-16 | tr '\n' ' ')"
meta max "$MAX"
meta runs "$RUNS"
meta timeout "$TIMEOUT"

# run_one RUN DEV PATH: one test on one device; its figures to results.tsv
run_one() {
    local run=$1 dev=$2 path=$3 bin=$ours_bin name log rc t0
    name=${path##*/}
    log=$logs/run$run-$dev-$name.log
    [ "$dev" = upstream ] && bin=$up_bin
    t0=$SECONDS
    # SIGABRT: libqtest's handler takes its QEMU processes down with it
    QTEST_QEMU_BINARY=$bin timeout -s ABRT -k 30 "$TIMEOUT" \
        "$qos" -m perf -p "$path" > "$log" 2>&1
    rc=$?
    sed -n 's/^# scale: kind=\([^ ]*\) n=\([^ ]*\) \([^=]*\)=\(.*\)$/\1\t\2\t\3\t\4/p' "$log" |
        sed "s/^/$run\t$dev\t/" >> "$work/results.tsv"
    local status=ok
    if [ "$rc" != 0 ] && [ $((SECONDS - t0)) -ge "$TIMEOUT" ]; then
        status=timeout
    elif [ "$rc" != 0 ] || ! grep -q '^ok 1 ' "$log"; then
        status=failed
    fi
    printf '%s\t%s\t%s\t%s\t%s\n' "$run" "$dev" "$name" "$status" $((SECONDS - t0)) \
        >> "$work/status.tsv"
    printf '    %-16s %-8s %4ss %s\n' "$name" "$dev" $((SECONDS - t0)) "$status"
    [ "$status" = ok ] || echo "      (log ${log#"$top"/}: $(grep -m 1 'ERROR\|Bail\|migration:' "$log" | cut -c1-150))"
}

echo "==> scale benchmark: ${#tests[@]} tests up to $MAX mappings, $RUNS run(s), ours and upstream alternately"
i=0
for ((run = 1; run <= RUNS; run++)); do
    echo "==> run $run of $RUNS"
    for path in "${tests[@]}"; do
        if [ $(( (i + run) % 2 )) = 0 ]; then order="ours upstream"; else order="upstream ours"; fi
        i=$((i + 1))
        for dev in $order; do
            run_one "$run" "$dev" "$path"
        done
    done
done

meta load_end "$(cut -d' ' -f1-3 /proc/loadavg)"
meta date_end "$(date -u '+%F %T UTC')"
meta wall_seconds $((SECONDS - t_start))

echo "==> report: ${OUT#"$top"/}"
python3 "$top/tests/bench/scale-report.py" "$work" "$OUT" ||
    die "tests/bench/scale-report.py failed"
# Every test must have run to its end on ours
! awk -F'\t' '$2 == "ours" && $4 != "ok"' "$work/status.tsv" | grep -q .
