#!/bin/bash
# The patch series a QEMU maintainer would take (scripts/export-series.sh):
# it applies with `git am` to a fresh unpack of Debian's QEMU source, the
# tree it gives is the one scripts/build-qemu.sh builds (every file, byte
# for byte), and QEMU's checkpatch.pl passes on every patch.  TAP.  Needs
# the overlay tree of build/src-ours, no extra QEMU build.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/scripts/lib.sh"
cd "$top"

overlay=$BUILD/src-ours
work=$BUILD/series
rm -rf "$work"
mkdir -p "$work"
[ -f "$overlay/.unpacked" ] || die "no overlay tree in $overlay (bash scripts/build-qemu.sh)"

if out=$(bash scripts/export-series.sh "$work/patches" 2>&1); then
    tap ok "series: $(tail -n 1 <<< "$out")"
else
    tap not-ok "series: scripts/export-series.sh" "$out"
    exit 1
fi

# A fresh unpack, one commit, then the series
dsc=$(ls "$DL"/qemu_10.0.*.dsc | sort -V | tail -n 1)
export GIT_AUTHOR_NAME=check GIT_AUTHOR_EMAIL=check@localhost
export GIT_COMMITTER_NAME=check GIT_COMMITTER_EMAIL=check@localhost
if dpkg-source --no-check -x "$dsc" "$work/tree" > /dev/null 2>&1 &&
   (cd "$work/tree" && git init -q && git config gc.auto 0 && git add -A -f &&
    git commit -q -m base) &&
   out=$(cd "$work/tree" && git am "$work"/patches/*.patch 2>&1); then
    tap ok "series: git am of $(ls "$work"/patches/*.patch | wc -l) patches on a fresh unpack of $(basename "$dsc")"
else
    tap not-ok "series: git am on a fresh unpack" "$(tail -n 5 <<< "${out:-}")"
    exit 1
fi

# The overlay tree, symlinks followed, without what building it added
if out=$(diff -r -q -x .git -x build -x '.applied-*' -x .unpacked \
              -x .debian-version "$work/tree" "$overlay" 2>&1); then
    tap ok "series: the tree is the one scripts/build-qemu.sh builds, file for file"
else
    tap not-ok "series: the tree differs from the overlay tree" \
        "$(head -n 20 <<< "$out")"
fi

checkpatch=$overlay/scripts/checkpatch.pl
for p in "$work"/patches/*.patch; do
    out=$(perl "$checkpatch" --no-tree "$p" 2>&1)
    if [ $? -eq 0 ] && ! grep -q '^ERROR' <<< "$out"; then
        tap ok "series: checkpatch $(basename "$p") ($(grep -o '[0-9]* warnings' <<< "$out" | head -n 1))" \
            "$(grep -A2 '^WARNING' <<< "$out" | grep -v '^--$')"
    else
        tap not-ok "series: checkpatch $(basename "$p")" \
            "$(grep -A3 -E '^(ERROR|WARNING)' <<< "$out")"
    fi
done
[ "$failed" -eq 0 ]
