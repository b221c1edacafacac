#!/bin/sh
# pattern.sh SEED BYTES: print BYTES of deterministic test data for SEED.
#
# Used inside the test guest (busybox) to write the disk and network data and
# on the host (coreutils) to check the disk image; both print the same bytes.
# A base of 12-digit decimal lines counting up from 10^11 + SEED (one
# MiB per ten MiB of output) is repeated with its digits rotated by 0..9, so
# no two 4 KiB pages of the output are equal and every seed gives other data.
# Generating everything with seq is slow under TCG (soft floating point);
# tr is fast.
set -e
seed=$1
bytes=$2
mib=$(( (bytes + 1048575) / 1048576 ))
basemib=$(( (mib + 9) / 10 ))
basebytes=$((basemib * 1048576))
start=$((100000000000 + seed))
base=$(mktemp "${TMPDIR:-/tmp}/pattern.XXXXXX")
trap 'rm -f "$base"' EXIT
seq "$start" $((start + basebytes / 13 + 1)) | head -c "$basebytes" > "$base"
k=0
while [ $((k * basebytes)) -lt "$bytes" ]; do
    rot=$(echo 01234567890123456789 | cut -c$((k + 1))-$((k + 10)))
    tr 0123456789 "$rot" < "$base"
    k=$((k + 1))
done | head -c "$bytes"
