#!/usr/bin/env python3
"""Turn the work files of tests/bench/run-bench.sh into docs/benchmarks.md.

    bench-report.py WORKDIR OUT

WORKDIR (build/bench) holds meta.env (KEY=VALUE), results.tsv (run, kind,
workload, metric, value), boots.tsv, problems.txt and, when they were run,
perf-CFG.txt / perf-CFG-comm.txt / perf-CFG-result.txt (host profile) and
core.out (tests/bench/run-core-bench.sh) and cost.txt (the qtest
request-cost).  Writes OUT and prints the
results, targets and problems on stdout.
"""

import os
import re
import statistics
import sys

CONFIGS = [("ours", "ours"), ("upstream", "upstream"),
           ("identity", "identity"), ("noiommu", "no-IOMMU")]

# (id, workload text, unit, result name, {config: kind}, note)
ROWS = [
    ("1", "strict (iommu.strict=1): 4 KiB O_DIRECT random reads", "IOPS",
     "randread",
     {"ours": "strict-ours", "upstream": "strict-upstream",
      "identity": "lazy-identity", "noiommu": "lazy-noiommu"},
     "identity and no-IOMMU: the lazy boots' figures (strict mode only "
     "changes DMA domains)"),
    ("2", "lazy (DMA-FQ): 4 KiB O_DIRECT random reads", "IOPS", "randread",
     {c: "lazy-" + c for c, _ in CONFIGS}, ""),
    ("3", "lazy: 1 MiB O_DIRECT sequential reads", "MB/s", "seqread",
     {c: "lazy-" + c for c, _ in CONFIGS}, ""),
    ("4a", "lazy: TCP virtio-net -> e1000e", "MB/s", "net-virtio-to-e1000e",
     {c: "lazy-" + c for c, _ in CONFIGS}, ""),
    ("4b", "lazy: TCP e1000e -> virtio-net", "MB/s", "net-e1000e-to-virtio",
     {c: "lazy-" + c for c, _ in CONFIGS}, ""),
    ("6", "MAP+UNMAP round trips (VFIO type1, edu)", "pairs/s", "maploop",
     {"ours": "strict-ours", "upstream": "strict-upstream"},
     "only meaningful with DMA domains: ours vs upstream"),
]

# (label, row id, numerator config, denominator config, goal)
TARGETS = [
    ("(1) strict 4 KiB IOPS, ours / upstream", "1", "ours", "upstream", 1.2),
    ("(2) lazy 4 KiB IOPS, ours / identity", "2", "ours", "identity", 0.95),
    ("(3) lazy 1 MiB MB/s, ours / identity", "3", "ours", "identity", 0.9),
    ("(6) MAP+UNMAP pairs/s, ours / upstream", "6", "ours", "upstream", 1.5),
]


def read(path, default=""):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return default


def fmt(v):
    if v is None:
        return "n/a"
    if abs(v) >= 100:
        return "%.0f" % v
    if abs(v) >= 10:
        return "%.1f" % v
    return "%.2f" % v


def cell(values):
    if not values:
        return "n/a"
    med = statistics.median(values)
    if len(values) == 1:
        return fmt(med)
    return "%s (%s-%s)" % (fmt(med), fmt(min(values)), fmt(max(values)))


class Results:
    def __init__(self, workdir):
        self.values = {}   # (kind, name) -> {run: value}
        for line in read(os.path.join(workdir, "results.tsv")).splitlines():
            f = line.split("\t")
            if len(f) != 5:
                continue
            run, kind, name, _metric, value = f
            self.values.setdefault((kind, name), {})[int(run)] = float(value)

    def runs(self, kind, name):
        return self.values.get((kind, name), {})

    def median(self, kind, name):
        v = list(self.runs(kind, name).values())
        return statistics.median(v) if v else None

    def ratio(self, row, num, den):
        """Ratio of the medians and the per-run ratios (same run only)."""
        kinds, name = row[4], row[3]
        if num not in kinds or den not in kinds:
            return None, []
        a, b = self.runs(kinds[num], name), self.runs(kinds[den], name)
        ma, mb = self.median(kinds[num], name), self.median(kinds[den], name)
        r = ma / mb if ma is not None and mb else None
        per_run = [a[k] / b[k] for k in sorted(a) if k in b and b[k]]
        return r, per_run


def ratio_cell(r, per_run):
    if r is None:
        return "n/a"
    if len(per_run) > 1:
        return "%.2f (%.2f-%.2f)" % (r, min(per_run), max(per_run))
    return "%.2f" % r


def results_table(res):
    out = ["| # | workload | unit | " +
           " | ".join(label for _, label in CONFIGS) +
           " | ours / upstream | ours / identity |",
           "|---|---|---|" + "---:|" * (len(CONFIGS) + 2)]
    notes = []
    for row in ROWS:
        rid, text, unit, name, kinds, note = row
        cells = []
        for c, _ in CONFIGS:
            if c not in kinds:
                cells.append("-")
            else:
                v = list(res.runs(kinds[c], name).values())
                mark = "\u2020" if rid == "1" and c in ("identity",
                                                         "noiommu") else ""
                cells.append(cell(v) + mark)
        ru = ratio_cell(*res.ratio(row, "ours", "upstream"))
        ri = ratio_cell(*res.ratio(row, "ours", "identity")) \
            if "identity" in kinds else "-"
        out.append("| %s | %s | %s | %s | %s | %s |" %
                   (rid, text, unit, " | ".join(cells), ru, ri))
        if note:
            notes.append("%s%s: %s." % (rid, "\u2020" if rid == "1" else "",
                                        note))
    out.append("")
    out.append("Median over the runs (min-max in brackets); ratios are "
               "ratios of the medians, with the range of the per-run "
               "ratios (both figures from the same run) in brackets.")
    if notes:
        out.append("")
        out.append("Row " + " Row ".join(notes))
    return "\n".join(out)


def targets_table(res):
    rows = {r[0]: r for r in ROWS}
    out = ["| target | goal | this run | per-run ratios | met |",
           "|---|---:|---:|---:|---|"]
    for label, rid, num, den, goal in TARGETS:
        r, per_run = res.ratio(rows[rid], num, den)
        if r is None:
            met = "n/a (no figures)"
        else:
            met = "yes" if r >= goal else "**no**"
        pr = ", ".join("%.2f" % x for x in per_run) or "-"
        out.append("| %s | >= %.2f | %s | %s | %s |" %
                   (label, goal, "n/a" if r is None else "%.2f" % r, pr, met))
    out.append("")
    out.append("A target is met when the ratio of the medians reaches the "
               "goal.  This is a report, not a test: a missed target does "
               "not fail `make bench`.")
    return "\n".join(out)


def per_run_table(res, workdir):
    names = [("randread", "randread IOPS"), ("seqread", "seqread MB/s"),
             ("net-virtio-to-e1000e", "net v->e MB/s"),
             ("net-e1000e-to-virtio", "net e->v MB/s"),
             ("maploop", "maploop pairs/s")]
    out = ["| run | kind | boot s | status | " +
           " | ".join(n for _, n in names) + " |",
           "|---:|---|---:|---|" + "---:|" * len(names)]
    for line in read(os.path.join(workdir, "boots.tsv")).splitlines():
        f = line.split()
        if len(f) < 6:
            continue
        run, kind, _, secs, rc, status = f[:6]
        vals = []
        for n, _ in names:
            v = res.runs(kind, n).get(int(run))
            vals.append(fmt(v) if v is not None else "-")
        out.append("| %s | %s | %s | %s | %s |" %
                   (run, kind, secs, status if rc == "0" else
                    "%s (QEMU %s)" % (status, rc), " | ".join(vals)))
    return "\n".join(out)


# ------------------------------------------------------------ profile

PERF_LINE = re.compile(r"^\s*([\d.]+)%\s+(.+?)\s+\[([.kgu])\]\s+(.+?)\s*$")

CATEGORIES = [
    ("virtio-iommu device: requests, translate, notifiers",
     r"^(viommu_|virtio_iommu_)"),
    ("memory core: IOMMU translate, DMA map/unmap, cached access",
     r"^(address_space_|flatview_|dma_|iommu_|memory_region_get_iommu|"
     r"memory_region_notify|memory_region_iommu|subpage_|qemu_map_ram_ptr|"
     r"qemu_ram_|lduw_le_|stw_le_|ldl_le_|stl_le_|ldq_le_|stq_le_)"),
    ("virtio core: virtqueues", r"^(virtqueue_|virtio_(?!blk_|net_)|vring_)"),
    ("block layer and virtio-blk",
     r"^(blk_|bdrv_|virtio_blk_|raw_|qemu_iovec|iov_|thread_pool|"
     r"handle_aiocb|qemu_preadv|qemu_pwritev|laio_)"),
    ("network devices: virtio-net, e1000e, hub",
     r"^(virtio_net_|e1000e_|e1000x_|e1000_|net_|qemu_send|qemu_deliver|"
     r"qemu_net_|net_hub)"),
    ("TCG: translated guest code", None),
    ("TCG: runtime (helpers, TB lookup, softmmu, cpu loop)",
     r"^(helper_|cpu_|tb_|tcg_|qht_|probe_access|mmu_|tlb_|x86_|mttcg_|"
     r"rr_|do_ld|do_st|get_page_addr|page_|curr_cflags|cc_|float|"
     r"translator_|gen_|disas_|cpu_exec|qemu_wait_io_event|"
     r"process_queued_cpu_work|apic_|cpu_handle_)"),
    ("locks, BQL, main loop, threads",
     r"^(bql_|get_bql|qemu_mutex|qemu_cond|qemu_sem|qemu_event|"
     r"qemu_thread|pthread_|__pthread|__GI___pthread|___pthread|aio_|"
     r"main_loop|os_host_main_loop|glib_pollfds|qemu_poll|g_main|qemu_bh|"
     r"timerlist|qemu_clock|__lll|event_notifier|qemu_lockcnt|rcu_|"
     r"call_rcu|qemu_futex|futex|qemu_co_|coroutine_|qemu_coroutine_|"
     r"qemu_notify_event|qemu_cpu_kick)"),
    ("host kernel (syscalls, scheduling, copies)", None),
    ("libc / glib, other", None),
    ("other QEMU code", None),
]


def categorise(dso, sym):
    if dso.startswith("[JIT]") or dso == "[unknown]" and sym.startswith("0x"):
        return "TCG: translated guest code"
    if dso.startswith("[kernel"):
        return "host kernel (syscalls, scheduling, copies)"
    for name, rx in CATEGORIES:
        if rx and re.search(rx, sym):
            return name
    if dso.startswith("qemu-system"):
        return "other QEMU code"
    return "libc / glib, other"


def perf_rows(text):
    rows = []
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = PERF_LINE.match(line)
        if m:
            rows.append((float(m.group(1)), m.group(2).strip(),
                         m.group(3), m.group(4)))
    return rows


def comm_rows(text):
    rows = []
    for line in text.splitlines():
        m = re.match(r"^\s*([\d.]+)%\s+(.+?)\s*$", line)
        if m and not line.startswith("#"):
            rows.append((float(m.group(1)), m.group(2)))
    return rows


def profile_section(workdir, meta):
    cfgs = [c for c in ("ours", "upstream")
            if os.path.exists(os.path.join(workdir, "perf-%s.txt" % c))]
    if not cfgs:
        return ("Not run in this measurement (`BENCH_PROFILE=1 make bench` "
                "adds it).")
    out = ["The strict randread boot (benchmark 1) of each build once more, "
           "with `perf record -g -p QEMU` on the host during the measured "
           "part of the workload (%s s less 0.75 s); "
           "`perf report --no-children` (self time, as a share of "
           "all samples of the QEMU process).  The categories group symbols "
           "by name (tests/bench/bench-report.py); the translated guest code "
           "is perf's `[JIT]` mapping." % meta.get("seconds", "?"), ""]
    shares = {}
    threads = {}
    for c in cfgs:
        rows = perf_rows(read(os.path.join(workdir, "perf-%s.txt" % c)))
        s = {}
        for pct, dso, _, sym in rows:
            k = categorise(dso, sym)
            s[k] = s.get(k, 0.0) + pct
        shares[c] = s
        threads[c] = comm_rows(read(os.path.join(workdir,
                                                 "perf-%s-comm.txt" % c)))
    out.append("| share of QEMU's samples | " + " | ".join(cfgs) + " |")
    out.append("|---|" + "---:|" * len(cfgs))
    for name, _ in CATEGORIES:
        out.append("| %s | %s |" % (name, " | ".join(
            "%.1f%%" % shares[c].get(name, 0.0) for c in cfgs)))
    out.append("")
    out.append("By thread (`--sort comm`; `CPU n/TCG` are the vCPUs, "
               "`qemu-system-x86` the main loop, `worker` the block layer's "
               "thread pool):")
    out.append("")
    for c in cfgs:
        out.append("- %s: %s" % (c, ", ".join(
            "%s %.1f%%" % (t, p) for p, t in threads[c][:6]) or "n/a"))
    for c in cfgs:
        res = read(os.path.join(workdir, "perf-%s-result.txt" % c)).strip()
        out.append("")
        out.append("### %s: top symbols" % c)
        out.append("")
        if res:
            out.append("The workload under perf: %s" % res)
            out.append("")
        out.append("```")
        out.append("# perf report --no-children --stdio -g none "
                   "--sort dso,sym")
        lines = [line.rstrip() for line in
                 read(os.path.join(workdir, "perf-%s.txt" % c)).splitlines()
                 if PERF_LINE.match(line)]
        out += lines[:15]
        out.append("```")
    return "\n".join(out)


# ------------------------------------------------------------ requests

def cost_figures(workdir):
    """{cfg: {"map_ns": [...], "unmap_ns": [...]}} from cost.txt."""
    figures = {}
    for line in read(os.path.join(workdir, "cost.txt")).splitlines():
        f = line.split()
        if len(f) < 3:
            continue
        d = figures.setdefault(f[1], {})
        for kv in f[2:]:
            k, _, v = kv.partition("=")
            try:
                d.setdefault(k, []).append(float(v))
            except ValueError:
                pass
    return figures


def cost_section(workdir, res, meta):
    figures = cost_figures(workdir)
    cfgs = [c for c in ("ours", "upstream")
            if figures.get(c, {}).get("map_ns")]
    if not cfgs:
        return ("Not in this run (BENCH_COST_RUNS=0, or see Problems).")

    def med(c, k):
        v = figures[c].get(k)
        return statistics.median(v) if v else None

    out = ["The device alone, without a guest: the qtest `request-cost` "
           "(`tests/qtest/virtio-iommu-test.c`, run by `qos-test -m perf`) "
           "queues batches of 1 and of 128 MAP (or UNMAP) requests of "
           "4 KiB on a domain holding 1024 other mappings and times the "
           "notification, which returns when the device has completed the "
           "batch; the slope between the two sizes is the device's time "
           "per request (virtqueue pop and push included), free of the "
           "qtest round trip.  Medians of %s runs per device, alternated."
           % meta.get("cost_runs", "?"), ""]
    out.append("| host time per request | " + " | ".join(cfgs) +
               (" | ours / upstream |" if len(cfgs) == 2 else " |"))
    out.append("|---|" + "---:|" * (len(cfgs) + (len(cfgs) == 2)))
    for k, label in (("map_ns", "MAP"), ("unmap_ns", "UNMAP")):
        vals = [med(c, k) for c in cfgs]
        row = "| %s | %s |" % (label, " | ".join(
            "%.0f ns (%.0f-%.0f)" % (med(c, k), min(figures[c][k]),
                                     max(figures[c][k])) for c in cfgs))
        if len(cfgs) == 2 and vals[0]:
            row += " %.2f |" % (vals[0] / vals[1])
        out.append(row)
    out.append("")
    iops_up = res.median("strict-upstream", "randread")
    if "upstream" in cfgs and iops_up:
        # Two vCPUs, both busy: vCPU time per I/O against the device's
        # MAP and UNMAP of it
        io_us = 2 * 1e6 / iops_up
        dev_us = (med("upstream", "map_ns") + med("upstream", "unmap_ns")) \
            / 1000
        if io_us > dev_us:
            out.append(
                "What that leaves for target (1): a strict 4 KiB read costs "
                "the guest's two vCPUs %.0f us (median %s IOPS with "
                "upstream's device); its MAP and UNMAP cost the device "
                "%.1f us, %.1f%% of it.  A device that answered in no time "
                "at all would reach %.3fx upstream; the target asks for "
                "1.2x." % (io_us, fmt(iops_up), dev_us, 100 * dev_us / io_us,
                           io_us / (io_us - dev_us)))
            out.append("")
    pairs_up = res.median("strict-upstream", "maploop")
    if "upstream" in cfgs and pairs_up:
        pair_us = 1e6 / pairs_up
        dev_us = (med("upstream", "map_ns") + med("upstream", "unmap_ns")) \
            / 1000
        if pair_us > dev_us:
            out.append(
                "What that leaves for target (6): a MAP+UNMAP pair of "
                "benchmark 6 takes %.1f us of the guest's time with "
                "upstream's device (median %s pairs/s), of which the device "
                "accounts for %.1f us.  A device that answered in no time "
                "at all would reach %.2fx upstream; the target asks for "
                "1.5x." % (pair_us, fmt(pairs_up), dev_us,
                           pair_us / (pair_us - dev_us)))
    return "\n".join(out)


# ------------------------------------------------------------ report

# The vhost-user IOTLB figure (tests/guest/run-vhost-user-tests.sh): one
# row per config "BUILD-MODE": updates invalidates update_bytes moved_bytes
# seconds complete.  Goal: in strict mode ours sends at most a tenth of
# upstream's IOTLB updates (backend misses) per MiB moved, and moves the
# payload no slower.  Throughput only counts when both transfers completed.
VHOST_MISS_GOAL = 0.1


def vhost_rows(workdir):
    rows = {}
    for line in read(os.path.join(workdir, "vhost-iotlb.tsv")).splitlines():
        f = line.split("\t")
        if len(f) != 7:
            continue
        try:
            upd, inv, _, moved = (int(x) for x in f[1:5])
            secs = float(f[5])
        except ValueError:
            continue
        mib = moved / 1048576.0
        if mib <= 0:
            continue
        speed = mib / secs if secs > 0 and f[6] == "1" else None
        rows[f[0]] = (upd / mib, inv / mib, speed, upd, inv, mib)
    return rows


def vhost_section(workdir):
    rows = vhost_rows(workdir)
    if not rows:
        return ("No vhost-user figures in this run (see Problems).", None)
    out = ["A DPDK switch on the host (`dpdk-testpmd`, two `net_vhost` "
           "ports with `iommu-support=1`, no huge pages) and a guest whose "
           "two virtio-net NICs are on its ports behind the IOMMU "
           "(`tests/guest/run-vhost-user-tests.sh`, the scenario of "
           "[guest-tests.md](guest-tests.md)): a 64 MiB payload each way "
           "between the NICs. IOTLB updates are the backend's misses QEMU "
           "answered, invalidations the unmapped blocks QEMU told it about, "
           "both counted from QEMU's trace "
           "(`vhost_backend_iotlb_update` / `_invalidate`, the whole boot) "
           "and divided by the MiB that arrived (both directions); "
           "throughput is the payload over the guest's time for the two "
           "transfers, n/a unless both completed.", "",
           "| mode | figure | ours | upstream | ours / upstream |",
           "|---|---|---:|---:|---:|"]
    verdict = None
    for mode in ("strict", "lazy"):
        o, u = rows.get("ours-" + mode), rows.get("upstream-" + mode)
        for i, name in ((0, "IOTLB updates (misses) per MiB"),
                        (1, "IOTLB invalidations per MiB"),
                        (2, "throughput MiB/s")):
            ov = o[i] if o else None
            uv = u[i] if u else None
            r = ov / uv if ov is not None and uv else None
            out.append("| %s | %s | %s | %s | %s |" %
                       (mode, name, fmt(ov), fmt(uv), fmt(r)))
        if mode == "strict" and o and u and u[0]:
            miss = o[0] / u[0]
            speed = o[2] / u[2] if o[2] and u[2] else None
            met = (miss <= VHOST_MISS_GOAL and speed is not None and
                   speed >= 1.0)
            verdict = ("strict: ours sends %.3f of upstream's IOTLB updates "
                       "per MiB (goal at most %.1f) at %s of its "
                       "throughput (goal at least 1): %s" %
                       (miss, VHOST_MISS_GOAL,
                        "%.2f" % speed if speed else "n/a (a transfer "
                        "did not complete)", "met" if met else "NOT met"))
    out.append("")
    out.append("Raw counts: " + "; ".join(
        "%s %d updates, %d invalidations, %.0f MiB" % (k, v[3], v[4], v[5])
        for k, v in sorted(rows.items())) + ".")
    if verdict:
        out += ["", "**Goal**: " + verdict + "."]
    return ("\n".join(out), verdict)


def main():
    workdir, out_path = sys.argv[1], sys.argv[2]
    meta = {}
    for line in read(os.path.join(workdir, "meta.env")).splitlines():
        k, _, v = line.partition("=")
        meta[k] = v
    res = Results(workdir)
    problems = [p for p in read(os.path.join(workdir, "problems.txt"))
                .splitlines() if p.strip()]
    wall = int(meta.get("wall_seconds", "0") or 0)
    dirty = meta.get("git_dirty", "").strip()

    machine = [
        ("date", "%s to %s" % (meta.get("date_start", "?"),
                               meta.get("date_end", "?"))),
        ("CPU", meta.get("cpu_model", "?")),
        ("cores", meta.get("cpus", "?")),
        ("hypervisor", meta.get("hypervisor", "?")),
        ("memory", meta.get("memory", "?")),
        ("host kernel", meta.get("host_kernel", "?")),
        ("load average (1, 5, 15 min)",
         "%s at the start, %s at the end (with this run's own load)" %
         (meta.get("load_start", "?"), meta.get("load_end", "?"))),
        ("CPU used by other processes during the run",
         "%s%% of all CPUs (steal by the hypervisor: %s%%)" %
         tuple((meta.get("cpu_other", "? ?") + " ?").split()[:2])),
        ("QEMU", "%s (Debian source %s)" % (meta.get("qemu_version", "?"),
                                            meta.get("qemu_source", "?"))),
        ("git commit", meta.get("git_commit", "?") +
         (" (uncommitted changes in: %s)" % dirty if dirty else "")),
        ("binaries (sha256 prefix: ours, upstream)", meta.get("bins", "?")),
        ("guest", "%s; q35, TCG, -smp 2, -m 1G" %
         meta.get("guest_kernel", "?")),
        ("parameters", "BENCH_RUNS=%s BENCH_SECONDS=%s BENCH_THREADS=%s "
         "BENCH_SEQ_THREADS=%s BENCH_DISK_MIB=%s" %
         (meta.get("runs"), meta.get("seconds"), meta.get("threads"),
          meta.get("seq_threads"), meta.get("disk_mib"))),
        ("kinds", meta.get("kinds", "?")),
        ("wall time", "%d min %d s" % (wall // 60, wall % 60)),
    ]
    secs = meta.get("seconds", "?")
    method = """\
- Four configurations: **ours** (`build/qemu`, `-device virtio-iommu-pci`),
  **upstream** (`build/upstream`: QEMU's own device built from the same
  source with the same core patches), **identity** (ours, guest
  `iommu.passthrough=1`: bypass domains, the ceiling for translated DMA) and
  **no-IOMMU** (ours, no virtio-iommu, `iommu_platform=off`).
- One guest boot per configuration and mode ("kind"): `lazy-*` boots
  (`iommu.strict=0`, DMA-FQ domains) run randread, seqread and net;
  `strict-ours` / `strict-upstream` (`iommu.strict=1`) run randread and
  maploop.  A run boots every kind once, round-robin, each run starting
  one kind further; figures are medians over the runs.  The guest checks
  that its devices are in domains of the expected type (DMA, DMA-FQ,
  identity) and that no DMA fault or kernel warning occurred; a boot that
  fails those checks contributes no figures.
- Guest: x86_64 q35 under TCG, `-smp 2 -m 1G`, Debian 6.12 kernel, busybox
  initramfs (`tests/guest/`); workloads in `viommu-bench`
  (`tests/bench/guest/viommu-bench.c`), each run for 1 s of warm-up and
  then %(secs)s s measured with `clock_gettime(CLOCK_MONOTONIC)`.
- Disk: a %(disk)s MiB raw image of random data on the host, attached
  read-only as virtio-blk (`disable-legacy=on`, `iommu_platform=on`
  except for no-IOMMU), default
  cache mode (writeback: the host page cache, `aio=threads`); the host
  reads the whole image before each boot, so no physical disk I/O is
  measured.  randread: %(threads)s threads, each with its own `O_DIRECT`
  descriptor and one 4 KiB `pread` in flight at a random aligned offset
  (queue depth %(threads)s; the guest has 2 virtqueues).  seqread: %(seq)s
  thread(s), 1 MiB `O_DIRECT` reads through its own slice of the disk,
  wrapping around, into a buffer in a transparent huge page (so one MAP
  request per read, and the device's work is translate on the data
  pages).  MB = 10^6 bytes.
- Network: virtio-net (vhost off, `iommu_platform` as for the disk) and
  e1000e (always behind the IOMMU when there is one) on one
  QEMU hub; the e1000e is moved into its own network namespace so the
  traffic crosses the hub.  One TCP stream each way (128 KiB writes),
  throughput measured by the receiver from 1 s after the first byte to the
  end of the stream.
- MAP+UNMAP: `viommu-vfio maploop` (`tests/guest/image/viommu-vfio.c`)
  on the edu device bound to vfio-pci: `VFIO_IOMMU_MAP_DMA` +
  `VFIO_IOMMU_UNMAP_DMA` of one 4 KiB buffer in a loop, each pair one MAP
  and one UNMAP request to the virtio-iommu
  (`vfio_iommu_type1.allow_unsafe_interrupts=1`: no interrupt remapping).
""" % {"secs": secs, "disk": meta.get("disk_mib"),
       "threads": meta.get("threads"), "seq": meta.get("seq_threads")}

    core = read(os.path.join(workdir, "core.out")).rstrip()
    if core:
        # Its output goes in verbatim: Markdown as it is (under our heading
        # unless it brings its own), anything else as a code block.
        head = "## 5. Core microbenchmark\n\nOutput of " \
            "`bash tests/bench/run-core-bench.sh`:\n\n"
        if core.lstrip().startswith("#"):
            core_md = core
        elif any(line.startswith("|") for line in core.splitlines()):
            core_md = head + core
        else:
            core_md = head + "```\n" + core + "\n```"
    else:
        core_md = ("## 5. Core microbenchmark\n\nNot in this run "
                   "(tests/bench/run-core-bench.sh %s)." %
                   ("failed: see Problems" if any(
                       "run-core-bench" in p for p in problems)
                    else "does not exist"))

    warnings = []
    try:
        if int(meta.get("runs", 0)) < 3 or int(meta.get("seconds", 0)) < 10:
            warnings.append("**Short run** (BENCH_RUNS=%s, BENCH_SECONDS=%s, "
                            "below the defaults 3 and 10): a smoke test of "
                            "the machinery, not a measurement." %
                            (meta.get("runs"), meta.get("seconds")))
        # The load average at the start also counts whatever ran just
        # before; what other processes used during the run is the measure.
        load = float(meta.get("load_start", "0").split()[0])
        other = float(meta.get("cpu_other", "0 0").split()[0])
        if other > 5:
            warnings.append("**The machine was not quiet**: other "
                            "processes used %.1f%% of all CPUs during the "
                            "run (1-minute load average %.2f at the "
                            "start).  Figures from a busy machine are "
                            "noisy." % (other, load))
    except ValueError:
        pass
    doc = ["# Benchmarks", "",
           "Written by `make bench` (`tests/bench/run-bench.sh`, "
           "`tests/bench/bench-report.py`); do not edit by hand, re-run it.  "
           "All guest figures below come from one run, with the "
           "configurations interleaved.  What the figures mean, which "
           "part of each gap is the device's and why some targets are out "
           "of reach under TCG: [performance.md](performance.md).", ""]
    for w in warnings:
        doc += ["> " + w, ""]
    doc += ["## Machine and software", "",
           "| | |", "|---|---|"]
    doc += ["| %s | %s |" % (k, v) for k, v in machine]
    vhost_md = vhost_section(workdir)[0]
    doc += ["", "## Method", "", method,
            "## Results", "", results_table(res), "",
            "## Targets", "", targets_table(res), "",
            "## Every boot", "", per_run_table(res, workdir), "",
            "## Host profile", "", profile_section(workdir, meta), "",
            "## Request cost on the host", "",
            cost_section(workdir, res, meta), "",
            "## vhost-user: IOTLB misses per MiB", "", vhost_md, "",
            core_md, "",
            "## Problems", ""]
    doc += ["- " + p for p in problems] or ["None."]
    text = "\n".join(doc).rstrip() + "\n"
    text = re.sub(r"\n{3,}", "\n\n", text)
    with open(out_path + ".tmp", "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(out_path + ".tmp", out_path)

    for w in warnings:
        print(w.replace("**", ""))
    print()
    print(results_table(res))
    print()
    print(targets_table(res))
    print()
    print(vhost_md)
    if core:
        print()
        print(core_md)
    if problems:
        print()
        print("Problems:")
        for p in problems:
            print("- " + p)


if __name__ == "__main__":
    main()
