#!/bin/bash
# Build the core fuzz target with clang (libFuzzer, ASan, UBSan) and run it.
# The build is meson's (meson.build, the fuzz-core flavour: clang, ASan +
# UBSan, -O1 -g) in build/fuzz-core; runs and reproducers go to build/fuzz.
#
#   tests/fuzz/run-fuzz.sh            replay the committed corpus, then fuzz
#                                     for FUZZ_SECONDS (default 20)
#   FUZZ_SECONDS=1800 tests/fuzz/run-fuzz.sh   the long run (docs/fuzzing.md)
#
# Prints one TAP line per stage; a crash leaves its reproducer in
# build/fuzz/ and fails the run.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/scripts/lib.sh"
cd "$top"

out=$BUILD/fuzz
dir=$BUILD/fuzz-core
fuzzer=$dir/fuzz-virtio-iommu-core
seconds=${FUZZ_SECONDS:-20}
corpus=tests/fuzz/corpus/core
mkdir -p "$out/corpus-core"

build() {
    if [ ! -f "$dir/build.ninja" ]; then
        CC=clang meson setup "$dir" -Dfuzz=enabled \
            -Db_sanitize=address,undefined -Db_lundef=false \
            -Doptimization=1 -Ddebug=true || return 1
    fi
    ninja -C "$dir" fuzz-virtio-iommu-core
}

if build > "$out/build.log" 2>&1; then
    echo "ok - fuzz: build core target"
else
    cat "$out/build.log"
    echo "not ok - fuzz: build core target"
    exit 1
fi

rc=0
if "$fuzzer" -runs=0 "$corpus" > "$out/replay.log" 2>&1; then
    echo "ok - fuzz: core corpus replays clean ($(ls "$corpus" | wc -l) inputs)"
else
    tail -n 30 "$out/replay.log"
    echo "not ok - fuzz: core corpus replay"
    rc=1
fi

# New inputs go to a scratch corpus; the committed one stays as it is.
if "$fuzzer" -max_total_time="$seconds" -print_final_stats=1 \
        -artifact_prefix="$out/" "$out/corpus-core" "$corpus" \
        > "$out/fuzz.log" 2>&1; then
    execs=$(awk '/number_of_executed_units/ { print $NF }' \
            "$out/fuzz.log")
    echo "ok - fuzz: core, ${seconds}s, $execs executions, no crash"
else
    tail -n 40 "$out/fuzz.log"
    echo "not ok - fuzz: core crashed (reproducer in $out/)"
    rc=1
fi
exit $rc
