#!/bin/bash
# Add the apt entries the build needs, derived from the machine's own apt
# configuration: bookworm-backports (meson >= 1.5, python3-pycotap, the
# 6.12 kernels) and trixie deb-src (QEMU 10.0.x source).  No mirror host
# name is written anywhere but into the machine's apt configuration, and
# only the one the machine already uses.  Idempotent.
#
#   scripts/setup-apt.sh --uri   prints that Debian mirror URI and changes
#                                nothing (tests/guest/build-guest.sh builds
#                                its private apt configuration from it)
set -euo pipefail

OUT=/etc/apt/sources.list.d/viommu-build.sources
case "${1:-}" in
    ""|--uri) ;;
    *) echo "usage: $0 [--uri]" >&2; exit 2 ;;
esac

die() { echo "setup-apt: $*" >&2; exit 1; }

# Find the URI of the entry that serves the main Debian archive (the one
# listing the "bookworm" suite), from deb822 .sources or one-line .list files.
debian_uri() {
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -e "$f" ] || continue
        [ "$f" = "$OUT" ] && continue
        awk '
            /^$/ { if (uri && suites ~ /(^| )bookworm( |$)/) { print uri; exit }
                   uri = ""; suites = "" }
            /^URIs:/ { uri = $2 }
            /^Suites:/ { $1 = ""; suites = $0 " " }
            END { if (uri && suites ~ /(^| )bookworm( |$)/) print uri }
        ' "$f"
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -e "$f" ] || continue
        awk '$1 == "deb" && $0 ~ / bookworm / {
                 for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit }
             }' "$f"
    done
}

uri=$(debian_uri | head -n 1)
[ -n "$uri" ] || die "no apt entry for Debian bookworm found in /etc/apt; cannot derive mirror"
if [ "${1:-}" = --uri ]; then
    echo "$uri"
    exit 0
fi

want=$(cat <<SRC
# Written by virtio-iommu's scripts/setup-apt.sh from this machine's own
# Debian entry.
Types: deb
URIs: $uri
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: $uri
Suites: trixie trixie-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
)

if [ ! -f "$OUT" ] || [ "$(cat "$OUT")" != "$want" ]; then
    echo "$want" > "$OUT"
    rm -f /var/lib/apt/lists/.viommu-updated
fi

# arm64 packages (kernel, busybox-static) are fetched with apt-get download.
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    dpkg --add-architecture arm64
    rm -f /var/lib/apt/lists/.viommu-updated
fi

if [ ! -e /var/lib/apt/lists/.viommu-updated ]; then
    echo "setup-apt: apt-get update"
    apt-get update -q || die "apt-get update failed (is the package mirror reachable?)"
    touch /var/lib/apt/lists/.viommu-updated
fi
