# Convenience targets.  The project's own commands are scripts; see README.md.
#
#   make bench    the benchmark suite (tests/bench/run-bench.sh): prints the
#                 results and writes docs/benchmarks.md.  Scale it with
#                 BENCH_RUNS (default 3) and BENCH_SECONDS (default 10);
#                 BENCH_PROFILE=1 adds a perf profile of the host QEMU
#                 process, BENCH_COST_RUNS the runs of the host-side request
#                 cost.  Then the scale benchmark
#                 (tests/bench/run-scale-bench.sh, no guest): writes
#                 docs/benchmarks-scale.md; BENCH_SCALE_MAX caps its size.

.PHONY: bench

bench:
	bash tests/bench/run-bench.sh; rc=$$?; \
	bash tests/bench/run-scale-bench.sh && exit $$rc
