/*
 * QTest cases for the virtio-iommu device: migration
 *
 * The migrate-* tests migrate to a second QEMU and drive the device
 * there: mappings, domains of each kind, endpoints behind a root port,
 * notifier events on the destination, DMA, and fault reports waiting for
 * an eventq buffer.  migrate-stream loads corrupted streams, and streams
 * into destinations that cannot hold them, into new QEMUs, which must
 * fail the migration cleanly.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/bswap.h"
#include "qemu/module.h"
#include "qobject/qdict.h"
#include "virtio-iommu-test.h"

#define VIT_THEME               "virtio-iommu-migration"

/* ------------------------------------------------------------------ */
/* Migration                                                           */

#define MIG_TIMEOUT_US          (30 * G_USEC_PER_SEC)

/* Wait until the migration to or from @qts ends; its final status */
static char *mig_wait(QTestState *qts)
{
    gint64 deadline = g_get_monotonic_time() + MIG_TIMEOUT_US;

    for (;;) {
        char *status;

        if (!qtest_probe_child(qts)) {
            return g_strdup("QEMU exited");
        }
        status = vit_mig_status(qts);
        if (!strcmp(status, "completed") || !strcmp(status, "failed") ||
            !strcmp(status, "cancelled") ||
            g_get_monotonic_time() > deadline) {
            return status;
        }
        g_free(status);
        g_usleep(10 * 1000);
    }
}

static bool wait_running(QTestState *qts)
{
    gint64 deadline = g_get_monotonic_time() + MIG_TIMEOUT_US;

    for (;;) {
        QDict *rsp = qtest_qmp(qts, "{ 'execute': 'query-status' }");
        bool running;

        g_assert_true(qdict_haskey(rsp, "return"));
        running = qdict_get_bool(qdict_get_qdict(rsp, "return"), "running");
        qobject_unref(rsp);
        if (running) {
            return true;
        }
        if (g_get_monotonic_time() > deadline) {
            return false;
        }
        g_usleep(10 * 1000);
    }
}

/* The command line of the current test, as the @cfg variant runs it */
static GString *test_cmdline(const TestCfg *cfg)
{
    GString *cmd = g_string_new(qos_get_current_command_line());

    if (cfg) {
        vit_before_cfg(cmd, (void *)cfg);
    }
    return cmd;
}

static void rm_dir(const char *path)
{
    GDir *dir = g_dir_open(path, 0, NULL);
    const char *name;

    while (dir && (name = g_dir_read_name(dir))) {
        g_autofree char *file = g_build_filename(path, name, NULL);

        unlink(file);
    }
    if (dir) {
        g_dir_close(dir);
    }
    rmdir(path);
}

/*
 * Migrate the QEMU of @v, through a socket in @dir, to a new QEMU started
 * with the same command line, and switch @v to the destination, which is
 * returned.  Other users of the PCI bus (Ep) must switch themselves.
 */
static QTestState *migrate_to_new(QViommu *v, const TestCfg *cfg,
                                  const char *dir)
{
    g_autoptr(GString) cmd = test_cmdline(cfg);
    g_autofree char *uri = g_strdup_printf("unix:%s/mig.sock", dir);
    g_autofree char *src_status = NULL;
    g_autofree char *dst_status = NULL;
    QTestState *dst;

    /* The source ends up stopped: the next test needs a QEMU of its own */
    qos_invalidate_command_line();
    dst = qtest_initf("%s -incoming defer", cmd->str);
    /* The destination's consumers hear of what the stream restores */
    if (vit_recorders_exist(v->qts)) {
        g_assert_true(vit_recorders_add(dst));
    }
    qtest_qmp_assert_success(dst, "{ 'execute': 'migrate-incoming', "
                             "'arguments': { 'uri': %s } }", uri);
    qtest_qmp_assert_success(v->qts, "{ 'execute': 'migrate', "
                             "'arguments': { 'uri': %s } }", uri);
    src_status = mig_wait(v->qts);
    dst_status = mig_wait(dst);
    g_assert_cmpstr(src_status, ==, "completed");
    g_assert_cmpstr(dst_status, ==, "completed");
    g_assert_true(wait_running(dst));
    qviommu_set_qts(v, dst);
    return dst;
}

static void test_migrate(void *obj, void *data, QGuestAllocator *a)
{
    QViommu *v = obj;
    g_autoptr(GArray) w = g_array_new(false, true, sizeof(Ev));
    g_autofree char *dir = g_dir_make_tmp("viommu-mig-XXXXXX", NULL);
    QTestState *src = v->qts, *dst;
    Ep *ep = vit_ep_open(v, EP1_SLOT);
    uint64_t buf = guest_alloc(a, PAGE);
    const Mapping d1_big = { 0x40000000, 0x401fffff, 0x80000000, RO };
    const Mapping d1_mmio = { 0x50000000, 0x50000fff, 0xfe000000,
                              RW | VIRTIO_IOMMU_MAP_F_MMIO };
    const Mapping d2_a = { 0, 0x2fff, 0x100000, RW };
    const Mapping d2_b = { 0x10000, 0x10fff, 0x200000, RO };
    Mapping d1_ring, d1_buf;
    uint32_t id, len;
    Notif nt;

    g_assert_true(vit_recorders_add(src));
    /* domain 1: EP1, its rings and a buffer, and more mappings */
    vit_bypass_set(v, 0);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 1, EP1, 0), VIRTIO_IOMMU_S_OK);
    d1_ring = (Mapping) { RING_IOVA, RING_IOVA + PAGE - 1, vit_ep_start_std(ep,
                                                                            1,
                                                                            a,
                                                                            RW),
                          RW };
    vit_ep_map(ep, 1, BUF_IOVA, buf, PAGE, RW);
    d1_buf = (Mapping) { BUF_IOVA, BUF_IOVA + PAGE - 1, buf, RW };
    QVIOMMU_EXPECT_STATUS(vit_map_m(v, 1, &d1_big), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(vit_map_m(v, 1, &d1_mmio), VIRTIO_IOMMU_S_OK);
    /* domain 2: EP2; domain 3: EP3, bypass */
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 2, EP2, 0), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(vit_map_m(v, 2, &d2_a), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(vit_map_m(v, 2, &d2_b), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 3, EP3,
                                             VIRTIO_IOMMU_ATTACH_F_BYPASS),
                          VIRTIO_IOMMU_S_OK);

    /* the endpoint works before */
    qtest_memset(src, buf, MARK, PAGE);
    vit_ep_submit(ep, 0, BUF_IOVA, 32);
    g_assert_true(vit_ep_wait_used(ep, &id, &len, QVIOMMU_TIMEOUT_US));
    CHECK_EQ(id, 0);
    CHECK(vit_count_not(src, buf, 32, MARK) > 16);

    dst = migrate_to_new(v, NULL, dir);
    ep->qts = dst;

    /* the destination's notifiers heard of the restored mappings */
    nt = (Notif) { .qts = dst };
    vit_want_map(w, BOTH, EP1, &d1_ring);
    vit_want_map(w, BOTH, EP1, &d1_buf);
    vit_want_map(w, BOTH, EP1, &d1_big);
    vit_want_map(w, BOTH, EP2, &d2_a);
    vit_want_map(w, BOTH, EP2, &d2_b);
    CHECK_EVENTS(&nt, w);

    CHECK_EQ(vit_bypass_get(v), 0);
    /* the mappings are there */
    QVIOMMU_EXPECT_STATUS(vit_map_m(v, 1, &d1_ring), VIRTIO_IOMMU_S_INVAL);
    QVIOMMU_EXPECT_STATUS(vit_map_m(v, 1, &d1_buf), VIRTIO_IOMMU_S_INVAL);
    QVIOMMU_EXPECT_STATUS(vit_map_m(v, 1, &d1_big), VIRTIO_IOMMU_S_INVAL);
    QVIOMMU_EXPECT_STATUS(vit_map_m(v, 1, &d1_mmio), VIRTIO_IOMMU_S_INVAL);
    QVIOMMU_EXPECT_STATUS(vit_map_m(v, 2, &d2_a), VIRTIO_IOMMU_S_INVAL);
    QVIOMMU_EXPECT_STATUS(vit_map_m(v, 2, &d2_b), VIRTIO_IOMMU_S_INVAL);
    /* and the domains are of the same kind */
    QVIOMMU_EXPECT_STATUS(vit_map_m(v, 3, &d2_a), VIRTIO_IOMMU_S_INVAL);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 3, EP2, 0),
                          VIRTIO_IOMMU_S_INVAL);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 1, EP3,
                                             VIRTIO_IOMMU_ATTACH_F_BYPASS),
                          VIRTIO_IOMMU_S_INVAL);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 2, EP1,
                                             VIRTIO_IOMMU_ATTACH_F_BYPASS),
                          VIRTIO_IOMMU_S_INVAL);
    CHECK_EVENTS(&nt, w);

    /* DMA lands where domain 1 maps it */
    qtest_memset(dst, buf, MARK, PAGE);
    vit_ep_submit(ep, 1, BUF_IOVA + 0x100, 64);
    if (vit_ep_wait_used(ep, &id, &len, QVIOMMU_TIMEOUT_US)) {
        CHECK_EQ(id, 1);
        CHECK_EQ(len, 64);
        CHECK(vit_count_not(dst, buf + 0x100, 64, MARK) > 32);
        CHECK_EQ(vit_count_not(dst, buf, 0x100, MARK), 0);
        CHECK_EQ(vit_count_not(dst, buf + 0x140, PAGE - 0x140, MARK), 0);
    } else {
        qviommu_report(__func__, __LINE__, "EP1 DMA after migration not "
                       "completed");
    }

    /* restored mappings can be unmapped, endpoints detached */
    QVIOMMU_EXPECT_STATUS(vit_unmap_m(v, 2, &d2_b), VIRTIO_IOMMU_S_OK);
    vit_want_unmap(w, EP2, &d2_b);
    QVIOMMU_EXPECT_STATUS(qviommu_unmap_req(v, 2, 0, vit_input_end(v)),
                          VIRTIO_IOMMU_S_OK);
    vit_want_unmap(w, EP2, &d2_a);
    QVIOMMU_EXPECT_STATUS(qviommu_detach_req(v, 2, EP2), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_detach_req(v, 2, EP2), VIRTIO_IOMMU_S_INVAL);
    CHECK_EVENTS(&nt, w);

    /* EP3 bypasses in its domain although config bypass is 0 */
    {
        Ep *ep3 = vit_ep_open(v, EP3_SLOT);
        uint64_t buf3 = guest_alloc(a, PAGE);

        qtest_memset(dst, buf3, MARK, PAGE);
        vit_ep_start_std(ep3, IDENTITY, a, RW);
        vit_ep_submit(ep3, 0, buf3, 64);
        if (vit_ep_wait_used(ep3, &id, &len, QVIOMMU_TIMEOUT_US)) {
            CHECK(vit_count_not(dst, buf3, 64, MARK) > 32);
        } else {
            qviommu_report(__func__, __LINE__, "EP3 DMA after migration not "
                           "completed");
        }
        vit_ep_close(ep3);
    }

    /* EP2, detached, is blocked */
    {
        Ep *ep2 = vit_ep_open(v, EP2_SLOT);
        uint64_t ring2;
        Faults fs;

        qviommu_post_events(v, 8, 32, QVIOMMU_FILL);
        ring2 = vit_ep_start_std(ep2, IDENTITY, a, RW);
        vit_ep_submit(ep2, 0, ring2 + 0x800, 16);
        vit_collect_faults(v, &fs, FAULT_WAIT_US, QUIET_WAIT_US);
        FIND_FAULT(&fs, VIRTIO_IOMMU_FAULT_R_DOMAIN, F_READ_ADDR, EP2,
                   ring2, ring2 + PAGE - 1);
        vit_ep_close(ep2);
    }

    qviommu_set_qts(v, src);
    ep->qts = src;
    vit_ep_close(ep);
    qtest_quit(dst);
    rm_dir(dir);
}

/*
 * Faults waiting for eventq buffers move with the VM only with
 * migrate-pending-faults=on (@kept); by default the stream stays one that
 * QEMU 10.0's device can load, and they are dropped as that device drops
 * them.
 */
static void migrate_faults(QViommu *v, QGuestAllocator *a, bool kept)
{
    g_autofree char *dir = g_dir_make_tmp("viommu-mig-XXXXXX", NULL);
    const uint64_t fa = BUF_IOVA, fb = BUF_IOVA + 0x10000;
    QTestState *src = v->qts, *dst;
    Ep *ep = vit_ep_open(v, EP1_SLOT);
    bool seen_b = false;
    Faults fs;
    unsigned i;

    /* max-pending-faults=4; no eventq buffer: DMA to fa fills the ring */
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 1, EP1, 0), VIRTIO_IOMMU_S_OK);
    vit_ep_start_std(ep, 1, a, RW);
    vit_ep_submit(ep, 0, fa, 64);
    g_usleep(QUIET_WAIT_US);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 2, EP2, 0), VIRTIO_IOMMU_S_OK);
    /* the guest takes three reports, then DMA to fb wraps the ring */
    qviommu_post_events(v, 3, 32, QVIOMMU_FILL);
    vit_collect_faults(v, &fs, FAULT_WAIT_US, QUIET_WAIT_US);
    FIND_FAULT(&fs, VIRTIO_IOMMU_FAULT_R_MAPPING, F_WRITE_ADDR, EP1,
               fa, fa + 63);
    if (fs.n < 3) {
        fprintf(stderr, "# %u fault reports from the first DMA: the "
                "ring does not wrap\n", fs.n);
    }
    vit_ep_submit(ep, 1, fb, 64);
    g_usleep(QUIET_WAIT_US);
    QVIOMMU_EXPECT_STATUS(qviommu_detach_req(v, 2, EP2), VIRTIO_IOMMU_S_OK);

    dst = migrate_to_new(v, NULL, dir);
    ep->qts = dst;

    qviommu_post_events(v, 8, 32, QVIOMMU_FILL);
    vit_collect_faults(v, &fs, FAULT_WAIT_US, QUIET_WAIT_US);
    if (!kept) {
        CHECK_EQ(fs.n, 0);
        goto state;
    }
    /* the destination delivers what was pending, in order */
    FIND_FAULT(&fs, VIRTIO_IOMMU_FAULT_R_MAPPING, F_WRITE_ADDR, EP1,
               fb, fb + 63);
    CHECK(fs.n <= 4);
    for (i = 0; i < fs.n; i++) {
        bool in_a = fs.f[i].address - fa < 64;
        bool in_b = fs.f[i].address - fb < 64;

        if (!(in_a || in_b) || (in_a && seen_b)) {
            qviommu_report(__func__, __LINE__, "fault report %u out of place",
                           i);
            vit_print_faults(&fs);
            break;
        }
        seen_b |= in_b;
    }

state:
    /* and the rest of the state */
    QVIOMMU_EXPECT_STATUS(qviommu_detach_req(v, 1, EP1), VIRTIO_IOMMU_S_OK);

    qviommu_set_qts(v, src);
    ep->qts = src;
    vit_ep_close(ep);
    qtest_quit(dst);
    rm_dir(dir);
}

static void test_migrate_faults(void *obj, void *data, QGuestAllocator *a)
{
    migrate_faults(obj, a, true);
}

static void test_migrate_faults_dropped(void *obj, void *data,
                                        QGuestAllocator *a)
{
    migrate_faults(obj, a, false);
}

static void test_migrate_bridge(void *obj, void *data, QGuestAllocator *a)
{
    QViommu *v = obj;
    const TestCfg *cfg = data;
    g_autoptr(GArray) w = g_array_new(false, true, sizeof(Ev));
    g_autofree char *dir = g_dir_make_tmp("viommu-mig-XXXXXX", NULL);
    QTestState *src = v->qts, *dst;
    Notif nt;

    g_assert_true(vit_recorders_add(src));
    vit_number_root_port(v);
    /* domain 7: the endpoint behind the port and EP2; domain 1: EP1 */
    g_assert_cmpuint(qviommu_attach_req(v, 7, EP_BEHIND_PORT, 0).tail[0], ==,
                     VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 7, EP2, 0), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(vit_map_m(v, 7, &vit_m3p), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 1, EP1, 0), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(vit_map_m(v, 1, &vit_m1p), VIRTIO_IOMMU_S_OK);

    dst = migrate_to_new(v, cfg, dir);

    nt = (Notif) { .qts = dst };
    vit_want_map(w, BOTH, EP_BEHIND_PORT, &vit_m3p);
    vit_want_map(w, BOTH, EP2, &vit_m3p);
    vit_want_map(w, BOTH, EP1, &vit_m1p);
    CHECK_EVENTS(&nt, w);
    CHECK(vit_is_mapped(v, 7, vit_m3p.start, vit_m3p.end));
    CHECK(vit_is_mapped(v, 1, vit_m1p.start, vit_m1p.end));
    QVIOMMU_EXPECT_STATUS(qviommu_probe_req(v, EP_BEHIND_PORT,
                                            vit_probe_size(v), NULL),
                          VIRTIO_IOMMU_S_OK);
    /* both endpoints of domain 7 came back */
    QVIOMMU_EXPECT_STATUS(qviommu_detach_req(v, 7, EP_BEHIND_PORT),
                          VIRTIO_IOMMU_S_OK);
    vit_want_unmap(w, EP_BEHIND_PORT, &vit_m3p);
    CHECK_EVENTS(&nt, w);
    CHECK(vit_is_mapped(v, 7, vit_m3p.start, vit_m3p.end));
    QVIOMMU_EXPECT_STATUS(qviommu_detach_req(v, 7, EP2), VIRTIO_IOMMU_S_OK);
    vit_want_unmap(w, EP2, &vit_m3p);
    CHECK_EVENTS(&nt, w);
    QVIOMMU_EXPECT_STATUS(vit_map_m(v, 7, &vit_m3p), VIRTIO_IOMMU_S_NOENT);

    qviommu_set_qts(v, src);
    qtest_quit(dst);
    rm_dir(dir);
}

/*
 * Hostile streams.  A valid stream is saved to a file, then loaded into
 * new QEMUs after changing the virtio-iommu section, whose layout is
 * stock QEMU's: a domain tree (be32 count; per domain 01, be64 key, be32
 * id, mapping tree, endpoint list, bypass byte; 00), config bypass, then
 * the pending-faults subsection.  Each bad stream must fail the migration
 * cleanly: QEMU stays alive (exit-on-error off) or exits with status 1,
 * never dies of a signal.
 */

#define SD1                     0x5a5a01u
#define SD2                     0x5a5a02u
#define SD3                     0x5a5a03u
#define MAX_STREAM_DOMAINS      3
#define MAX_STREAM_MAPPINGS     4
#define STREAM_MAPPING_SIZE     28  /* after its byte 01 */
#define FAULTS_SUBSECTION       "virtio-iommu-device/pending-faults"
#define QEMU_VM_SECTION_FULL    0x04
#define QEMU_VM_SUBSECTION      0x05

static const Mapping SM_A = { 0xabc00000000ull, 0xabc00001fffull,
                              0x7e5000000ull, RW };
static const Mapping SM_B = { 0xabc00002000ull, 0xabc00002fffull,
                              0x7e6000000ull, RO };
static const Mapping SM_C = { 0xabc00100000ull, 0xabc00100fffull,
                              0x7e7000000ull, RW };

/* Offsets of the parts of the section */
typedef struct StreamDomain {
    gsize key;                  /* be64 */
    gsize id;                   /* be32 */
    gsize nr_mappings;          /* be32 */
    gsize mapping[MAX_STREAM_MAPPINGS]; /* low, high, phys be64; flags be32 */
    unsigned n_mappings;
    gsize endpoints;            /* 01, be32 id, ..., 00 */
    unsigned n_endpoints;
    gsize bypass;               /* u8 */
} StreamDomain;

typedef struct StreamMap {
    gsize section;
    gsize tree;                 /* be32 count */
    StreamDomain dom[MAX_STREAM_DOMAINS];
    unsigned n_dom;
    gsize config_bypass;        /* u8 */
    gsize nr_faults;            /* be32 */
} StreamMap;

static uint64_t rd_be(const GByteArray *b, gsize off, int size)
{
    uint64_t v = 0;
    int i;

    g_assert_cmpuint(off + size, <=, b->len);
    for (i = 0; i < size; i++) {
        v = v << 8 | b->data[off + i];
    }
    return v;
}

static void wr_be(GByteArray *b, gsize off, int size, uint64_t v)
{
    int i;

    g_assert_cmpuint(off + size, <=, b->len);
    for (i = size - 1; i >= 0; i--) {
        b->data[off + i] = v;
        v >>= 8;
    }
}

static gsize find_bytes(const GByteArray *b, gsize from, const void *pat,
                        gsize len)
{
    gsize i;

    for (i = from; i + len <= b->len; i++) {
        if (!memcmp(b->data + i, pat, len)) {
            return i;
        }
    }
    return G_MAXSIZE;
}

/* The full section "<qdev path>/virtio-iommu", instance 0, version 2 */
static gsize find_section(const GByteArray *b)
{
    static const char name[] = "/virtio-iommu\0\0\0\0\0\0\0\2";
    gsize p = 0, q;
    unsigned l;

    while ((p = find_bytes(b, p, name, sizeof(name) - 1)) != G_MAXSIZE) {
        for (l = 13; l < 256 && p + 13 >= l + 1 + 5; l++) {
            q = p + 13 - l - 1;
            if (b->data[q] == l && b->data[q - 5] == QEMU_VM_SECTION_FULL) {
                return q - 5;
            }
        }
        p++;
    }
    return G_MAXSIZE;
}

static void parse_stream(const GByteArray *b, StreamMap *m)
{
    uint8_t pat[13] = { 1 };
    gsize off;
    unsigned i, j;

    memset(m, 0, sizeof(*m));
    m->section = find_section(b);
    g_assert_cmpuint(m->section, !=, G_MAXSIZE);

    /* the first domain entry: 01, key SD1, id SD1 */
    stq_be_p(pat + 1, SD1);
    stl_be_p(pat + 9, SD1);
    off = find_bytes(b, m->section, pat, sizeof(pat));
    g_assert_cmpuint(off, !=, G_MAXSIZE);
    m->tree = off - 4;
    g_assert_cmpuint(rd_be(b, m->tree, 4), ==, 3);

    off = m->tree + 4;
    while (rd_be(b, off++, 1)) {
        StreamDomain *d = &m->dom[m->n_dom++];

        g_assert_cmpuint(m->n_dom, <=, MAX_STREAM_DOMAINS);
        d->key = off;
        d->id = off + 8;
        d->nr_mappings = off + 12;
        off += 16;
        while (rd_be(b, off++, 1)) {
            g_assert_cmpuint(d->n_mappings, <, MAX_STREAM_MAPPINGS);
            d->mapping[d->n_mappings++] = off;
            off += STREAM_MAPPING_SIZE;
        }
        d->endpoints = off;
        while (rd_be(b, off++, 1)) {
            d->n_endpoints++;
            off += 4;
        }
        d->bypass = off++;
    }
    m->config_bypass = off++;
    g_assert_cmpuint(rd_be(b, off, 1), ==, QEMU_VM_SUBSECTION);
    g_assert_cmpuint(rd_be(b, off + 1, 1), ==, strlen(FAULTS_SUBSECTION));
    g_assert_true(!memcmp(b->data + off + 2, FAULTS_SUBSECTION,
                          strlen(FAULTS_SUBSECTION)));
    m->nr_faults = off + 2 + strlen(FAULTS_SUBSECTION) + 4;

    /* what the source had */
    g_assert_cmpuint(m->n_dom, ==, 3);
    for (i = 0; i < 3; i++) {
        g_assert_cmphex(rd_be(b, m->dom[i].id, 4), ==, SD1 + i);
        g_assert_cmpuint(m->dom[i].n_endpoints, ==, 1);
        g_assert_cmpuint(rd_be(b, m->dom[i].bypass, 1), ==, i == 2);
        for (j = 0; j < m->dom[i].n_mappings; j++) {
            g_assert_cmpuint(rd_be(b, m->dom[i].mapping[j], 8), <=,
                             rd_be(b, m->dom[i].mapping[j] + 8, 8));
        }
    }
    g_assert_cmphex(rd_be(b, m->dom[0].endpoints + 1, 4), ==, EP1);
    g_assert_cmphex(rd_be(b, m->dom[1].endpoints + 1, 4), ==, EP2);
    g_assert_cmphex(rd_be(b, m->dom[2].endpoints + 1, 4), ==, EP3);
    g_assert_cmpuint(m->dom[0].n_mappings, ==, 3);   /* ring, A, B */
    g_assert_cmpuint(m->dom[1].n_mappings, ==, 1);
    g_assert_cmpuint(m->dom[2].n_mappings, ==, 0);
    g_assert_cmpuint(rd_be(b, m->config_bypass, 1), ==, 0);
    g_assert_cmpuint(rd_be(b, m->nr_faults, 4), >=, 1);
}

/* The mapping of domain @d that starts at @start */
static gsize stream_mapping(const GByteArray *b, const StreamDomain *d,
                            uint64_t start)
{
    unsigned i;

    for (i = 0; i < d->n_mappings; i++) {
        if (rd_be(b, d->mapping[i], 8) == start) {
            return d->mapping[i];
        }
    }
    g_assert_not_reached();
}

static void stream_splice(GByteArray *b, gsize off, gsize del,
                          const void *ins, gsize ins_len)
{
    g_autoptr(GByteArray) tail = g_byte_array_new();

    g_assert_cmpuint(off + del, <=, b->len);
    g_byte_array_append(tail, b->data + off + del, b->len - off - del);
    g_byte_array_set_size(b, off);
    g_byte_array_append(b, ins, ins_len);
    g_byte_array_append(b, tail->data, tail->len);
}

typedef enum StreamExpect {
    STREAM_LOADS,
    STREAM_FAILS,
    STREAM_EXITS,               /* fails, with exit-on-error on */
} StreamExpect;

typedef struct StreamCase {
    const char *name;
    StreamExpect expect;
} StreamCase;

static const StreamCase stream_cases[] = {
    { "unmodified", STREAM_LOADS },
    { "mapping overlaps another", STREAM_FAILS },
    { "mapping start not granule-aligned", STREAM_FAILS },
    { "mapping end before its start", STREAM_FAILS },
    { "mapping with an unknown flag", STREAM_FAILS },
    { "mapping's physical end past 2^64", STREAM_FAILS },
    { "mapping over the MSI window", STREAM_FAILS },
    { "mapping outside input_range", STREAM_FAILS },
    { "mapping in a bypass domain", STREAM_FAILS },
    { "endpoint that does not exist", STREAM_FAILS },
    { "endpoint ID above 16 bits", STREAM_FAILS },
    { "the IOMMU itself as endpoint", STREAM_FAILS },
    { "endpoint in two domains", STREAM_FAILS },
    { "endpoint twice in one domain", STREAM_FAILS },
    { "domain key is not its ID", STREAM_FAILS },
    { "domain count too high", STREAM_FAILS },
    { "domain count too low", STREAM_FAILS },
    { "mapping count too low", STREAM_FAILS },
    { "config bypass 2", STREAM_FAILS },
    { "pending faults above max-pending-faults", STREAM_FAILS },
    { "pending fault count 0x7fffffff", STREAM_FAILS },
    { "pending fault count -1", STREAM_FAILS },
    { "stream cut in the domain tree", STREAM_FAILS },
    { "domain without endpoints (dropped)", STREAM_LOADS },
    { "mapping overlaps another, exit-on-error", STREAM_EXITS },
    { "mappings out of IOVA order", STREAM_FAILS },
};

/* A destination configured so that it cannot take the source's state */
typedef struct StreamDestCase {
    const char *name;
    const char *from;           /* in the command line ... */
    const char *to;             /* ... replaced by this */
} StreamDestCase;

/* The IOMMU's -device of test_migrate_stream, as the cases change it */
/* The stream holds the pending faults subsection too */
#define STREAM_OPTS             "id=" IOMMU_ID ",migrate-pending-faults=on"
#define STREAM_IOMMU_ARG        IOMMU_DEVICE_ARG "," STREAM_OPTS " "
#define STREAM_IOMMU_WITH(prop) IOMMU_DEVICE_ARG "," STREAM_OPTS "," prop " "

static const StreamDestCase stream_dest_cases[] = {
    { "destination max-domain-id below the domains",
      STREAM_IOMMU_ARG, STREAM_IOMMU_WITH("max-domain-id=4096") },
    { "destination aw-bits below the mappings",
      STREAM_IOMMU_ARG, STREAM_IOMMU_WITH("aw-bits=40") },
    { "destination granule larger than the mappings",
      STREAM_IOMMU_ARG, STREAM_IOMMU_WITH("granule=64k") },
    { "destination max-mappings below the mappings",
      STREAM_IOMMU_ARG, STREAM_IOMMU_WITH("max-mappings=3") },
    { "destination max-domains below the domains",
      STREAM_IOMMU_ARG, STREAM_IOMMU_WITH("max-domains=2") },
    { "destination reserved region over a mapping",
      STREAM_IOMMU_ARG,
      "-device '{\"driver\":\"virtio-iommu-pci\",\"addr\":\""
      QVIOMMU_PCI_ADDR_STR "\",\"id\":\"" IOMMU_ID "\","
      "\"reserved-regions\":[\"0xabc00001000:0xabc00001fff:0\"]}' " },
    { "destination without an attached endpoint",
      " -device virtio-rng-pci,id=" EP3_ID ",addr=08.0," ENDPOINT_OPTS, "" },
};

/* Make stream case @i of @b; false if it does not apply here */
static bool corrupt_stream(GByteArray *b, const StreamMap *m, unsigned i,
                           const Machine *mach, uint64_t in_end)
{
    const StreamDomain *d1 = &m->dom[0], *d2 = &m->dom[1], *d3 = &m->dom[2];
    gsize ma = stream_mapping(b, d1, SM_A.start);
    gsize mb = stream_mapping(b, d1, SM_B.start);
    uint8_t ep_entry[5] = { 1 };

    switch (i) {
    case 0:
        break;
    case 1:
    case 24:
        wr_be(b, mb, 8, SM_A.start + PAGE);
        break;
    case 2:
        wr_be(b, ma, 8, SM_A.start + 0x800);
        break;
    case 3:
        wr_be(b, ma + 8, 8, SM_A.start - 1);
        break;
    case 4:
        wr_be(b, ma + 24, 4, RW | 0x80);
        break;
    case 5:
        wr_be(b, ma + 16, 8, UINT64_MAX - PAGE + 1);
        break;
    case 6:
        /* The lowest mapping, so that the stream stays in IOVA order */
        if (rd_be(b, d1->mapping[1], 8) <= mach->msi.start + PAGE - 1) {
            return false;
        }
        wr_be(b, d1->mapping[0], 8, mach->msi.start);
        wr_be(b, d1->mapping[0] + 8, 8, mach->msi.start + PAGE - 1);
        break;
    case 7:
        if (in_end == UINT64_MAX) {
            return false;
        }
        wr_be(b, ma, 8, in_end + 1);
        wr_be(b, ma + 8, 8, in_end + 2 * PAGE);
        break;
    case 8:
        wr_be(b, d2->bypass, 1, 1);
        break;
    case 9:
        wr_be(b, d2->endpoints + 1, 4, EP_NO_SLOT);
        break;
    case 10:
        wr_be(b, d2->endpoints + 1, 4, 0x10000 | EP2);
        break;
    case 11:
        wr_be(b, d2->endpoints + 1, 4, EP_SELF);
        break;
    case 12:
        wr_be(b, d2->endpoints + 1, 4, EP1);
        break;
    case 13:
        stl_be_p(ep_entry + 1, EP2);
        stream_splice(b, d2->endpoints, 0, ep_entry, sizeof(ep_entry));
        break;
    case 14:
        wr_be(b, d3->key, 8, SD3 + 1);
        break;
    case 15:
        wr_be(b, m->tree, 4, 4);
        break;
    case 16:
        wr_be(b, m->tree, 4, 2);
        break;
    case 17:
        wr_be(b, d1->nr_mappings, 4, d1->n_mappings - 1);
        break;
    case 18:
        wr_be(b, m->config_bypass, 1, 2);
        break;
    case 19:
        wr_be(b, m->nr_faults, 4, 129);
        break;
    case 20:
        wr_be(b, m->nr_faults, 4, 0x7fffffff);
        break;
    case 21:
        wr_be(b, m->nr_faults, 4, 0xffffffff);
        break;
    case 22:
        g_byte_array_set_size(b, d2->key + 4);
        break;
    case 23:
        stream_splice(b, d2->endpoints, 5, NULL, 0);
        break;
    case 25: {
        /* Neither overlaps: only their order is wrong */
        uint8_t rec[STREAM_MAPPING_SIZE];

        memcpy(rec, b->data + ma, sizeof(rec));
        memmove(b->data + ma, b->data + mb, sizeof(rec));
        memcpy(b->data + mb, rec, sizeof(rec));
        break;
    }
    default:
        g_assert_not_reached();
    }
    return true;
}

/* Load @path into a new QEMU; false (and a report) if it misbehaved */
static bool load_stream(const char *cmdline, const char *path,
                        const StreamCase *c)
{
    g_autofree char *uri = g_strdup_printf("file:%s", path);
    g_autofree char *status = NULL;
    QTestState *to = qtest_initf("%s -incoming defer", cmdline);
    gint64 deadline;
    bool ok = true;

    if (c->expect == STREAM_EXITS) {
        /* QEMU may be gone before it answers */
        qtest_qmp_send(to, "{ 'execute': 'migrate-incoming', "
                       "'arguments': { 'uri': %s } }", uri);
        deadline = g_get_monotonic_time() + MIG_TIMEOUT_US;
        while (qtest_probe_child(to) && g_get_monotonic_time() < deadline) {
            g_usleep(10 * 1000);
        }
        if (qtest_probe_child(to)) {
            qviommu_report(__func__, __LINE__, "stream '%s': QEMU did not exit",
                           c->name);
            ok = false;
        } else {
            /* qtest_quit() aborts on a signal or another status */
            fprintf(stderr, "# stream '%s': QEMU exited, expecting status "
                    "1\n", c->name);
            qtest_set_expected_status(to, 1);
        }
        qtest_quit(to);
        return ok;
    }

    qtest_qmp_assert_success(to, "{ 'execute': 'migrate-incoming', "
                             "'arguments': { 'uri': %s, "
                             "'exit-on-error': false } }", uri);
    status = mig_wait(to);
    if (!strcmp(status, "QEMU exited")) {
        qviommu_report(__func__, __LINE__, "stream '%s': QEMU exited while "
                       "loading", c->name);
        qtest_quit(to);
        return false;
    }
    if (strcmp(status, c->expect == STREAM_LOADS ? "completed" : "failed")) {
        qviommu_report(__func__, __LINE__, "stream '%s': expected migration "
                       "%s, got '%s'", c->name,
                       c->expect == STREAM_LOADS ? "completed" : "failed",
                       status);
        ok = false;
    }
    /* still alive and answering */
    qtest_qmp_assert_success(to, "{ 'execute': 'query-status' }");
    qtest_quit(to);
    return ok;
}

static void test_migrate_stream(void *obj, void *data, QGuestAllocator *a)
{
    QViommu *v = obj;
    g_autofree char *dir = g_dir_make_tmp("viommu-mig-XXXXXX", NULL);
    g_autofree char *good = g_build_filename(dir, "good", NULL);
    g_autofree char *bad = g_build_filename(dir, "bad", NULL);
    g_autofree char *uri = g_strdup_printf("file:%s", good);
    g_autofree char *status = NULL;
    g_autoptr(GString) cmd = test_cmdline(NULL);
    g_autoptr(GByteArray) stream = NULL;
    Ep *ep = vit_ep_open(v, EP1_SLOT);
    uint64_t in_end = vit_input_end(v);
    Machine mach;
    StreamMap m;
    gchar *contents;
    gsize len;
    unsigned i;

    if (!vit_machine_info(v, NULL, &mach)) {
        vit_ep_close(ep);
        return;
    }

    /* three domains, config bypass 0, a pending fault */
    vit_bypass_set(v, 0);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, SD1, EP1, 0),
                          VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(vit_map_m(v, SD1, &SM_A), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(vit_map_m(v, SD1, &SM_B), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, SD2, EP2, 0),
                          VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(vit_map_m(v, SD2, &SM_C), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, SD3, EP3,
                                             VIRTIO_IOMMU_ATTACH_F_BYPASS),
                          VIRTIO_IOMMU_S_OK);
    vit_ep_start_std(ep, SD1, a, RW);
    vit_ep_submit(ep, 0, BUF_IOVA + 0x40, 64);
    g_usleep(QUIET_WAIT_US);
    QVIOMMU_EXPECT_STATUS(qviommu_detach_req(v, SD1, EP_NO_SLOT),
                          VIRTIO_IOMMU_S_NOENT);

    /* The source ends up stopped: the next test needs a QEMU of its own */
    qos_invalidate_command_line();
    qtest_qmp_assert_success(v->qts, "{ 'execute': 'migrate', "
                             "'arguments': { 'uri': %s } }", uri);
    status = mig_wait(v->qts);
    g_assert_cmpstr(status, ==, "completed");
    g_assert_true(g_file_get_contents(good, &contents, &len, NULL));
    stream = g_byte_array_new_take((guint8 *)contents, len);
    parse_stream(stream, &m);

    for (i = 0; i < ARRAY_SIZE(stream_cases); i++) {
        g_autoptr(GByteArray) b = g_byte_array_new();

        g_byte_array_append(b, stream->data, stream->len);
        if (!corrupt_stream(b, &m, i, &mach, in_end)) {
            fprintf(stderr, "# stream '%s': does not apply here\n",
                    stream_cases[i].name);
            continue;
        }
        g_assert_true(g_file_set_contents(bad, (char *)b->data, b->len,
                                          NULL));
        load_stream(cmd->str, bad, &stream_cases[i]);
    }


    /* the unmodified stream into destinations that cannot hold it */
    g_assert_true(g_file_set_contents(bad, (char *)stream->data,
                                      stream->len, NULL));
    for (i = 0; i < ARRAY_SIZE(stream_dest_cases); i++) {
        const StreamDestCase *c = &stream_dest_cases[i];
        StreamCase sc = { c->name, STREAM_FAILS };
        g_autoptr(GString) dcmd = g_string_new(cmd->str);

        vit_cmdline_replace(dcmd, c->from, c->to);
        load_stream(dcmd->str, bad, &sc);
    }

    vit_ep_close(ep);
    rm_dir(dir);
}

/* ------------------------------------------------------------------ */

static void register_virtio_iommu_migration_test(void)
{
    static const TestCfg mig = { .endpoints = ENDPOINTS3 };

    vit_add_test("migrate", test_migrate, NOTIFY_OPTS, &mig);
    vit_add_test("migrate-faults", test_migrate_faults,
                 "max-pending-faults=4,migrate-pending-faults=on", NULL);
    vit_add_test("migrate-faults-dropped", test_migrate_faults_dropped,
                 "max-pending-faults=4", NULL);
    vit_add_test("migrate-bridge", test_migrate_bridge, NOTIFY_OPTS,
                 &vit_cfg_root_port);
    vit_add_test("migrate-stream", test_migrate_stream, STREAM_OPTS, &mig);
}

libqos_init(register_virtio_iommu_migration_test);
