#!/bin/bash
# Build the DPDK overlay of the x86_64 test guest:
#
#   tests/guest/build-dpdk-overlay.sh [OUT]
#
# writes OUT (default build/guest-dpdk/dpdk.cpio.gz), a cpio archive to be
# appended to the guest's initramfs (Linux unpacks concatenated archives
# one over the other).  It holds the host's Debian DPDK 22.11
# (/usr/bin/dpdk-testpmd), the drivers the scenario needs from DPDK's
# plugin directory (RTE_EAL_PMD_PATH: bus_pci, bus_vdev, net_virtio,
# mempool_ring; EAL loads every plugin it finds there, so only these are
# copied), every shared library `ldd` lists for them with the symlinks that
# lead to it, the dynamic loader, and the guest's test module
# tests/guest/dpdk/test-dpdk.sh as /etc/viommu/test-dpdk.sh (run by the
# guest's /init for viommu.test=dpdk).  Nothing is installed: the files are
# the host's (`apt-get install dpdk` is in scripts/install-deps.sh).
#
# Paths: the host is merged-/usr (/lib -> usr/lib); the guest's base
# initramfs has a real /lib, so the overlay puts the libraries in
# /lib/x86_64-linux-gnu and makes /usr/lib a symlink to ../lib, keeping
# the host's relative symlinks (/lib/x86_64-linux-gnu/librte_bus_pci.so.23
# -> dpdk/pmds-23.0/...) valid: a driver testpmd links and the same driver
# found as a plugin are then one file, loaded once.
#
# Rebuilt only when an input changed (the file list and the test module).
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/scripts/lib.sh"

out=${1:-$BUILD/guest-dpdk/dpdk.cpio.gz}
testpmd=/usr/bin/dpdk-testpmd
module=$top/tests/guest/dpdk/test-dpdk.sh
# The plugin directory Debian's EAL searches (rte_build_config.h).
pmddir=$(sed -n 's/^#define RTE_EAL_PMD_PATH "\(.*\)"$/\1/p' \
             /usr/include/x86_64-linux-gnu/dpdk/rte_build_config.h 2>/dev/null) || true
PMDS="bus_pci bus_vdev net_virtio mempool_ring"

# shellcheck disable=SC2034  # STEP is read by die
STEP="check host DPDK"
[ -x "$testpmd" ] || die "$testpmd missing (Debian package dpdk)"
if [ -z "$pmddir" ] || [ ! -d "$pmddir" ]; then
    die "no DPDK plugin directory (RTE_EAL_PMD_PATH of libdpdk-dev's rte_build_config.h)"
fi
for t in ldd cpio gzip; do
    command -v "$t" > /dev/null || die "$t is not installed"
done
STEP=

work=$(mktemp -d "${TMPDIR:-/tmp}/dpdk-overlay.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/root

# dest PATH: where host PATH goes in the overlay (/usr/lib is folded into
# /lib).
dest() {
    case "$1" in
        /usr/lib/*) echo "$root/lib/${1#/usr/lib/}" ;;
        *) echo "$root$1" ;;
    esac
}

# copy_in PATH: copy the host's PATH into the overlay; a symlink is copied
# as a symlink and its target followed.
copy_in() {
    local p=$1 d t
    d=$(dest "$p")
    [ -e "$d" ] || [ -L "$d" ] && return 0
    mkdir -p "$(dirname "$d")"
    if [ -L "$p" ]; then
        cp -P "$p" "$d"
        t=$(readlink "$p")
        case "$t" in
            /*) copy_in "$t" ;;
            *) copy_in "$(dirname "$p")/$t" ;;
        esac
    else
        cp "$p" "$d"
    fi
}

inputs=("$testpmd")
for m in $PMDS; do
    inputs+=("$pmddir/librte_$m.so.23")
done
mapfile -t libs < <(ldd "${inputs[@]}" |
    sed -n 's/^.*=> \(\/[^ ]*\) (0x.*$/\1/p; s/^[[:space:]]*\(\/[^ ]*\) (0x.*$/\1/p' |
    LC_ALL=C sort -u)
[ "${#libs[@]}" -gt 0 ] || die "ldd found no libraries for ${inputs[*]}"
stamp=$( { printf '%s\n' "${inputs[@]}" "${libs[@]}" | xargs ls -lL; cat "$module"; } |
         sha256sum | cut -d' ' -f1)
if [ -f "$out" ] && [ "$(cat "$out.inputs" 2>/dev/null)" = "$stamp" ]; then
    echo "build-dpdk-overlay: $out up to date"
    exit 0
fi

mkdir -p "$root"/{usr/bin,etc/viommu,var/run}
ln -s ../lib "$root/usr/lib"
for f in "${inputs[@]}" "${libs[@]}"; do
    copy_in "$f"
done
install -m 0644 "$module" "$root/etc/viommu/test-dpdk.sh"
echo "22.11 $(dpkg-query -W -f '${Version}' dpdk 2>/dev/null || echo unknown)" \
    > "$root/etc/viommu/dpdk-version"

mkdir -p "$(dirname "$out")"
(cd "$root" && find . -print0 | LC_ALL=C sort -z |
    cpio --null -o -H newc --quiet --owner=0:0) | gzip -6n > "$out.tmp" ||
    die "cpio/gzip failed"
mv "$out.tmp" "$out"
echo "$stamp" > "$out.inputs"
echo "build-dpdk-overlay: $out ($(du -h "$out" | cut -f1); $(find "$root" -type f | wc -l) files, $(du -sh "$root" | cut -f1) unpacked)"
