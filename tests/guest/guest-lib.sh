# shellcheck shell=bash
# shellcheck disable=SC2034,SC2154  # $top comes from the caller; BOOT_SECONDS is for it
# Helpers to boot the test guest (tests/guest/build-guest.sh) under QEMU
# and read its results.  Sourced by scripts/demo.sh,
# tests/guest/run-guest-tests.sh and the other runners that boot guests
# after scripts/lib.sh ($top, $BUILD).
#
# The guest's /init (tests/guest/image/init.sh) prints
#   VIOMMU-CHECK <name> PASS|FAIL <detail>
#   VIOMMU-INFO <what> ...
#   VIOMMU-DONE checks=N failed=M
# on the serial console and powers off.

# The Debian kernel the test guests run, from $GUEST_KERNEL:
#   6.12 (default)  the newest linux-image-6.12.*+deb12 (bookworm-backports,
#                   from the host's apt); guests in build/guest/ARCH, logs
#                   in build/guest-tests
#   7, or 7.N       the newest Linux 7.x (7.N.x) of Debian testing or
#                   trixie-backports (a private apt configuration, see
#                   build-guest.sh); guests in build/guest/linux-7/ARCH,
#                   logs in build/guest-tests/linux-7 (linux-7.N for 7.N)
guest_kernel() {
    local k=${GUEST_KERNEL:-6.12}
    case "$k" in
        6.12|7|7.[0-9]|7.[0-9][0-9]) echo "$k" ;;
        *) echo "GUEST_KERNEL=$k: want 6.12, 7 or 7.N" >&2; return 1 ;;
    esac
}

# The part of the guest and log paths that names $GUEST_KERNEL: nothing
# for 6.12, /linux-7 (/linux-7.N) for the newer kernels.
guest_kernel_subdir() {
    local k
    k=$(guest_kernel) || return 1
    [ "$k" = 6.12 ] || echo "/linux-$k"
}

# guest_dir ARCH: where the guest for ARCH and $GUEST_KERNEL is built.
guest_dir() {
    local s
    s=$(guest_kernel_subdir) || return 1
    echo "$BUILD/guest$s/$1"
}

# guest_logdir: where the guest tests of $GUEST_KERNEL keep their logs.
guest_logdir() {
    local s
    s=$(guest_kernel_subdir) || return 1
    echo "$BUILD/guest-tests$s"
}

# Directory of the QEMU build to boot: ${QEMU_BUILD:-build/qemu}, relative
# paths taken from the repository root.
qemu_build_dir() {
    local d=${QEMU_BUILD:-build/qemu}
    case "$d" in /*) ;; *) d=$top/$d ;; esac
    echo "$d"
}

# guest_boot ARCH LOG TIMEOUT APPEND [QEMU ARGS...]
# Boot the guest of ARCH (guest_dir) with the kernel command line APPEND (console and
# panic settings are added) and the extra QEMU arguments (devices), under a
# hard timeout of TIMEOUT seconds.  The console goes to LOG (and to stdout if
# GUEST_CONSOLE=1).  Returns QEMU's exit status (124 on timeout, 125 when
# the guest finished but did not power off, 126 when its kernel panicked).
# Sets BOOT_SECONDS.
# GUEST_REBOOT=1 lets a guest reset restart the machine (no -no-reboot);
# GUEST_DONES=N: the guest prints VIOMMU-DONE N times (once per boot) before
# it powers off.
# GUEST_FIRMWARE=uefi (aarch64 only): boot through UEFI firmware (Debian's
# qemu-efi-aarch64, $GUEST_UEFI_CODE / $GUEST_UEFI_VARS, default
# /usr/share/AAVMF/AAVMF_{CODE,VARS}.fd) on two pflash units; the firmware's
# loader starts -kernel/-initrd and QEMU's virt machine gives it ACPI tables
# (with a VIOT for the IOMMU) instead of only a device tree.
guest_boot() {
    local arch=$1 log=$2 limit=$3 append=$4
    shift 4
    # Never leave an earlier run's results behind.
    : > "$log"
    BOOT_SECONDS=0
    local qdir gdir bin machine console extra=
    qdir=$(qemu_build_dir)
    gdir=$(guest_dir "$arch") || return 2
    case "$arch" in
        x86_64)
            bin=$qdir/qemu-system-x86_64
            machine=(-M q35 -accel tcg -smp 2)
            console=ttyS0
            # The kernel's EDD probe asks SeaBIOS to read the boot disk;
            # with boot-bypass=off that DMA faults and SeaBIOS waits forever.
            extra=edd=off ;;
        aarch64)
            bin=$qdir/qemu-system-aarch64
            # pauth-impdef: the architected QARMA pointer authentication is
            # very slow under TCG.
            # shellcheck disable=SC2054
            machine=(-M virt -cpu max,pauth-impdef=on -accel tcg -smp 2)
            console=ttyAMA0 ;;
        *) echo "guest_boot: unknown arch $arch" | tee -a "$log" >&2; return 2 ;;
    esac
    [ -x "$bin" ] || { echo "guest_boot: $bin not built" | tee -a "$log" >&2; return 2; }
    if [ ! -f "$gdir/vmlinuz" ] || [ ! -f "$gdir/initramfs.cpio.gz" ]; then
        echo "guest_boot: no guest in $gdir (GUEST_KERNEL=$(guest_kernel) tests/guest/build-guest.sh $arch)" | tee -a "$log" >&2
        return 2
    fi
    local vars=""
    case "${GUEST_FIRMWARE:-}" in
        "") ;;
        uefi)
            local code=${GUEST_UEFI_CODE:-/usr/share/AAVMF/AAVMF_CODE.fd}
            local vtmpl=${GUEST_UEFI_VARS:-/usr/share/AAVMF/AAVMF_VARS.fd}
            if [ "$arch" != aarch64 ]; then
                echo "guest_boot: GUEST_FIRMWARE=uefi is for aarch64 only" | tee -a "$log" >&2
                return 2
            fi
            if [ ! -f "$code" ] || [ ! -f "$vtmpl" ]; then
                echo "guest_boot: no UEFI firmware $code / $vtmpl (apt-get install qemu-efi-aarch64)" | tee -a "$log" >&2
                return 2
            fi
            # The variable store is written by the firmware: a fresh copy
            # per boot.
            vars=${log%.log}.vars.fd
            cp "$vtmpl" "$vars" || return 2
            set -- -drive "if=pflash,format=raw,unit=0,readonly=on,file=$code" \
                   -drive "if=pflash,format=raw,unit=1,file=$vars" "$@" ;;
        *) echo "guest_boot: unknown GUEST_FIRMWARE=$GUEST_FIRMWARE" | tee -a "$log" >&2; return 2 ;;
    esac
    [ "${GUEST_REBOOT:-0}" = 1 ] || set -- -no-reboot "$@"
    local cmd=("$bin" "${machine[@]}" -m 1G -nodefaults -display none
               -serial stdio
               -kernel "$gdir/vmlinuz" -initrd "$gdir/initramfs.cpio.gz"
               -append "console=$console panic=-1 $extra $append" "$@")
    {
        echo "# $(date -u '+%F %T') QEMU build: $qdir"
        printf '# command:'
        printf ' %q' "${cmd[@]}"
        echo
    } > "$log"
    local start rc errexit='' qpid tailpid='' done_at='' hung=''
    case $- in *e*) errexit=1 ;; esac
    set +e
    start=$(date +%s.%N)
    timeout -k 5 "$limit" "${cmd[@]}" < /dev/null >> "$log" 2>&1 &
    qpid=$!
    if [ "${GUEST_CONSOLE:-0}" = 1 ]; then
        tail -n +1 -f --pid="$qpid" "$log" &
        tailpid=$!
    fi
    # A guest that reported VIOMMU-DONE but does not power off (hung on the
    # way down) is stopped after POWEROFF_GRACE seconds instead of running
    # into the hard timeout.
    while kill -0 "$qpid" 2>/dev/null; do
        if [ -z "$done_at" ]; then
            [ "$(grep -c 'VIOMMU-DONE' "$log")" -ge "${GUEST_DONES:-1}" ] &&
                done_at=$SECONDS
        elif [ $((SECONDS - done_at)) -ge "${POWEROFF_GRACE:-30}" ]; then
            hung=1
            kill "$qpid"
            break
        fi
        sleep 0.5
    done
    wait "$qpid"
    rc=$?
    [ -n "$tailpid" ] && wait "$tailpid"
    [ -n "$vars" ] && rm -f "$vars"
    [ -n "$errexit" ] && set -e
    BOOT_SECONDS=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
    if [ -n "$hung" ]; then
        echo "# guest did not power off within ${POWEROFF_GRACE:-30}s of VIOMMU-DONE; killed" >> "$log"
        rc=125
    fi
    [ "$rc" = 124 ] && echo "# killed after ${limit}s timeout" >> "$log"
    # panic=-1 reboots a crashed kernel at once and -no-reboot then ends
    # QEMU with status 0, as if the guest had powered off.
    if [ "$rc" = 0 ] && guest_panic "$log" > /dev/null; then
        echo "# the guest kernel panicked: $(guest_panic "$log")" >> "$log"
        rc=126
    fi
    return "$rc"
}

# guest_panic LOG: the kernel's panic line and the faulting instruction
# (RIP / pc), if the guest kernel panicked; non-zero if it did not.
guest_panic() {
    local why
    why=$(tr -d '\r' < "$1" | grep -m1 -oE 'Kernel panic - not syncing:.*') ||
        return 1
    echo "$why$(tr -d '\r' < "$1" |
                grep -m1 -oE '(RIP: [0-9a-f]+:|pc : )[^ ]+' | sed 's/^/; /')"
}

# The result lines of a console log, without carriage returns.  Kernel
# messages can still end up on the same line, so match anywhere in a line.
guest_lines() {
    tr -d '\r' < "$1" | grep -oE 'VIOMMU-(CHECK|INFO|DONE)( .*)?$' || true
}

# guest_checks LOG: "name PASS|FAIL detail" per check.
guest_checks() {
    guest_lines "$1" | sed -n 's/^VIOMMU-CHECK //p'
}

# tap_guest_checks PREFIX LOG [REQUIRED...]: one TAP line per check the
# guest reported in LOG, and a failure for each REQUIRED check it did not
# report (uses tap from scripts/lib.sh).
tap_guest_checks() {
    local prefix=$1 log=$2 name res detail seen=" "
    shift 2
    while read -r name res detail; do
        [ -n "$name" ] || continue
        seen="$seen$name "
        if [ "$res" = PASS ]; then
            tap ok "$prefix$name"
        else
            tap not-ok "$prefix$name" "$detail"
        fi
    done < <(guest_checks "$log")
    for name in "$@"; do
        case "$seen" in
            *" $name "*) ;;
            *) tap not-ok "$prefix$name" "not reported by the guest" ;;
        esac
    done
}

# tap_guest_verdict PREFIX LOG WHY: guest_verdict LOG as one TAP line;
# WHY (how QEMU ended, say) goes into a failure's reason.
tap_guest_verdict() {
    local verdict
    if verdict=$(guest_verdict "$2"); then
        tap ok "$1guest finished its checks, none failed ($verdict)"
    else
        tap not-ok "$1guest finished its checks, none failed, none lost" \
            "$verdict; $3"
    fi
}

guest_done() {
    guest_lines "$1" | grep -q '^VIOMMU-DONE'
}

# guest_verdict LOG...: did the guest finish (every boot), with no check
# failed, and did every check line reach the host intact?  Prints what it
# found; returns non-zero otherwise.  The guest counts its checks and
# failures on its VIOMMU-DONE lines (one per boot; several LOGs are read
# as one console, for a guest that moved between QEMUs): their sums must
# be the well-formed VIOMMU-CHECK lines the host read, and the failures 0.
# A kernel panic on any of the consoles is named in what it prints.
guest_verdict() {
    local out log why
    out=$(guest_count_checks "$@") && { echo "$out"; return 0; }
    for log in "$@"; do
        why=$(guest_panic "$log" 2> /dev/null) &&
            { out="$out; the guest kernel panicked: $why"; break; }
    done
    echo "$out"
    return 1
}

guest_count_checks() {
    local lines dones checks=0 fails=0 seen seen_fail n m
    lines=$(cat "$@" 2>/dev/null | tr -d '\r' |
            grep -oE 'VIOMMU-(CHECK|DONE)( .*)?$' || true)
    dones=$(grep -E '^VIOMMU-DONE' <<< "$lines" || true)
    if [ -z "$dones" ]; then
        echo "no VIOMMU-DONE"
        return 1
    fi
    while read -r _ n m; do
        n=${n#checks=} m=${m%% *} m=${m#failed=}
        if ! [[ $n =~ ^[0-9]+$ && $m =~ ^[0-9]+$ ]]; then
            echo "garbled VIOMMU-DONE line"
            return 1
        fi
        checks=$((checks + n)) fails=$((fails + m))
    done <<< "$dones"
    seen=$(grep -cE '^VIOMMU-CHECK [A-Za-z0-9_.-]+ (PASS|FAIL)( |$)' <<< "$lines")
    seen_fail=$(grep -cE '^VIOMMU-CHECK [A-Za-z0-9_.-]+ FAIL( |$)' <<< "$lines")
    echo "checks=$checks failed=$fails, $seen check lines read"
    [ "$fails" -eq 0 ] && [ "$seen" -eq "$checks" ] && [ "$seen_fail" -eq 0 ]
}

# pattern_bytes SEED BYTES: the data the guest writes for SEED
# (tests/guest/image/pattern.sh, the same script the guest runs).
pattern_bytes() {
    sh "$top/tests/guest/image/pattern.sh" "$1" "$2"
}
