/*
 * virtio-iommu: device logic independent of QEMU's device model
 *
 * Everything a request can change lives here: domains, which endpoint is
 * attached to which domain, and each domain's mappings, kept in a GTree
 * ordered by IOVA whose comparison treats overlapping intervals as equal.
 * Every handler validates the whole request before it changes anything, so
 * a request either succeeds or leaves the state as it was.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/log.h"
#include "qemu/bswap.h"
#include "qemu/host-utils.h"
#include "standard-headers/linux/virtio_iommu.h"
#include "hw/virtio/virtio-iommu-core.h"

typedef struct VIOMMUEndpoint VIOMMUEndpoint;

struct VIOMMUDomain {
    uint32_t id;
    bool bypass;
    GTree *mappings;            /* VIOMMUMapping, keyed by itself */
    GList *endpoints;           /* VIOMMUEndpoint attached to the domain */
};

/* An endpoint has a record only while it is attached */
struct VIOMMUEndpoint {
    uint32_t id;
    VIOMMUDomain *domain;
};

struct VIOMMUCore {
    VIOMMUCoreConfig config;
    const VIOMMUCoreOps *ops;
    void *opaque;
    uint64_t features;
    bool bypass;
    GHashTable *domains;        /* domain ID -> VIOMMUDomain */
    GHashTable *endpoints;      /* endpoint ID -> VIOMMUEndpoint */
    uint64_t nr_mappings;
};

/* Device-readable part of each request: its structure minus the tail */
typedef union VIOMMURequest {
    struct virtio_iommu_req_head head;
    struct virtio_iommu_req_attach attach;
    struct virtio_iommu_req_detach detach;
    struct virtio_iommu_req_map map;
    struct virtio_iommu_req_unmap unmap;
    struct virtio_iommu_req_probe probe;
    uint8_t probe_bytes[sizeof(struct virtio_iommu_req_probe)];
} VIOMMURequest;

#define READABLE_SIZE(type) \
    (sizeof(type) - sizeof(struct virtio_iommu_req_tail))

#define guest_error(fmt, ...) \
    qemu_log_mask(LOG_GUEST_ERROR, "virtio-iommu: " fmt "\n", ## __VA_ARGS__)

static bool all_zero(const uint8_t *bytes, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++) {
        if (bytes[i]) {
            return false;
        }
    }
    return true;
}

/* The 4 reserved bytes of ATTACH and UNMAP, for log lines */
static uint32_t reserved_word(const uint8_t *bytes)
{
    uint32_t word;

    memcpy(&word, bytes, sizeof(word));
    return le32_to_cpu(word);
}

static bool has_feature(const VIOMMUCore *core, unsigned int bit)
{
    return core->features & (1ULL << bit);
}

static bool ranges_overlap64(uint64_t a_start, uint64_t a_end,
                             uint64_t b_start, uint64_t b_end)
{
    return a_start <= b_end && b_start <= a_end;
}

/* Overlapping intervals compare equal: a lookup finds any overlap. */
static gint interval_cmp(gconstpointer a, gconstpointer b, gpointer unused)
{
    const VIOMMUMapping *x = a;
    const VIOMMUMapping *y = b;

    if (x->virt_end < y->virt_start) {
        return -1;
    }
    if (x->virt_start > y->virt_end) {
        return 1;
    }
    return 0;
}

/* A GTree of VIOMMUMapping, each its own key, freed with the tree */
static GTree *mappings_new(void)
{
    return g_tree_new_full(interval_cmp, NULL, g_free, NULL);
}

static VIOMMUMapping *mappings_find(GTree *mappings, uint64_t start,
                                    uint64_t end)
{
    VIOMMUMapping key = { .virt_start = start, .virt_end = end };

    return g_tree_lookup(mappings, &key);
}

static VIOMMUMapping *find_overlap(const VIOMMUDomain *domain,
                                   uint64_t start, uint64_t end)
{
    return mappings_find(domain->mappings, start, end);
}

/* Domains and endpoints */

static VIOMMUDomain *domain_lookup(const VIOMMUCore *core, uint32_t id)
{
    return g_hash_table_lookup(core->domains, GUINT_TO_POINTER(id));
}

static VIOMMUEndpoint *endpoint_lookup(const VIOMMUCore *core, uint32_t id)
{
    return g_hash_table_lookup(core->endpoints, GUINT_TO_POINTER(id));
}

static VIOMMUDomain *domain_create(VIOMMUCore *core, uint32_t id, bool bypass)
{
    VIOMMUDomain *domain = g_new0(VIOMMUDomain, 1);

    domain->id = id;
    domain->bypass = bypass;
    domain->mappings = mappings_new();
    g_hash_table_insert(core->domains, GUINT_TO_POINTER(id), domain);
    return domain;
}

/* Destroying a domain needs no notification: no endpoint can see it. */
static void domain_destroy(VIOMMUCore *core, VIOMMUDomain *domain)
{
    assert(!domain->endpoints);
    core->nr_mappings -= g_tree_nnodes(domain->mappings);
    g_tree_destroy(domain->mappings);
    g_hash_table_remove(core->domains, GUINT_TO_POINTER(domain->id));
    g_free(domain);
}

static bool endpoint_exists(const VIOMMUCore *core, uint32_t ep_id)
{
    return ep_id <= VIOMMU_MAX_ENDPOINT_ID &&
           core->ops->endpoint_exists(core->opaque, ep_id);
}

static size_t endpoint_resv(const VIOMMUCore *core, uint32_t ep_id,
                            const VIOMMUResvRegion **regions)
{
    *regions = NULL;
    if (!core->ops->resv_regions) {
        return 0;
    }
    return core->ops->resv_regions(core->opaque, ep_id, regions);
}

static bool overlaps_resv(const VIOMMUCore *core, uint32_t ep_id,
                          uint64_t start, uint64_t end)
{
    const VIOMMUResvRegion *regions;
    size_t nr = endpoint_resv(core, ep_id, &regions);
    size_t i;

    for (i = 0; i < nr; i++) {
        if (ranges_overlap64(start, end, regions[i].start, regions[i].end)) {
            return true;
        }
    }
    return false;
}

/* Would @mappings cover a reserved region of ep? */
static bool mappings_conflict_with_endpoint(const VIOMMUCore *core,
                                            GTree *mappings, uint32_t ep_id)
{
    const VIOMMUResvRegion *regions;
    size_t nr = endpoint_resv(core, ep_id, &regions);
    size_t i;

    for (i = 0; i < nr; i++) {
        if (mappings_find(mappings, regions[i].start, regions[i].end)) {
            return true;
        }
    }
    return false;
}

/*
 * Take the endpoint out of its domain and free its record; the domain goes
 * when its last endpoint leaves.
 */
static void endpoint_detach(VIOMMUCore *core, VIOMMUEndpoint *ep)
{
    VIOMMUDomain *domain = ep->domain;

    if (core->ops->endpoint_detaching) {
        core->ops->endpoint_detaching(core->opaque, ep->id, domain);
    }
    domain->endpoints = g_list_remove(domain->endpoints, ep);
    g_hash_table_remove(core->endpoints, GUINT_TO_POINTER(ep->id));
    g_free(ep);
    if (!domain->endpoints) {
        domain_destroy(core, domain);
    }
}

static void endpoint_attach(VIOMMUCore *core, uint32_t ep_id,
                            VIOMMUDomain *domain)
{
    VIOMMUEndpoint *ep = g_new0(VIOMMUEndpoint, 1);

    ep->id = ep_id;
    ep->domain = domain;
    domain->endpoints = g_list_prepend(domain->endpoints, ep);
    g_hash_table_insert(core->endpoints, GUINT_TO_POINTER(ep_id), ep);
    if (core->ops->endpoint_attached) {
        core->ops->endpoint_attached(core->opaque, ep_id, domain);
    }
}

static bool domain_in_range(const VIOMMUCore *core, uint32_t id)
{
    return id >= core->config.domain_start && id <= core->config.domain_end;
}

static bool input_in_range(const VIOMMUCore *core, uint64_t start,
                           uint64_t end)
{
    return start >= core->config.input_start && end <= core->config.input_end;
}

/* Request handlers: each returns a VIRTIO_IOMMU_S_* status */

static uint8_t handle_attach(VIOMMUCore *core, const VIOMMURequest *req)
{
    uint32_t domain_id = le32_to_cpu(req->attach.domain);
    uint32_t ep_id = le32_to_cpu(req->attach.endpoint);
    uint32_t flags = le32_to_cpu(req->attach.flags);
    bool bypass = flags & VIRTIO_IOMMU_ATTACH_F_BYPASS;
    VIOMMUEndpoint *ep;
    VIOMMUDomain *domain;
    bool old_domain_goes, domain_survives;
    uint32_t nr_domains_after;

    if (!all_zero(req->attach.reserved, sizeof(req->attach.reserved))) {
        guest_error("ATTACH: reserved is 0x%08" PRIx32 ", not zero",
                    reserved_word(req->attach.reserved));
        return VIRTIO_IOMMU_S_INVAL;
    }
    if (flags & ~VIRTIO_IOMMU_ATTACH_F_BYPASS) {
        guest_error("ATTACH: unknown flags 0x%" PRIx32, flags);
        return VIRTIO_IOMMU_S_INVAL;
    }
    if (bypass && !has_feature(core, VIRTIO_IOMMU_F_BYPASS_CONFIG)) {
        guest_error("ATTACH: flags 0x%" PRIx32 " has BYPASS without feature "
                    "BYPASS_CONFIG", flags);
        return VIRTIO_IOMMU_S_INVAL;
    }
    if (!endpoint_exists(core, ep_id)) {
        guest_error("ATTACH: no endpoint 0x%" PRIx32, ep_id);
        return VIRTIO_IOMMU_S_NOENT;
    }
    if (!domain_in_range(core, domain_id)) {
        guest_error("ATTACH: domain %" PRIu32 " outside domain_range",
                    domain_id);
        return VIRTIO_IOMMU_S_RANGE;
    }

    /*
     * Judge the request as if the implicit DETACH had already happened:
     * an endpoint alone in its domain takes the domain with it.
     */
    ep = endpoint_lookup(core, ep_id);
    domain = domain_lookup(core, domain_id);
    old_domain_goes = ep && !ep->domain->endpoints->next;
    domain_survives = domain && !(old_domain_goes && ep->domain == domain);

    if (domain_survives && domain->bypass != bypass) {
        guest_error("ATTACH: domain %" PRIu32 " is %sa bypass domain",
                    domain_id, domain->bypass ? "" : "not ");
        return VIRTIO_IOMMU_S_INVAL;
    }
    if (domain_survives &&
        mappings_conflict_with_endpoint(core, domain->mappings, ep_id)) {
        guest_error("ATTACH: domain %" PRIu32 " maps reserved regions of "
                    "endpoint 0x%" PRIx32, domain_id, ep_id);
        return VIRTIO_IOMMU_S_UNSUPP;
    }
    nr_domains_after = g_hash_table_size(core->domains) -
                       (old_domain_goes ? 1 : 0) + (domain_survives ? 0 : 1);
    if (nr_domains_after > core->config.limits.max_domains) {
        guest_error("ATTACH: domain %" PRIu32 " would exceed max-domains %"
                    PRIu32, domain_id, core->config.limits.max_domains);
        return VIRTIO_IOMMU_S_NOMEM;
    }

    if (ep) {
        endpoint_detach(core, ep);
    }
    if (!domain_survives) {
        domain = domain_create(core, domain_id, bypass);
    }
    endpoint_attach(core, ep_id, domain);
    return VIRTIO_IOMMU_S_OK;
}

static uint8_t handle_detach(VIOMMUCore *core, const VIOMMURequest *req)
{
    uint32_t domain_id = le32_to_cpu(req->detach.domain);
    uint32_t ep_id = le32_to_cpu(req->detach.endpoint);
    VIOMMUEndpoint *ep;

    if (!endpoint_exists(core, ep_id)) {
        guest_error("DETACH: no endpoint 0x%" PRIx32, ep_id);
        return VIRTIO_IOMMU_S_NOENT;
    }
    if (!domain_in_range(core, domain_id)) {
        guest_error("DETACH: domain %" PRIu32 " outside domain_range",
                    domain_id);
        return VIRTIO_IOMMU_S_RANGE;
    }
    ep = endpoint_lookup(core, ep_id);
    if (!ep || ep->domain->id != domain_id) {
        guest_error("DETACH: endpoint 0x%" PRIx32 " is not attached to "
                    "domain %" PRIu32, ep_id, domain_id);
        return VIRTIO_IOMMU_S_INVAL;
    }
    endpoint_detach(core, ep);
    return VIRTIO_IOMMU_S_OK;
}

/* Find the domain a MAP or UNMAP names, or the status that refuses it */
static VIOMMUDomain *mapping_domain(VIOMMUCore *core, const char *req_name,
                                    uint32_t domain_id, uint8_t *status)
{
    VIOMMUDomain *domain;

    if (!domain_in_range(core, domain_id)) {
        guest_error("%s: domain %" PRIu32 " outside domain_range",
                    req_name, domain_id);
        *status = VIRTIO_IOMMU_S_RANGE;
        return NULL;
    }
    domain = domain_lookup(core, domain_id);
    if (!domain) {
        guest_error("%s: no domain %" PRIu32, req_name, domain_id);
        *status = VIRTIO_IOMMU_S_NOENT;
        return NULL;
    }
    if (domain->bypass) {
        guest_error("%s: domain %" PRIu32 " is a bypass domain",
                    req_name, domain_id);
        *status = VIRTIO_IOMMU_S_INVAL;
        return NULL;
    }
    return domain;
}

static bool map_overlaps_resv(const VIOMMUCore *core,
                              const VIOMMUDomain *domain,
                              uint64_t start, uint64_t end)
{
    GList *l;

    for (l = domain->endpoints; l; l = l->next) {
        const VIOMMUEndpoint *ep = l->data;

        if (overlaps_resv(core, ep->id, start, end)) {
            return true;
        }
    }
    return false;
}

/*
 * What makes a mapping invalid whatever its domain holds, as a status and
 * why; VIRTIO_IOMMU_S_OK when nothing does.  MAP and loading saved state
 * share it.
 */
static uint8_t mapping_invalid(const VIOMMUCore *core,
                               const VIOMMUMapping *m, const char **why)
{
    uint64_t align_mask = core->config.granule - 1;

    if (m->virt_end < m->virt_start) {
        *why = "virt_end below virt_start";
        return VIRTIO_IOMMU_S_INVAL;
    }
    if ((m->virt_start & align_mask) || (m->phys_start & align_mask) ||
        ((m->virt_end + 1) & align_mask)) {
        *why = "not aligned on the granule";
        return VIRTIO_IOMMU_S_RANGE;
    }
    if (!input_in_range(core, m->virt_start, m->virt_end)) {
        *why = "outside input_range";
        return VIRTIO_IOMMU_S_RANGE;
    }
    if (m->phys_start + (m->virt_end - m->virt_start) < m->phys_start) {
        *why = "physical end past 2^64";
        return VIRTIO_IOMMU_S_RANGE;
    }
    return VIRTIO_IOMMU_S_OK;
}

/* Flags of a mapping: VIRTIO_IOMMU_MAP_F_*, MMIO only with its feature */
static bool mapping_flags_valid(const VIOMMUCore *core, uint32_t flags)
{
    return !(flags & ~VIRTIO_IOMMU_MAP_F_MASK) &&
           (!(flags & VIRTIO_IOMMU_MAP_F_MMIO) ||
            has_feature(core, VIRTIO_IOMMU_F_MMIO));
}

/* A new mapping counts from now on, and whoever watches hears of it */
static void mapping_added(VIOMMUCore *core, const VIOMMUDomain *domain,
                          const VIOMMUMapping *mapping)
{
    core->nr_mappings++;
    if (core->ops->mapping_added) {
        core->ops->mapping_added(core->opaque, domain, mapping);
    }
}

static uint8_t handle_map(VIOMMUCore *core, const VIOMMURequest *req)
{
    uint32_t domain_id = le32_to_cpu(req->map.domain);
    VIOMMUMapping m = {
        .virt_start = le64_to_cpu(req->map.virt_start),
        .virt_end = le64_to_cpu(req->map.virt_end),
        .phys_start = le64_to_cpu(req->map.phys_start),
        .flags = le32_to_cpu(req->map.flags),
    };
    VIOMMUDomain *domain;
    VIOMMUMapping *mapping;
    const char *why;
    uint8_t status;

    if (!mapping_flags_valid(core, m.flags)) {
        guest_error("MAP: flags 0x%" PRIx32 " unknown, or MMIO without "
                    "feature MMIO", m.flags);
        return VIRTIO_IOMMU_S_INVAL;
    }
    domain = mapping_domain(core, "MAP", domain_id, &status);
    if (!domain) {
        return status;
    }
    status = mapping_invalid(core, &m, &why);
    if (status != VIRTIO_IOMMU_S_OK) {
        guest_error("MAP: [0x%" PRIx64 ", 0x%" PRIx64 "] -> 0x%" PRIx64
                    ": %s", m.virt_start, m.virt_end, m.phys_start, why);
        return status;
    }
    if (find_overlap(domain, m.virt_start, m.virt_end)) {
        guest_error("MAP: [0x%" PRIx64 ", 0x%" PRIx64 "] overlaps a mapping "
                    "of domain %" PRIu32, m.virt_start, m.virt_end,
                    domain_id);
        return VIRTIO_IOMMU_S_INVAL;
    }
    if (map_overlaps_resv(core, domain, m.virt_start, m.virt_end)) {
        guest_error("MAP: [0x%" PRIx64 ", 0x%" PRIx64 "] overlaps a reserved "
                    "region", m.virt_start, m.virt_end);
        return VIRTIO_IOMMU_S_INVAL;
    }
    if (core->nr_mappings >= core->config.limits.max_mappings) {
        guest_error("MAP: max-mappings %" PRIu64 " reached",
                    core->config.limits.max_mappings);
        return VIRTIO_IOMMU_S_NOMEM;
    }

    mapping = g_memdup2(&m, sizeof(m));
    g_tree_insert(domain->mappings, mapping, mapping);
    mapping_added(core, domain, mapping);
    return VIRTIO_IOMMU_S_OK;
}

static uint8_t handle_unmap(VIOMMUCore *core, const VIOMMURequest *req)
{
    uint32_t domain_id = le32_to_cpu(req->unmap.domain);
    uint64_t start = le64_to_cpu(req->unmap.virt_start);
    uint64_t end = le64_to_cpu(req->unmap.virt_end);
    VIOMMUDomain *domain;
    VIOMMUMapping *mapping;
    uint8_t status;

    if (!all_zero(req->unmap.reserved, sizeof(req->unmap.reserved))) {
        guest_error("UNMAP: reserved is 0x%08" PRIx32 ", not zero",
                    reserved_word(req->unmap.reserved));
        return VIRTIO_IOMMU_S_INVAL;
    }
    domain = mapping_domain(core, "UNMAP", domain_id, &status);
    if (!domain) {
        return status;
    }
    if (end < start) {
        guest_error("UNMAP: virt_end 0x%" PRIx64 " below virt_start 0x%"
                    PRIx64, end, start);
        return VIRTIO_IOMMU_S_INVAL;
    }
    if (!input_in_range(core, start, end)) {
        guest_error("UNMAP: [0x%" PRIx64 ", 0x%" PRIx64 "] outside "
                    "input_range", start, end);
        return VIRTIO_IOMMU_S_RANGE;
    }

    /* Only the mappings at either end can be cut; refuse before removing */
    mapping = find_overlap(domain, start, start);
    if (mapping && mapping->virt_start < start) {
        guest_error("UNMAP: 0x%" PRIx64 " would split a mapping", start);
        return VIRTIO_IOMMU_S_RANGE;
    }
    mapping = find_overlap(domain, end, end);
    if (mapping && mapping->virt_end > end) {
        guest_error("UNMAP: 0x%" PRIx64 " would split a mapping", end);
        return VIRTIO_IOMMU_S_RANGE;
    }

    mapping = find_overlap(domain, start, end);
    if (!mapping) {
        return VIRTIO_IOMMU_S_OK;
    }
    if (core->ops->domain_unmapping) {
        core->ops->domain_unmapping(core->opaque, domain);
    }
    do {
        g_tree_steal(domain->mappings, mapping);
        core->nr_mappings--;
        if (core->ops->mapping_removed) {
            core->ops->mapping_removed(core->opaque, domain, mapping);
        }
        g_free(mapping);
    } while ((mapping = find_overlap(domain, start, end)));
    return VIRTIO_IOMMU_S_OK;
}

static size_t write_resv_mem(uint8_t *props, const VIOMMUResvRegion *region)
{
    struct virtio_iommu_probe_resv_mem prop = {
        .head.type = cpu_to_le16(VIRTIO_IOMMU_PROBE_T_RESV_MEM),
        .head.length = cpu_to_le16(sizeof(prop) - sizeof(prop.head)),
        .subtype = region->subtype,
        .start = cpu_to_le64(region->start),
        .end = cpu_to_le64(region->end),
    };

    memcpy(props, &prop, sizeof(prop));
    return sizeof(prop);
}

static uint8_t handle_probe(VIOMMUCore *core, const VIOMMURequest *req,
                            size_t out_len, uint8_t *props,
                            size_t *props_len)
{
    uint32_t ep_id = le32_to_cpu(req->probe.endpoint);
    size_t probe_size = core->config.probe_size;
    const VIOMMUResvRegion *regions;
    size_t nr, i, len = 0;

    if (out_len - sizeof(struct virtio_iommu_req_tail) < probe_size) {
        guest_error("PROBE: properties buffer %zu bytes, probe_size is %zu",
                    out_len - sizeof(struct virtio_iommu_req_tail),
                    probe_size);
        return VIRTIO_IOMMU_S_INVAL;
    }
    if (!endpoint_exists(core, ep_id)) {
        guest_error("PROBE: no endpoint 0x%" PRIx32, ep_id);
        return VIRTIO_IOMMU_S_NOENT;
    }
    nr = endpoint_resv(core, ep_id, &regions);
    if (nr * sizeof(struct virtio_iommu_probe_resv_mem) > probe_size) {
        /* probe_size is sized for every region at realize: a device bug */
        qemu_log_mask(LOG_UNIMP, "virtio-iommu: %zu reserved regions exceed "
                      "probe_size %zu\n", nr, probe_size);
        return VIRTIO_IOMMU_S_DEVERR;
    }
    for (i = 0; i < nr; i++) {
        len += write_resv_mem(props + len, &regions[i]);
    }
    memset(props + len, 0, probe_size - len);
    *props_len = probe_size;
    return VIRTIO_IOMMU_S_OK;
}

typedef struct VIOMMUReqType {
    const char *name;
    size_t readable;            /* bytes of head and body */
    int feature;                /* VIRTIO_IOMMU_F_* it needs, or -1 */
} VIOMMUReqType;

static const VIOMMUReqType req_types[] = {
    [VIRTIO_IOMMU_T_ATTACH] = {
        "ATTACH", READABLE_SIZE(struct virtio_iommu_req_attach), -1
    },
    [VIRTIO_IOMMU_T_DETACH] = {
        "DETACH", READABLE_SIZE(struct virtio_iommu_req_detach), -1
    },
    [VIRTIO_IOMMU_T_MAP] = {
        "MAP", READABLE_SIZE(struct virtio_iommu_req_map),
        VIRTIO_IOMMU_F_MAP_UNMAP
    },
    [VIRTIO_IOMMU_T_UNMAP] = {
        "UNMAP", READABLE_SIZE(struct virtio_iommu_req_unmap),
        VIRTIO_IOMMU_F_MAP_UNMAP
    },
    [VIRTIO_IOMMU_T_PROBE] = {
        "PROBE", sizeof(struct virtio_iommu_req_probe), VIRTIO_IOMMU_F_PROBE
    },
};

VIOMMUReply viommu_core_handle(VIOMMUCore *core, const void *in,
                               size_t in_len, size_t out_len, uint8_t *props)
{
    VIOMMUReply reply = { .has_status = false };
    const VIOMMUReqType *type;
    VIOMMURequest req;
    uint8_t type_id;

    if (out_len < sizeof(struct virtio_iommu_req_tail) ||
        out_len > VIOMMU_MAX_WRITABLE) {
        guest_error("request with a %zu-byte writable part: no room for "
                    "a tail", out_len);
        return reply;
    }
    if (in_len < sizeof(struct virtio_iommu_req_head)) {
        guest_error("request with a %zu-byte readable part: no head",
                    in_len);
        return reply;
    }
    type_id = ((const uint8_t *)in)[0];
    type = type_id < ARRAY_SIZE(req_types) ? &req_types[type_id] : NULL;
    if (!type || !type->name) {
        guest_error("unknown request type %u", type_id);
        return reply;
    }
    reply.type = type_id;
    if (type->feature >= 0 && !has_feature(core, type->feature)) {
        guest_error("%s: feature bit %d not negotiated", type->name,
                    type->feature);
        return reply;
    }

    reply.has_status = true;
    if (in_len < type->readable) {
        guest_error("%s: readable part is %zu bytes, needs %zu",
                    type->name, in_len, type->readable);
        reply.status = VIRTIO_IOMMU_S_IOERR;
        return reply;
    }
    memcpy(&req, in, type->readable);

    switch (type_id) {
    case VIRTIO_IOMMU_T_ATTACH:
        reply.status = handle_attach(core, &req);
        break;
    case VIRTIO_IOMMU_T_DETACH:
        reply.status = handle_detach(core, &req);
        break;
    case VIRTIO_IOMMU_T_MAP:
        reply.status = handle_map(core, &req);
        break;
    case VIRTIO_IOMMU_T_UNMAP:
        reply.status = handle_unmap(core, &req);
        break;
    case VIRTIO_IOMMU_T_PROBE:
        reply.status = handle_probe(core, &req, out_len, props,
                                    &reply.props_len);
        break;
    }
    return reply;
}

/* Lifecycle */

VIOMMUCore *viommu_core_new(const VIOMMUCoreConfig *config,
                            const VIOMMUCoreOps *ops, void *opaque)
{
    VIOMMUCore *core = g_new0(VIOMMUCore, 1);

    assert(config->granule && !(config->granule & (config->granule - 1)));
    core->config = *config;
    core->ops = ops;
    core->opaque = opaque;
    core->domains = g_hash_table_new(g_direct_hash, g_direct_equal);
    core->endpoints = g_hash_table_new(g_direct_hash, g_direct_equal);
    return core;
}

void viommu_core_forget_endpoint(VIOMMUCore *core, uint32_t ep_id)
{
    VIOMMUEndpoint *ep = endpoint_lookup(core, ep_id);

    if (ep) {
        endpoint_detach(core, ep);
    }
}

void viommu_core_reset(VIOMMUCore *core)
{
    GHashTableIter iter;
    gpointer key, value;
    GList *ids = NULL, *l;

    g_hash_table_iter_init(&iter, core->endpoints);
    while (g_hash_table_iter_next(&iter, &key, &value)) {
        ids = g_list_prepend(ids, key);
    }
    for (l = ids; l; l = l->next) {
        uint32_t ep_id = GPOINTER_TO_UINT(l->data);

        endpoint_detach(core, endpoint_lookup(core, ep_id));
    }
    g_list_free(ids);
    assert(!g_hash_table_size(core->domains) && !core->nr_mappings);
}

void viommu_core_free(VIOMMUCore *core)
{
    if (!core) {
        return;
    }
    viommu_core_reset(core);
    g_hash_table_destroy(core->domains);
    g_hash_table_destroy(core->endpoints);
    g_free(core);
}

void viommu_core_set_features(VIOMMUCore *core, uint64_t features)
{
    core->features = features;
}

void viommu_core_set_granule(VIOMMUCore *core, uint64_t granule)
{
    assert(granule && !(granule & (granule - 1)));
    core->config.granule = granule;
}

/*
 * Only unattached endpoints follow the config field.  The core keeps no
 * record of them, so the caller re-evaluates every endpoint it knows.
 */
void viommu_core_set_bypass(VIOMMUCore *core, bool bypass)
{
    core->bypass = bypass;
}

bool viommu_core_get_bypass(const VIOMMUCore *core)
{
    return core->bypass;
}

/* State the translation policy reads */

const VIOMMUCoreConfig *viommu_core_config(const VIOMMUCore *core)
{
    return &core->config;
}

VIOMMUEndpointMode viommu_core_domain_mode(const VIOMMUCore *core,
                                           const VIOMMUDomain *domain)
{
    if (!domain) {
        return core->bypass ? VIOMMU_EP_BYPASS : VIOMMU_EP_BLOCKED;
    }
    return domain->bypass ? VIOMMU_EP_BYPASS : VIOMMU_EP_TRANSLATED;
}

VIOMMUEndpointMode viommu_core_endpoint_mode(const VIOMMUCore *core,
                                             uint32_t ep_id)
{
    return viommu_core_domain_mode(core,
                                   viommu_core_endpoint_domain(core, ep_id));
}

const VIOMMUDomain *viommu_core_endpoint_domain(const VIOMMUCore *core,
                                                uint32_t ep_id)
{
    const VIOMMUEndpoint *ep = endpoint_lookup(core, ep_id);

    return ep ? ep->domain : NULL;
}

const VIOMMUMapping *viommu_core_lookup(const VIOMMUDomain *domain,
                                        uint64_t iova)
{
    return find_overlap(domain, iova, iova);
}

uint32_t viommu_domain_id(const VIOMMUDomain *domain)
{
    return domain->id;
}

bool viommu_domain_is_bypass(const VIOMMUDomain *domain)
{
    return domain->bypass;
}

uint32_t viommu_domain_nr_mappings(const VIOMMUDomain *domain)
{
    return g_tree_nnodes(domain->mappings);
}

typedef struct ForeachMapping {
    VIOMMUMappingFn fn;
    void *opaque;
} ForeachMapping;

static gboolean foreach_mapping_cb(gpointer key, gpointer value,
                                   gpointer opaque)
{
    ForeachMapping *f = opaque;

    return f->fn(value, f->opaque);
}

void viommu_domain_foreach_mapping(const VIOMMUDomain *domain,
                                   VIOMMUMappingFn fn, void *opaque)
{
    ForeachMapping f = { .fn = fn, .opaque = opaque };

    g_tree_foreach(domain->mappings, foreach_mapping_cb, &f);
}

void viommu_core_foreach_domain(const VIOMMUCore *core, VIOMMUDomainFn fn,
                                void *opaque)
{
    GHashTableIter iter;
    gpointer value;

    g_hash_table_iter_init(&iter, core->domains);
    while (g_hash_table_iter_next(&iter, NULL, &value)) {
        fn(value, opaque);
    }
}

void viommu_domain_foreach_endpoint(const VIOMMUDomain *domain,
                                    VIOMMUEndpointFn fn, void *opaque)
{
    GList *l;

    for (l = domain->endpoints; l; l = l->next) {
        const VIOMMUEndpoint *ep = l->data;

        fn(ep->id, opaque);
    }
}

VIOMMUCoreStats viommu_core_stats(const VIOMMUCore *core)
{
    return (VIOMMUCoreStats) {
        .nr_domains = g_hash_table_size(core->domains),
        .nr_mappings = core->nr_mappings,
        .nr_attached = g_hash_table_size(core->endpoints),
    };
}

/*
 * Loading saved state.  A domain's mappings arrive in a migration stream
 * before its endpoints, a million of them or more: they go into a tree of
 * their own as they are read, and the domain takes the whole tree once
 * it exists again, checked as MAP checks a mapping but without a request
 * and a lookup per mapping.
 */

struct VIOMMUMappingSet {
    GTree *mappings;
    const VIOMMUMapping *last;  /* the highest so far */
};

VIOMMUMappingSet *viommu_mapping_set_new(void)
{
    VIOMMUMappingSet *set = g_new0(VIOMMUMappingSet, 1);

    set->mappings = mappings_new();
    return set;
}

void viommu_mapping_set_free(VIOMMUMappingSet *set)
{
    if (set) {
        g_tree_destroy(set->mappings);
        g_free(set);
    }
}

uint64_t viommu_mapping_set_size(const VIOMMUMappingSet *set)
{
    return g_tree_nnodes(set->mappings);
}

/*
 * Each mapping must lie above the one before, as a domain's tree hands
 * them out: that alone keeps them from overlapping, with no lookup.
 */
bool viommu_mapping_set_add(VIOMMUMappingSet *set,
                            const VIOMMUMapping *mapping, Error **errp)
{
    VIOMMUMapping *copy;

    if (mapping->virt_end < mapping->virt_start ||
        (set->last && mapping->virt_start <= set->last->virt_end)) {
        error_setg(errp, "mapping [0x%" PRIx64 ", 0x%" PRIx64 "] is not "
                   "above the one before it, or ends below its start",
                   mapping->virt_start, mapping->virt_end);
        return false;
    }
    copy = g_memdup2(mapping, sizeof(*mapping));
    g_tree_insert(set->mappings, copy, copy);
    set->last = copy;
    return true;
}

typedef struct LoadCheck {
    const VIOMMUCore *core;
    const VIOMMUMapping *bad;
    const char *why;
} LoadCheck;

static gboolean load_check_mapping(gpointer key, gpointer value,
                                   gpointer opaque)
{
    LoadCheck *check = opaque;
    const VIOMMUMapping *mapping = value;

    if (!mapping_flags_valid(check->core, mapping->flags)) {
        check->why = "flags unknown, or MMIO without feature MMIO";
    } else {
        mapping_invalid(check->core, mapping, &check->why);
    }
    check->bad = check->why ? mapping : NULL;
    return check->bad != NULL;
}

typedef struct LoadAdded {
    VIOMMUCore *core;
    const VIOMMUDomain *domain;
} LoadAdded;

static gboolean load_added_mapping(gpointer key, gpointer value,
                                   gpointer opaque)
{
    LoadAdded *added = opaque;

    mapping_added(added->core, added->domain, value);
    return false;
}

/* Is the set fit for @domain, as MAP would judge each of its mappings? */
static bool load_check(const VIOMMUCore *core, const VIOMMUDomain *domain,
                       const VIOMMUMappingSet *set, Error **errp)
{
    LoadCheck check = { .core = core };
    uint64_t n = viommu_mapping_set_size(set);
    GList *l;

    if (domain->bypass) {
        error_setg(errp, "a bypass domain has no mappings");
        return false;
    }
    if (g_tree_nnodes(domain->mappings)) {
        error_setg(errp, "the domain has mappings already");
        return false;
    }
    if (n > core->config.limits.max_mappings - core->nr_mappings) {
        error_setg(errp, "%" PRIu64 " mappings exceed max-mappings %" PRIu64,
                   core->nr_mappings + n, core->config.limits.max_mappings);
        return false;
    }
    g_tree_foreach(set->mappings, load_check_mapping, &check);
    if (check.bad) {
        error_setg(errp, "mapping [0x%" PRIx64 ", 0x%" PRIx64 "] -> 0x%"
                   PRIx64 " flags 0x%" PRIx32 ": %s", check.bad->virt_start,
                   check.bad->virt_end, check.bad->phys_start,
                   check.bad->flags, check.why);
        return false;
    }
    /* A lookup per reserved region, not one per mapping */
    for (l = domain->endpoints; l; l = l->next) {
        const VIOMMUEndpoint *ep = l->data;

        if (mappings_conflict_with_endpoint(core, set->mappings, ep->id)) {
            error_setg(errp, "a mapping covers a reserved region of "
                       "endpoint 0x%" PRIx32, ep->id);
            return false;
        }
    }
    return true;
}

bool viommu_core_load_mappings(VIOMMUCore *core, uint32_t domain_id,
                               VIOMMUMappingSet *set, Error **errp)
{
    VIOMMUDomain *domain = domain_lookup(core, domain_id);
    LoadAdded added = { .core = core, .domain = domain };
    GTree *empty;

    if (!viommu_mapping_set_size(set)) {
        return true;
    }
    if (!domain) {
        error_setg(errp, "domain %" PRIu32 " does not exist", domain_id);
        return false;
    }
    if (!load_check(core, domain, set, errp)) {
        error_prepend(errp, "domain %" PRIu32 ": ", domain_id);
        return false;
    }
    empty = domain->mappings;
    domain->mappings = set->mappings;
    set->mappings = empty;
    set->last = NULL;
    g_tree_foreach(domain->mappings, load_added_mapping, &added);
    return true;
}
