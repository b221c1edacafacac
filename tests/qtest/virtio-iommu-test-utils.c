/*
 * virtio-iommu qtests: the helpers the test files share, declared and
 * described in virtio-iommu-test.h
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/bswap.h"
#include "qemu/host-utils.h"
#include "qemu/units.h"
#include "qobject/qdict.h"
#include "qobject/qlist.h"
#include "qobject/qstring.h"
#include "libqos/edu.h"
#include "virtio-iommu-test.h"
#include "standard-headers/linux/virtio_config.h"
#include "standard-headers/linux/virtio_ids.h"
#include "standard-headers/linux/virtio_pci.h"
#include "standard-headers/linux/pci_regs.h"
#include "standard-headers/linux/virtio_ring.h"

/* ------------------------------------------------------------------ */
/* Test variants                                                       */

bool vit_arch_is_x86(void)
{
    const char *arch = qtest_get_arch();

    return !strcmp(arch, "x86_64") || !strcmp(arch, "i386");
}

bool vit_arch_is_arm(void)
{
    return !strcmp(qtest_get_arch(), "aarch64");
}

void vit_cmdline_replace(GString *cmd_line, const char *from, const char *to)
{
    const char *p = strstr(cmd_line->str, from);
    gssize pos;

    g_assert_nonnull(p);
    pos = p - cmd_line->str;
    g_string_erase(cmd_line, pos, strlen(from));
    g_string_insert(cmd_line, pos, to);
}

void *vit_before_cfg(GString *cmd_line, void *arg)
{
    const TestCfg *cfg = arg;

    if (cfg->q35 && vit_arch_is_x86()) {
        g_assert_true(g_str_has_prefix(cmd_line->str, "-M pc "));
        vit_cmdline_replace(cmd_line, "-M pc ", "-M q35 ");
        if (cfg->q35_args) {
            g_string_append_printf(cmd_line, " %s", cfg->q35_args);
        }
    }
    if (cfg->x86_machine && vit_arch_is_x86()) {
        g_autofree char *m = g_strdup_printf("-M %s ", cfg->x86_machine);

        vit_cmdline_replace(cmd_line, "-M pc ", m);
    }
    if (cfg->arm_machine && vit_arch_is_arm()) {
        g_autofree char *m = g_strdup_printf("-M %s,", cfg->arm_machine);

        vit_cmdline_replace(cmd_line, "-M virt,", m);
    }
    if (cfg->iommu_json) {
        g_autofree char *dev = g_strdup_printf("-device '%s'",
                                               cfg->iommu_json);

        vit_cmdline_replace(cmd_line, IOMMU_DEVICE_ARG, dev);
    }
    return arg;
}

void vit_add_theme_test(const char *theme, const char *name, QOSTestFunc fn,
                        const char *dev_opts, const TestCfg *cfg)
{
    static GHashTable *themes;
    /* Kept for the life of the test registry */
    char *after = g_strdup_printf("%s%s%s",
        cfg && cfg->endpoints ? cfg->endpoints : ENDPOINTS,
        cfg && cfg->plain ? "" : TESTDEV_ARG,
        cfg && cfg->testdev_opts ? cfg->testdev_opts : "");
    QOSGraphTestOptions opts = {
        .edge.extra_device_opts = dev_opts,
        .edge.after_cmd_line = after,
        .before = cfg ? vit_before_cfg : NULL,
        .arg = (void *)cfg,
        .subprocess = cfg && cfg->subprocess,
    };

    if (!themes) {
        themes = g_hash_table_new(g_str_hash, g_str_equal);
    }
    /* The libqos driver answers for every virtio-iommu-THEME interface */
    if (g_hash_table_add(themes, (gpointer)theme)) {
        qos_node_produces("virtio-iommu-pci", theme);
    }
    qos_add_test(name, theme, fn, &opts);
}

/* ------------------------------------------------------------------ */
/* What the machine gives the device                                   */

static bool machine_facts(QViommu *v, const TestCfg *cfg, Machine *m)
{
    if (vit_arch_is_x86()) {
        m->aw_bits = cfg && cfg->q35 ? 39 : 64;
        m->msi = (Resv) { 0xfee00000, 0xfeefffff, VIRTIO_IOMMU_RESV_MEM_T_MSI };
        return true;
    }
    if (vit_arch_is_arm()) {
        QDict *rsp = qtest_qmp(v->qts,
            "{ 'execute': 'qom-get', 'arguments': "
            "{ 'path': '/machine', 'property': 'gic-version' } }");
        bool v2;

        g_assert_true(qdict_haskey(rsp, "return"));
        v2 = !strcmp(qdict_get_str(rsp, "return"), "2");

        m->aw_bits = 48;
        if (v2) {
            /* GICv2m MSI_SETSPI_NS page */
            m->msi = (Resv) { 0x08020000, 0x08020fff,
                              VIRTIO_IOMMU_RESV_MEM_T_MSI };
        } else {
            /* GITS_TRANSLATER page of the ITS */
            m->msi = (Resv) { 0x08090000, 0x0809ffff,
                              VIRTIO_IOMMU_RESV_MEM_T_MSI };
        }
        qobject_unref(rsp);
        return true;
    }
    g_test_skip("no machine facts for this architecture");
    return false;
}

bool vit_machine_info(QViommu *v, const TestCfg *cfg, Machine *m)
{
    if (!machine_facts(v, cfg, m)) {
        return false;
    }
    if (cfg && cfg->aw_bits) {
        m->aw_bits = cfg->aw_bits;
    }
    return true;
}

/* ------------------------------------------------------------------ */
/* Non-fatal checks                                                    */

bool vit_check_eq(const char *fn, int line, const char *what, uint64_t got,
                  uint64_t want)
{
    if (got != want) {
        qviommu_report(fn, line, "%s: expected 0x%" PRIx64 ", got 0x%" PRIx64,
                       what, want, got);
        return false;
    }
    return true;
}

/* ------------------------------------------------------------------ */
/* Requests and config                                                 */

uint32_t vit_probe_size(QViommu *v)
{
    return qviommu_config_readl(v, CFG_OFF(probe_size));
}

uint64_t vit_input_end(QViommu *v)
{
    return qviommu_config_readq(v, CFG_OFF(input_range.end));
}

bool vit_is_mapped(QViommu *v, uint32_t domain, uint64_t start, uint64_t end)
{
    QViommuRes r = qviommu_map_req(v, domain, start, end, start, RW);

    g_assert_cmpuint(r.used, ==, 4);
    if (r.tail[0] == VIRTIO_IOMMU_S_OK) {
        /* was free: undo the probe */
        QViommuRes u = qviommu_unmap_req(v, domain, start, end);

        g_assert_cmpuint(u.tail[0], ==, VIRTIO_IOMMU_S_OK);
        return false;
    }
    g_assert_cmpuint(r.tail[0], ==, VIRTIO_IOMMU_S_INVAL);
    return true;
}

uint64_t vit_aw_mask(unsigned aw_bits)
{
    return aw_bits >= 64 ? UINT64_MAX : BIT64(aw_bits) - 1;
}

uint8_t vit_bypass_get(QViommu *v)
{
    return qviommu_config_readb(v, CFG_OFF(bypass));
}

void vit_bypass_set(QViommu *v, uint8_t val)
{
    qviommu_config_writeb(v, CFG_OFF(bypass), val);
}

void vit_system_reset_restart(QViommu *v)
{
    qviommu_stop(v);
    qtest_system_reset(v->qts);
    qvirtio_pci_device_disable(v->transport);
    qvirtio_pci_device_enable(v->transport);
    qviommu_start(v, qviommu_known_features(v));
}

/* ------------------------------------------------------------------ */
/* Statistics                                                          */

#define IOMMU_QOM               "/machine/peripheral/" IOMMU_ID         \
                                "/virtio-backend"

QDict *vit_stats_get(QTestState *qts)
{
    QDict *rsp = qtest_qmp(qts, "{ 'execute': 'qom-get', 'arguments': "
                           "{ 'path': %s, 'property': 'stats' } }",
                           IOMMU_QOM);
    QDict *stats;

    g_assert_true(qdict_haskey(rsp, "return"));
    stats = qdict_get_qdict(rsp, "return");
    qobject_ref(stats);
    qobject_unref(rsp);
    return stats;
}

uint64_t vit_stat_of(QDict *stats, const char *name)
{
    const char *slash = strchr(name, '/');
    g_autofree char *type = NULL;
    QDict *req;

    if (!slash) {
        g_assert_true(qdict_haskey(stats, name));
        return qdict_get_int(stats, name);
    }
    type = g_strndup(name, slash - name);
    req = qdict_get_qdict(qdict_get_qdict(stats, "requests"), type);
    g_assert_nonnull(req);
    g_assert_true(qdict_haskey(req, slash + 1));
    return qdict_get_int(req, slash + 1);
}

bool vit_check_stat(const char *fn, int line, QTestState *qts, const char *name,
                    uint64_t want)
{
    QDict *stats = vit_stats_get(qts);
    uint64_t got = vit_stat_of(stats, name);

    qobject_unref(stats);
    if (got != want) {
        qviommu_report(fn, line, "stats %s: expected %" PRIu64 ", got %" PRIu64,
                       name, want, got);
        return false;
    }
    return true;
}

/* ------------------------------------------------------------------ */
/* PROBE properties                                                    */

void vit_check_props(const char *fn, int line, const uint8_t *p, uint32_t size,
                     const Resv *want, unsigned n)
{
    uint32_t off = 0;
    unsigned i;

    for (i = 0; i < n; i++) {
        struct virtio_iommu_probe_resv_mem r;
        uint16_t type, length;

        if (off + sizeof(r) > size) {
            qviommu_report(fn, line, "property %u does not fit in %u bytes",
                           i, size);
            return;
        }
        memcpy(&r, p + off, sizeof(r));
        type = le16_to_cpu(r.head.type);
        length = le16_to_cpu(r.head.length);
        if (type != VIRTIO_IOMMU_PROBE_T_RESV_MEM ||
            length != sizeof(r) - sizeof(r.head) ||
            r.subtype != want[i].subtype ||
            r.reserved[0] || r.reserved[1] || r.reserved[2] ||
            le64_to_cpu(r.start) != want[i].start ||
            le64_to_cpu(r.end) != want[i].end) {
            qviommu_report(fn, line, "property %u at offset %u: expected "
                           "RESV_MEM (type 1, length %zu) subtype %u "
                           "[0x%" PRIx64 ", 0x%" PRIx64 "], got type 0x%x "
                           "length %u subtype %u reserved %02x %02x %02x "
                           "[0x%" PRIx64 ", 0x%" PRIx64 "]", i, off,
                           sizeof(r) - sizeof(r.head), want[i].subtype,
                           want[i].start, want[i].end, type, length, r.subtype,
                           r.reserved[0], r.reserved[1], r.reserved[2],
                           le64_to_cpu(r.start), le64_to_cpu(r.end));
            return;
        }
        off += sizeof(r.head) + length;
    }
    for (; off < size; off++) {
        if (p[off]) {
            qviommu_report(fn, line, "byte %u after the properties is 0x%02x, "
                           "not 0", off, p[off]);
            return;
        }
    }
}

/* ------------------------------------------------------------------ */
/* The IOMMU test device and IOMMU notifier events                     */

/*
 * The endpoints that get recorders, where they exist, and the endpoint ID
 * their events belong to (the one the guest attaches: a bus number may
 * not be set yet when a migration stream is loaded)
 */
static const struct {
    const char *id;
    uint32_t ep;
} recorded_eps[] = {
    { EP1_ID, EP1 }, { EP2_ID, EP2 }, { EP3_ID, EP3 },
    { EP_PORT_ID, EP_BEHIND_PORT },
};

/* 3 pages at a 4-page boundary: a 2-page block, then a 1-page block */
const Mapping vit_m3p = { 0x100000, 0x102fff, 0x200000, RW };
/* 2 MiB at a 2 MiB boundary: one block */
const Mapping vit_m2m = { 0x400000, 0x5fffff, 0x40000000, RO };
/* one page */
const Mapping vit_m1p = { 0x103000, 0x103fff, 0x300000, WO };
/* device registers: never sent as MAP */
const Mapping vit_mmio = { 0x700000, 0x701fff, 0xfe000000,
                           RW | VIRTIO_IOMMU_MAP_F_MMIO };

const TestCfg vit_cfg_root_port = {
    .q35 = true,
    .endpoints = ENDPOINTS ROOT_PORT,
};

QPCIDevice *vit_root_port(QViommu *v)
{
    QPCIDevice *port = qpci_device_find(v->transport->pdev->bus,
                                        QPCI_DEVFN(ROOT_PORT_SLOT, 0));

    g_assert_nonnull(port);
    return port;
}

void vit_number_root_port(QViommu *v)
{
    g_autofree QPCIDevice *port = vit_root_port(v);

    vit_bridge_number(port, 1);
}

void vit_bridge_number(QPCIDevice *bridge, uint8_t bus_nr)
{
    qpci_config_writeb(bridge, PCI_PRIMARY_BUS, 0);
    qpci_config_writeb(bridge, PCI_SECONDARY_BUS, bus_nr);
    qpci_config_writeb(bridge, PCI_SUBORDINATE_BUS, bus_nr);
}

uint64_t vit_bridge_window(QPCIDevice *bridge, uint64_t size)
{
    QPCIBus *bus = bridge->bus;
    uint64_t base = QEMU_ALIGN_UP(bus->mmio_alloc_ptr, MiB);

    g_assert_cmphex(size % MiB, ==, 0);
    g_assert_cmphex(base + size, <=, bus->mmio_limit);
    g_assert_cmphex(base + size, <=, 0x100000000ull);
    bus->mmio_alloc_ptr = base;
    qpci_config_writew(bridge, PCI_MEMORY_BASE, (base >> 16) & 0xfff0);
    qpci_config_writew(bridge, PCI_MEMORY_LIMIT,
                       ((base + size - 1) >> 16) & 0xfff0);
    qpci_config_writew(bridge, PCI_PREF_MEMORY_BASE, 0xfff0);
    qpci_config_writew(bridge, PCI_PREF_MEMORY_LIMIT, 0);
    qpci_config_writel(bridge, PCI_PREF_BASE_UPPER32, 0);
    qpci_config_writel(bridge, PCI_PREF_LIMIT_UPPER32, 0);
    qpci_config_writeb(bridge, PCI_IO_BASE, 0xf0);
    qpci_config_writeb(bridge, PCI_IO_LIMIT, 0);
    qpci_config_writew(bridge, PCI_COMMAND,
                       PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    return base;
}

bool vit_recorders_add(QTestState *qts)
{
    bool any = false;
    size_t i;

    for (i = 0; i < ARRAY_SIZE(recorded_eps); i++) {
        QDict *rsp = qtest_qmp(qts, "{ 'execute': 'qom-set', 'arguments': "
                               "{ 'path': %s, 'property': 'record', "
                               "'value': %s } }", TESTDEV_QOM,
                               recorded_eps[i].id);

        /* An endpoint this machine does not have: nothing to record */
        any |= qdict_haskey(rsp, "return");
        qobject_unref(rsp);
    }
    return any;
}

bool vit_recorders_exist(QTestState *qts)
{
    QDict *rsp = qtest_qmp(qts, "{ 'execute': 'qom-get', 'arguments': "
                           "{ 'path': %s, 'property': 'recorded' } }",
                           TESTDEV_QOM);
    bool found = !qlist_empty(qdict_get_qlist(rsp, "return"));

    qobject_unref(rsp);
    return found;
}

/* The endpoint ID of a recorded device */
static bool recorded_ep(const char *id, uint32_t *ep)
{
    size_t i;

    for (i = 0; i < ARRAY_SIZE(recorded_eps); i++) {
        if (!strcmp(recorded_eps[i].id, id)) {
            *ep = recorded_eps[i].ep;
            return true;
        }
    }
    return false;
}

/* The log entries added since the last call */
static GArray *notif_take(Notif *nt)
{
    QDict *rsp = qtest_qmp(nt->qts, "{ 'execute': 'qom-get', 'arguments': "
                           "{ 'path': %s, 'property': 'log' } }",
                           TESTDEV_QOM);
    GArray *evs = g_array_new(false, true, sizeof(Ev));
    QListEntry *e;
    guint i = 0;

    g_assert_true(qdict_haskey(rsp, "return"));
    QLIST_FOREACH_ENTRY(qdict_get_qlist(rsp, "return"), e) {
        const char *line;
        char dev[32], kind[8];
        Ev ev = { 0 };

        if (i++ < nt->seen) {
            continue;
        }
        line = qstring_get_str(qobject_to(QString, qlist_entry_obj(e)));
        if (sscanf(line, "n%d %31s %7s iova=0x%" SCNx64 " mask=0x%" SCNx64
                   " pa=0x%" SCNx64 " perm=%d", &ev.n, dev, kind, &ev.iova,
                   &ev.mask, &ev.pa, &ev.perm) != 7 ||
            (strcmp(kind, "MAP") && strcmp(kind, "UNMAP")) ||
            !recorded_ep(dev, &ev.ep)) {
            qviommu_report(__func__, __LINE__, "unparsable notification '%s'",
                           line);
            continue;
        }
        ev.map = !strcmp(kind, "MAP");
        g_array_append_val(evs, ev);
    }
    nt->seen = i;
    qobject_unref(rsp);
    return evs;
}

void vit_notif_start(Notif *nt, QTestState *qts)
{
    if (!vit_recorders_exist(qts)) {
        g_assert_true(vit_recorders_add(qts));
    }
    *nt = (Notif) { .qts = qts };
    g_array_free(notif_take(nt), true);
}

void vit_want_ev(GArray *w, int n, bool map, uint32_t ep, uint64_t iova,
                 uint64_t mask, uint64_t pa, int perm)
{
    Ev ev = { n, map, ep, iova, mask, pa, map ? perm : 0 };

    g_array_append_val(w, ev);
}

static int map_perm(uint32_t flags)
{
    return (flags & VIRTIO_IOMMU_MAP_F_READ ? PERM_RO : 0) |
           (flags & VIRTIO_IOMMU_MAP_F_WRITE ? PERM_WO : 0);
}

/* Expect @m as the fewest naturally aligned blocks, in IOVA order */
static void want_blocks(GArray *w, int n, bool map, uint32_t ep,
                        const Mapping *m)
{
    uint64_t iova = m->start;

    for (;;) {
        uint64_t align = iova ? (iova & -iova) - 1 : UINT64_MAX;
        uint64_t span = m->end - iova;
        uint64_t fit = span == UINT64_MAX ? UINT64_MAX :
                       (1ull << (63 - clz64(span + 1))) - 1;
        uint64_t mask = MIN(align, fit);

        vit_want_ev(w, n, map, ep, iova, mask, m->pa + (iova - m->start),
                    map_perm(m->flags));
        if (iova + mask == m->end) {
            return;
        }
        iova += mask + 1;
    }
}

void vit_want_map(GArray *w, int n, uint32_t ep, const Mapping *m)
{
    if (!(m->flags & VIRTIO_IOMMU_MAP_F_MMIO)) {
        want_blocks(w, n, true, ep, m);
    }
}

void vit_want_unmap(GArray *w, uint32_t ep, const Mapping *m)
{
    want_blocks(w, BOTH, false, ep, m);
}

static void print_evs(const char *what, GArray *evs)
{
    guint i;

    fprintf(stderr, "  %s (%u):\n", what, evs->len);
    for (i = 0; i < evs->len; i++) {
        Ev *e = &g_array_index(evs, Ev, i);

        fprintf(stderr, "    n%d %s ep=0x%x iova=0x%" PRIx64 " mask=0x%" PRIx64
                " pa=0x%" PRIx64 " perm=%d\n", e->n, e->map ? "MAP" : "UNMAP",
                e->ep, e->iova, e->mask, e->pa, e->perm);
    }
}

static bool ev_match(const Ev *got, const Ev *want)
{
    return got->map == want->map && got->ep == want->ep &&
           got->iova == want->iova && got->mask == want->mask &&
           got->perm == want->perm && (!want->map || got->pa == want->pa);
}

/* The events of notifier @n (or BOTH, in expectations) for @ep */
static GArray *evs_of(GArray *evs, int n, uint32_t ep)
{
    GArray *r = g_array_new(false, true, sizeof(Ev));
    guint i;

    for (i = 0; i < evs->len; i++) {
        Ev *e = &g_array_index(evs, Ev, i);

        if ((e->n == n || e->n == BOTH) && e->ep == ep) {
            g_array_append_val(r, *e);
        }
    }
    return r;
}

static gint ev_cmp(gconstpointer a, gconstpointer b)
{
    const Ev *x = a, *y = b;

    if (x->iova != y->iova) {
        return x->iova < y->iova ? -1 : 1;
    }
    return x->mask < y->mask ? -1 : x->mask > y->mask;
}

/* The length of the run of events of one kind (MAP or UNMAP) at @i */
static guint run_len(GArray *evs, guint i)
{
    guint j = i;

    while (j < evs->len && g_array_index(evs, Ev, j).map ==
           g_array_index(evs, Ev, i).map) {
        j++;
    }
    return j - i;
}

/*
 * Did notifier @n of @ep get what it should?  The same runs of MAPs and
 * of UNMAPs in the same order, each run with the same blocks; the order
 * of blocks within a run is free.
 */
static bool evs_agree(GArray *got_all, GArray *want_all, int n, uint32_t ep)
{
    g_autoptr(GArray) got = evs_of(got_all, n, ep);
    g_autoptr(GArray) want = evs_of(want_all, n, ep);
    guint i = 0, k, len;

    if (got->len != want->len) {
        return false;
    }
    while (i < got->len) {
        len = run_len(got, i);
        if (run_len(want, i) != len ||
            g_array_index(got, Ev, i).map != g_array_index(want, Ev, i).map) {
            return false;
        }
        qsort(&g_array_index(got, Ev, i), len, sizeof(Ev), ev_cmp);
        qsort(&g_array_index(want, Ev, i), len, sizeof(Ev), ev_cmp);
        for (k = i; k < i + len; k++) {
            if (!ev_match(&g_array_index(got, Ev, k),
                          &g_array_index(want, Ev, k))) {
                return false;
            }
        }
        i += len;
    }
    return true;
}

bool vit_check_events(const char *fn, int line, Notif *nt, GArray *want)
{
    g_autoptr(GArray) got = notif_take(nt);
    bool ok = true;
    guint i;
    int n;

    for (i = 0; i < got->len; i++) {
        ok &= g_array_index(got, Ev, i).n == 0 ||
              g_array_index(got, Ev, i).n == 1;
    }
    for (n = 0; n < 2 && ok; n++) {
        for (i = 0; i < got->len && ok; i++) {
            ok = evs_agree(got, want, n, g_array_index(got, Ev, i).ep);
        }
        for (i = 0; i < want->len && ok; i++) {
            ok = evs_agree(got, want, n, g_array_index(want, Ev, i).ep);
        }
    }
    if (!ok) {
        qviommu_report(fn, line, "IOMMU notifications differ (n-1: both n0 and "
                       "n1; UNMAP pa not compared)");
        print_evs("expected", want);
        print_evs("got", got);
    }
    g_array_set_size(want, 0);
    return ok;
}

QViommuRes vit_map_m(QViommu *v, uint32_t domain, const Mapping *m)
{
    return qviommu_map_req(v, domain, m->start, m->end, m->pa, m->flags);
}

QViommuRes vit_unmap_m(QViommu *v, uint32_t domain, const Mapping *m)
{
    return qviommu_unmap_req(v, domain, m->start, m->end);
}

/* ------------------------------------------------------------------ */
/* edu                                                                 */

Edu *vit_edu_open_id(QViommu *v, uint32_t id)
{
    Edu *e = g_new0(Edu, 1);

    e->qts = v->qts;
    e->id = id;
    /* config cycles to bus N use devfn N << 8 | devfn */
    e->dev = qpci_device_find(v->transport->pdev->bus, id);
    g_assert_nonnull(e->dev);
    g_assert_cmphex(qpci_config_readw(e->dev, PCI_DEVICE_ID), ==, 0x11e8);
    qpci_device_enable(e->dev);
    e->bar = qpci_iomap(e->dev, 0, NULL);
    return e;
}

Edu *vit_edu_open(QViommu *v, unsigned slot)
{
    return vit_edu_open_id(v, QPCI_DEVFN(slot, 0));
}

void vit_edu_close(Edu *e)
{
    qpci_iounmap(e->dev, e->bar);
    g_free(e->dev);
    g_free(e);
}

void vit_edu_dma(Edu *e, uint64_t iova, uint32_t count, bool to_guest)
{
    g_assert_cmpuint(count, <=, 4096);
    qpci_io_writeq(e->dev, e->bar, EDU_DMA_SRC, to_guest ? EDU_BUF : iova);
    qpci_io_writeq(e->dev, e->bar, EDU_DMA_DST, to_guest ? iova : EDU_BUF);
    qpci_io_writeq(e->dev, e->bar, EDU_DMA_CNT, count);
    qpci_io_writeq(e->dev, e->bar, EDU_DMA_CMD,
                   EDU_DMA_RUN | (to_guest ? EDU_DMA_TO_PCI : 0));
    qtest_clock_step(e->qts, EDU_DMA_NS);
    g_assert_cmphex(qpci_io_readq(e->dev, e->bar, EDU_DMA_CMD) &
                    EDU_DMA_RUN, ==, 0);
}

/* ------------------------------------------------------------------ */
/* Endpoint DMA: a virtio-rng-pci driven by hand                       */

Ep *vit_ep_open_id(QViommu *v, uint32_t id)
{
    QPCIAddress addr = { .devfn = id };
    Ep *ep = g_new0(Ep, 1);
    uint64_t f;

    ep->v = v;
    ep->qts = v->qts;
    ep->id = id;
    ep->dev = virtio_pci_new(v->transport->pdev->bus, &addr);
    g_assert_nonnull(ep->dev);
    g_assert_cmpuint(ep->dev->vdev.device_type, ==, VIRTIO_ID_RNG);
    qvirtio_pci_device_enable(ep->dev);
    qvirtio_start_device(&ep->dev->vdev);
    f = qvirtio_get_features(&ep->dev->vdev);
    g_assert_cmphex(f & BIT64(VIRTIO_F_ACCESS_PLATFORM), !=, 0);
    qvirtio_set_features(&ep->dev->vdev, BIT64(VIRTIO_F_VERSION_1) |
                         BIT64(VIRTIO_F_ACCESS_PLATFORM));
    return ep;
}

Ep *vit_ep_open(QViommu *v, unsigned slot)
{
    return vit_ep_open_id(v, QPCI_DEVFN(slot, 0));
}

void vit_ep_close(Ep *ep)
{
    qvirtio_pci_device_disable(ep->dev);
    g_free(ep->dev->pdev);
    g_free(ep->dev);
    g_free(ep);
}

void vit_ep_view(Ep *ep, uint64_t iova, uint64_t pa, uint64_t size)
{
    g_assert_cmpuint(ep->nr_map, <, ARRAY_SIZE(ep->map));
    ep->map[ep->nr_map++] = (EpMap) { iova, pa, size };
}

void vit_ep_map(Ep *ep, uint32_t domain, uint64_t iova, uint64_t pa,
                uint64_t size, uint32_t flags)
{
    QViommuRes r = qviommu_map_req(ep->v, domain, iova, iova + size - 1, pa,
                                   flags);

    g_assert_cmpuint(r.used, ==, 4);
    g_assert_cmpuint(r.tail[0], ==, VIRTIO_IOMMU_S_OK);
    vit_ep_view(ep, iova, pa, size);
}

static uint64_t ep_pa(Ep *ep, uint64_t iova, uint64_t *avail)
{
    unsigned i;

    for (i = 0; i < ep->nr_map; i++) {
        EpMap *m = &ep->map[i];

        if (iova >= m->iova && iova - m->iova < m->size) {
            *avail = m->size - (iova - m->iova);
            return m->pa + (iova - m->iova);
        }
    }
    g_assert_not_reached();
}

static void ep_write(Ep *ep, uint64_t iova, const void *buf, size_t len)
{
    const uint8_t *p = buf;

    while (len) {
        uint64_t avail, pa = ep_pa(ep, iova, &avail);
        size_t l = MIN(len, avail);

        qtest_memwrite(ep->qts, pa, p, l);
        p += l;
        iova += l;
        len -= l;
    }
}

static void ep_read(Ep *ep, uint64_t iova, void *buf, size_t len)
{
    uint8_t *p = buf;

    while (len) {
        uint64_t avail, pa = ep_pa(ep, iova, &avail);
        size_t l = MIN(len, avail);

        qtest_memread(ep->qts, pa, p, l);
        p += l;
        iova += l;
        len -= l;
    }
}

static void ep_zero(Ep *ep, uint64_t iova, size_t len)
{
    g_autofree void *zero = g_malloc0(len);

    ep_write(ep, iova, zero, len);
}

void vit_ep_start(Ep *ep, uint16_t size, uint64_t desc, uint64_t avail,
                  uint64_t used)
{
    QVirtioPCIDevice *d = ep->dev;
    uint64_t common = d->common_cfg_offset;
    QVirtQueue vq = { .desc = desc, .avail = avail, .used = used };
    uint16_t notify_off;

    ep->size = size;
    ep->desc = desc;
    ep->avail = avail;
    ep->used = used;
    ep_zero(ep, desc, sizeof(struct vring_desc) * size);
    ep_zero(ep, avail, 6 + 2 * size);
    ep_zero(ep, used, 6 + sizeof(struct vring_used_elem) * size);

    d->vdev.bus->queue_select(&d->vdev, 0);
    qpci_io_writew(d->pdev, d->bar, common +
                   offsetof(struct virtio_pci_common_cfg, queue_size), size);
    d->vdev.bus->set_queue_address(&d->vdev, &vq);
    notify_off = qpci_io_readw(d->pdev, d->bar, common +
                               offsetof(struct virtio_pci_common_cfg,
                                        queue_notify_off));
    ep->notify = d->notify_cfg_offset + notify_off * d->notify_off_multiplier;
    qpci_io_writew(d->pdev, d->bar, common +
                   offsetof(struct virtio_pci_common_cfg, queue_enable), 1);
    qvirtio_set_driver_ok(&d->vdev);
}

void vit_ep_submit(Ep *ep, uint16_t head, uint64_t buf, uint32_t len)
{
    struct vring_desc desc = {
        .addr = cpu_to_le64(buf),
        .len = cpu_to_le32(len),
        .flags = cpu_to_le16(VRING_DESC_F_WRITE),
    };
    uint16_t v;

    g_assert_cmpuint(head, <, ep->size);
    ep_write(ep, ep->desc + head * sizeof(desc), &desc, sizeof(desc));
    v = cpu_to_le16(head);
    ep_write(ep, ep->avail + 4 + 2 * (ep->avail_idx % ep->size), &v, 2);
    ep->avail_idx++;
    v = cpu_to_le16(ep->avail_idx);
    ep_write(ep, ep->avail + 2, &v, 2);
    qpci_io_writew(ep->dev->pdev, ep->dev->bar, ep->notify, 0);
}

uint16_t vit_ep_used_idx(Ep *ep)
{
    uint16_t idx;

    ep_read(ep, ep->used + 2, &idx, 2);
    return le16_to_cpu(idx);
}

bool vit_ep_wait_used(Ep *ep, uint32_t *id, uint32_t *len, gint64 timeout_us)
{
    gint64 deadline = g_get_monotonic_time() + timeout_us;
    uint64_t elem;
    uint32_t val;

    while (vit_ep_used_idx(ep) == ep->used_idx) {
        if (g_get_monotonic_time() > deadline) {
            return false;
        }
        g_usleep(100);
    }
    elem = ep->used + 4 + sizeof(struct vring_used_elem) *
           (ep->used_idx % ep->size);
    ep->used_idx++;
    ep_read(ep, elem, &val, 4);
    *id = le32_to_cpu(val);
    ep_read(ep, elem + 4, &val, 4);
    *len = le32_to_cpu(val);
    return true;
}

uint64_t vit_count_not(QTestState *qts, uint64_t pa, size_t len, uint8_t fill)
{
    g_autofree uint8_t *buf = g_malloc(len);
    uint64_t n = 0;
    size_t i;

    qtest_memread(qts, pa, buf, len);
    for (i = 0; i < len; i++) {
        n += buf[i] != fill;
    }
    return n;
}

uint64_t vit_ep_start_std(Ep *ep, int64_t domain, QGuestAllocator *a,
                          uint32_t ring_flags)
{
    uint64_t ring = guest_alloc(a, PAGE);

    if (domain != IDENTITY) {
        vit_ep_map(ep, domain, RING_IOVA, ring, PAGE, ring_flags);
        vit_ep_start(ep, RING_SIZE, RING_IOVA, RING_IOVA + 0x100,
                     RING_IOVA + 0x200);
    } else {
        vit_ep_view(ep, ring, ring, PAGE);
        vit_ep_start(ep, RING_SIZE, ring, ring + 0x100, ring + 0x200);
    }
    return ring;
}

/* ------------------------------------------------------------------ */
/* Fault reports                                                       */

void vit_collect_faults(QViommu *v, Faults *fs, gint64 first_us,
                        gint64 quiet_us)
{
    gint64 timeout = first_us;
    uint8_t buf[64];
    uint32_t len;

    fs->n = 0;
    while (fs->n < MAX_FAULTS &&
           qviommu_next_event(v, buf, sizeof(buf), &len, timeout)) {
        struct virtio_iommu_fault *f = &fs->f[fs->n++];

        CHECK(len >= sizeof(*f));
        memcpy(f, buf, sizeof(*f));
        f->flags = le32_to_cpu(f->flags);
        f->endpoint = le32_to_cpu(f->endpoint);
        f->address = le64_to_cpu(f->address);
        timeout = quiet_us;
    }
}

void vit_print_faults(const Faults *fs)
{
    unsigned i;

    for (i = 0; i < fs->n; i++) {
        const struct virtio_iommu_fault *f = &fs->f[i];

        fprintf(stderr, "  fault %u: reason %u flags 0x%x endpoint 0x%x "
                "address 0x%" PRIx64 " reserved %02x%02x%02x/%02x%02x%02x%02x"
                "\n", i, f->reason, f->flags, f->endpoint, f->address,
                f->reserved[0], f->reserved[1], f->reserved[2],
                f->reserved1[0], f->reserved1[1], f->reserved1[2],
                f->reserved1[3]);
    }
}

bool vit_find_fault(const char *fn, int line, const Faults *fs, uint8_t reason,
                    uint32_t flags, uint32_t ep, uint64_t lo, uint64_t hi)
{
    bool found = false;
    unsigned i;

    for (i = 0; i < fs->n; i++) {
        const struct virtio_iommu_fault *f = &fs->f[i];

        if (f->reserved[0] || f->reserved[1] || f->reserved[2] ||
            f->reserved1[0] || f->reserved1[1] || f->reserved1[2] ||
            f->reserved1[3] || (f->flags & ~0x107u) ||
            f->endpoint != ep) {
            qviommu_report(fn, line, "malformed or foreign fault report %u", i);
            vit_print_faults(fs);
            return false;
        }
        found |= f->reason == reason && f->flags == flags &&
                 f->address >= lo && f->address <= hi;
    }
    if (!found) {
        qviommu_report(fn, line, "expected a fault report: reason %u flags "
                       "0x%x endpoint 0x%x address in [0x%" PRIx64 ", "
                       "0x%" PRIx64 "]; got %u report(s)", reason, flags, ep,
                       lo, hi, fs->n);
        vit_print_faults(fs);
    }
    return found;
}

/* ------------------------------------------------------------------ */
/* Migration                                                           */

char *vit_mig_status(QTestState *qts)
{
    QDict *rsp = qtest_qmp(qts, "{ 'execute': 'query-migrate' }");
    QDict *ret;
    char *status;

    g_assert_true(qdict_haskey(rsp, "return"));
    ret = qdict_get_qdict(rsp, "return");
    status = g_strdup(qdict_haskey(ret, "status") ?
                      qdict_get_str(ret, "status") : "none");
    qobject_unref(rsp);
    return status;
}
