#!/bin/bash
# ubsan-control.sh CC WHAT: one TAP line, ok if a deliberate UB built by
# CC with -fsanitize=undefined stops the program under the UBSAN_OPTIONS
# the caller runs its tests with (so that a UBSan report fails them).
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/scripts/lib.sh"

cc=$1 what=$2
dir=$BUILD/ubsan-control
mkdir -p "$dir"
bin=$dir/control-$(basename "$cc")
if ! "$cc" -fsanitize=undefined -g -O1 -o "$bin" \
        "$top/tests/sanitize/ubsan-control.c" > "$dir/build.log" 2>&1; then
    echo "not ok - $what: UBSan negative control does not build with $cc"
    exit 1
fi
if out=$("$bin" 2>&1); then
    echo "not ok - $what: a deliberate UB with UBSAN_OPTIONS='${UBSAN_OPTIONS:-}' went on (exit 0)"
    exit 1
elif grep -q 'runtime error' <<< "$out"; then
    echo "ok - $what: a deliberate UB stops the run (UBSAN_OPTIONS='${UBSAN_OPTIONS:-}')"
else
    echo "not ok - $what: the UBSan negative control failed without a report"
    exit 1
fi
