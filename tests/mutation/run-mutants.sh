#!/bin/bash
# Mutation check: apply deliberate bugs ("mutants", one unified diff each
# in tests/mutation/mutants/NN-NAME.patch) one at a time to a copy of the
# committed tree, rebuild it, run the fast tests on it (the core's unit
# tests and the x86_64 qtests; the aarch64 qtests too for a mutant whose
# header says "Stages: ... qtest-aarch64") and print one TAP line per
# mutant.  A mutant is caught when a test fails (a "not ok", a "Bail out!"
# or a non-zero exit) and fails again when run once more: a failure that
# does not repeat is reported as flaky and catches nothing.  Every mutant
# must be caught; one that survives, no longer applies (its code was
# refactored: update the patch) or does not build fails the run, and a
# copy whose tests fail without any mutant (the baseline) stops it.
#
#   bash tests/mutation/run-mutants.sh              every mutant
#   MUTANTS="cache-flush unmap-split" bash ...      only those
#   MUTATION_FULL=1 bash ...                        every stage of every
#       mutant, naming every failing test (default: stop at the first stage
#       that catches it)
#   MUTATION_TIMEOUT=SECONDS                        per stage (default 600)
#
# Nothing of the working copy or of its build is touched: HEAD, pinned when
# the run starts, is checked out into build/mutation/tree through an index
# of its own (only files that differ are rewritten), and that copy's own
# scripts build and test it in build/mutation/tree/build.  Inside the copy,
# that directory is under ccache's base_dir (scripts/lib.sh), so the main
# build's objects hit: a first build there takes about two minutes, a
# mutant then one changed file and the links.  docs/testing.md lists the
# mutants and what catches each.
set -uo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/scripts/lib.sh"

mdir=$BUILD/mutation
tree=$mdir/tree
logs=$mdir/logs
patches=$top/tests/mutation/mutants
timeout=${MUTATION_TIMEOUT:-600}
full=${MUTATION_FULL:-0}
default_stages="unit qtest-x86_64"

# The mutants, by name (the file name without NN- and .patch)
declare -A patch_of
all=()
for p in "$patches"/[0-9]*-*.patch; do
    [ -e "$p" ] || die "no mutant in $patches"
    name=$(basename "$p" .patch)
    name=${name#*-}
    all+=("$name")
    patch_of[$name]=$p
done
if [ -n "${MUTANTS:-}" ]; then
    read -r -a selected <<< "$MUTANTS"
    for name in "${selected[@]}"; do
        [ -n "${patch_of[$name]:-}" ] ||
            die "no mutant '$name' (there are: ${all[*]})"
    done
else
    selected=("${all[@]}")
fi

stages_of() {
    local s
    s=$(sed -n 's/^Stages: *//p' "${patch_of[$1]}" | head -n 1)
    echo "${s:-$default_stages}"
}

mkdir -p "$mdir" "$logs"
exec 8> "$mdir/.lock"
flock -n 8 || { echo "# waiting for another mutation run to finish"; flock 8; }

rev=$(git -C "$top" rev-parse HEAD) || die "$top is not a git checkout"

# Make the copy exactly $rev: files that differ are rewritten, the others
# keep their time stamps, so that ninja rebuilds only what changed.
sync_tree() {
    mkdir -p "$tree"
    GIT_INDEX_FILE=$mdir/index git -C "$top" --work-tree="$tree" \
        read-tree --reset -u "$rev"
}

# The copy's scripts build and test into the copy's build directory, never
# into ours (QEMU_BUILD would point run-qtests.sh elsewhere)
export VIOMMU_BUILD_DIR=$tree/build
unset QEMU_BUILD

# Reuse the QEMU source package we have instead of fetching it again
link_download() {
    local f
    mkdir -p "$VIOMMU_BUILD_DIR/download"
    for f in "$DL"/qemu_10.0.*; do
        [ -e "$f" ] && ln -sfn "$f" "$VIOMMU_BUILD_DIR/download/"
    done
    return 0
}

# scripts/build-qemu.sh applies each patch of patches/ once, by name: when
# they changed since the copy's QEMU tree was patched, unpack it afresh
# (a full build, mostly ccache hits)
patches_id=$(git -C "$top" rev-parse "$rev:patches")
refresh_qemu_tree() {
    [ "$(cat "$mdir/patches-id" 2>/dev/null)" = "$patches_id" ] ||
        rm -f "$VIOMMU_BUILD_DIR/src-ours/.unpacked"
}

# QEMU with our device, and the core's standalone unit tests once set up
# (werror there: a mutant must build cleanly, not be caught by a warning)
build_tree() {
    (cd "$tree" && bash scripts/build-qemu.sh &&
     if [ -f "$VIOMMU_BUILD_DIR/unit/build.ninja" ]; then
         ninja -C "$VIOMMU_BUILD_DIR/unit"
     fi) > "$1" 2>&1
}

# run_stage STAGE LOG: run one test stage of the copy; its exit status
run_stage() {
    local cmd
    case $1 in
        unit) cmd=(bash tests/unit/run-unit-tests.sh) ;;
        qtest-x86_64) cmd=(bash tests/qtest/run-qtests.sh x86_64) ;;
        qtest-aarch64) cmd=(bash tests/qtest/run-qtests.sh aarch64) ;;
        *) echo "unknown stage $1" > "$2"; return 1 ;;
    esac
    (cd "$tree" && timeout -k 10 "$timeout" "${cmd[@]}") > "$2" 2>&1
}

# run_qtests ARCH LOG PATH...: only those qtests of the copy's build
run_qtests() {
    local arch=$1 log=$2 qemu=$VIOMMU_BUILD_DIR/qemu args=() path
    shift 2
    for path; do
        args+=(-p "$path")
    done
    QTEST_QEMU_BINARY=$qemu/qemu-system-$arch timeout -k 10 "$timeout" \
        "$qemu/tests/qtest/qos-test" --tap -k "${args[@]}" > "$log" 2>&1
}

# failed LOG RC: did a test fail?
failed() {
    [ "$2" -ne 0 ] || grep -qE '^not ok|Bail out!' "$1"
}

# failing_tests STAGE LOG RC: the failing tests of a stage, one a line:
# qtests by name, a test that aborted by its function, QEMU aborting by
# the function that failed an assertion
failing_tests() {
    local stage=$1 log=$2 rc=$3 out last
    # QEMU's death does not name the test: say which one passed last
    last=$(sed -n -E 's|^ok [0-9]+ .*/virtio-iommu-[a-z]*-tests/(.*)$|\1|p' "$log" |
           tail -n 1)
    out=$(sed -n -E \
        -e 's|^not ok [0-9]* */.*/virtio-iommu-[a-z]*-tests/(.*)$|\1|p' \
        -e 't' \
        -e 's|^not ok [0-9]* *-? *(.*)$|\1|p' \
        -e 's|^Bail out! .*child process \(/.*/virtio-iommu-[a-z]*-tests/([^/]+)/subprocess .*|\1|p' \
        -e 't' \
        -e 's|^Bail out! ERROR:[^:]*/([^/:]+):([0-9]+):([^:]+):.*$|\3 (Bail out! at \1:\2)|p' \
        -e 't' \
        -e 's|^(Bail out!.*)$|\1|p' \
        -e "s|^qemu-system-[^:]*: [^:]*/([^/:]+):([0-9]+): ([^:]+): Assertion .*|QEMU aborted in \\3 (\\1:\\2)${last:+ after $last}|p" \
        "$log" | sed "s|^|$stage |")
    if [ -z "$out" ]; then
        case $rc in
            124|137) out="$stage timed out after ${timeout}s" ;;
            *) out="$stage exited with status $rc" ;;
        esac
    fi
    printf '%s\n' "$out"
}

# confirm STAGE LOG AGAIN: does a stage that failed fail again?  The
# failing qtests alone first, the whole stage if they pass on their own
# (a test may fail only after the one before it); a stage that passes
# when run again was a flaky test, not the mutant.
confirm() {
    local stage=$1 log=$2 again=$3 paths=()
    if [ "${stage#qtest-}" != "$stage" ]; then
        mapfile -t paths < <(sed -n -E 's|^not ok [0-9]+ (/[^ ]+).*|\1|p' "$log")
        if [ "${#paths[@]}" -gt 0 ]; then
            run_qtests "${stage#qtest-}" "$again" "${paths[@]}"
            failed "$again" $? && return 0
        fi
    fi
    run_stage "$stage" "$again"
    failed "$again" $?
}

# "A, B, C (+N more)" from lines on stdin
first_three() {
    awk 'NR <= 3 { s = s (NR > 1 ? ", " : "") $0 }
         END { if (NR > 3) s = s " (+" NR - 3 " more)"; print s }'
}

times=()
start_all=$SECONDS
echo "# mutation check of $rev in $tree"

# The copy, clean, and a baseline: every stage any selected mutant uses
# must pass without a mutant, or "caught" would mean nothing
sync_tree || die "cannot check out $rev into $tree"
link_download
refresh_qemu_tree
t0=$SECONDS
if ! build_tree "$logs/build-clean.log"; then
    tap not-ok "baseline: the unmutated copy builds" \
        "$(tail -n 20 "$logs/build-clean.log")"
    echo "Bail out! the copy does not build (log: $logs/build-clean.log)"
    exit 1
fi
echo "$patches_id" > "$mdir/patches-id"
base_stages=$(for name in "${selected[@]}"; do stages_of "$name"; done |
              tr ' ' '\n' | awk 'NF && !seen[$0]++' | tr '\n' ' ')
base_ok=1
base_fail=
flaky=()
for stage in $base_stages; do
    log=$logs/baseline-$stage.log
    run_stage "$stage" "$log"
    rc=$?
    failed "$log" "$rc" || continue
    first=$(failing_tests "$stage" "$log" "$rc")
    if confirm "$stage" "$log" "$log.again"; then
        base_ok=0
        base_fail+=$first$'\n'
    else
        flaky+=("baseline: $stage: $(first_three <<< "$first")")
    fi
done
if [ "$base_ok" = 1 ]; then
    tap ok "baseline: the unmutated copy passes $base_stages($((SECONDS - t0))s)"
else
    tap not-ok "baseline: the unmutated copy fails $base_stages" "$base_fail"
    echo "Bail out! tests fail without a mutant (logs: $logs/baseline-*.log)"
    exit 1
fi

# Every mutant, run or not, must still apply: a refactoring that moves
# the code a mutant breaks leaves it stale even when CI runs only a few
stale=
for name in "${all[@]}"; do
    patch -d "$tree" -p1 --dry-run -s -f < "${patch_of[$name]}" \
        > /dev/null 2>&1 || stale+="$(basename "${patch_of[$name]}") "
done
if [ -z "$stale" ]; then
    tap ok "all ${#all[@]} mutants apply to the copy"
else
    tap not-ok "mutants that no longer apply: update $stale"
fi

survived=0
broken=0
for name in "${selected[@]}"; do
    p=${patch_of[$name]}
    log=$logs/$name
    rm -f "$log".*
    t0=$SECONDS
    if ! patch -d "$tree" -p1 --dry-run -s -f < "$p" > "$log.patch.log" 2>&1; then
        tap not-ok "mutant $name does not apply: update $(basename "$p")" \
            "$(cat "$log.patch.log")"
        broken=$((broken + 1))
        continue
    fi
    patch -d "$tree" -p1 -s -f --no-backup-if-mismatch < "$p" ||
        die "mutant $name applied with --dry-run but not for real"
    if ! build_tree "$log.build.log"; then
        tap not-ok "mutant $name does not build (log: $log.build.log)" \
            "$(grep -E 'error' "$log.build.log" | head -n 5)"
        broken=$((broken + 1))
    else
        build_s=$((SECONDS - t0))
        timing="build ${build_s}s"
        caught=
        for stage in $(stages_of "$name"); do
            s0=$SECONDS
            run_stage "$stage" "$log.$stage.log"
            rc=$?
            failed "$log.$stage.log" "$rc" || {
                timing+=", $stage $((SECONDS - s0))s"
                continue
            }
            first=$(failing_tests "$stage" "$log.$stage.log" "$rc")
            if confirm "$stage" "$log.$stage.log" "$log.$stage.again.log"; then
                caught+=$first$'\n'
            else
                echo "# $name: $stage passed when run again: not caught by" \
                     "the flaky $(first_three <<< "$first")"
                flaky+=("$name: $stage: $(first_three <<< "$first")")
            fi
            timing+=", $stage $((SECONDS - s0))s"
            [ -n "$caught" ] && [ "$full" != 1 ] && break
        done
        caught=${caught%$'\n'}
        printf '%s\n' "$caught" > "$log.caught"
        if [ -n "$caught" ]; then
            tap ok "mutant $name caught by $(first_three <<< "$caught")"
        else
            tap not-ok "mutant $name survived"
            survived=$((survived + 1))
        fi
        echo "# $name: $timing; total $((SECONDS - t0))s"
        times+=("$(printf '%-26s %4ds  (%s)' "$name" $((SECONDS - t0)) "$timing")")
    fi
    patch -d "$tree" -p1 -R -s -f --no-backup-if-mismatch < "$p" > /dev/null ||
        sync_tree || die "cannot revert mutant $name in $tree"
done

# Leave the copy as built from $rev, no mutant in it
sync_tree || die "cannot check out $rev into $tree"
if build_tree "$logs/build-clean.log"; then
    tap ok "the copy is rebuilt without mutants"
else
    tap not-ok "the copy is rebuilt without mutants (log: $logs/build-clean.log)"
fi

echo "# time per mutant (s):"
for t in "${times[@]}"; do
    echo "#   $t"
done
for f in "${flaky[@]}"; do
    echo "# flaky (failed once, passed when run again): $f"
done
echo "# ${#selected[@]} mutants: $((${#selected[@]} - survived - broken)) caught," \
     "$survived survived, $broken could not be applied or built;" \
     "total $((SECONDS - start_all))s"
echo "1..$n"
[ "$failed" -eq 0 ]
