# Shared shell helpers for the project's scripts.  Sourced, not run.

BUILD=${VIOMMU_BUILD_DIR:-$top/build}
DL=$BUILD/download
# A string only our device's binary contains (see hw/virtio/virtio-iommu.c).
OUR_MARKER="virtio-iommu: independent implementation"

die() {
    echo "ERROR${STEP:+ in step '$STEP'}: $*" >&2
    exit 1
}

run_step() {
    STEP=$1
    shift
    echo "==> $STEP"
    "$@"
    STEP=
}

qemu_version() {
    cat "$BUILD"/src-*/.debian-version 2>/dev/null | head -n 1
}

# Let ccache share objects between our build and the comparison build, and
# between clones of this repository in other folders (CI builds a fresh
# clone): paths below the clone's root are hashed relative to it, and the
# working directory is left out of the hash.
export CCACHE_BASEDIR=$top
export CCACHE_NOHASHDIR=true

# TAP lines for the test scripts: tap ok|not-ok DESCRIPTION [DIAGNOSTIC].
# Counts go to $n (checks) and $failed.
n=0
failed=0
tap() {
    n=$((n + 1))
    if [ "$1" = ok ]; then
        echo "ok $n - $2"
    else
        echo "not ok $n - $2"
        failed=$((failed + 1))
    fi
    [ -z "${3:-}" ] || printf '%s\n' "$3" | sed 's/^/#   /'
}
