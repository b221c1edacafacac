#!/bin/bash
# QEMU's scripts/checkpatch.pl over every C file and every patch we carry
# (patches/qemu: core fixes; patches/device: our hooks in QEMU's build
# files), one TAP line each.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/lib.sh"
cd "$top"

checkpatch=$(ls "$BUILD"/src-*/scripts/checkpatch.pl 2>/dev/null | head -n 1)
[ -n "$checkpatch" ] || die "no QEMU source tree with scripts/checkpatch.pl"

rc=0
for f in $(git ls-files '*.c' '*.h' | grep -v '^tests/unit/shim/'); do
    # Headers under standard-headers mirror Linux's uapi; checkpatch asks
    # for them to come through update-linux-headers.sh, which cannot apply
    # to a header written here.
    out=$(perl "$checkpatch" --no-tree --terse -f "$f" 2>&1 |
          grep -v 'imported from Linux, are you using')
    if echo "$out" | grep -qE '^(ERROR|WARNING)|: (ERROR|WARNING):'; then
        echo "not ok - checkpatch $f"
        echo "$out" | sed 's/^/#   /'
        rc=1
    else
        echo "ok - checkpatch $f"
    fi
done
for p in patches/*/*.patch; do
    out=$(perl "$checkpatch" --no-tree --terse "$p" 2>&1)
    if echo "$out" | grep -qE '(ERROR|WARNING)'; then
        echo "not ok - checkpatch $p"
        echo "$out" | sed 's/^/#   /'
        rc=1
    else
        echo "ok - checkpatch $p"
    fi
done
exit $rc
