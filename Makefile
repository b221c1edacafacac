# Convenience targets.  The project's own commands are scripts; see README.md.
#
#   make bench    the benchmark suite (scripts/bench.sh): prints the results
#                 and writes docs/benchmarks.md.  Scale it with BENCH_RUNS
#                 (default 3) and BENCH_SECONDS (default 10); BENCH_PROFILE=1
#                 adds a perf profile of the host QEMU process.

.PHONY: bench

bench:
	bash scripts/bench.sh
