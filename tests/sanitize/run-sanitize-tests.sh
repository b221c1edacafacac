#!/bin/bash
# Our qtests and a real guest on the sanitize build (clang, ASan, UBSan:
# scripts/build-qemu.sh --sanitize), where any sanitizer report fails.
#
#   tests/sanitize/run-sanitize-tests.sh
#
# QEMU_BUILD overrides build/asan; SANITIZE_GUESTS (default x86-demo)
# picks the guest scenarios of tests/guest/run-guest-tests.sh.  A report
# aborts QEMU (the qtest or guest fails) and is also looked for in the
# logs: 'runtime error' (UBSan), 'ERROR: AddressSanitizer',
# 'ERROR: LeakSanitizer'.  Leaks of QEMU's own code that are not ours are
# suppressed in tests/sanitize/lsan.supp, each with its reason.  Prints
# TAP; exits non-zero on any failure.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/scripts/lib.sh"
cd "$top" || exit 1

QEMU_BUILD=${QEMU_BUILD:-$BUILD/asan}
export QEMU_BUILD
export ASAN_OPTIONS=${ASAN_OPTIONS:-halt_on_error=1:abort_on_error=1:detect_leaks=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$top/tests/sanitize/lsan.supp:print_suppressions=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:abort_on_error=1:print_stacktrace=1}
logdir=$BUILD/sanitize
mkdir -p "$logdir"
REPORTS='runtime error|ERROR: AddressSanitizer|ERROR: LeakSanitizer|SUMMARY: UndefinedBehaviorSanitizer'

if [ ! -x "$QEMU_BUILD/qemu-system-x86_64" ]; then
    echo "not ok - sanitizers: $QEMU_BUILD not built (scripts/build-qemu.sh --sanitize)"
    exit 1
fi

rc=0
# The same options stop a deliberate UB built as QEMU is (clang)
bash tests/sanitize/ubsan-control.sh clang sanitizers || rc=1
# no_reports NAME LOG...: one TAP line, failed if any log has a report
no_reports() {
    local name=$1 hits
    shift
    hits=$(grep -hE "$REPORTS" "$@" 2>/dev/null | head -n 5)
    if [ -z "$hits" ]; then
        echo "ok - sanitizers: no report in $name"
    else
        echo "not ok - sanitizers: reports in $name"
        printf '%s\n' "$hits" | sed 's/^/#   /'
        rc=1
    fi
}

start=$SECONDS
bash tests/qtest/run-qtests.sh x86_64 > "$logdir/qtest-x86_64.log" 2>&1 || rc=1
grep -E '^(not )?ok ' "$logdir/qtest-x86_64.log" |
    sed -E 's#^(not )?ok [0-9]+ [^ ]*/([^/ ]+)#\1ok - sanitizers: qtest \2#'
if ! grep -qE '^ok ' "$logdir/qtest-x86_64.log"; then
    echo "not ok - sanitizers: the qtests did not run (log: $logdir/qtest-x86_64.log)"
    tail -n 20 "$logdir/qtest-x86_64.log" | sed 's/^/#   /'
fi
no_reports "the qtests (log: $logdir/qtest-x86_64.log)" "$logdir/qtest-x86_64.log"
echo "# qtests: $((SECONDS - start))s"

start=$SECONDS
# shellcheck disable=SC2086
bash tests/guest/run-guest-tests.sh ${SANITIZE_GUESTS:-x86-demo} \
    > "$logdir/guest.log" 2>&1 || rc=1
grep -E '^(not )?ok ' "$logdir/guest.log" |
    sed -E 's/^(not )?ok [0-9]+ - /\1ok - sanitizers: guest /'
logs=()
for sc in ${SANITIZE_GUESTS:-x86-demo}; do
    logs+=("$BUILD/guest-tests/$sc.log")
done
no_reports "the guests" "$logdir/guest.log" "${logs[@]}"
echo "# guests: $((SECONDS - start))s"
exit $rc
