#!/bin/bash
# Benchmark 5 of docs/benchmarks.md: the pure core and the translation
# cache, built with -O2 (no sanitizers) apart from QEMU, by meson
# (meson.build, the bench-core flavour) in build/bench-core.  Prints a
# Markdown table, one row per number of live mappings.
#
#   tests/bench/run-core-bench.sh [SIZES...]     (default 1 1000 100000 1000000)
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/scripts/lib.sh"
cd "$top"

dir=$BUILD/bench-core
log=$BUILD/bench-core.log
mkdir -p "$BUILD"
build() {
    if [ ! -f "$dir/build.ninja" ]; then
        meson setup "$dir" --buildtype=debugoptimized || return 1
    fi
    ninja -C "$dir" bench-core
}
# Only the table goes to stdout (the benchmark suite includes it).
build > "$log" 2>&1 ||
    { cat "$log" >&2; die "could not build tests/bench/bench-core.c"; }
# GLib 2.74 allocates GTree nodes from its slice allocator unless told
# otherwise; plain malloc lets the benchmark count bytes and allocations.
G_SLICE=always-malloc "$dir/bench-core" "$@"
