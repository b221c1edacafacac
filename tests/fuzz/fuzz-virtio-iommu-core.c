/*
 * libFuzzer target for the virtio-iommu core
 *
 * The input is a program: a sequence of operations (requests, built from a
 * compact encoding or passed as raw bytes, feature and bypass changes,
 * resets, lookups) run against one core.  After each step the whole state
 * is checked: mappings sorted and disjoint, aligned and within range; every
 * endpoint in exactly one domain and every domain with an endpoint; counts
 * and limits respected; and a request that did not succeed changed nothing.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/log.h"
#include "qemu/bswap.h"
#include "standard-headers/linux/virtio_iommu.h"
#include "hw/virtio/virtio-iommu-core.h"

#define GRANULE         0x1000ULL
#define INPUT_END       ((1ULL << 48) - 1)
#define PROBE_SIZE      256
#define MAX_DOMAINS     6
#define MAX_MAPPINGS    48
#define DOMAIN_END      15

/* Endpoints that exist; IDs picked by index, plus a few that do not */
static const uint32_t endpoint_ids[] = { 0x08, 0x10, 0x18, 0x100, 0xffff };
static const uint32_t bogus_ids[] = { 0x20, 0x10008, UINT32_MAX };

static const VIOMMUResvRegion resv[] = {
    { 0x8000, 0x8fff, VIRTIO_IOMMU_RESV_MEM_T_RESERVED },
    { 0xfee00000, 0xfeefffff, VIRTIO_IOMMU_RESV_MEM_T_MSI },
};

void viommu_shim_log(int mask, const char *fmt, ...)
{
}

static bool fuzz_exists(void *opaque, uint32_t ep_id)
{
    size_t i;

    for (i = 0; i < ARRAY_SIZE(endpoint_ids); i++) {
        if (endpoint_ids[i] == ep_id) {
            return true;
        }
    }
    return false;
}

static size_t fuzz_resv(void *opaque, uint32_t ep_id,
                        const VIOMMUResvRegion **regions)
{
    /* Odd endpoints have no reserved regions: exercises ATTACH UNSUPP */
    *regions = resv;
    return (ep_id >> 3) & 1 ? ARRAY_SIZE(resv) : 0;
}

static const VIOMMUCoreOps fuzz_ops = {
    .endpoint_exists = fuzz_exists,
    .resv_regions = fuzz_resv,
};

/* Input reader */

typedef struct Input {
    const uint8_t *data;
    size_t len;
} Input;

static uint8_t take8(Input *in)
{
    uint8_t v = 0;

    if (in->len) {
        v = *in->data++;
        in->len--;
    }
    return v;
}

static uint64_t take64(Input *in)
{
    uint64_t v = 0;
    int i;

    for (i = 0; i < 8; i++) {
        v = v << 8 | take8(in);
    }
    return v;
}

/* Mostly small page numbers, sometimes anything */
static uint64_t take_addr(Input *in)
{
    uint8_t sel = take8(in);

    switch (sel >> 6) {
    case 0:
    case 1:
        return (uint64_t)(sel & 0x3f) * GRANULE;
    case 2:
        return (uint64_t)(sel & 0x3f) * GRANULE - 1;
    default:
        return take64(in);
    }
}

static uint32_t take_endpoint(Input *in)
{
    uint8_t sel = take8(in);

    if (sel < 0xf0) {
        return endpoint_ids[sel % ARRAY_SIZE(endpoint_ids)];
    }
    return bogus_ids[sel % ARRAY_SIZE(bogus_ids)];
}

static uint32_t take_domain(Input *in)
{
    uint8_t sel = take8(in);

    return sel < 0xf8 ? sel % 8 : (uint32_t)take64(in);
}

/* State snapshot and invariants */

typedef struct Walk {
    GString *out;
    uint64_t mappings;
    uint32_t endpoints;
    GHashTable *seen_eps;
    uint64_t last_end;
    bool first;
} Walk;

static bool check_mapping(const VIOMMUMapping *m, void *opaque)
{
    Walk *w = opaque;

    g_assert(m->virt_start <= m->virt_end);
    g_assert(!(m->virt_start & (GRANULE - 1)));
    g_assert(!((m->virt_end + 1) & (GRANULE - 1)));
    g_assert(!(m->phys_start & (GRANULE - 1)));
    g_assert(m->virt_end <= INPUT_END);
    g_assert(w->first || m->virt_start > w->last_end);
    g_assert(!(m->flags & ~VIRTIO_IOMMU_MAP_F_MASK));
    w->first = false;
    w->last_end = m->virt_end;
    w->mappings++;
    g_string_append_printf(w->out, " [%" PRIx64 "-%" PRIx64 ">%" PRIx64
                           "/%x]", m->virt_start, m->virt_end,
                           m->phys_start, m->flags);
    return false;
}

static gint cmp_u32(gconstpointer a, gconstpointer b)
{
    uint32_t x = GPOINTER_TO_UINT(a), y = GPOINTER_TO_UINT(b);

    return x < y ? -1 : x > y;
}

typedef struct DomainLine {
    uint32_t id;
    char *text;
} DomainLine;

static void collect_endpoint(uint32_t ep_id, void *opaque)
{
    GList **eps = opaque;

    *eps = g_list_insert_sorted(*eps, GUINT_TO_POINTER(ep_id), cmp_u32);
}

typedef struct Snapshot {
    VIOMMUCore *core;
    Walk *walk;
    GPtrArray *lines;
} Snapshot;

static void check_domain(const VIOMMUDomain *domain, void *opaque)
{
    Snapshot *snap = opaque;
    Walk *w = snap->walk;
    GList *eps = NULL, *l;
    GString *line = g_string_new(NULL);
    GString *saved = w->out;
    uint64_t nr_before;

    g_assert(viommu_domain_id(domain) <= DOMAIN_END);
    viommu_domain_foreach_endpoint(domain, collect_endpoint, &eps);
    g_assert(eps);
    g_string_append_printf(line, "d%u%s eps", viommu_domain_id(domain),
                           viommu_domain_is_bypass(domain) ? "b" : "");
    for (l = eps; l; l = l->next) {
        uint32_t ep_id = GPOINTER_TO_UINT(l->data);

        g_assert(fuzz_exists(NULL, ep_id));
        g_assert(!g_hash_table_contains(w->seen_eps, l->data));
        g_hash_table_add(w->seen_eps, l->data);
        g_assert(viommu_core_endpoint_domain(snap->core, ep_id) == domain);
        w->endpoints++;
        g_string_append_printf(line, " %x", ep_id);
    }
    g_list_free(eps);
    w->out = line;
    w->first = true;
    nr_before = w->mappings;
    viommu_domain_foreach_mapping(domain, check_mapping, w);
    w->out = saved;
    /* MAP is refused on bypass domains */
    g_assert(!viommu_domain_is_bypass(domain) || w->mappings == nr_before);
    g_ptr_array_add(snap->lines, g_string_free(line, false));
}

static gint cmp_str(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char * const *)a, *(char * const *)b);
}

/* Check every invariant; return a canonical text of the state */
static char *check_state(VIOMMUCore *core)
{
    Walk w = { .seen_eps = g_hash_table_new(NULL, NULL) };
    Snapshot snap = { core, &w, g_ptr_array_new_with_free_func(g_free) };
    VIOMMUCoreStats stats = viommu_core_stats(core);
    GString *out = g_string_new(NULL);
    guint i;

    w.out = out;
    viommu_core_foreach_domain(core, check_domain, &snap);
    g_assert_cmpuint(w.mappings, ==, stats.nr_mappings);
    g_assert_cmpuint(w.endpoints, ==, stats.nr_attached);
    g_assert_cmpuint(snap.lines->len, ==, stats.nr_domains);
    g_assert_cmpuint(stats.nr_domains, <=, MAX_DOMAINS);
    g_assert_cmpuint(stats.nr_mappings, <=, MAX_MAPPINGS);

    g_ptr_array_sort(snap.lines, cmp_str);
    g_string_append_printf(out, "bypass=%d\n", viommu_core_get_bypass(core));
    for (i = 0; i < snap.lines->len; i++) {
        g_string_append_printf(out, "%s\n", (char *)snap.lines->pdata[i]);
    }
    g_ptr_array_free(snap.lines, true);
    g_hash_table_destroy(w.seen_eps);
    return g_string_free(out, false);
}

/* Translation of a random address agrees with the mappings */
static void check_lookup(VIOMMUCore *core, Input *in)
{
    uint32_t ep_id = take_endpoint(in);
    uint64_t iova = take_addr(in);
    const VIOMMUDomain *domain = viommu_core_endpoint_domain(core, ep_id);
    const VIOMMUMapping *m;
    uint64_t mask;

    if (!domain) {
        g_assert(viommu_core_endpoint_mode(core, ep_id) !=
                 VIOMMU_EP_TRANSLATED);
        return;
    }
    m = viommu_core_lookup(domain, iova);
    if (!m) {
        return;
    }
    g_assert(iova >= m->virt_start && iova <= m->virt_end);
    mask = viommu_mapping_block_mask(m, iova);
    g_assert(!(mask & (mask + 1)));
    g_assert((iova & ~mask) >= m->virt_start);
    g_assert(((iova & ~mask) | mask) <= m->virt_end);
    g_assert(!((m->phys_start - m->virt_start) & mask));
}

/* Requests */

static VIOMMUReply send_encoded(VIOMMUCore *core, Input *in, uint8_t *props)
{
    uint8_t kind = take8(in);
    uint8_t buf[sizeof(struct virtio_iommu_req_probe)] = { 0 };
    size_t in_len = 0, out_len = 4;

    switch (kind % 5) {
    case 0: {
        struct virtio_iommu_req_attach *r = (void *)buf;

        r->head.type = VIRTIO_IOMMU_T_ATTACH;
        r->domain = cpu_to_le32(take_domain(in));
        r->endpoint = cpu_to_le32(take_endpoint(in));
        r->flags = cpu_to_le32(take8(in) % 3 == 0 ?
                               VIRTIO_IOMMU_ATTACH_F_BYPASS : 0);
        in_len = sizeof(*r) - 4;
        break;
    }
    case 1: {
        struct virtio_iommu_req_detach *r = (void *)buf;

        r->head.type = VIRTIO_IOMMU_T_DETACH;
        r->domain = cpu_to_le32(take_domain(in));
        r->endpoint = cpu_to_le32(take_endpoint(in));
        in_len = sizeof(*r) - 4;
        break;
    }
    case 2: {
        struct virtio_iommu_req_map *r = (void *)buf;
        uint64_t start = take_addr(in);

        r->head.type = VIRTIO_IOMMU_T_MAP;
        r->domain = cpu_to_le32(take_domain(in));
        r->virt_start = cpu_to_le64(start);
        r->virt_end = cpu_to_le64(start + take_addr(in) + GRANULE - 1);
        r->phys_start = cpu_to_le64(take_addr(in));
        r->flags = cpu_to_le32(take8(in) & 0xf);
        in_len = sizeof(*r) - 4;
        break;
    }
    case 3: {
        struct virtio_iommu_req_unmap *r = (void *)buf;
        uint64_t start = take_addr(in);

        r->head.type = VIRTIO_IOMMU_T_UNMAP;
        r->domain = cpu_to_le32(take_domain(in));
        r->virt_start = cpu_to_le64(start);
        r->virt_end = cpu_to_le64(start + take_addr(in) + GRANULE - 1);
        in_len = sizeof(*r) - 4;
        break;
    }
    default: {
        struct virtio_iommu_req_probe *r = (void *)buf;

        r->head.type = VIRTIO_IOMMU_T_PROBE;
        r->endpoint = cpu_to_le32(take_endpoint(in));
        in_len = sizeof(*r);
        out_len = PROBE_SIZE + 4 - (take8(in) == 0xff ? 1 : 0);
        break;
    }
    }
    /* Now and then cut the request short */
    if ((kind & 0xe0) == 0xe0) {
        in_len = take8(in) % (in_len + 1);
    }
    return viommu_core_handle(core, buf, in_len, out_len, props);
}

static VIOMMUReply send_raw(VIOMMUCore *core, Input *in, uint8_t *props)
{
    uint8_t buf[128];
    size_t in_len = take8(in) % sizeof(buf);
    size_t out_len = take8(in) * 4;
    size_t i;

    for (i = 0; i < in_len; i++) {
        buf[i] = take8(in);
    }
    if (out_len > PROBE_SIZE + 4 && buf[0] != VIRTIO_IOMMU_T_PROBE) {
        out_len = 4;
    }
    return viommu_core_handle(core, buf, in_len, MIN(out_len, PROBE_SIZE + 4),
                              props);
}

static void check_probe(const VIOMMUReply *reply, const uint8_t *props)
{
    size_t off;

    /* Only a successful PROBE writes properties, all probe_size bytes */
    if (!reply->props_len) {
        return;
    }
    g_assert(reply->has_status && reply->status == VIRTIO_IOMMU_S_OK);
    g_assert_cmpuint(reply->props_len, ==, PROBE_SIZE);
    for (off = 0; off + 4 <= PROBE_SIZE;) {
        struct virtio_iommu_probe_property head;

        memcpy(&head, props + off, sizeof(head));
        if (!head.type) {
            break;
        }
        g_assert_cmpuint(le16_to_cpu(head.type), ==,
                         VIRTIO_IOMMU_PROBE_T_RESV_MEM);
        off += 4 + le16_to_cpu(head.length);
        g_assert_cmpuint(off, <=, PROBE_SIZE);
    }
    for (; off < PROBE_SIZE; off++) {
        g_assert_cmpuint(props[off], ==, 0);
    }
}

/* The entry point libFuzzer calls; it declares it itself */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    VIOMMUCoreConfig config = {
        .granule = GRANULE,
        .input_start = 0,
        .input_end = INPUT_END,
        .domain_start = 0,
        .domain_end = DOMAIN_END,
        .probe_size = PROBE_SIZE,
        .limits = { .max_domains = MAX_DOMAINS,
                    .max_mappings = MAX_MAPPINGS },
    };
    VIOMMUCore *core = viommu_core_new(&config, &fuzz_ops, NULL);
    Input in = { data, size };
    uint8_t props[PROBE_SIZE];
    char *before = check_state(core);
    int steps = 0;

    viommu_core_set_features(core, ~0ULL);
    while (in.len && steps++ < 512) {
        uint8_t op = take8(&in);
        VIOMMUReply reply = { .has_status = false };
        char *after;

        switch (op % 8) {
        case 0:
        case 1:
        case 2:
            reply = send_encoded(core, &in, props);
            break;
        case 3:
            reply = send_raw(core, &in, props);
            break;
        case 4:
            viommu_core_set_features(core, take64(&in));
            break;
        case 5:
            viommu_core_set_bypass(core, take8(&in) & 1);
            break;
        case 6:
            check_lookup(core, &in);
            break;
        default:
            if (op == 0xff) {
                viommu_core_reset(core);
            } else {
                check_lookup(core, &in);
            }
            break;
        }
        check_probe(&reply, props);
        after = check_state(core);
        if (!reply.has_status || reply.status != VIRTIO_IOMMU_S_OK) {
            /* Only bypass may change outside a request */
            if (op % 8 <= 3) {
                g_assert_cmpstr(before, ==, after);
            }
        }
        g_free(before);
        before = after;
    }
    g_free(before);
    viommu_core_free(core);
    return 0;
}
