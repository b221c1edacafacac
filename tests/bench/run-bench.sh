#!/bin/bash
# The benchmark suite: real guests on our device, QEMU's upstream device,
# identity domains and no IOMMU at all, side by side in one run.
#
#   make bench                  (or: bash tests/bench/run-bench.sh)
#
# The one entry point for every benchmark: the guests, then the device's
# host time per request (a qtest) and the core microbenchmark
# (tests/bench/run-core-bench.sh, also runnable on its own).
#
# prints the results and writes docs/benchmarks.md.  Every figure comes
# from guests booted in this run: the configurations are interleaved
# round-robin over BENCH_RUNS runs, and the report gives the median and the
# min-max of each figure and ratios of the medians.
#
# Configurations (x86_64 q35 guest, TCG, -smp 2, Debian 6.12 kernel):
#   ours       build/qemu, -device virtio-iommu-pci
#   upstream   build/upstream (scripts/build-qemu.sh --upstream): QEMU's own
#              device from the same source and core patches
#   identity   build/qemu with virtio-iommu-pci, guest iommu.passthrough=1:
#              bypass domains, the ceiling for translated DMA
#   noiommu    build/qemu without virtio-iommu, iommu_platform=off
# Boots ("kinds") of one run: lazy-{ours,upstream,identity,noiommu} run
# randread, seqread and net with iommu.strict=0 (DMA-FQ domains);
# strict-{ours,upstream} run randread and maploop with iommu.strict=1.
# The guest side is tests/bench/guest/test-bench.sh and
# tests/bench/guest/viommu-bench.c (tests/guest/image/viommu-vfio.c for
# maploop).
#
# Environment:
#   BENCH_RUNS=3          rounds over all kinds (0: none, e.g. profile only)
#   BENCH_SECONDS=10      measured seconds per workload (plus 1 s warm-up)
#   BENCH_THREADS=4       randread threads in the guest
#   BENCH_SEQ_THREADS=1   seqread threads in the guest
#   BENCH_DISK_MIB=256    size of the disk image (random data, read-only)
#   BENCH_PROFILE=1       also profile the strict randread boot of ours and
#                         upstream with perf record -g (host QEMU process)
#   BENCH_KINDS="..."     only these kinds (default: all six)
#   BENCH_COST_RUNS=5     runs of the qtest request-cost on each device (the
#                         host time of a MAP and an UNMAP, no guest)
#   BENCH_OUT=FILE        the report (default docs/benchmarks.md)
#   BENCH_VHU_TIMEOUT=300 seconds per guest of the vhost-user IOTLB runs
#                         (tests/guest/run-vhost-user-tests.sh: ours and
#                         upstream, strict and lazy, 64 MiB each way; a
#                         transfer gets a fifth of it)
# Also runs tests/bench/run-core-bench.sh, if present, and includes its
# output, and the vhost-user IOTLB figure: tests/guest/run-vhost-user-tests.sh
# on ours and upstream, strict and lazy (IOTLB misses and invalidations per
# MiB moved through a DPDK switch, and throughput).  Work files and console logs: build/bench/.  Exits 0 when every
# boot produced its figures; results that miss a target are reported, not
# failed.
set -uo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/scripts/lib.sh"
. "$top/tests/guest/guest-lib.sh"

RUNS=${BENCH_RUNS:-3}
SECS=${BENCH_SECONDS:-10}
THREADS=${BENCH_THREADS:-4}
SEQ_THREADS=${BENCH_SEQ_THREADS:-1}
DISK_MIB=${BENCH_DISK_MIB:-256}
PROFILE=${BENCH_PROFILE:-0}
COST_RUNS=${BENCH_COST_RUNS:-5}
OUT=${BENCH_OUT:-$top/docs/benchmarks.md}
ALL_KINDS="lazy-ours lazy-upstream lazy-identity lazy-noiommu strict-ours strict-upstream"
KINDS=${BENCH_KINDS:-$ALL_KINDS}

for v in RUNS SECS THREADS SEQ_THREADS DISK_MIB COST_RUNS; do
    case "${!v}" in
        ''|*[!0-9]*) die "BENCH_${v/SECS/SECONDS} must be a number, not '${!v}'" ;;
    esac
done
[ "$SECS" -ge 1 ] || die "BENCH_SECONDS must be at least 1"
for k in $KINDS; do
    case " $ALL_KINDS " in *" $k "*) ;; *) die "unknown kind '$k' (known: $ALL_KINDS)" ;; esac
done

work=$BUILD/bench
logs=$work/logs
DISK=$work/disk.img
mkdir -p "$logs"
rm -f "$work"/results.tsv "$work"/boots.tsv "$work"/problems.txt \
      "$work"/perf-*.txt "$work"/core.out "$work"/meta.env "$work"/cost.txt \
      "$work"/vhost-iotlb.tsv "$work"/vhost-user.tap
touch "$work/results.tsv" "$work/boots.tsv" "$work/problems.txt"

problem() {
    echo "$*" >> "$work/problems.txt"
    echo "bench: problem: $*" >&2
}

t_start=$SECONDS

# Busy and steal ticks of the whole machine (/proc/stat), and the CPU
# seconds of this script and its children (QEMU): what other processes
# used during the run is the difference.
cpu_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $9 }' /proc/stat; }
# own_cpu: sets OWN_CPU.  `times` must run in this shell, not in a
# pipeline or command substitution (a subshell reports its own times).
own_cpu() {
    times > "$work/times"
    OWN_CPU=$(awk '{ for (i = 1; i <= NF; i++) { split($i, t, /[ms]/); s += t[1] * 60 + t[2] } }
                   END { printf "%.2f", s }' "$work/times")
}
ticks_start=$(cpu_ticks)
own_cpu
own_start=$OWN_CPU

# ---------------------------------------------------------------- setup

ours_bin=$top/build/qemu/qemu-system-x86_64
up_bin=$top/build/upstream/qemu-system-x86_64
[ -x "$ours_bin" ] || die "$ours_bin is not built (bash scripts/build-qemu.sh)"
grep -aqF "$OUR_MARKER" "$ours_bin" ||
    die "$ours_bin does not contain our device (marker '$OUR_MARKER')"
if [ ! -x "$up_bin" ]; then
    problem "build/upstream is not built (bash scripts/build-qemu.sh --upstream): upstream columns are empty"
    KINDS=$(echo "$KINDS" | tr ' ' '\n' | grep -v upstream | tr '\n' ' ')
elif grep -aqF "$OUR_MARKER" "$up_bin"; then
    die "$up_bin contains our device, not upstream's"
fi

echo "==> guest (tests/guest/build-guest.sh x86_64)"
bash "$top/tests/guest/build-guest.sh" x86_64 | tail -n 1 ||
    die "could not build the x86_64 guest"
[ -f "$top/tests/guest/image/viommu-vfio.c" ] ||
    problem "tests/guest/image/viommu-vfio.c is not there yet: no maploop figures (benchmark 6)"

if [ "$(stat -c %s "$DISK" 2>/dev/null)" != $((DISK_MIB * 1048576)) ]; then
    echo "==> disk image: $DISK_MIB MiB of random data in $DISK"
    if ! head -c $((DISK_MIB * 1048576)) /dev/urandom > "$DISK.tmp" ||
       ! mv "$DISK.tmp" "$DISK"; then
        die "could not write $DISK"
    fi
fi

# Identity of the binaries, to notice a rebuild in the middle of a run.
bin_ids() {
    local b
    for b in "$ours_bin" "$up_bin"; do
        [ -x "$b" ] && sha256sum "$b" | cut -c1-16
    done | tr '\n' ' '
}
bins_at_start=$(bin_ids)

meta() { printf '%s=%s\n' "$1" "$2" >> "$work/meta.env"; }
cpu_model=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n 1)
[ -n "$cpu_model" ] || cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
meta date_start "$(date -u '+%F %T UTC')"
meta cpu_model "$cpu_model"
meta cpus "$(nproc) online, $(lscpu 2>/dev/null | sed -n 's/^Thread(s) per core: *//p') thread(s) per core"
hv=$(lscpu 2>/dev/null | sed -n 's/^Hypervisor vendor: *//p')
meta hypervisor "${hv:-none (bare metal)}"
meta memory "$(free -g | awk '/^Mem:/ { print $2 " GiB" }')"
meta host_kernel "$(uname -srm)"
meta load_start "$(cut -d' ' -f1-3 /proc/loadavg)"
meta qemu_version "$("$ours_bin" --version | head -n 1)"
meta qemu_source "$(qemu_version)"
meta upstream_version "$([ -x "$up_bin" ] && "$up_bin" --version | head -n 1)"
meta git_commit "$(git -C "$top" log -1 --format='%h %s' 2>/dev/null)"
meta git_dirty "$(git -C "$top" status --porcelain --untracked-files=no 2>/dev/null | awk '{ print $2 }' | tr '\n' ' ')"
meta guest_kernel "$(cat "$BUILD/guest/x86_64/kernel-version")"
meta bins "$bins_at_start"
meta runs "$RUNS"
meta seconds "$SECS"
meta threads "$THREADS"
meta seq_threads "$SEQ_THREADS"
meta disk_mib "$DISK_MIB"
meta kinds "$KINDS"
meta profile "$PROFILE"
meta cost_runs "$COST_RUNS"

# ---------------------------------------------------------------- boots

# boot_kind KIND WORKLOADS LOG [QEMU ARGS...]: one guest of configuration
# KIND running WORKLOADS (comma-separated); guest_boot's status.
boot_kind() {
    local kind=$1 wl=$2 log=$3 mode cfg qb=build/qemu plat=on expect append units limit
    shift 3
    local -a dev=()
    mode=${kind%%-*} cfg=${kind#*-}
    append="viommu.test=bench viommu.bench=$wl viommu.bench_seconds=$SECS"
    append+=" viommu.bench_threads=$THREADS viommu.bench_seq_threads=$SEQ_THREADS"
    case "$cfg" in
        upstream) qb=build/upstream ;;
        identity) append+=" iommu.passthrough=1" ;;
        noiommu) plat=off ;;
    esac
    case "$cfg/$mode" in
        noiommu/*) expect="" ;;
        identity/*) expect=identity ;;
        */strict) expect=DMA ;;
        *) expect=DMA-FQ ;;
    esac
    if [ "$mode" = strict ]; then append+=" iommu.strict=1"; else append+=" iommu.strict=0"; fi
    [ -n "$expect" ] && append+=" viommu.expect_type=$expect"
    [ "$cfg" != noiommu ] && dev+=(-device virtio-iommu-pci)
    units=0
    case ",$wl," in *,randread,*) units=$((units + 1)) ;; esac
    case ",$wl," in *,seqread,*) units=$((units + 1)) ;; esac
    case ",$wl," in *,randread,*|*,seqread,*)
        dev+=(-drive "file=$DISK,if=none,id=d0,format=raw,readonly=on"
              -device "virtio-blk-pci,drive=d0,iommu_platform=$plat,disable-legacy=on") ;;
    esac
    case ",$wl," in *,net,*)
        units=$((units + 3))
        # As NET_ARGS in tests/guest/run-guest-tests.sh.
        # shellcheck disable=SC2054
        dev+=(-netdev hubport,id=n0,hubid=0 -netdev hubport,id=n1,hubid=0
              -device "virtio-net-pci,netdev=n0,iommu_platform=$plat,disable-legacy=on,mac=52:54:00:00:00:01,romfile="
              -device e1000e,netdev=n1,mac=52:54:00:00:00:02,romfile=) ;;
    esac
    case ",$wl," in *,maploop,*)
        units=$((units + 1))
        # virtio-iommu offers no interrupt remapping.
        append+=" vfio_iommu_type1.allow_unsafe_interrupts=1"
        dev+=(-device edu) ;;
    esac
    limit=$((150 + 2 * units * (SECS + 6)))
    # The image is read through the host page cache: read it first.
    cat "$DISK" > /dev/null
    QEMU_BUILD=$qb guest_boot x86_64 "$log" "$limit" \
        "viommu.timeout=$((limit - 20)) $append" "${dev[@]}" "$@"
}

kind_workloads() {
    case "$1" in
        lazy-*) echo randread,seqread,net ;;
        strict-*) echo randread,maploop ;;
    esac
}

# The metric of a result line.
metric_of() {
    case "$1" in
        randread) echo iops ;;
        seqread|net-*) echo mbps ;;
        maploop) echo pairs_per_sec ;;
    esac
}

# collect RUN KIND WORKLOADS LOG RC: check the boot, record its figures.
collect() {
    local run=$1 kind=$2 wl=$3 log=$4 rc=$5 cfg=${2#*-} checks c w name rest m v line
    local bad="" summary=""
    local -a need=(no-iommu-errors no-kernel-oops)
    checks=$(guest_checks "$log")
    [ "$cfg" != noiommu ] && need+=(driver-bound endpoint-groups domain-type)
    guest_done "$log" || bad+=" no VIOMMU-DONE (QEMU status $rc);"
    [ "$rc" = 0 ] || bad+=" QEMU exit status $rc;"
    for c in "${need[@]}"; do
        echo "$checks" | grep -q "^$c PASS" && continue
        line=$(echo "$checks" | grep -m 1 "^$c " | cut -c1-160)
        bad+=" ${line:-$c not reported};"
    done
    # Without a virtio-iommu the driver must not have found one.
    if [ "$cfg" = noiommu ] && echo "$checks" | grep -q '^driver-bound PASS'; then
        bad+=" the noiommu guest found an IOMMU;"
    fi
    if [ -n "$bad" ]; then
        problem "run $run $kind: figures discarded:$bad (log ${log#"$top"/})"
        echo "$run $kind - ${BOOT_SECONDS:-0} $rc invalid" >> "$work/boots.tsv"
        return 1
    fi
    for w in ${wl//,/ }; do
        [ "$w" = net ] && w="net-virtio-to-e1000e net-e1000e-to-virtio"
        for name in $w; do
            if ! echo "$checks" | grep -q "^bench-$name PASS"; then
                line=$(echo "$checks" | grep -m 1 "^bench-$name " | cut -c1-200)
                problem "run $run $kind: no $name figure: ${line:-not reported} (log ${log#"$top"/})"
                continue
            fi
            rest=$(guest_lines "$log" | sed -n "s/^VIOMMU-INFO bench $name //p" | head -n 1)
            m=$(metric_of "$name")
            v=$(echo " $rest" | grep -oE " $m=[0-9.]+" | cut -d= -f2)
            if [ -z "$v" ]; then
                problem "run $run $kind: $name line without $m: $rest"
                continue
            fi
            printf '%s\t%s\t%s\t%s\t%s\n' "$run" "$kind" "$name" "$m" "$v" >> "$work/results.tsv"
            summary+=" $name $v"
        done
    done
    echo "$run $kind - ${BOOT_SECONDS:-0} $rc ok" >> "$work/boots.tsv"
    echo "    $kind: ${BOOT_SECONDS}s;$summary"
}

# ---------------------------------------------------------------- runs

read -ra kinds <<< "$KINDS"
nk=${#kinds[@]}
est=$(( RUNS * nk * 15 + RUNS * (4 * (SECS + 1) + 4) * $(echo "$KINDS" | grep -o 'lazy-' | wc -l)
        + RUNS * 2 * (SECS + 1) * $(echo "$KINDS" | grep -o 'strict-' | wc -l) ))
[ "$PROFILE" = 1 ] && est=$((est + 2 * (SECS + 20)))
echo "==> $RUNS run(s) of: $KINDS; $SECS s per workload; about $((est / 60 + 1)) min"
for ((run = 1; run <= RUNS; run++)); do
    echo "==> run $run of $RUNS"
    # Round-robin: each run starts one kind further.
    for ((i = 0; i < nk; i++)); do
        kind=${kinds[$(( (i + run - 1) % nk ))]}
        wl=$(kind_workloads "$kind")
        log=$logs/run$run-$kind.log
        rc=0
        boot_kind "$kind" "$wl" "$log" || rc=$?
        collect "$run" "$kind" "$wl" "$log" "$rc" || true
    done
done

# ---------------------------------------------------------------- profile

# profile_cfg ours|upstream: the strict randread boot with perf record -g on
# the QEMU process for the measured seconds of the workload.
profile_cfg() {
    local cfg=$1 log=$logs/profile-$1.log pidf=$work/profile-$1.pid data=$work/perf-$1.data
    local watcher i rc=0 dur
    rm -f "$pidf" "$data"
    : > "$work/perf-$cfg.record"
    dur=$(awk -v s="$SECS" 'BEGIN { d = s - 0.75; print (d < 1 ? 1 : d) }')
    (
        for ((i = 0; i < 1200; i++)); do
            [ -s "$pidf" ] && tr -d '\r' < "$log" | grep -q 'VIOMMU-INFO bench-start randread' && break
            sleep 0.25
        done
        [ -s "$pidf" ] || exit 1
        echo "$(date +%T.%N) workload started"
        sleep 1   # the workload's warm-up
        # It ends a little before the workload does: detecting the start
        # took up to 0.25 s, attaching takes some more.
        perf record -g -p "$(cat "$pidf")" -o "$data" -- sleep "$dur"
        echo "$(date +%T.%N) perf exit status $?"
    ) >> "$work/perf-$cfg.record" 2>&1 &
    watcher=$!
    boot_kind "strict-$cfg" randread "$log" -pidfile "$pidf" \
        -name "bench-$cfg,debug-threads=on" || rc=$?
    echo "$(date +%T.%N) QEMU exited" >> "$work/perf-$cfg.record"
    wait "$watcher"
    if [ "$rc" != 0 ] || [ ! -s "$data" ]; then
        problem "profile $cfg: no profile (QEMU status $rc; perf: $(tail -n 1 "$work/perf-$cfg.record" 2>/dev/null))"
        return 1
    fi
    perf report -i "$data" --no-children --stdio -g none --sort dso,sym \
        --percent-limit 0 > "$work/perf-$cfg.txt" 2>/dev/null
    perf report -i "$data" --no-children --stdio -g none --sort comm \
        > "$work/perf-$cfg-comm.txt" 2>/dev/null
    guest_lines "$log" | sed -n 's/^VIOMMU-INFO bench randread /iops under perf: /p' \
        > "$work/perf-$cfg-result.txt"
    echo "    profile $cfg: $(grep -c '%' "$work/perf-$cfg.txt") symbols; $(cat "$work/perf-$cfg-result.txt")"
}

if [ "$PROFILE" = 1 ]; then
    echo "==> host profile (perf record -g, strict randread)"
    if ! command -v perf > /dev/null; then
        echo "perf is missing: installing linux-perf with apt"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends linux-perf ||
            problem "perf is not installed and apt-get install linux-perf failed"
    fi
    if command -v perf > /dev/null; then
        for cfg in ours upstream; do
            [ "$cfg" = upstream ] && [ ! -x "$up_bin" ] && continue
            profile_cfg "$cfg" || true
        done
    fi
fi

# ---------------------------------------------------------------- core

core=$top/tests/bench/run-core-bench.sh
if [ -f "$core" ]; then
    echo "==> core microbenchmark (tests/bench/run-core-bench.sh)"
    if ! bash "$core" > "$work/core.out" 2> "$work/core.err"; then
        problem "tests/bench/run-core-bench.sh failed: $(tail -n 1 "$work/core.err")"
    fi
fi

# ---------------------------------------------------------------- requests

# The device's own host time per MAP and per UNMAP request, without a
# guest: the qtest request-cost (tests/qtest/virtio-iommu-test.c, only
# under -m perf) on ours and on upstream's device, alternately.
qos=$top/build/qemu/tests/qtest/qos-test
cost_path=""
[ -x "$qos" ] && cost_path=$(QTEST_QEMU_BINARY=$ours_bin "$qos" -m perf -l 2> /dev/null |
                             grep -m 1 '/request-cost$')
if [ -n "$cost_path" ] && [ "$COST_RUNS" -gt 0 ]; then
    echo "==> request cost on the host (qtest request-cost, $COST_RUNS runs)"
    for ((i = 1; i <= COST_RUNS; i++)); do
        for cfg in ours upstream; do
            bin=$ours_bin
            [ "$cfg" = upstream ] && bin=$up_bin
            [ -x "$bin" ] || continue
            line=$(QTEST_QEMU_BINARY=$bin "$qos" -m perf -p "$cost_path" 2>&1 |
                   sed -n 's/^# request-cost: //p')
            if [ -z "$line" ]; then
                problem "request-cost on $cfg gave no figures"
                continue
            fi
            echo "$i $cfg $line" >> "$work/cost.txt"
            echo "    $cfg: $line"
        done
    done
else
    problem "no request-cost qtest in $qos: no request cost figures"
fi

# ---------------------------------------------------------------- vhost-user

# The IOTLB figure: the vhost-user scenario (a DPDK switch on the host) on
# ours and upstream, strict and lazy, in this run.
echo "==> vhost-user IOTLB misses (tests/guest/run-vhost-user-tests.sh)"
if VHU_RESULTS=$work/vhost-iotlb.tsv VHU_TIMEOUT=${BENCH_VHU_TIMEOUT:-300} \
        bash "$top/tests/guest/run-vhost-user-tests.sh" \
        ours-strict upstream-strict ours-lazy upstream-lazy > "$work/vhost-user.tap" 2>&1; then
    echo "    $(grep -c '^ok' "$work/vhost-user.tap") checks passed"
else
    problem "vhost-user runs: $(grep -c '^not ok' "$work/vhost-user.tap") check(s) failed ($work/vhost-user.tap)"
fi
[ "$(wc -l < "$work/vhost-iotlb.tsv" 2>/dev/null || echo 0)" -ge 4 ] ||
    problem "vhost-user: not every configuration gave IOTLB figures"

# ---------------------------------------------------------------- report

[ "$(bin_ids)" = "$bins_at_start" ] ||
    problem "a QEMU binary changed during the run (rebuilt?): figures may mix builds"
meta load_end "$(cut -d' ' -f1-3 /proc/loadavg)"
own_cpu
meta cpu_other "$(awk -v a="$ticks_start" -v b="$(cpu_ticks)" -v o1="$own_start" \
    -v o2="$OWN_CPU" -v hz="$(getconf CLK_TCK)" -v n="$(nproc)" -v w=$((SECONDS - t_start)) '
    BEGIN { split(a, x, " "); split(b, y, " "); if (w < 1) w = 1
            other = ((y[1] - x[1]) / hz - (o2 - o1)) / (w * n) * 100
            printf "%.1f %.1f", (other < 0 ? 0 : other), (y[2] - x[2]) / hz / (w * n) * 100 }')"
meta date_end "$(date -u '+%F %T UTC')"
meta wall_seconds $((SECONDS - t_start))

echo "==> report: ${OUT#"$top"/}"
python3 "$top/tests/bench/bench-report.py" "$work" "$OUT" ||
    die "tests/bench/bench-report.py failed"
if [ -s "$work/problems.txt" ]; then
    echo "bench: $(wc -l < "$work/problems.txt") problem(s), listed in the report" >&2
fi
echo "bench: done in $(( (SECONDS - t_start) / 60 )) min $(( (SECONDS - t_start) % 60 )) s"
# Any figure missing (a boot's discarded, a build or tool absent, a
# profile or request cost not taken) fails the run; a missed target does
# not.
[ ! -s "$work/problems.txt" ]
