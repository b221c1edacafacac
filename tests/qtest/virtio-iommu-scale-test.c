/*
 * virtio-iommu at scale: a benchmark, registered only with -m perf
 *
 * scale-K-N gives the device N mappings of K bytes (4 KiB or 2 MiB),
 * spread evenly over four domains of two endpoints each, then measures
 * what it does with them, in this order:
 *
 *   map       N MAP requests, 128 per notification (the Linux driver
 *             queues requests until it syncs); the host memory that QEMU's
 *             resident set grew by.  The device's time is the best of this
 *             fill and two more on the destination after "unmap" (below)
 *   dma-*     translations through the memory API: pci_dma_read() by the
 *             first endpoint, at addresses spread over its domain's
 *             mappings (a miss in any cache) and at one address (a hit)
 *   replay    a notifier registered on the first endpoint, then replayed
 *             to: the vIOMMU's time until it has heard of every mapping of
 *             the domain (the best of fifteen replays)
 *   migrate   the stream saved to a file, for the size of the device's
 *             part; then a live migration to a new QEMU over a socket: the
 *             device's save and load times (QEMU's vmstate_downtime_*
 *             trace points) and the VM's downtime (from the source's STOP
 *             to the destination's RESUME, as QMP stamps them)
 *   unmap     on the destination, one UNMAP of the whole input range per
 *             domain, in one notification
 *   reset     on the source, which still holds every mapping: system
 *             reset, until QEMU reports it done
 *
 * scale-0 is the same without mappings: the migration baseline.  Each
 * figure goes out as soon as it is measured, as a line "scale: kind=K n=N
 * NAME=VALUE", so that a run cut short keeps what it had.
 * tests/bench/run-scale-bench.sh runs these on our device and on QEMU's
 * own (QTEST_QEMU_BINARY), alternately, and compares.  The IOMMU test
 * device (hw/misc/iommu-testdev.c) does the recording and the DMA reads,
 * through QEMU's public interfaces only, so the same test drives both.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/bswap.h"
#include "qemu/module.h"
#include "qobject/qdict.h"
#include "qobject/qjson.h"
#include "qobject/qlist.h"
#include "qobject/qnum.h"
#include "qobject/qstring.h"
#include "virtio-iommu-test.h"

#define VIT_THEME               "virtio-iommu-scale"

/* Four domains, two endpoints each: edu e0 ... e7 at slots 5 to 12 */
#define SCALE_DOMAINS           4
#define SCALE_EPS_PER_DOMAIN    2
#define SCALE_FIRST_SLOT        5
#define SCALE_ENDPOINT(i)       QPCI_DEVFN(SCALE_FIRST_SLOT + (i), 0)
#define SCALE_EDU(slot, i)      " -device edu,id=e" #i ",addr=" slot
#define SCALE_ENDPOINTS                                                 \
    SCALE_EDU("05.0", 0) SCALE_EDU("06.0", 1) SCALE_EDU("07.0", 2)     \
    SCALE_EDU("08.0", 3) SCALE_EDU("09.0", 4) SCALE_EDU("0a.0", 5)     \
    SCALE_EDU("0b.0", 6) SCALE_EDU("0c.0", 7)

/*
 * IOVAs from 4 GiB up, clear of every machine's MSI window; they point at
 * a few pages (or huge pages) of RAM, over and over
 */
#define SCALE_IOVA              0x100000000ull
#define SCALE_PA                0x4000000ull
#define SCALE_PA_PAGES          8
/* Requests per notification: two descriptors each, half the queue */
#define SCALE_BATCH             128
/* Translations per dma-read measurement, and the stride between misses */
#define SCALE_DMA_MISSES        200000
#define SCALE_DMA_HITS          1000000
#define SCALE_DMA_PRIME         7919
/* Fills of every mapping, and replays of a domain: the best one counts */
#define SCALE_MAP_FILLS         3
#define SCALE_REPLAYS           15
/* Generous: upstream's device may take long at a million mappings */
/* The section type before the stream's own description (migration/) */
#define QEMU_VM_VMDESCRIPTION   0x06
#define SCALE_MIG_TIMEOUT_US    (600 * G_USEC_PER_SEC)

typedef struct ScaleCfg {
    TestCfg cfg;                /* first: the cfg of vit_add_test() */
    const char *kind;
    uint64_t page;
    uint32_t n;
} ScaleCfg;

typedef struct Scale {
    QViommu *v;
    const ScaleCfg *sc;
    uint32_t per_domain;        /* mappings of each domain */
    char *dir;                  /* work files */
    char *cmdline;              /* the source's, for the destination */
    int64_t map_best_ns;        /* MAP: the best fill's time */
} Scale;

/* One figure, at once: a run cut short keeps what it measured */
static void scale_put(Scale *s, const char *name, const char *fmt, ...)
    G_GNUC_PRINTF(3, 4);

static void scale_put(Scale *s, const char *name, const char *fmt, ...)
{
    g_autofree char *value = NULL;
    va_list ap;

    va_start(ap, fmt);
    value = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_test_message("scale: kind=%s n=%" PRIu32 " %s=%s", s->sc->kind,
                   s->sc->n, name, value);
    fflush(stdout);
}

static int64_t now_ns(void)
{
    return g_get_monotonic_time() * 1000;
}

/* ------------------------------------------------------------------ */
/* QOM and QMP                                                         */

static void qom_set_str(QTestState *qts, const char *prop, const char *val)
{
    qtest_qmp_assert_success(qts, "{ 'execute': 'qom-set', 'arguments': "
                             "{ 'path': %s, 'property': %s, 'value': %s } }",
                             TESTDEV_QOM, prop, val);
}

static uint64_t qom_get_u64(QTestState *qts, const char *prop)
{
    QDict *rsp = qtest_qmp(qts, "{ 'execute': 'qom-get', 'arguments': "
                           "{ 'path': %s, 'property': %s } }",
                           TESTDEV_QOM, prop);
    uint64_t val;

    g_assert_true(qdict_haskey(rsp, "return"));
    val = qnum_get_uint(qobject_to(QNum, qdict_get(rsp, "return")));
    qobject_unref(rsp);
    return val;
}

/* MAP or UNMAP events notifier n0 of endpoint e0 received, logged or not */
static uint64_t n0_events(QTestState *qts, const char *what)
{
    QDict *rsp = qtest_qmp(qts, "{ 'execute': 'qom-get', 'arguments': "
                           "{ 'path': %s, 'property': 'counts' } }",
                           TESTDEV_QOM);
    g_autofree char *key = g_strdup_printf(" %s=", what);
    uint64_t val = UINT64_MAX;
    QListEntry *e;

    g_assert_true(qdict_haskey(rsp, "return"));
    QLIST_FOREACH_ENTRY(qdict_get_qlist(rsp, "return"), e) {
        const char *line = qstring_get_str(qobject_to(QString,
                                                      qlist_entry_obj(e)));
        const char *p = strstr(line, key);

        if (g_str_has_prefix(line, "n0 e0 ") && p) {
            val = g_ascii_strtoull(p + strlen(key), NULL, 10);
        }
    }
    qobject_unref(rsp);
    g_assert_cmpuint(val, !=, UINT64_MAX);
    return val;
}

/* QMP's stamp of an event, in microseconds of the host's wall clock */
static int64_t event_us(QTestState *qts, const char *event)
{
    QDict *ev = qtest_qmp_eventwait_ref(qts, event);
    QDict *ts = qdict_get_qdict(ev, "timestamp");
    int64_t us = qdict_get_int(ts, "seconds") * G_USEC_PER_SEC +
                 qdict_get_int(ts, "microseconds");

    qobject_unref(ev);
    return us;
}

/* The resident set of the QEMU process, in bytes */
static uint64_t qemu_rss(QTestState *qts)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/status",
                                            (int)qtest_pid(qts));
    g_autofree char *status = NULL;
    const char *p;

    g_assert_true(g_file_get_contents(path, &status, NULL, NULL));
    p = strstr(status, "\nVmRSS:");
    g_assert_nonnull(p);
    return g_ascii_strtoull(p + strlen("\nVmRSS:"), NULL, 10) * 1024;
}

/* ------------------------------------------------------------------ */
/* Mappings                                                            */

static uint32_t scale_domain(uint32_t k)
{
    return 1 + k % SCALE_DOMAINS;
}

static uint64_t scale_iova(Scale *s, uint32_t k)
{
    return SCALE_IOVA + (uint64_t)(k / SCALE_DOMAINS) * s->sc->page;
}

static void attach_all(Scale *s)
{
    uint32_t i;

    for (i = 0; i < SCALE_DOMAINS * SCALE_EPS_PER_DOMAIN; i++) {
        QVIOMMU_EXPECT_STATUS(qviommu_attach_req(s->v,
                                                 1 + i / SCALE_EPS_PER_DOMAIN,
                                                 SCALE_ENDPOINT(i), 0),
                              VIRTIO_IOMMU_S_OK);
    }
}

/*
 * MAP mappings [first, first + n) of the layout, SCALE_BATCH per
 * notification; the device's time for them (the notifications), in ns
 */
static int64_t map_range(Scale *s, uint32_t first, uint32_t n)
{
    uint32_t len = offsetof(struct virtio_iommu_req_map, tail);
    g_autofree uint8_t *reqs = g_malloc(SCALE_BATCH * len);
    uint8_t status[SCALE_BATCH];
    int64_t ns = 0;
    uint32_t k, i, batch;

    for (k = first; k < first + n; k += batch) {
        batch = MIN(SCALE_BATCH, first + n - k);
        for (i = 0; i < batch; i++) {
            uint64_t iova = scale_iova(s, k + i);
            uint64_t pa = SCALE_PA + ((k + i) / SCALE_DOMAINS %
                                      SCALE_PA_PAGES) * s->sc->page;
            QViommuReq b;

            g_assert_cmpuint(qviommu_enc_map(&b, scale_domain(k + i), iova,
                                             iova + s->sc->page - 1, pa, RW),
                             ==, len);
            memcpy(reqs + i * len, &b, len);
        }
        ns += qviommu_send_many(s->v, reqs, len, batch, status);
        for (i = 0; i < batch; i++) {
            g_assert_cmpuint(status[i], ==, VIRTIO_IOMMU_S_OK);
        }
    }
    return ns;
}

/* One UNMAP of the whole input range per domain, in one notification */
static int64_t unmap_all(Scale *s)
{
    uint32_t len = offsetof(struct virtio_iommu_req_unmap, tail);
    uint8_t reqs[SCALE_DOMAINS * sizeof(QViommuReq)];
    uint8_t status[SCALE_DOMAINS];
    uint64_t end = vit_input_end(s->v);
    int64_t ns;
    uint32_t d;

    for (d = 0; d < SCALE_DOMAINS; d++) {
        QViommuReq b;

        g_assert_cmpuint(qviommu_enc_unmap(&b, 1 + d, 0, end), ==, len);
        memcpy(reqs + d * len, &b, len);
    }
    ns = qviommu_send_many(s->v, reqs, len, SCALE_DOMAINS, status);
    for (d = 0; d < SCALE_DOMAINS; d++) {
        g_assert_cmpuint(status[d], ==, VIRTIO_IOMMU_S_OK);
    }
    return ns;
}

/* Are the first and the last mapping of each domain there? */
static bool ends_mapped(Scale *s, bool want)
{
    uint32_t k, last = s->sc->n - 1;
    bool ok = true;

    for (k = 0; k < SCALE_DOMAINS; k++) {
        uint64_t a = scale_iova(s, k), b = scale_iova(s, last - k);

        ok &= vit_is_mapped(s->v, scale_domain(k), a,
                            a + s->sc->page - 1) == want;
        ok &= vit_is_mapped(s->v, scale_domain(last - k), b,
                            b + s->sc->page - 1) == want;
    }
    return ok;
}

/* ------------------------------------------------------------------ */
/* The rows                                                            */

/* The first fill of every mapping: its memory, and its time */
static void row_map(Scale *s)
{
    uint64_t rss;
    int64_t wall;

    /* warm-up: the request path, the allocator's first pools */
    map_range(s, 0, SCALE_BATCH);
    unmap_all(s);
    rss = qemu_rss(s->v->qts);
    wall = now_ns();
    s->map_best_ns = map_range(s, 0, s->sc->n);
    wall = now_ns() - wall;
    scale_put(s, "map_wall_ns", "%" PRId64, wall);
    scale_put(s, "rss_bytes", "%" PRId64, (int64_t)(qemu_rss(s->v->qts) -
                                                    rss));
}

/*
 * More fills, on the destination once its UNMAP emptied it, so that the
 * rows before run on the first fill's heap: a fill at 1M takes seconds,
 * and one fill's time moves by a quarter from run to run on this shared
 * machine, on either device
 */
static void row_refill(Scale *s)
{
    unsigned i;

    for (i = 1; i < SCALE_MAP_FILLS; i++) {
        if (i > 1) {
            unmap_all(s);
        }
        s->map_best_ns = MIN(s->map_best_ns, map_range(s, 0, s->sc->n));
    }
}

/* dma-read by e0 at @count addresses @stride apart, modulo its domain */
static void row_dma(Scale *s, const char *name, uint64_t stride,
                    uint64_t count)
{
    QTestState *qts = s->v->qts;
    g_autofree char *spec = NULL;

    spec = g_strdup_printf("e0:0x%" PRIx64 ":0x%" PRIx64 ":0x%" PRIx64
                           ":%" PRIu64, (uint64_t)SCALE_IOVA + 0x10, stride,
                           (uint64_t)s->per_domain * s->sc->page, count);
    qom_set_str(qts, "dma-read", spec);
    g_assert_cmpuint(qom_get_u64(qts, "dma-read-errors"), ==, 0);
    scale_put(s, name, "%" PRIu64 "/%" PRIu64,
              qom_get_u64(qts, "dma-read-ns"), count);
}

static void row_translate(Scale *s)
{
    QPCIDevice *e0 = qpci_device_find(s->v->transport->pdev->bus,
                                      SCALE_ENDPOINT(0));

    g_assert_nonnull(e0);
    qpci_device_enable(e0);
    g_free(e0);
    /* a different mapping each time, in an order no cache predicts */
    row_dma(s, "dma_miss", SCALE_DMA_PRIME * s->sc->page, SCALE_DMA_MISSES);
    row_dma(s, "dma_hit", 0, SCALE_DMA_HITS);
}

/*
 * The best of SCALE_REPLAYS replays: one replay takes tens of ms at 1M,
 * where one preemption on this shared machine shows
 */
static void row_replay(Scale *s)
{
    QTestState *qts = s->v->qts;
    uint64_t best = UINT64_MAX;
    unsigned i;

    qom_set_str(qts, "record", "e0");
    for (i = 1; i <= SCALE_REPLAYS; i++) {
        qom_set_str(qts, "replay", "e0");
        g_assert_cmpuint(n0_events(qts, "map"), ==,
                         (uint64_t)s->per_domain * i);
        best = MIN(best, qom_get_u64(qts, "replay-ns"));
    }
    scale_put(s, "replay_ns", "%" PRIu64, best);
}

/* Wait until the migration of @qts completes; false if it does not */
static bool mig_done(QTestState *qts)
{
    gint64 deadline = g_get_monotonic_time() + SCALE_MIG_TIMEOUT_US;

    for (;;) {
        g_autofree char *status = vit_mig_status(qts);

        if (!strcmp(status, "completed")) {
            return true;
        }
        if (!strcmp(status, "failed") || !strcmp(status, "cancelled") ||
            g_get_monotonic_time() > deadline) {
            fprintf(stderr, "# migration: %s\n", status);
            return false;
        }
        g_usleep(10 * 1000);
    }
}

/*
 * The bytes of the virtio-iommu section of a saved stream, as the
 * stream's own description (the vmdesc JSON after the end of the
 * sections) counts them: the sizes of the device's fields
 */
static uint64_t stream_device_bytes(const char *path)
{
    g_autofree char *data = NULL;
    g_autofree char *text = NULL;
    g_autoptr(QDict) desc = NULL;
    const char *json = NULL;
    uint64_t bytes = 0;
    QListEntry *d, *f;
    gsize len, i;

    g_assert_true(g_file_get_contents(path, &data, &len, NULL));
    /*
     * QEMU_VM_VMDESCRIPTION, a be32 length, the JSON: the last thing in
     * the file.  The first '{' from the end that such a header precedes
     * and whose length reaches exactly to the end.
     */
    for (i = len; i-- > 5 && !json;) {
        if (data[i] == '{' && data[i - 5] == QEMU_VM_VMDESCRIPTION &&
            ldl_be_p(data + i - 4) == len - i) {
            json = data + i;
        }
    }
    g_assert_nonnull(json);
    text = g_strndup(json, len - (json - data));
    desc = qobject_to(QDict, qobject_from_json(text, &error_abort));
    g_assert_nonnull(desc);
    QLIST_FOREACH_ENTRY(qdict_get_qlist(desc, "devices"), d) {
        QDict *dev = qobject_to(QDict, qlist_entry_obj(d));

        if (!g_str_has_suffix(qdict_get_str(dev, "name"), "/virtio-iommu")) {
            continue;
        }
        QLIST_FOREACH_ENTRY(qdict_get_qlist(dev, "fields"), f) {
            bytes += qdict_get_int(qobject_to(QDict, qlist_entry_obj(f)),
                                   "size");
        }
    }
    g_assert_cmpuint(bytes, >, 0);
    return bytes;
}

/* The device's time in a vmstate_downtime_* trace line of @log, in us */
static int64_t trace_device_us(const char *log, const char *event)
{
    g_autofree char *text = NULL;
    g_auto(GStrv) lines = NULL;
    int64_t us = -1;
    int i;

    if (!g_file_get_contents(log, &text, NULL, NULL)) {
        return -1;
    }
    lines = g_strsplit(text, "\n", -1);
    for (i = 0; lines[i]; i++) {
        const char *p = strstr(lines[i], "downtime=");

        if (strstr(lines[i], event) && strstr(lines[i], "/virtio-iommu ") &&
            p) {
            us = g_ascii_strtoll(p + strlen("downtime="), NULL, 10);
        }
    }
    return us;
}

/* Write QEMU's log to @path, with trace event @event on */
static void trace_to(QTestState *qts, const char *path, const char *event)
{
    g_free(qtest_hmp(qts, "logfile %s", path));
    qtest_qmp_assert_success(qts, "{ 'execute': 'trace-event-set-state', "
                             "'arguments': { 'name': %s, 'enable': true } }",
                             event);
}

/* Save the state to a file, for the size of the device's part */
static void row_stream_size(Scale *s)
{
    QTestState *qts = s->v->qts;
    g_autofree char *path = g_build_filename(s->dir, "stream", NULL);
    g_autofree char *uri = g_strdup_printf("file:%s", path);

    qtest_qmp_assert_success(qts, "{ 'execute': 'migrate', "
                             "'arguments': { 'uri': %s } }", uri);
    g_assert_true(mig_done(qts));
    scale_put(s, "stream_bytes", "%" PRIu64, stream_device_bytes(path));
    unlink(path);
    /* the saved state is the source's still: carry on with it */
    event_us(qts, "STOP");
    qtest_qmp_assert_success(qts, "{ 'execute': 'cont' }");
    event_us(qts, "RESUME");
}

/* Migrate live to a new QEMU, which is returned */
static QTestState *row_migrate(Scale *s)
{
    QTestState *src = s->v->qts, *dst;
    g_autofree char *uri = g_strdup_printf("unix:%s/mig.sock", s->dir);
    g_autofree char *src_log = g_build_filename(s->dir, "src.log", NULL);
    g_autofree char *dst_log = g_build_filename(s->dir, "dst.log", NULL);
    int64_t stop_us, resume_us;
    QDict *rsp;

    dst = qtest_initf("%s -incoming defer", s->cmdline);
    trace_to(src, src_log, "vmstate_downtime_save");
    trace_to(dst, dst_log, "vmstate_downtime_load");
    /* no cap on the RAM rounds: the device state is what is measured */
    qtest_qmp_assert_success(src, "{ 'execute': 'migrate-set-parameters', "
                             "'arguments': { 'max-bandwidth': %" PRId64 " } }",
                             (int64_t)1 << 40);
    qtest_qmp_assert_success(dst, "{ 'execute': 'migrate-incoming', "
                             "'arguments': { 'uri': %s } }", uri);
    qtest_qmp_assert_success(src, "{ 'execute': 'migrate', "
                             "'arguments': { 'uri': %s } }", uri);
    if (!mig_done(src) || !mig_done(dst)) {
        scale_put(s, "migrate", "did-not-complete");
        g_test_fail();
        return dst;
    }
    stop_us = event_us(src, "STOP");
    resume_us = event_us(dst, "RESUME");
    scale_put(s, "downtime_us", "%" PRId64, resume_us - stop_us);
    rsp = qtest_qmp(src, "{ 'execute': 'query-migrate' }");
    scale_put(s, "downtime_src_ms", "%" PRId64,
              qdict_get_int(qdict_get_qdict(rsp, "return"), "downtime"));
    qobject_unref(rsp);
    scale_put(s, "save_us", "%" PRId64,
              trace_device_us(src_log, "vmstate_downtime_save"));
    scale_put(s, "load_us", "%" PRId64,
              trace_device_us(dst_log, "vmstate_downtime_load"));
    return dst;
}

static void row_unmap(Scale *s)
{
    g_assert_true(ends_mapped(s, true));
    scale_put(s, "unmap_ns", "%" PRId64, unmap_all(s));
    g_assert_true(ends_mapped(s, false));
}

static void row_reset(Scale *s, bool recorded)
{
    QTestState *qts = s->v->qts;
    int64_t ns = now_ns();

    qtest_qmp_assert_success(qts, "{ 'execute': 'system_reset' }");
    qtest_qmp_eventwait(qts, "RESET");
    ns = now_ns() - ns;
    if (recorded) {
        /* e0's notifiers heard every mapping of its domain go */
        g_assert_cmpuint(n0_events(qts, "unmap"), ==, s->per_domain);
    }
    scale_put(s, "reset_ns", "%" PRId64, ns);
}

/* Work files go away; QEMU may have left none of some */
static void scale_cleanup(Scale *s)
{
    static const char *const names[] = {
        "stream", "src.log", "dst.log", "mig.sock",
    };
    unsigned i;

    for (i = 0; i < ARRAY_SIZE(names); i++) {
        g_autofree char *path = g_build_filename(s->dir, names[i], NULL);

        unlink(path);
    }
    rmdir(s->dir);
    g_free(s->dir);
    g_free(s->cmdline);
}

static void test_scale(void *obj, void *data, QGuestAllocator *a)
{
    const ScaleCfg *sc = data;
    Scale s = {
        .v = obj,
        .sc = sc,
        .per_domain = sc->n / SCALE_DOMAINS,
        .dir = g_dir_make_tmp("viommu-scale-XXXXXX", NULL),
        .cmdline = g_strdup(qos_get_current_command_line()),
    };
    QTestState *src = s.v->qts, *dst;

    g_assert_cmpuint(sc->n % SCALE_DOMAINS, ==, 0);
    attach_all(&s);
    if (sc->n) {
        row_map(&s);
        row_translate(&s);
        row_replay(&s);
    }
    row_stream_size(&s);
    /* The source ends up stopped: the next test needs a QEMU of its own */
    qos_invalidate_command_line();
    dst = row_migrate(&s);
    if (sc->n && !g_test_failed()) {
        qviommu_set_qts(s.v, dst);
        row_unmap(&s);
        row_refill(&s);
        qviommu_set_qts(s.v, src);
    }
    if (sc->n) {
        scale_put(&s, "map_ns", "%" PRId64, s.map_best_ns);
    }
    row_reset(&s, sc->n);
    qtest_quit(dst);
    scale_cleanup(&s);
}

static void register_virtio_iommu_scale_test(void)
{
    static const char *const kinds[] = { "4k", "2m" };
    static const uint64_t pages[] = { 4 * 1024, 2 * 1024 * 1024 };
    static const uint32_t sizes[] = { 1000, 10000, 100000, 1000000 };
    const TestCfg cfg = {
        .endpoints = SCALE_ENDPOINTS,
        .testdev_opts = ",log-limit=0",
    };
    ScaleCfg *sc;
    unsigned i, j;

    if (!g_test_perf()) {
        return;
    }
    /* Kept for the life of the test registry */
    sc = g_new0(ScaleCfg, 1);
    *sc = (ScaleCfg) { .cfg = cfg, .kind = "0", .page = 4096 };
    vit_add_test("scale-0", test_scale, NULL, &sc->cfg);
    for (i = 0; i < ARRAY_SIZE(kinds); i++) {
        for (j = 0; j < ARRAY_SIZE(sizes); j++) {
            g_autofree char *name = g_strdup_printf("scale-%s-%" PRIu32,
                                                    kinds[i], sizes[j]);

            sc = g_new0(ScaleCfg, 1);
            *sc = (ScaleCfg) {
                .cfg = cfg, .kind = kinds[i], .page = pages[i],
                .n = sizes[j],
            };
            vit_add_test(name, test_scale, NULL, &sc->cfg);
        }
    }
}

libqos_init(register_virtio_iommu_scale_test);
