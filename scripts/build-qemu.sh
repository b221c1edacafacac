#!/bin/bash
# Build QEMU 10.0.x from Debian's source package with our virtio-iommu in
# place of upstream's.
#
#   scripts/build-qemu.sh            our device  -> build/qemu/
#   scripts/build-qemu.sh --upstream upstream's  -> build/upstream/  (comparison
#                                    only, same core patches, never shipped;
#                                    with our IOMMU test device, for the
#                                    benchmarks)
#   scripts/build-qemu.sh --sanitize our device built with clang, ASan, UBSan
#                                    and libFuzzer -> build/asan/ (x86_64
#                                    only; also qemu-fuzz-x86_64 with our
#                                    fuzz target)
#
# Every step names itself when it fails.  Re-running is incremental: the
# source is fetched and unpacked once, our files are symlinked into the tree,
# and ninja rebuilds only what changed.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/lib.sh"

flavour=ours
case "${1:-}" in
    --upstream) flavour=upstream ;;
    --sanitize) flavour=asan ;;
esac

# Our files, relative to both our repository and QEMU's tree: they replace
# upstream's virtio-iommu files or are new (scripts/files.sh lists them).
# QEMU's own build files learn about them from patches/device/.
. "$top/scripts/files.sh"

# Each build directory sits inside its source tree, so that both flavours
# see their sources at the same relative path and ccache shares objects.
src=$BUILD/src-$flavour
out=$src/build
case "$flavour" in
    ours) link=$BUILD/qemu ;;
    upstream) link=$BUILD/upstream ;;
    asan) link=$BUILD/asan ;;
esac

step_fetch() {
    mkdir -p "$DL"
    if ! ls "$DL"/qemu_10.0.*.dsc >/dev/null 2>&1; then
        bash "$top/scripts/install-deps.sh"
        local ver
        ver=$(apt-cache showsrc qemu | awk '/^Version:/ { print $2 }' |
              grep -E '^1:10\.0\.' | sort -V | tail -n 1) || true
        [ -n "$ver" ] || die "no QEMU 10.0.x source package on the mirror" \
            "(apt-cache showsrc qemu lists: $(apt-cache showsrc qemu |
              awk '/^Version:/ { printf "%s ", $2 }'))"
        (cd "$DL" && apt-get source --download-only "qemu=$ver") ||
            die "apt-get source qemu=$ver failed"
    fi
}

step_unpack() {
    [ -f "$src/.unpacked" ] && return 0
    local dsc
    dsc=$(ls "$DL"/qemu_10.0.*.dsc | sort -V | tail -n 1)
    rm -rf "$src"
    dpkg-source --no-check -x "$dsc" "$src" >/dev/null ||
        die "dpkg-source -x $dsc failed"
    # Record exactly what we build against.
    basename "$dsc" .dsc | sed 's/^qemu_//' > "$src/.debian-version"
    touch "$src/.unpacked"
}

# patch_tree DIR [NAME...]: apply patches/DIR/*.patch (only those NAMEs,
# if given) once each, in order
# The stamp of an applied patch is a copy of it: a patch that changed
# since is taken back out (reverse-applied as it was) and applied anew.
patch_tree() {
    local dir=$1 p stamp
    shift
    for p in "$top/patches/$dir"/*.patch; do
        [ -e "$p" ] || continue
        [ $# = 0 ] || [[ " $* " == *" $(basename "$p") "* ]] || continue
        stamp="$src/.applied-$(basename "$p")"
        if [ -s "$stamp" ]; then
            cmp -s "$stamp" "$p" && continue
            patch -d "$src" -p1 --no-backup-if-mismatch -R -s < "$stamp" ||
                die "patch $dir/$(basename "$p") changed and its old version does not come out"
        elif [ -e "$stamp" ]; then
            # An empty stamp: applied by an older build-qemu.sh, the same
            # patch or not; a fresh unpack is the way out if this fails
            patch -d "$src" -p1 --no-backup-if-mismatch -R --dry-run -s < "$p" > /dev/null 2>&1 &&
                { cp "$p" "$stamp"; continue; }
            die "patch $dir/$(basename "$p") changed since it was applied; rm -rf $src"
        fi
        patch -d "$src" -p1 --no-backup-if-mismatch --forward -s < "$p" ||
            die "patch $dir/$(basename "$p") does not apply to QEMU $(qemu_version)"
        cp "$p" "$stamp"
    done
    # Stamps of patches that are gone: take them out too
    for stamp in "$src/.applied-"*; do
        [ -s "$stamp" ] || continue
        p=${stamp##*/.applied-}
        [ -e "$top/patches/qemu/$p" ] || [ -e "$top/patches/device/$p" ] ||
            { patch -d "$src" -p1 --no-backup-if-mismatch -R -s < "$stamp" && rm -f "$stamp"; } ||
            die "patch $p is gone and does not come out of $src"
    done
}

# Fixes to QEMU's core, for every flavour (the comparison build too)
step_core_patches() {
    patch_tree qemu
}

# Our device's hooks into QEMU's build files (meson, Kconfig, trace-events);
# the comparison build gets only the test device's
step_device_patches() {
    if [ "$flavour" = upstream ]; then
        # shellcheck disable=SC2086
        patch_tree device $VIOMMU_UPSTREAM_PATCHES
    else
        patch_tree device
    fi
}

# Replace upstream's virtio-iommu files with symlinks to ours, so that an
# edit here is a rebuild there; the comparison build gets only the test
# device.
step_place_ours() {
    local f files=$VIOMMU_FILES
    [ "$flavour" = upstream ] && files=$VIOMMU_UPSTREAM_FILES
    for f in $files; do
        [ -f "$top/$f" ] || die "our file $f is missing"
        if [ ! -L "$src/$f" ]; then
            rm -f "$src/$f"
            mkdir -p "$(dirname "$src/$f")"
            ln -s "$top/$f" "$src/$f"
        fi
    done
}

step_configure() {
    ln -sfn "src-$flavour/build" "$link"
    local cc=gcc cxx=g++ targets=x86_64-softmmu,aarch64-softmmu extra=()
    if [ "$flavour" = asan ]; then
        # libFuzzer needs clang; fuzzing-enabled trees still build
        # qemu-system (linked with -fsanitize=fuzzer-no-link).
        cc=clang cxx=clang++ targets=x86_64-softmmu
        extra=(--enable-asan --enable-ubsan --enable-fuzzing)
    else
        # vhost-user networking (-netdev vhost-user), for the vhost-user
        # guest tests and benchmarks (a DPDK switch on the host)
        extra=(--enable-vhost-user --enable-vhost-net)
    fi
    [ -x "/usr/lib/ccache/$cc" ] && cc=/usr/lib/ccache/$cc
    [ -x "/usr/lib/ccache/$cxx" ] && cxx=/usr/lib/ccache/$cxx
    local args=(--python=/usr/bin/python3
        --cc="$cc" --cxx="$cxx"
        --target-list="$targets"
        "${extra[@]}"
        --without-default-features
        --enable-kvm --enable-tcg --enable-fdt=system --enable-slirp
        --disable-docs --disable-install-blobs
        --disable-werror
        --firmwarepath=/usr/share/seabios:/usr/lib/ipxe/qemu:/usr/share/qemu-efi-aarch64)
    # shellcheck disable=SC2206  # extra words on purpose
    args+=(${QEMU_CONFIGURE_EXTRA:-})
    if [ -f "$out/build.ninja" ]; then
        # Configured with exactly these arguments (QEMU's config.status
        # repeats them, each in single quotes): nothing to do.
        local a want="exec '$src/configure'"
        for a in "${args[@]}"; do want+=" '$a'"; done
        grep -qxF "$want \"\$@\"" "$out/config.status" 2>/dev/null && return 0
        echo "configure arguments changed: configuring $out again"
    fi
    mkdir -p "$out"
    (cd "$out" && "$src/configure" "${args[@]}") > "$out/configure.log" 2>&1 ||
        { tail -n 30 "$out/configure.log" >&2; rm -f "$out/build.ninja";
          die "configure failed (log: $out/configure.log)"; }
}

step_build() {
    local targets="qemu-system-x86_64 qemu-system-aarch64 tests/qtest/qos-test"
    # The core's unit tests as QEMU's tree builds them (also run standalone)
    [ "$flavour" = ours ] && targets="$targets $VIOMMU_UNIT_TESTS"
    [ "$flavour" = asan ] &&
        targets="qemu-system-x86_64 tests/qtest/qos-test qemu-fuzz-x86_64"
    # shellcheck disable=SC2086
    ninja -C "$out" $targets ${QEMU_NINJA_EXTRA:-} > "$out/ninja.log" 2>&1 ||
        { grep -E 'error|Error' "$out/ninja.log" | head -n 30 >&2;
          die "build failed (log: $out/ninja.log)"; }
}

# Run from the build tree, QEMU looks for the configured firmware paths
# inside qemu-bundle/: point those at Debian's firmware packages.
step_firmware_links() {
    local d
    for d in /usr/share/seabios /usr/lib/ipxe/qemu /usr/share/qemu-efi-aarch64; do
        [ -d "$d" ] || die "firmware directory $d missing (package not installed?)"
        mkdir -p "$out/qemu-bundle$(dirname "$d")"
        ln -sfn "$d" "$out/qemu-bundle$d"
    done
}

# x86 option ROMs (linuxboot_dma.bin for -kernel, kvmvapic.bin) are built
# from QEMU's source, as Debian does; configure skips them when it finds no
# separate i386 compiler, but the host gcc builds them fine.
step_optionroms() {
    local dir=$out/pc-bios/optionrom
    local datadir=$out/qemu-bundle/usr/local/share/qemu
    if [ ! -f "$dir/linuxboot_dma.bin" ]; then
        mkdir -p "$dir"
        [ -f "$dir/Makefile" ] ||
            ln -sf "$src/pc-bios/optionrom/Makefile" "$dir/Makefile"
        printf '%s\n' "TOPSRC_DIR=$src" CC=gcc CCAS=gcc AR=ar AS=as LD=ld \
            NM=nm OBJCOPY=objcopy RANLIB=ranlib STRIP=strip > "$dir/config.mak"
        make -C "$dir" > "$dir/build.log" 2>&1 ||
            { tail -n 20 "$dir/build.log" >&2; die "option ROM build failed"; }
    fi
    mkdir -p "$datadir"
    ln -sf "$dir"/*.bin "$datadir/"
}

# The build must never silently fall back to upstream's device: check that
# the binary holds our device's marker string.
step_verify() {
    local bin="$out/qemu-system-x86_64" fuzz="$out/qemu-fuzz-x86_64"
    if [ "$flavour" != upstream ]; then
        grep -q "$OUR_MARKER" "$bin" ||
            die "$bin does not contain our virtio-iommu (marker '$OUR_MARKER')"
    fi
    if [ "$flavour" = asan ]; then
        grep -q "$OUR_MARKER" "$fuzz" ||
            die "$fuzz does not contain our virtio-iommu (marker '$OUR_MARKER')"
        # Without arguments it lists its targets
        local targets
        targets=$(ASAN_OPTIONS=detect_leaks=0 "$fuzz" 2>&1) || true
        grep -q '^ \* virtio-iommu-fuzz ' <<< "$targets" ||
            die "$fuzz has no virtio-iommu-fuzz target"
    elif [ "$flavour" = upstream ]; then
        ! grep -q "$OUR_MARKER" "$bin" ||
            die "$bin should be upstream's device but contains ours"
    fi
}

# The whole run is one function, read before it starts, so that editing
# this file cannot disturb a build in progress; one build per flavour at a
# time (two ninjas in one directory corrupt it).
main() {
    mkdir -p "$BUILD"
    exec 9> "$BUILD/.build-$flavour.lock"
    flock 9
    run_step "fetch QEMU source" step_fetch
    run_step "unpack QEMU source" step_unpack
    run_step "apply core patches" step_core_patches
    if [ "$flavour" = upstream ]; then
        run_step "place the IOMMU test device" step_place_ours
        run_step "apply the test device's build patch" step_device_patches
    else
        run_step "place our virtio-iommu files" step_place_ours
        run_step "apply our build patches" step_device_patches
    fi
    run_step "configure QEMU ($flavour)" step_configure
    run_step "build QEMU ($flavour)" step_build
    run_step "link firmware ($flavour)" step_firmware_links
    run_step "build x86 option ROMs ($flavour)" step_optionroms
    run_step "verify device ($flavour)" step_verify
    echo "build-qemu: QEMU $(cat "$src/.debian-version") ($flavour) ready in $out"
}

main "$@"; exit
