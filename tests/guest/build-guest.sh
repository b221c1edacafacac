#!/bin/bash
# Build the test guest for one architecture:
#
#   [GUEST_KERNEL=6.12|7|7.N] tests/guest/build-guest.sh x86_64|aarch64
#
# produces vmlinuz, initramfs.cpio.gz and kernel-version (the Debian kernel
# package and version) in build/guest/ARCH (6.12, the default) or
# build/guest/linux-7/ARCH (GUEST_KERNEL=7; guest_dir in guest-lib.sh).
#
# Kernel, GUEST_KERNEL=6.12: the newest Debian 6.12 kernel for bookworm
# (linux-image-6.12.*+deb12, from bookworm-backports or bookworm-security;
# bookworm's 6.1 has no virtio-iommu), found by asking the host's apt.
# GUEST_KERNEL=7 (or 7.N): the newest Linux 7.x (7.N.x) that Debian testing
# or trixie-backports has for the architecture's plain flavour
# (linux-image-7.*+debNN-amd64|arm64).  These suites are never added to
# the host's apt: a private apt configuration in build/guest/apt/ (own
# sources, lists, cache and an empty dpkg status; its mirror URI is the
# host's own Debian entry, from `scripts/setup-apt.sh --uri`) finds and
# downloads them; its lists are refreshed once a day.  A 7.x image is a
# meta package: the packages it depends on, linux-binary-* (the image in
# usr/lib/modules/VER/vmlinuz), linux-modules-* and linux-base-* (config,
# modules.builtin), are what is fetched and unpacked together.  Either
# kernel must have VIRTIO_IOMMU (m or y) and ACPI_VIOT=y in its config.
# Initramfs: busybox-static of the same architecture, the kernel modules the
# tests need plus everything modules.dep says they depend on (decompressed,
# because busybox insmod cannot read .ko.xz), tests/guest/image/init.sh as
# /init and the ordered module list it loads, and from each of $image_dirs
# (tests/guest/image, tests/bench/guest) the test modules test-*.sh
# (sourced by init.sh, copied to /etc/viommu/) and the guest tools *.c,
# each compiled statically into /bin/NAME (gcc on x86_64,
# aarch64-linux-gnu-gcc on aarch64).
#
# Packages are fetched with `apt-get download` and unpacked with
# `dpkg-deb -x` below build/; nothing is installed on the host.  Re-running
# is cheap: downloads are kept, and the initramfs is rebuilt only when the
# kernel or one of its inputs changed.  The 6.12 and 7.x guests (and their
# downloads) live in separate directories and coexist.
set -euo pipefail
shopt -s nullglob

top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/scripts/lib.sh"
. "$top/tests/guest/guest-lib.sh"
image=$top/tests/guest/image
# Where the guest's test modules and tools come from: the guest tests' own,
# and the guest side of the benchmarks.
image_dirs=("$image" "$top/tests/bench/guest")

arch=${1:-}
case "$arch" in
    x86_64) debarch=amd64 guest_cc=gcc ;;
    aarch64) debarch=arm64 guest_cc=aarch64-linux-gnu-gcc ;;
    *) echo "usage: $0 x86_64|aarch64" >&2; exit 2 ;;
esac

# Modules the guest tests use.  Any of them may be built into the kernel.
MODULES="virtio_pci virtio_iommu virtio_blk virtio_net e1000e e1000
         vfio vfio_iommu_type1 vfio_pci"

kernel=$(guest_kernel) || { STEP="check GUEST_KERNEL"; die "GUEST_KERNEL=${GUEST_KERNEL:-}: want 6.12, 7 or 7.N"; }
out=$(guest_dir "$arch")
deb=$out/deb
work=$out/work
mkdir -p "$out" "$deb"

step_apt_setup() {
    # Adds bookworm-backports and the arm64 architecture if missing
    # (idempotent, runs apt-get update only when it changed something).
    bash "$top/scripts/setup-apt.sh" ||
        die "scripts/setup-apt.sh failed"
}

# The private apt configuration for the suites newer than the host's
# (GUEST_KERNEL=7): every apt-get/apt-cache call for the kernel gets
# "${apt_opts[@]}" (empty for 6.12: the host's apt).
papt=$BUILD/guest/apt
apt_opts=()
if [ "$kernel" != 6.12 ]; then
    apt_opts=(-o "Dir::Etc::SourceList=$papt/sources.list"
              -o "Dir::Etc::SourceParts=$papt/sources.list.d"
              -o "Dir::Etc::Preferences=$papt/preferences"
              -o "Dir::Etc::PreferencesParts=$papt/preferences.d"
              -o "Dir::State=$papt/state"
              -o "Dir::State::status=$papt/state/status"
              -o "Dir::Cache=$papt/cache"
              -o "APT::Architectures::=amd64" -o "APT::Architectures::=arm64"
              -o "Acquire::Languages=none")
fi

# Write the private sources from the host's Debian mirror URI and refresh
# the private lists when they are missing, changed or a day old.  An
# update that fails with lists already there only warns (offline reruns).
step_private_apt() {
    local uri want
    uri=$(bash "$top/scripts/setup-apt.sh" --uri) ||
        die "cannot derive the Debian mirror from the host's apt configuration"
    mkdir -p "$papt"/sources.list.d "$papt"/preferences.d \
             "$papt"/state/lists/partial "$papt"/cache/archives/partial
    touch "$papt/sources.list" "$papt/state/status"
    want=$(cat <<SRC
# Written by tests/guest/build-guest.sh from this machine's own Debian
# entry; used only through apt's -o Dir::... options, never by the host.
Types: deb
URIs: $uri
Suites: testing trixie-backports
Components: main
Architectures: amd64 arm64
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
)
    local f=$papt/sources.list.d/newer.sources
    if [ ! -f "$f" ] || [ "$(cat "$f")" != "$want" ]; then
        echo "$want" > "$f"
        rm -f "$papt/.updated"
    fi
    if [ -n "$(find "$papt/.updated" -mmin -1440 2>/dev/null)" ]; then
        return 0
    fi
    echo "apt-get update (private: testing, trixie-backports)"
    if apt-get "${apt_opts[@]}" update -q; then
        touch "$papt/.updated"
    elif compgen -G "$papt/state/lists/*_Packages*" > /dev/null; then
        echo "WARNING: private apt-get update failed; using the lists of $(date -r "$papt/state/lists" '+%F %T')"
    else
        die "apt-get update of the private configuration in $papt failed (is the package mirror reachable?)"
    fi
}

# Candidate version of PKG:$debarch, or nothing.
candidate() {
    apt-cache "${apt_opts[@]}" policy "$1:$debarch" 2>/dev/null |
        awk '/Candidate:/ && $2 != "(none)" { print $2 }'
}

# The kernel to build the guest with.  Sets kname (the image package, named
# in kernel-version), kpkgs (the packages to fetch and unpack), kver (their
# version) and kabi (uname -r).
step_find_kernel() {
    if [ "$kernel" = 6.12 ]; then
        find_kernel_6_12
    else
        find_kernel_split
    fi
    echo "kernel: $kname $kver (${kpkgs[*]})"
}

# Newest linux-image-6.12.N+deb12-$debarch[-unsigned] that apt can download.
find_kernel_6_12() {
    local abis abi name cand
    abis=$(apt-cache pkgnames linux-image-6.12. |
           sed -nE "s/^linux-image-(6\.12\.[0-9]+\+deb12-$debarch)(-unsigned)?\$/\1/p" |
           sort -u -V -r)
    [ -n "$abis" ] ||
        die "apt knows no linux-image-6.12.*+deb12-$debarch package" \
            "(is bookworm-backports configured and 'apt-get update' done?)"
    kname=
    for abi in $abis; do
        for name in "linux-image-$abi-unsigned" "linux-image-$abi"; do
            cand=$(candidate "$name")
            if [ -n "$cand" ]; then
                kname=$name kver=$cand kabi=$abi
                break 2
            fi
        done
    done
    [ -n "$kname" ] ||
        die "no downloadable linux-image-6.12.*+deb12-$debarch package" \
            "(apt lists names but no candidate versions: $(echo "$abis" | tr '\n' ' '))"
    kpkgs=("$kname")
}

# Newest linux-image-$kernel[.N...]+debNN-$debarch (plain flavour) in the
# private lists, and the linux-binary-, linux-modules- and linux-base-
# packages of the same version it depends on.
find_kernel_split() {
    local kre=${kernel//./\\.} abis abi cand deps d dv kind
    abis=$(apt-cache "${apt_opts[@]}" pkgnames "linux-image-$kernel" |
           sed -nE "s/^linux-image-(${kre}(\.[0-9]+)*\+deb[0-9]+-$debarch)\$/\1/p" |
           sort -u -V -r)
    [ -n "$abis" ] ||
        die "the private apt lists ($papt) know no linux-image-$kernel.*+debNN-$debarch package"
    kname=
    for abi in $abis; do
        cand=$(candidate "linux-image-$abi")
        [ -n "$cand" ] || continue
        kname=linux-image-$abi kver=$cand kabi=$abi
        break
    done
    [ -n "$kname" ] ||
        die "no downloadable linux-image-$kernel.*-$debarch package" \
            "(names without candidate versions: $(echo "$abis" | tr '\n' ' '))"
    deps=$(apt-cache "${apt_opts[@]}" show --no-all-versions "$kname:$debarch=$kver" |
           sed -n 's/^Depends: //p' | tr ',' '\n' | sed -E 's/^ *//; s/[ :].*//' |
           grep -E '^linux-(binary|modules|base)-') || true
    kpkgs=()
    for kind in binary modules base; do
        d=$(grep -m1 "^linux-$kind-" <<< "$deps") ||
            die "$kname $kver depends on no linux-$kind-* package (Depends: $(echo "$deps" | tr '\n' ' '))"
        dv=$(candidate "$d")
        [ "$dv" = "$kver" ] ||
            die "$kname $kver needs $d $kver, apt's candidate is '${dv:-none}'"
        kpkgs+=("$d")
    done
}

# apt-get download PKG:ARCH=VER into $deb unless already there.  Prints the
# .deb path.
fetch_deb() {
    local pkg=$1 ver=$2 f=() pattern
    pattern="$deb/${pkg}_${ver//:/%3a}_"
    f=("$pattern"*.deb)
    if [ ${#f[@]} -eq 0 ]; then
        (cd "$deb" && apt-get "${apt_opts[@]}" download -q "$pkg:$debarch=$ver" >&2) ||
            die "apt-get download $pkg:$debarch=$ver failed" \
                "${apt_opts:+(private lists in $papt stale? rm $papt/.updated and rerun)}"
        f=("$pattern"*.deb)
        [ ${#f[@]} -gt 0 ] || die "apt-get download did not produce ${pkg}_${ver}*.deb in $deb"
    fi
    echo "${f[0]}"
}

step_find_busybox() {
    bbver=$(apt-cache policy "busybox-static:$debarch" |
            awk '/Candidate:/ { print $2 }')
    if [ -z "$bbver" ] || [ "$bbver" = "(none)" ]; then
        die "apt has no busybox-static:$debarch candidate"
    fi
}

step_fetch() {
    local p
    kdebs=()
    for p in "${kpkgs[@]}"; do
        kdebs+=("$(fetch_deb "$p" "$kver")")
    done
    # busybox-static always comes from the host's apt (bookworm).
    bbdeb=$(apt_opts=(); fetch_deb busybox-static "$bbver")
}

step_unpack() {
    local kdir=$work/kernel-$kver bbdir=$work/busybox-$bbver f
    if [ ! -f "$kdir/.unpacked" ]; then
        rm -rf "$kdir"; mkdir -p "$kdir"
        for f in "${kdebs[@]}"; do
            dpkg-deb -x "$f" "$kdir" || die "dpkg-deb -x $f failed"
        done
        touch "$kdir/.unpacked"
    fi
    if [ ! -f "$bbdir/.unpacked" ]; then
        rm -rf "$bbdir"; mkdir -p "$bbdir"
        dpkg-deb -x "$bbdeb" "$bbdir" || die "dpkg-deb -x $bbdeb failed"
        touch "$bbdir/.unpacked"
    fi
    kroot=$kdir bbroot=$bbdir
    # 6.12: /boot/vmlinuz-ABI; the split 7.x packages: usr/lib/modules/ABI.
    vmlinuz=
    for f in "$kroot/boot/vmlinuz-$kabi" "$kroot/usr/lib/modules/$kabi/vmlinuz"; do
        [ -f "$f" ] && { vmlinuz=$f; break; }
    done
    [ -n "$vmlinuz" ] || die "${kpkgs[*]} hold no boot/vmlinuz-$kabi or usr/lib/modules/$kabi/vmlinuz"
    kconfig=
    for f in "$kroot/boot/config-$kabi" "$kroot/usr/lib/modules/$kabi/config"; do
        [ -f "$f" ] && { kconfig=$f; break; }
    done
    [ -n "$kconfig" ] || die "${kpkgs[*]} hold no kernel config"
    grep -qE '^CONFIG_VIRTIO_IOMMU=[my]$' "$kconfig" ||
        die "$kname $kver is built without CONFIG_VIRTIO_IOMMU ($kconfig)"
    grep -qE '^CONFIG_ACPI_VIOT=y$' "$kconfig" ||
        die "$kname $kver is built without CONFIG_ACPI_VIOT ($kconfig)"
    moddir=
    local d
    for d in "$kroot/lib/modules/$kabi" "$kroot/usr/lib/modules/$kabi"; do
        [ -f "$d/modules.dep" ] && [ -f "$kroot/.depmod-done" ] && moddir=$d
    done
    if [ -z "$moddir" ]; then
        # The package leaves depmod to its postinst: run it on the unpacked
        # tree.  kmod's depmod takes seconds; busybox's (host busybox-static)
        # decompresses every module and takes about a minute, once.
        local base=$kroot
        [ -d "$kroot/lib/modules/$kabi" ] || base=$kroot/usr
        [ -d "$base/lib/modules/$kabi" ] ||
            die "${kpkgs[*]} hold no lib/modules/$kabi directory"
        local depmod
        depmod=$(command -v depmod || command -v /usr/sbin/depmod ||
                 command -v /sbin/depmod) || true
        if [ -n "$depmod" ]; then
            "$depmod" -b "$base" "$kabi" || die "depmod -b $base $kabi failed"
        elif command -v busybox >/dev/null; then
            echo "running busybox depmod (install kmod for a faster one)"
            busybox depmod -b "$base" "$kabi" ||
                die "busybox depmod -b $base $kabi failed"
        else
            die "neither kmod's depmod nor busybox is installed on the host"
        fi
        moddir=$base/lib/modules/$kabi
        [ -s "$moddir/modules.dep" ] || die "depmod wrote no $moddir/modules.dep"
        touch "$kroot/.depmod-done"
    fi
    busybox=$bbroot/bin/busybox
    [ -x "$busybox" ] || die "busybox-static:$debarch has no /bin/busybox"
}

# Module name as the kernel sees it: basename without .ko[.xz|.zst|.gz],
# dashes as underscores.  Result in $mn (no subshell: modules.dep has
# thousands of lines).
modname() {
    mn=${1##*/}
    mn=${mn%%.ko*}
    mn=${mn//-/_}
}

# Resolve $MODULES against modules.dep / modules.builtin into $order
# (relative module paths, dependencies first) and $builtins.
step_resolve_modules() {
    declare -gA depline=() pathof=() seen=()
    local line key deps m
    while IFS= read -r line; do
        key=${line%%:*}
        deps=${line#*:}
        modname "$key"; m=$mn
        pathof[$m]=$key
        depline[$m]=$deps
    done < "$moddir/modules.dep"
    declare -gA builtin=()
    while IFS= read -r line; do
        modname "$line"; builtin[$mn]=1
    done < "$moddir/modules.builtin"

    order=() builtins=()
    visit() {
        local m=$1 d
        [ -n "${seen[$m]:-}" ] && return 0
        seen[$m]=1
        for d in ${depline[$m]}; do
            modname "$d"; visit "$mn"
        done
        order+=("${pathof[$m]}")
    }
    for m in $MODULES; do
        if [ -n "${pathof[$m]:-}" ]; then
            visit "$m"
        elif [ -n "${builtin[$m]:-}" ]; then
            builtins+=("$m")
        else
            die "module $m is neither in modules.dep nor modules.builtin of $kabi"
        fi
    done
    echo "modules: ${#order[@]} to load, built in: ${builtins[*]:-none}"
}

# Everything the guest is made of; the guest is rebuilt when it changes.
guest_inputs() {
    local d files=("$image/init.sh" "$image/pattern.sh"
                   "$top/tests/guest/build-guest.sh")
    for d in "${image_dirs[@]}"; do
        files+=("$d"/test-*.sh "$d"/*.[ch])
    done
    {
        echo "$kernel $kname $kver ${kpkgs[*]} $bbver $MODULES"
        cat "${files[@]}"
    } | sha256sum | cut -d' ' -f1
}

guest_current() {
    [ -f "$out/initramfs.cpio.gz" ] && [ -f "$out/vmlinuz" ] &&
        [ -f "$out/.initramfs-inputs" ] &&
        [ "$(cat "$out/.initramfs-inputs")" = "$(guest_inputs)" ]
}

step_initramfs() {
    local root=$work/root d f m dst
    rm -rf "$root"
    mkdir -p "$root"/{bin,dev,proc,sys,tmp,mnt,etc/viommu} \
             "$root/lib/modules/$kabi"
    cp "$busybox" "$root/bin/busybox"
    # Only the applets init needs before it runs `busybox --install`.
    ln -s busybox "$root/bin/sh"
    install -m 0755 "$image/init.sh" "$root/init"
    install -m 0755 "$image/pattern.sh" "$root/etc/viommu/pattern.sh"
    for d in "${image_dirs[@]}"; do
        for f in "$d"/test-*.sh; do
            install -m 0644 "$f" "$root/etc/viommu/${f##*/}"
        done
        for f in "$d"/*.c; do
            m=${f##*/}
            "$guest_cc" -static -O2 -Wall -Wextra -Werror -o "$root/bin/${m%.c}" "$f" ||
                die "$guest_cc could not build guest tool $f"
        done
    done

    : > "$root/etc/viommu/modules"
    for f in "${order[@]}"; do
        modname "$f"; m=$mn
        dst=$root/lib/modules/$kabi/${f%.ko*}.ko
        mkdir -p "$(dirname "$dst")"
        case "$f" in
            *.ko.xz) xz -dc "$moddir/$f" > "$dst" ;;
            *.ko.zst) zstd -qdc "$moddir/$f" > "$dst" ;;
            *.ko.gz) gzip -dc "$moddir/$f" > "$dst" ;;
            *.ko) cp "$moddir/$f" "$dst" ;;
            *) die "unknown module format: $f" ;;
        esac || die "could not decompress $f"
        echo "$m /lib/modules/$kabi/${f%.ko*}.ko" >> "$root/etc/viommu/modules"
    done
    for m in "${builtins[@]}"; do
        echo "$m builtin" >> "$root/etc/viommu/modules"
    done
    # For modinfo/debugging in the guest.
    cp "$moddir/modules.builtin" "$root/lib/modules/$kabi/" 2>/dev/null || true
    echo "$kname $kver" > "$root/etc/viommu/kernel-version"
    echo "$arch" > "$root/etc/viommu/arch"

    (cd "$root" && find . -print0 | LC_ALL=C sort -z |
        cpio --null -o -H newc --quiet --owner=0:0) |
        gzip -9n > "$out/initramfs.cpio.gz.tmp" ||
        die "cpio/gzip failed"
    mv "$out/initramfs.cpio.gz.tmp" "$out/initramfs.cpio.gz"
    cp "$vmlinuz" "$out/vmlinuz"
    echo "$kname $kver" > "$out/kernel-version"
    guest_inputs > "$out/.initramfs-inputs"
    echo "initramfs: $(du -h "$out/initramfs.cpio.gz" | cut -f1)"
}

for tool in apt-get apt-cache dpkg-deb cpio gzip xz sha256sum "$guest_cc"; do
    command -v "$tool" >/dev/null ||
        { STEP="check tools"; die "$tool is not installed (scripts/install-deps.sh)"; }
done

# Two test runs may build the same guest at once: one at a time.
exec 9> "$out/.lock"
flock 9

run_step "apt setup ($arch)" step_apt_setup
if [ "$kernel" != 6.12 ]; then
    # One private apt for both architectures: one user at a time.
    mkdir -p "$papt"
    exec 8> "$papt/.lock"
    flock 8
    run_step "private apt for Linux $kernel" step_private_apt
fi
run_step "find kernel package ($debarch)" step_find_kernel
run_step "find busybox-static package ($debarch)" step_find_busybox
if guest_current; then
    echo "build-guest: $arch guest up to date in $out ($kname $kver)"
    exit 0
fi
run_step "download kernel and busybox ($debarch)" step_fetch
run_step "unpack kernel and busybox ($debarch)" step_unpack
run_step "resolve kernel modules ($kabi)" step_resolve_modules
run_step "build initramfs ($arch)" step_initramfs
echo "build-guest: $arch guest ready in $out ($kname $kver)"
