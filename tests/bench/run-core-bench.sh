#!/bin/bash
# Benchmark 5 of docs/benchmarks.md: the pure core and the translation
# cache, built with -O2 (no sanitizers) apart from QEMU.  Prints a Markdown
# table, one row per number of live mappings.
#
#   tests/bench/run-core-bench.sh [SIZES...]     (default 1 1000 100000 1000000)
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/scripts/lib.sh"
cd "$top"

out=$BUILD/bench
mkdir -p "$out"
# shellcheck disable=SC2046
gcc -O2 -g -Wall -Wno-unused-parameter -I tests/unit/shim -I include \
    $(pkg-config --cflags glib-2.0) \
    hw/virtio/virtio-iommu-core.c tests/bench/bench-core.c \
    $(pkg-config --libs glib-2.0) -o "$out/bench-core" ||
    die "could not build tests/bench/bench-core.c"
# GLib 2.74 allocates GTree nodes from its slice allocator unless told
# otherwise; plain malloc lets the benchmark count bytes and allocations.
G_SLICE=always-malloc "$out/bench-core" "$@"
