#!/bin/bash
# Build the test guest for one architecture:
#
#   tests/guest/build-guest.sh x86_64|aarch64
#
# produces build/guest/ARCH/vmlinuz, build/guest/ARCH/initramfs.cpio.gz and
# build/guest/ARCH/kernel-version (the Debian kernel package and version).
#
# Kernel: the newest Debian 6.12 kernel for bookworm (linux-image-6.12.*+deb12,
# from bookworm-backports or bookworm-security; 6.12 has VIRTIO_IOMMU=m and
# ACPI_VIOT=y, bookworm's 6.1 has no virtio-iommu), found by asking apt.
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
# kernel or one of its inputs changed.
set -euo pipefail
shopt -s nullglob

top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/scripts/lib.sh"
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

out=$BUILD/guest/$arch
deb=$out/deb
work=$out/work
mkdir -p "$out" "$deb"

step_apt_setup() {
    # Adds bookworm-backports and the arm64 architecture if missing
    # (idempotent, runs apt-get update only when it changed something).
    bash "$top/scripts/setup-apt.sh" ||
        die "scripts/setup-apt.sh failed"
}

# Newest linux-image-6.12.N+deb12-$debarch[-unsigned] that apt can download.
# Sets kpkg (package name), kver (package version), kabi (uname -r).
step_find_kernel() {
    local abis abi name cand
    abis=$(apt-cache pkgnames linux-image-6.12. |
           sed -nE "s/^linux-image-(6\.12\.[0-9]+\+deb12-$debarch)(-unsigned)?\$/\1/p" |
           sort -u -V -r)
    [ -n "$abis" ] ||
        die "apt knows no linux-image-6.12.*+deb12-$debarch package" \
            "(is bookworm-backports configured and 'apt-get update' done?)"
    kpkg=
    for abi in $abis; do
        for name in "linux-image-$abi-unsigned" "linux-image-$abi"; do
            cand=$(apt-cache policy "$name:$debarch" 2>/dev/null |
                   awk '/Candidate:/ { print $2 }')
            if [ -n "$cand" ] && [ "$cand" != "(none)" ]; then
                kpkg=$name kver=$cand kabi=$abi
                break 2
            fi
        done
    done
    [ -n "$kpkg" ] ||
        die "no downloadable linux-image-6.12.*+deb12-$debarch package" \
            "(apt lists names but no candidate versions: $(echo "$abis" | tr '\n' ' '))"
    echo "kernel: $kpkg $kver"
}

# apt-get download PKG:ARCH=VER into $deb unless already there.  Prints the
# .deb path.
fetch_deb() {
    local pkg=$1 ver=$2 f=() pattern
    pattern="$deb/${pkg}_${ver//:/%3a}_"
    f=("$pattern"*.deb)
    if [ ${#f[@]} -eq 0 ]; then
        (cd "$deb" && apt-get download -q "$pkg:$debarch=$ver" >&2) ||
            die "apt-get download $pkg:$debarch=$ver failed"
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
    kdeb=$(fetch_deb "$kpkg" "$kver")
    bbdeb=$(fetch_deb busybox-static "$bbver")
}

step_unpack() {
    local kdir=$work/kernel-$kver bbdir=$work/busybox-$bbver
    if [ ! -f "$kdir/.unpacked" ]; then
        rm -rf "$kdir"; mkdir -p "$kdir"
        dpkg-deb -x "$kdeb" "$kdir" || die "dpkg-deb -x $kdeb failed"
        touch "$kdir/.unpacked"
    fi
    if [ ! -f "$bbdir/.unpacked" ]; then
        rm -rf "$bbdir"; mkdir -p "$bbdir"
        dpkg-deb -x "$bbdeb" "$bbdir" || die "dpkg-deb -x $bbdeb failed"
        touch "$bbdir/.unpacked"
    fi
    kroot=$kdir bbroot=$bbdir
    vmlinuz=$kroot/boot/vmlinuz-$kabi
    [ -f "$vmlinuz" ] || die "$kpkg has no /boot/vmlinuz-$kabi"
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
            die "$kpkg has no lib/modules/$kabi directory"
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
        echo "$kpkg $kver $bbver $MODULES"
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
    echo "$kpkg $kver" > "$root/etc/viommu/kernel-version"
    echo "$arch" > "$root/etc/viommu/arch"

    (cd "$root" && find . -print0 | LC_ALL=C sort -z |
        cpio --null -o -H newc --quiet --owner=0:0) |
        gzip -9n > "$out/initramfs.cpio.gz.tmp" ||
        die "cpio/gzip failed"
    mv "$out/initramfs.cpio.gz.tmp" "$out/initramfs.cpio.gz"
    cp "$vmlinuz" "$out/vmlinuz"
    echo "$kpkg $kver" > "$out/kernel-version"
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
run_step "find kernel package ($debarch)" step_find_kernel
run_step "find busybox-static package ($debarch)" step_find_busybox
if guest_current; then
    echo "build-guest: $arch guest up to date in $out ($kpkg $kver)"
    exit 0
fi
run_step "download kernel and busybox ($debarch)" step_fetch
run_step "unpack kernel and busybox ($debarch)" step_unpack
run_step "resolve kernel modules ($kabi)" step_resolve_modules
run_step "build initramfs ($arch)" step_initramfs
echo "build-guest: $arch guest ready in $out ($kpkg $kver)"
