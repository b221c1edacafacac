/*
 * virtio-iommu: migration
 *
 * The stream has stock QEMU's layout, so that a VM can move between its
 * device and ours: a GTree of domains with direct u32 keys, each holding
 * its ID, a GTree of mappings keyed by interval, a list of endpoint IDs
 * and its bypass flag; then config field bypass.  Saving builds a shadow
 * of the domains from the core; loading fills it, replays the endpoints
 * through the core's own ATTACH handler and hands each domain its
 * mappings, which the core checks as MAP would: an inconsistent or
 * hostile stream fails the migration instead of corrupting the state.
 *
 * The mappings, a million of them or more, do not go through a shadow
 * GTree of the stream's layout: they are written straight from the core's
 * domain trees and read straight into a tree the core adopts
 * (viommu_mig_mappings_info), byte for byte what stock QEMU's
 * VMSTATE_GTREE_V writes and reads, without a vmstate walk per mapping,
 * and read while the source is still writing.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/error-report.h"
#include "qemu/lockable.h"
#include "qemu/bswap.h"
#include "migration/qemu-file-types.h"
#include "standard-headers/linux/virtio_iommu.h"
#include "virtio-iommu-internal.h"
#include "trace.h"

/* The stream's key of a mapping: its IOVA range, both ends inclusive */
typedef struct VIOMMUMigInterval {
    uint64_t virt_start;
    uint64_t virt_end;
} VIOMMUMigInterval;

/* The stream's value of a mapping: where it points, VIRTIO_IOMMU_MAP_F_* */
typedef struct VIOMMUMigMapping {
    uint64_t phys_start;
    uint32_t flags;
} VIOMMUMigMapping;

typedef struct VIOMMUMigEndpoint {
    uint32_t id;
    QLIST_ENTRY(VIOMMUMigEndpoint) next;
} VIOMMUMigEndpoint;

typedef struct VIOMMUMigDomain {
    uint32_t id;
    const VIOMMUDomain *core;   /* saving: the domain whose mappings go */
    VIOMMUMappingSet *mappings; /* loading: what the stream holds */
    QLIST_HEAD(, VIOMMUMigEndpoint) endpoints;
    bool bypass;
} VIOMMUMigDomain;

static gint viommu_mig_domain_cmp(gconstpointer a, gconstpointer b, gpointer u)
{
    uint64_t x = (uintptr_t)a, y = (uintptr_t)b;

    return x < y ? -1 : x > y;
}

static void viommu_mig_domain_free(gpointer data)
{
    VIOMMUMigDomain *domain = data;
    VIOMMUMigEndpoint *ep, *next;

    viommu_mapping_set_free(domain->mappings);
    QLIST_FOREACH_SAFE(ep, &domain->endpoints, next, next) {
        g_free(ep);
    }
    g_free(domain);
}

static GTree *viommu_mig_domains_new(void)
{
    return g_tree_new_full(viommu_mig_domain_cmp, NULL, NULL,
                           viommu_mig_domain_free);
}

void viommu_mig_free(VirtIOIOMMU *s)
{
    if (s->mig_domains) {
        g_tree_destroy(s->mig_domains);
        s->mig_domains = NULL;
    }
    g_free(s->mig_faults);
    s->mig_faults = NULL;
    s->mig_nr_faults = 0;
}

static void viommu_mig_save_endpoint(uint32_t ep_id, void *opaque)
{
    VIOMMUMigDomain *domain = opaque;
    VIOMMUMigEndpoint *ep = g_new0(VIOMMUMigEndpoint, 1);

    ep->id = ep_id;
    QLIST_INSERT_HEAD(&domain->endpoints, ep, next);
}

static void viommu_mig_save_domain(const VIOMMUDomain *core_domain,
                                   void *opaque)
{
    GTree *domains = opaque;
    VIOMMUMigDomain *domain = g_new0(VIOMMUMigDomain, 1);

    domain->id = viommu_domain_id(core_domain);
    domain->bypass = viommu_domain_is_bypass(core_domain);
    /*
     * Its mappings are written from the core when the field is saved:
     * under the BQL with the VM stopped, as the rest of the device
     */
    domain->core = core_domain;
    viommu_domain_foreach_endpoint(core_domain, viommu_mig_save_endpoint,
                                   domain);
    g_tree_insert(domains, (gpointer)(uintptr_t)domain->id, domain);
}

static int viommu_mig_pre_save(void *opaque)
{
    VirtIOIOMMU *s = opaque;
    uint32_t i;

    QEMU_LOCK_GUARD(&s->lock);
    viommu_mig_free(s);
    s->mig_domains = viommu_mig_domains_new();
    viommu_core_foreach_domain(s->core, viommu_mig_save_domain, s->mig_domains);
    trace_viommu_migration_save(g_tree_nnodes(s->mig_domains));
    s->mig_bypass = viommu_core_get_bypass(s->core);
    s->mig_nr_faults = s->nr_faults;
    s->mig_faults = g_new0(VirtIOIOMMUFault, s->nr_faults);
    for (i = 0; i < s->nr_faults; i++) {
        s->mig_faults[i] = s->faults[(s->fault_head + i) %
                                     s->max_pending_faults];
    }
    return 0;
}

static int viommu_mig_post_save(void *opaque)
{
    viommu_mig_free(opaque);
    return 0;
}

static int viommu_mig_pre_load(void *opaque)
{
    VirtIOIOMMU *s = opaque;

    viommu_mig_free(s);
    s->mig_domains = viommu_mig_domains_new();
    return 0;
}

static int viommu_mig_faults_pre_load(void *opaque)
{
    VirtIOIOMMU *s = opaque;

    g_free(s->mig_faults);
    s->mig_faults = NULL;
    return 0;
}

/* Replay one request through the core; s->lock held */
static uint8_t viommu_mig_replay(VirtIOIOMMU *s, const void *req, size_t len)
{
    VIOMMUReply reply = viommu_core_handle(s->core, req, len - 4, 4,
                                           s->probe_buf);

    return reply.has_status ? reply.status : VIRTIO_IOMMU_S_DEVERR;
}

typedef struct VIOMMUMigRestore {
    VirtIOIOMMU *s;
    VIOMMUMigDomain *domain;
    Error **errp;
} VIOMMUMigRestore;

static bool viommu_mig_restore_endpoint(VIOMMUMigRestore *r, uint32_t ep_id)
{
    struct virtio_iommu_req_attach req = {
        .head.type = VIRTIO_IOMMU_T_ATTACH,
        .domain = cpu_to_le32(r->domain->id),
        .endpoint = cpu_to_le32(ep_id),
        .flags = cpu_to_le32(r->domain->bypass ?
                             VIRTIO_IOMMU_ATTACH_F_BYPASS : 0),
    };
    uint8_t status;

    if (viommu_core_endpoint_domain(r->s->core, ep_id)) {
        error_setg(r->errp, "endpoint 0x%" PRIx32 " is in two domains",
                   ep_id);
        return false;
    }
    status = viommu_mig_replay(r->s, &req, sizeof(req));
    if (status != VIRTIO_IOMMU_S_OK) {
        error_setg(r->errp, "endpoint 0x%" PRIx32 " cannot attach to domain "
                   "%" PRIu32 " (status %u)", ep_id, r->domain->id, status);
        return false;
    }
    return true;
}

static gboolean viommu_mig_restore_domain(gpointer key, gpointer value,
                                          gpointer opaque)
{
    VIOMMUMigRestore *r = opaque;
    VIOMMUMigEndpoint *ep;

    r->domain = value;
    if ((uintptr_t)key != r->domain->id) {
        error_setg(r->errp, "domain key %" PRIu64 " holds domain %" PRIu32,
                   (uint64_t)(uintptr_t)key, r->domain->id);
        return true;
    }
    if (QLIST_EMPTY(&r->domain->endpoints)) {
        /* Nothing can reach it: a domain only lives with its endpoints */
        warn_report("virtio-iommu: migrated domain %" PRIu32 " has no "
                    "endpoint, dropped", r->domain->id);
        return false;
    }
    QLIST_FOREACH(ep, &r->domain->endpoints, next) {
        if (!viommu_mig_restore_endpoint(r, ep->id)) {
            return true;
        }
    }
    return r->domain->mappings &&
           !viommu_core_load_mappings(r->s->core, r->domain->id,
                                      r->domain->mappings, r->errp);
}

/* Checked before the array is allocated from the stream's count */
static bool viommu_mig_faults_count_valid(void *opaque, int version_id)
{
    VirtIOIOMMU *s = opaque;

    return s->mig_nr_faults >= 0 &&
           s->mig_nr_faults <= s->max_pending_faults;
}

static bool viommu_mig_restore_faults(VirtIOIOMMU *s, Error **errp)
{
    int32_t i;

    if (!viommu_mig_faults_count_valid(s, 1)) {
        error_setg(errp, "%" PRId32 " pending faults, max-pending-faults is %"
                   PRIu32, s->mig_nr_faults, s->max_pending_faults);
        return false;
    }
    for (i = 0; i < s->mig_nr_faults; i++) {
        s->faults[i] = s->mig_faults[i];
    }
    s->fault_head = 0;
    s->nr_faults = s->mig_nr_faults;
    return true;
}

static bool viommu_mig_restore(VirtIOIOMMU *s, Error **errp)
{
    VirtIODevice *vdev = VIRTIO_DEVICE(s);
    VIOMMUMigRestore r = { .s = s, .errp = errp };

    QEMU_LOCK_GUARD(&s->lock);
    viommu_core_reset(s->core);
    if (s->mig_bypass > 1) {
        error_setg(errp, "config bypass is %u", s->mig_bypass);
        return false;
    }
    viommu_core_set_bypass(s->core, s->mig_bypass);
    /* The state was built by a driver that had these features */
    viommu_core_set_features(s->core, VIOMMU_FEATURES);
    g_tree_foreach(s->mig_domains, viommu_mig_restore_domain, &r);
    viommu_core_set_features(s->core, vdev->guest_features);
    s->spaces_stale = true;
    if (*errp) {
        viommu_core_reset(s->core);
        return false;
    }
    return viommu_mig_restore_faults(s, errp);
}

int viommu_mig_post_load(VirtIODevice *vdev)
{
    VirtIOIOMMU *s = VIRTIO_IOMMU(vdev);
    Error *err = NULL;
    bool ok = viommu_mig_restore(s, &err);

    trace_viommu_migration_load(g_tree_nnodes(s->mig_domains), ok);
    viommu_mig_free(s);
    viommu_update_spaces(s);
    if (!ok) {
        error_reportf_err(err, "virtio-iommu: cannot load state: ");
        return -EINVAL;
    }
    /* A running driver has long finished its probe */
    s->events_ready = vdev->status & VIRTIO_CONFIG_S_DRIVER_OK;
    if (s->nr_faults) {
        qemu_bh_schedule(s->fault_bh);
    }
    return 0;
}

static const VMStateDescription vmstate_viommu_mig_mapping[2] = {
    {
        .name = "mapping",
        .version_id = 1,
        .minimum_version_id = 1,
        .fields = (const VMStateField[]) {
            VMSTATE_UINT64(phys_start, VIOMMUMigMapping),
            VMSTATE_UINT32(flags, VIOMMUMigMapping),
            VMSTATE_END_OF_LIST()
        },
    },
    {
        .name = "interval",
        .version_id = 1,
        .minimum_version_id = 1,
        .fields = (const VMStateField[]) {
            VMSTATE_UINT64(virt_start, VIOMMUMigInterval),
            VMSTATE_UINT64(virt_end, VIOMMUMigInterval),
            VMSTATE_END_OF_LIST()
        },
    },
};

/* A mapping in the stream after its byte 1: three be64 and a be32 */
#define VIOMMU_MIG_MAPPING_SIZE (3 * 8 + 4)

/*
 * The mappings of a domain as VMSTATE_GTREE_V writes a GTree of
 * VIOMMUMigInterval keys and VIOMMUMigMapping values: a be32 count, then
 * per mapping a byte 1, virt_start, virt_end, phys_start (be64) and flags
 * (be32), then a byte 0.  The keys come in the tree's order; no mapping
 * of a domain overlaps another, so the core's order is the same.
 */
static bool viommu_mig_put_mapping(const VIOMMUMapping *mapping, void *opaque)
{
    QEMUFile *f = opaque;
    uint8_t rec[1 + VIOMMU_MIG_MAPPING_SIZE] = { true };

    /* One copy into the stream's buffer rather than five */
    stq_be_p(rec + 1, mapping->virt_start);
    stq_be_p(rec + 9, mapping->virt_end);
    stq_be_p(rec + 17, mapping->phys_start);
    stl_be_p(rec + 25, mapping->flags);
    qemu_put_buffer(f, rec, sizeof(rec));
    return false;
}

static int viommu_mig_put_mappings(QEMUFile *f, void *pv, size_t size,
                                   const VMStateField *field,
                                   JSONWriter *vmdesc)
{
    VIOMMUMigDomain *domain = pv;

    qemu_put_be32(f, viommu_domain_nr_mappings(domain->core));
    viommu_domain_foreach_mapping(domain->core, viommu_mig_put_mapping, f);
    qemu_put_byte(f, false);
    return 0;
}

/*
 * As get_gtree() reads them, into domain->mappings: the count must match,
 * and each mapping lie above the one before, as the source's tree wrote
 * them.  Whether the domain can have them is for the core to say.
 */
static int viommu_mig_get_mappings(QEMUFile *f, void *pv, size_t size,
                                   const VMStateField *field)
{
    VIOMMUMigDomain *domain = pv;
    uint32_t nnodes = qemu_get_be32(f), count = 0;
    uint8_t rec[VIOMMU_MIG_MAPPING_SIZE];
    VIOMMUMapping mapping;
    Error *err = NULL;

    /* Memory grows with what comes, not with what the count says */
    domain->mappings = viommu_mapping_set_new();
    while (qemu_get_byte(f) && ++count <= nnodes) {
        if (qemu_get_buffer(f, rec, sizeof(rec)) != sizeof(rec)) {
            error_setg(&err, "the stream ends inside mapping %" PRIu32,
                       count);
            break;
        }
        mapping.virt_start = ldq_be_p(rec);
        mapping.virt_end = ldq_be_p(rec + 8);
        mapping.phys_start = ldq_be_p(rec + 16);
        mapping.flags = ldl_be_p(rec + 24);
        if (!viommu_mapping_set_add(domain->mappings, &mapping, &err)) {
            break;
        }
    }
    if (!err && (count != nnodes || qemu_file_get_error(f))) {
        error_setg(&err, "%" PRIu32 " mappings announced, %s%" PRIu32
                   " in the stream", nnodes, count > nnodes ? "over " : "",
                   MIN(count, nnodes));
    }
    if (err) {
        /* get_gtree() frees the domain, not what it holds */
        viommu_mapping_set_free(domain->mappings);
        domain->mappings = NULL;
        error_reportf_err(err, "virtio-iommu: domain %" PRIu32 ": ",
                          domain->id);
        return -EINVAL;
    }
    return 0;
}

static const VMStateInfo viommu_mig_mappings_info = {
    .name = "gtree",
    .get = viommu_mig_get_mappings,
    .put = viommu_mig_put_mappings,
};

static const VMStateDescription vmstate_viommu_mig_endpoint = {
    .name = "endpoint",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT32(id, VIOMMUMigEndpoint),
        VMSTATE_END_OF_LIST()
    },
};

static int viommu_mig_domain_pre_load(void *opaque)
{
    VIOMMUMigDomain *domain = opaque;

    QLIST_INIT(&domain->endpoints);
    return 0;
}

static const VMStateDescription vmstate_viommu_mig_domain = {
    .name = "domain",
    .version_id = 2,
    .minimum_version_id = 2,
    .pre_load = viommu_mig_domain_pre_load,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT32(id, VIOMMUMigDomain),
        /*
         * VMSTATE_GTREE_V(mappings, VIOMMUMigDomain, 1,
         * vmstate_viommu_mig_mapping, VIOMMUMigInterval, VIOMMUMigMapping)
         * with viommu_mig_mappings_info; the whole domain to it
         */
        {
            .name = "mappings",
            .version_id = 1,
            .vmsd = vmstate_viommu_mig_mapping,
            .info = &viommu_mig_mappings_info,
            .start = sizeof(VIOMMUMigInterval),
            .size = sizeof(VIOMMUMigMapping),
            .offset = 0,
        },
        VMSTATE_QLIST_V(endpoints, VIOMMUMigDomain, 1,
                        vmstate_viommu_mig_endpoint, VIOMMUMigEndpoint, next),
        VMSTATE_BOOL_V(bypass, VIOMMUMigDomain, 2),
        VMSTATE_END_OF_LIST()
    },
};

static const VMStateDescription vmstate_viommu_mig_fault = {
    .name = "virtio-iommu-fault",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT8(reason, VirtIOIOMMUFault),
        VMSTATE_UINT32(flags, VirtIOIOMMUFault),
        VMSTATE_UINT32(endpoint, VirtIOIOMMUFault),
        VMSTATE_UINT64(address, VirtIOIOMMUFault),
        VMSTATE_END_OF_LIST()
    },
};

/*
 * Sent only when asked for and faults wait for eventq buffers: QEMU 10.0's
 * device knows no such subsection and would refuse the whole stream.
 */
static bool viommu_mig_faults_needed(void *opaque)
{
    VirtIOIOMMU *s = opaque;

    return s->migrate_pending_faults && s->mig_nr_faults;
}

static const VMStateDescription vmstate_viommu_mig_faults = {
    .name = "virtio-iommu-device/pending-faults",
    .version_id = 1,
    .minimum_version_id = 1,
    .needed = viommu_mig_faults_needed,
    .pre_load = viommu_mig_faults_pre_load,
    .fields = (const VMStateField[]) {
        VMSTATE_INT32(mig_nr_faults, VirtIOIOMMU),
        VMSTATE_VALIDATE("pending faults within max-pending-faults",
                         viommu_mig_faults_count_valid),
        VMSTATE_STRUCT_VARRAY_ALLOC(mig_faults, VirtIOIOMMU, mig_nr_faults,
                                    1, vmstate_viommu_mig_fault,
                                    VirtIOIOMMUFault),
        VMSTATE_END_OF_LIST()
    },
};

const VMStateDescription vmstate_viommu_device = {
    .name = "virtio-iommu-device",
    .version_id = 2,
    .minimum_version_id = 2,
    .pre_save = viommu_mig_pre_save,
    .post_save = viommu_mig_post_save,
    .pre_load = viommu_mig_pre_load,
    .fields = (const VMStateField[]) {
        VMSTATE_GTREE_DIRECT_KEY_V(mig_domains, VirtIOIOMMU, 2,
                                   &vmstate_viommu_mig_domain, VIOMMUMigDomain),
        VMSTATE_UINT8_V(mig_bypass, VirtIOIOMMU, 2),
        VMSTATE_END_OF_LIST()
    },
    .subsections = (const VMStateDescription * const []) {
        &vmstate_viommu_mig_faults,
        NULL
    },
};

const VMStateDescription vmstate_viommu = {
    .name = "virtio-iommu",
    .version_id = 2,
    .minimum_version_id = 2,
    .priority = MIG_PRI_IOMMU,
    .fields = (const VMStateField[]) {
        VMSTATE_VIRTIO_DEVICE,
        VMSTATE_END_OF_LIST()
    },
};
