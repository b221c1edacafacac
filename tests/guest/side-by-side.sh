#!/bin/bash
# Run real-guest scenarios on our device and on upstream's, and compare:
#
#   [GUEST_KERNEL=6.12|7] tests/guest/side-by-side.sh [--main | SCENARIO...]
#                           (default: every default scenario of
#                           run-guest-tests.sh; --main: its main ones)
#
# runs tests/guest/run-guest-tests.sh once with QEMU_BUILD=build/qemu
# (ours) and once with QEMU_BUILD=build/upstream (QEMU's own device, built
# by `scripts/build-qemu.sh --upstream`), one after the other, then prints
# a table with one row per check and the columns `ours` and `upstream`
# (ok, FAIL or missing), the guest run seconds per scenario and the rows
# that differ, with the failing side's diagnostic.  The table goes to
# build/guest-tests/side-by-side.txt; each side's TAP output and console
# logs to build/guest-tests/side-by-side/{ours,upstream}/ (below
# build/guest-tests/linux-7/ with GUEST_KERNEL=7).
#
# A comparison tool: exits 0 when ours passed every check, whatever
# upstream did; 1 otherwise.  SIDE_OURS and SIDE_UPSTREAM override the two
# build directories.
set -uo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/scripts/lib.sh"
. "$top/tests/guest/guest-lib.sh"

runner=$top/tests/guest/run-guest-tests.sh
logdir=$(guest_logdir) || exit 2
sbs=$logdir/side-by-side
table=$logdir/side-by-side.txt
mkdir -p "$sbs"

if [ "${1:-}" = --main ]; then
    scenarios=$(bash "$runner" --list | sed -n 's/^main: *//p')
elif [ $# -gt 0 ]; then
    scenarios=$*
else
    scenarios=$(bash "$runner" --list | sed -n 's/^default: *//p')
fi
declare -A build=([ours]=${SIDE_OURS:-build/qemu}
                  [upstream]=${SIDE_UPSTREAM:-build/upstream})

# run_side SIDE: the scenarios on that side's build; TAP to SIDE.tap.
run_side() {
    local side=$1 dir=${build[$1]} sc start rc=0
    local d=$dir
    case "$d" in /*) ;; *) d=$top/$d ;; esac
    rm -rf "${sbs:?}/$side"
    mkdir -p "$sbs/$side"
    if [ ! -x "$d/qemu-system-x86_64" ] && [ ! -x "$d/qemu-system-aarch64" ]; then
        echo "# $side: no QEMU build in $dir" | tee "$sbs/$side.tap"
        return 1
    fi
    echo "== $side ($dir): $scenarios" >&2
    start=$SECONDS
    # shellcheck disable=SC2086
    QEMU_BUILD=$dir bash "$runner" $scenarios > "$sbs/$side.tap" 2>&1 || rc=$?
    for sc in $scenarios; do
        [ -f "$logdir/$sc.log" ] && cp "$logdir/$sc.log" "$sbs/$side/$sc.log"
    done
    echo "   $(grep -cE '^ok ' "$sbs/$side.tap") ok," \
         "$(grep -cE '^not ok ' "$sbs/$side.tap") not ok," \
         "runner exit status $rc, $((SECONDS - start)) s" >&2
    return "$rc"
}

ours_rc=0
run_side ours || ours_rc=$?
run_side upstream || true

# The table.  A check's key is its TAP description without a trailing
# parenthesised part (counts and addresses that may differ between runs).
{
    echo "Side-by-side real-guest run, $(date -u '+%F %T') UTC"
    echo "ours: ${build[ours]}   upstream: ${build[upstream]}"
    echo "guest kernel: GUEST_KERNEL=$(guest_kernel)"
    echo "scenarios: $scenarios"
    echo
    awk '
        function key(s) {
            sub(/^(not )?ok [0-9]+ - /, "", s)
            sub(/ \([^()]*\)$/, "", s)
            return s
        }
        FNR == 1 { side = (FILENAME ~ /upstream\.tap$/) ? "upstream" : "ours" }
        /^(not )?ok [0-9]+ - / {
            k = key($0)
            if (!(k in seen)) { seen[k] = 1; order[++n] = k }
            res[side, k] = /^ok / ? "ok" : "FAIL"
            last = side SUBSEP k
            next
        }
        /^#   / && last != "" && !(last in detail) {
            d = $0; sub(/^#   /, "", d); detail[last] = d; next
        }
        /^# [^ ]+: guest ran / {
            sc = $2; sub(/:$/, "", sc); t = $5; sub(/s,$/, "", t)
            if (!(sc in scseen)) { scseen[sc] = 1; scorder[++m] = sc }
            secs[side, sc] = t
        }
        { last = "" }
        END {
            w = 5
            for (i = 1; i <= n; i++) if (length(order[i]) > w) w = length(order[i])
            printf "%-" w "s  %-7s  %s\n", "check", "ours", "upstream"
            for (i = 1; i <= n; i++) {
                k = order[i]
                o = (("ours", k) in res) ? res["ours", k] : "missing"
                u = (("upstream", k) in res) ? res["upstream", k] : "missing"
                printf "%-" w "s  %-7s  %s\n", k, o, u
                if (o != "ok") of++
                if (u != "ok") uf++
                if (o != u) diff[++nd] = k
            }
            printf "\nguest run seconds (first boot to power-off)\n"
            printf "%-20s  %7s  %8s\n", "scenario", "ours", "upstream"
            for (i = 1; i <= m; i++) {
                sc = scorder[i]
                printf "%-20s  %7s  %8s\n", sc,
                    (("ours", sc) in secs) ? secs["ours", sc] : "-",
                    (("upstream", sc) in secs) ? secs["upstream", sc] : "-"
            }
            printf "\n%d checks; ours: %d not ok; upstream: %d not ok\n", n, of + 0, uf + 0
            if (nd == 0) { print "no differences"; exit }
            printf "\ndifferences:\n"
            for (i = 1; i <= nd; i++) {
                k = diff[i]
                o = (("ours", k) in res) ? res["ours", k] : "missing"
                u = (("upstream", k) in res) ? res["upstream", k] : "missing"
                printf "  %s: ours %s, upstream %s\n", k, o, u
                if (("ours", k) in detail) printf "      ours: %s\n", detail["ours", k]
                if (("upstream", k) in detail) printf "      upstream: %s\n", detail["upstream", k]
            }
        }
    ' "$sbs/ours.tap" "$sbs/upstream.tap"
} > "$table"
cat "$table"
echo
echo "table: $table; TAP and logs: $sbs/"

if [ "$ours_rc" = 0 ] && ! grep -q '^not ok ' "$sbs/ours.tap" &&
   grep -q '^ok ' "$sbs/ours.tap"; then
    exit 0
fi
exit 1
