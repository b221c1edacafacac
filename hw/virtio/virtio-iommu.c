/*
 * virtio-iommu device (virtio ID 23)
 *
 * virtio-iommu: independent implementation, written from the virtio
 * specification.  This file is the VirtIODevice: the request queue and
 * the path of a request into virtio-iommu-core.c, fault reports on the
 * event queue, configuration space and features, reset, realize,
 * properties and statistics.  virtio-iommu-internal.h lists the other
 * files of the device.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/iov.h"
#include "qemu/log.h"
#include "qemu/range.h"
#include "qemu/units.h"
#include "qapi/error.h"
#include "qapi/visitor.h"
#include "hw/pci/pci_device.h"
#include "hw/qdev-properties.h"
#include "hw/qdev-properties-system.h"
#include "system/reset.h"
#include "standard-headers/linux/virtio_ids.h"
#include "virtio-iommu-internal.h"
#include "trace.h"

/* Marker the build checks for, so it never ships upstream's device */
static const char viommu_marker[] __attribute__((used)) =
    "virtio-iommu: independent implementation";

#define VIOMMU_QUEUE_SIZE       256
/*
 * probe_size as QEMU 10.0's device presents it (guest ABI): room for 21
 * RESV_MEM properties, the machine's and those of host IOMMU devices.
 */
#define VIOMMU_PROBE_SIZE       512


/* Requests */

static size_t viommu_process(VirtIOIOMMU *s, VirtQueueElement *elem)
{
    uint8_t in[sizeof(struct virtio_iommu_req_probe)];
    size_t out_len = iov_size(elem->in_sg, elem->in_num);
    size_t in_len, tail_off;
    struct virtio_iommu_req_tail tail = { 0 };
    VIOMMUReply reply;
    bool stale;

    in_len = iov_to_buf(elem->out_sg, elem->out_num, 0, in, sizeof(in));
    /* One lock hold per request: the change and what it made stale */
    WITH_QEMU_LOCK_GUARD(&s->lock) {
        reply = viommu_core_handle(s->core, in, in_len, out_len,
                                   s->probe_buf);
        if (reply.has_status) {
            s->stats.requests[reply.type][reply.status]++;
        } else {
            s->stats.unanswered++;
        }
        stale = viommu_take_stale(s);
    }
    trace_viommu_request(reply.type, reply.has_status ? reply.status : -1,
                         iov_size(elem->out_sg, elem->out_num), out_len);
    viommu_apply_changes(s, stale);
    if (!reply.has_status) {
        return 0;
    }

    tail_off = out_len - sizeof(tail);
    iov_from_buf(elem->in_sg, elem->in_num, 0, s->probe_buf,
                 reply.props_len);
    iov_memset(elem->in_sg, elem->in_num, reply.props_len, 0,
               tail_off - reply.props_len);
    tail.status = reply.status;
    iov_from_buf(elem->in_sg, elem->in_num, tail_off, &tail, sizeof(tail));
    return out_len;
}

static void viommu_handle_requestq(VirtIODevice *vdev, VirtQueue *vq)
{
    VirtIOIOMMU *s = VIRTIO_IOMMU(vdev);
    VirtQueueElement *elem;
    bool done = false;

    while ((elem = virtqueue_pop(vq, sizeof(VirtQueueElement)))) {
        virtqueue_push(vq, elem, viommu_process(s, elem));
        g_free(elem);
        done = true;
    }
    /* One notification for the whole batch */
    if (done) {
        virtio_notify(vdev, vq);
    }
    /*
     * A driver may post eventq buffers without notifying us (Linux does
     * at probe): its requests are the next sign of life, so faults that
     * wait for a buffer are tried again now.
     */
    s->events_ready = true;
    if (qatomic_read(&s->nr_faults)) {
        qemu_bh_schedule(s->fault_bh);
    }
}

/* Faults */

void viommu_fault_queue(VirtIOIOMMU *s, uint8_t reason, uint32_t ep_id,
                        unsigned access, uint64_t address)
{
    VirtIOIOMMUFault *fault;

    trace_viommu_fault(ep_id, reason, access, address);
    if (s->nr_faults == s->max_pending_faults) {
        /* One line per 256 drops: a storm must not flood the log */
        if (!(s->stats.faults_dropped++ & 0xff)) {
            qemu_log_mask(LOG_GUEST_ERROR, "virtio-iommu: no eventq buffer, "
                          "%" PRIu64 " fault reports dropped so far\n",
                          s->stats.faults_dropped);
        }
        trace_viommu_fault_dropped(s->stats.faults_dropped);
        return;
    }
    s->stats.faults_reported++;
    fault = &s->faults[(s->fault_head + s->nr_faults++) %
                       s->max_pending_faults];
    *fault = (VirtIOIOMMUFault) {
        .reason = reason,
        .flags = VIRTIO_IOMMU_FAULT_F_ADDRESS |
                 (access & VIOMMU_PERM_READ ? VIRTIO_IOMMU_FAULT_F_READ : 0) |
                 (access & VIOMMU_PERM_WRITE ? VIRTIO_IOMMU_FAULT_F_WRITE : 0),
        .endpoint = ep_id,
        .address = address,
    };
    qemu_bh_schedule(s->fault_bh);
}

static bool viommu_fault_peek(VirtIOIOMMU *s, struct virtio_iommu_fault *rec)
{
    VirtIOIOMMUFault *fault;

    QEMU_LOCK_GUARD(&s->lock);
    if (!s->nr_faults) {
        return false;
    }
    fault = &s->faults[s->fault_head];
    *rec = (struct virtio_iommu_fault) {
        .reason = fault->reason,
        .flags = cpu_to_le32(fault->flags),
        .endpoint = cpu_to_le32(fault->endpoint),
        .address = cpu_to_le64(fault->address),
    };
    return true;
}

static void viommu_fault_drop(VirtIOIOMMU *s)
{
    QEMU_LOCK_GUARD(&s->lock);
    s->fault_head = (s->fault_head + 1) % s->max_pending_faults;
    s->nr_faults--;
    s->stats.faults_delivered++;
}

/* Move queued faults into the eventq buffers the driver posted */
static void viommu_fault_deliver(void *opaque)
{
    VirtIOIOMMU *s = opaque;
    VirtIODevice *vdev = VIRTIO_DEVICE(s);
    struct virtio_iommu_fault rec;
    VirtQueueElement *elem;
    bool pushed = false;

    if (!(vdev->status & VIRTIO_CONFIG_S_DRIVER_OK) || !s->events_ready) {
        return;
    }
    while (viommu_fault_peek(s, &rec)) {
        elem = virtqueue_pop(s->event_vq, sizeof(VirtQueueElement));
        if (!elem) {
            break;
        }
        pushed = true;
        if (iov_size(elem->in_sg, elem->in_num) < sizeof(rec)) {
            qemu_log_mask(LOG_GUEST_ERROR, "virtio-iommu: eventq buffer of "
                          "%zu bytes is too small for a fault report\n",
                          iov_size(elem->in_sg, elem->in_num));
            virtqueue_push(s->event_vq, elem, 0);
            g_free(elem);
            continue;
        }
        iov_from_buf(elem->in_sg, elem->in_num, 0, &rec, sizeof(rec));
        virtqueue_push(s->event_vq, elem, sizeof(rec));
        trace_viommu_fault_delivered(le32_to_cpu(rec.endpoint),
                                     le64_to_cpu(rec.address));
        g_free(elem);
        viommu_fault_drop(s);
    }
    if (pushed) {
        virtio_notify(vdev, s->event_vq);
    }
}

static void viommu_handle_eventq(VirtIODevice *vdev, VirtQueue *vq)
{
    VirtIOIOMMU *s = VIRTIO_IOMMU(vdev);

    s->events_ready = true;
    viommu_fault_deliver(s);
}

/* Statistics: qom-get <device> stats */

static const char *const viommu_req_names[] = {
    [VIRTIO_IOMMU_T_ATTACH] = "attach",
    [VIRTIO_IOMMU_T_DETACH] = "detach",
    [VIRTIO_IOMMU_T_MAP] = "map",
    [VIRTIO_IOMMU_T_UNMAP] = "unmap",
    [VIRTIO_IOMMU_T_PROBE] = "probe",
};

static const char *const viommu_status_names[] = {
    [VIRTIO_IOMMU_S_OK] = "ok",
    [VIRTIO_IOMMU_S_IOERR] = "ioerr",
    [VIRTIO_IOMMU_S_UNSUPP] = "unsupp",
    [VIRTIO_IOMMU_S_DEVERR] = "deverr",
    [VIRTIO_IOMMU_S_INVAL] = "inval",
    [VIRTIO_IOMMU_S_RANGE] = "range",
    [VIRTIO_IOMMU_S_NOENT] = "noent",
    [VIRTIO_IOMMU_S_FAULT] = "fault",
    [VIRTIO_IOMMU_S_NOMEM] = "nomem",
};

typedef struct VIOMMUSpaceTotals {
    uint64_t spaces;
    uint64_t cache_hits;
    uint64_t cache_misses;
} VIOMMUSpaceTotals;

static void viommu_stats_count_space(VirtIOIOMMUSpace *sp, void *opaque)
{
    VIOMMUSpaceTotals *t = opaque;

    t->spaces++;
    t->cache_hits += qatomic_read(&sp->cache_stats.hits);
    t->cache_misses += qatomic_read(&sp->cache_stats.misses);
}

static bool viommu_stats_put(Visitor *v, const char *name, uint64_t value,
                             Error **errp)
{
    return visit_type_uint64(v, name, &value, errp);
}

static bool viommu_stats_put_requests(Visitor *v, VirtIOIOMMUStats *stats,
                                      Error **errp)
{
    int type, status;
    bool ok = true;

    for (type = VIRTIO_IOMMU_T_ATTACH; ok && type <= VIRTIO_IOMMU_T_PROBE;
         type++) {
        ok = visit_start_struct(v, viommu_req_names[type], NULL, 0, errp);
        for (status = 0; ok && status <= VIRTIO_IOMMU_S_NOMEM; status++) {
            ok = viommu_stats_put(v, viommu_status_names[status],
                                  stats->requests[type][status], errp);
        }
        ok = ok && visit_check_struct(v, errp);
        visit_end_struct(v, NULL);
    }
    return ok;
}

static bool viommu_stats_put_counters(Visitor *v,
                                      const VirtIOIOMMUStats *stats,
                                      const VIOMMUCoreStats *core,
                                      const VIOMMUSpaceTotals *totals,
                                      Error **errp)
{
    const struct {
        const char *name;
        uint64_t value;
    } counters[] = {
        { "unanswered-requests", stats->unanswered },
        { "faults-reported", stats->faults_reported },
        { "faults-delivered", stats->faults_delivered },
        { "faults-dropped", stats->faults_dropped },
        { "domains", core->nr_domains },
        { "mappings", core->nr_mappings },
        { "attached-endpoints", core->nr_attached },
        { "address-spaces", totals->spaces },
        { "translation-cache-hits", totals->cache_hits },
        { "translation-cache-misses", totals->cache_misses },
    };
    size_t i;

    for (i = 0; i < ARRAY_SIZE(counters); i++) {
        if (!viommu_stats_put(v, counters[i].name, counters[i].value, errp)) {
            return false;
        }
    }
    return true;
}

static void viommu_get_stats(Object *obj, Visitor *v, const char *name,
                             void *opaque, Error **errp)
{
    VirtIOIOMMU *s = VIRTIO_IOMMU(obj);
    VirtIOIOMMUStats stats;
    VIOMMUCoreStats core;
    VIOMMUSpaceTotals totals = { 0 };
    bool ok;

    WITH_QEMU_LOCK_GUARD(&s->lock) {
        stats = s->stats;
        core = viommu_core_stats(s->core);
    }
    if (s->spaces) {
        viommu_space_foreach(s, viommu_stats_count_space, &totals);
    }
    if (!visit_start_struct(v, name, NULL, 0, errp)) {
        return;
    }
    ok = visit_start_struct(v, "requests", NULL, 0, errp) &&
         viommu_stats_put_requests(v, &stats, errp) &&
         visit_check_struct(v, errp);
    visit_end_struct(v, NULL);
    ok = ok && viommu_stats_put_counters(v, &stats, &core, &totals, errp) &&
         visit_check_struct(v, errp);
    visit_end_struct(v, NULL);
}

/* Configuration space and features */

static void viommu_fill_config(VirtIOIOMMU *s,
                               struct virtio_iommu_config *cfg)
{
    uint64_t input_end = MAKE_64BIT_MASK(0, s->aw_bits);
    bool bypass;

    WITH_QEMU_LOCK_GUARD(&s->lock) {
        bypass = viommu_core_get_bypass(s->core);
    }
    *cfg = (struct virtio_iommu_config) {
        .page_size_mask = cpu_to_le64(s->page_size_mask),
        .input_range.start = 0,
        .input_range.end = cpu_to_le64(input_end),
        .domain_range.start = 0,
        .domain_range.end = cpu_to_le32(s->max_domain_id),
        .probe_size = cpu_to_le32(s->probe_size),
        .bypass = bypass,
    };
}

/* The spec's layouts: every field where the guest reads or writes it */
QEMU_BUILD_BUG_ON(sizeof(struct virtio_iommu_config) != 40 ||
                  offsetof(struct virtio_iommu_config, domain_range) != 24 ||
                  offsetof(struct virtio_iommu_config, probe_size) != 32 ||
                  offsetof(struct virtio_iommu_config, bypass) != 36);
QEMU_BUILD_BUG_ON(sizeof(struct virtio_iommu_req_attach) != 24 ||
                  sizeof(struct virtio_iommu_req_detach) != 24 ||
                  offsetof(struct virtio_iommu_req_map, virt_start) != 8 ||
                  offsetof(struct virtio_iommu_req_map, flags) != 32 ||
                  sizeof(struct virtio_iommu_req_map) != 40 ||
                  sizeof(struct virtio_iommu_req_unmap) != 32 ||
                  sizeof(struct virtio_iommu_probe_resv_mem) != 24 ||
                  offsetof(struct virtio_iommu_fault, address) != 16);
/* ... and the values of the enumerations the header counts up */
QEMU_BUILD_BUG_ON(VIRTIO_IOMMU_T_PROBE != 5 || VIRTIO_IOMMU_S_NOMEM != 8 ||
                  VIRTIO_IOMMU_PROBE_T_RESV_MEM != 1 ||
                  VIRTIO_IOMMU_RESV_MEM_T_MSI != 1 ||
                  VIRTIO_IOMMU_FAULT_R_MAPPING != 2 ||
                  VIRTIO_IOMMU_MAP_F_MASK != 7);

static void viommu_get_config(VirtIODevice *vdev, uint8_t *config)
{
    struct virtio_iommu_config cfg;

    viommu_fill_config(VIRTIO_IOMMU(vdev), &cfg);
    memcpy(config, &cfg, sizeof(cfg));
}

static void viommu_set_bypass(VirtIOIOMMU *s, bool bypass)
{
    WITH_QEMU_LOCK_GUARD(&s->lock) {
        if (viommu_core_get_bypass(s->core) == bypass) {
            return;
        }
        viommu_core_set_bypass(s->core, bypass);
        s->spaces_stale = true;
    }
    trace_viommu_bypass(bypass);
    viommu_update_spaces(s);
}

/* Name each read-only config field the guest wrote, and what it wrote */
static void viommu_log_config_writes(const struct virtio_iommu_config *cur,
                                     const struct virtio_iommu_config *new)
{
    static const struct {
        const char *name;
        size_t offset;
        size_t size;
    } fields[] = {
#define CONFIG_FIELD(f) \
        { #f, offsetof(struct virtio_iommu_config, f), \
          sizeof(((struct virtio_iommu_config *)0)->f) }
        CONFIG_FIELD(page_size_mask),
        CONFIG_FIELD(input_range.start),
        CONFIG_FIELD(input_range.end),
        CONFIG_FIELD(domain_range.start),
        CONFIG_FIELD(domain_range.end),
        CONFIG_FIELD(probe_size),
        CONFIG_FIELD(reserved),
#undef CONFIG_FIELD
    };
    size_t i;

    for (i = 0; i < ARRAY_SIZE(fields); i++) {
        uint64_t value = 0;

        if (!memcmp((const uint8_t *)cur + fields[i].offset,
                    (const uint8_t *)new + fields[i].offset,
                    fields[i].size)) {
            continue;
        }
        /* Little endian on the wire: the low bytes come first */
        memcpy(&value, (const uint8_t *)new + fields[i].offset,
               fields[i].size);
        qemu_log_mask(LOG_GUEST_ERROR, "virtio-iommu: config write of "
                      "read-only %s = 0x%" PRIx64 " ignored\n",
                      fields[i].name, le64_to_cpu(value));
    }
}

static void viommu_set_config(VirtIODevice *vdev, const uint8_t *config)
{
    VirtIOIOMMU *s = VIRTIO_IOMMU(vdev);
    struct virtio_iommu_config cur, new;

    viommu_fill_config(s, &cur);
    memcpy(&new, config, sizeof(new));

    if (new.bypass != cur.bypass) {
        if (!virtio_vdev_has_feature(vdev, VIRTIO_IOMMU_F_BYPASS_CONFIG)) {
            qemu_log_mask(LOG_GUEST_ERROR, "virtio-iommu: config write of "
                          "bypass=%u without BYPASS_CONFIG ignored\n",
                          new.bypass);
        } else if (new.bypass > 1) {
            qemu_log_mask(LOG_GUEST_ERROR, "virtio-iommu: config write of "
                          "bypass=%u ignored (only 0 or 1)\n", new.bypass);
        } else {
            viommu_set_bypass(s, new.bypass);
        }
    }
    new.bypass = cur.bypass;
    viommu_log_config_writes(&cur, &new);
    /* The core re-reads config on every access; drop what was written */
    viommu_get_config(vdev, vdev->config);
}

static uint64_t viommu_get_features(VirtIODevice *vdev, uint64_t features,
                                    Error **errp)
{
    /*
     * QEMU 10.0's device offers event_idx and indirect_desc even when
     * their properties are off: so do we, for the same guest ABI.
     */
    return features | VIOMMU_FEATURES | BIT_ULL(VIRTIO_RING_F_EVENT_IDX) |
           BIT_ULL(VIRTIO_RING_F_INDIRECT_DESC);
}

static void viommu_set_features(VirtIODevice *vdev, uint64_t features)
{
    VirtIOIOMMU *s = VIRTIO_IOMMU(vdev);

    QEMU_LOCK_GUARD(&s->lock);
    viommu_core_set_features(s->core, features);
}

/*
 * When may fault reports go out?  At DRIVER_OK, if the driver posted
 * eventq buffers before it (virtio's initialization order allows that).
 * Otherwise from the driver's first request or eventq notification on:
 * Linux up to 6.16 posts its buffers right after DRIVER_OK, without a
 * notification, and its event handler crashes (NULL vdev->priv) on an
 * event that arrives before its probe has finished.  Until then faults
 * are queued, as while there is no buffer.
 */
static void viommu_set_status(VirtIODevice *vdev, uint8_t status)
{
    VirtIOIOMMU *s = VIRTIO_IOMMU(vdev);

    if (!(vdev->status & VIRTIO_CONFIG_S_DRIVER_OK) &&
        (status & VIRTIO_CONFIG_S_DRIVER_OK)) {
        s->events_ready = !virtio_queue_empty(s->event_vq);
        if (s->events_ready && qatomic_read(&s->nr_faults)) {
            qemu_bh_schedule(s->fault_bh);
        }
    }
}

/* Reset */

/* Device reset: every endpoint detached, config bypass kept (spec) */
static void viommu_reset(VirtIODevice *vdev)
{
    VirtIOIOMMU *s = VIRTIO_IOMMU(vdev);

    trace_viommu_reset();
    WITH_QEMU_LOCK_GUARD(&s->lock) {
        viommu_core_reset(s->core);
        viommu_core_set_features(s->core, 0);
        s->nr_faults = 0;
        s->spaces_stale = true;
    }
    s->events_ready = false;
    viommu_update_spaces(s);
}

/* System reset: bypass back to its initial value */
static void viommu_system_reset(void *opaque)
{
    VirtIOIOMMU *s = opaque;

    trace_viommu_system_reset(s->boot_bypass);
    viommu_set_bypass(s, s->boot_bypass);
}

/* Realize */

static bool viommu_resolve_granule(VirtIOIOMMU *s, Error **errp)
{
    switch (s->granule_mode) {
    case GRANULE_MODE_4K:
        s->granule = 4 * KiB;
        break;
    case GRANULE_MODE_8K:
        s->granule = 8 * KiB;
        break;
    case GRANULE_MODE_16K:
        s->granule = 16 * KiB;
        break;
    case GRANULE_MODE_64K:
        s->granule = 64 * KiB;
        break;
    case GRANULE_MODE_HOST:
        s->granule = qemu_real_host_page_size();
        break;
    default:
        error_setg(errp, "unsupported granule mode");
        return false;
    }
    return true;
}

/* Sorted copy of reserved-regions; reject what PROBE could not describe */
static bool viommu_load_resv_regions(VirtIOIOMMU *s, Error **errp)
{
    size_t i;

    s->nr_resv = s->nr_prop_resv_regions;
    s->resv = g_new0(VIOMMUResvRegion, s->nr_resv);
    for (i = 0; i < s->nr_resv; i++) {
        ReservedRegion *r = &s->prop_resv_regions[i];

        if (r->type != VIRTIO_IOMMU_RESV_MEM_T_RESERVED &&
            r->type != VIRTIO_IOMMU_RESV_MEM_T_MSI) {
            error_setg(errp, "reserved-regions: type %u is neither 0 "
                       "(reserved) nor 1 (MSI)", r->type);
            return false;
        }
        s->resv[i] = (VIOMMUResvRegion) {
            .start = range_lob(&r->range),
            .end = range_upb(&r->range),
            .subtype = r->type,
        };
    }
    viommu_resv_sort(s->resv, s->nr_resv);
    for (i = 1; i < s->nr_resv; i++) {
        if (s->resv[i].start <= s->resv[i - 1].end) {
            error_setg(errp, "reserved-regions: [0x%" PRIx64 ", 0x%" PRIx64
                       "] overlaps [0x%" PRIx64 ", 0x%" PRIx64 "]",
                       s->resv[i].start, s->resv[i].end,
                       s->resv[i - 1].start, s->resv[i - 1].end);
            return false;
        }
    }
    return true;
}

/* Check the properties and derive what they fix for the device's life */
static bool viommu_check_properties(VirtIOIOMMU *s, Error **errp)
{
    size_t resv_bytes;

    if (!s->primary_bus) {
        error_setg(errp, "virtio-iommu: primary-bus is not set");
        return false;
    }
    if (s->aw_bits < 32 || s->aw_bits > 64) {
        error_setg(errp, "aw-bits must be within [32, 64]");
        return false;
    }
    if (!s->max_pending_faults) {
        error_setg(errp, "max-pending-faults must be at least 1");
        return false;
    }
    if (!viommu_resolve_granule(s, errp) ||
        !viommu_load_resv_regions(s, errp)) {
        return false;
    }
    /*
     * Guest ABI: every page size from the granule up, whatever aw-bits
     * says, and the fixed probe_size, as QEMU 10.0's device presents them.
     * Only a reserved-regions list that could never fit (and that no
     * guest could probe on QEMU's device) makes probe_size grow.
     */
    s->page_size_mask = -s->granule;
    resv_bytes = s->nr_resv * sizeof(struct virtio_iommu_probe_resv_mem);
    s->probe_size = MAX(VIOMMU_PROBE_SIZE, QEMU_ALIGN_UP(resv_bytes, 64));
    return true;
}

static void viommu_state_init(VirtIOIOMMU *s)
{
    VIOMMUCoreConfig config = {
        .granule = s->granule,
        .input_start = 0,
        .input_end = MAKE_64BIT_MASK(0, s->aw_bits),
        .domain_start = 0,
        .domain_end = s->max_domain_id,
        .probe_size = s->probe_size,
        .limits.max_domains = s->max_domains,
        .limits.max_mappings = s->max_mappings,
        .msi_resv = s->resv,
        .nr_msi_resv = s->nr_resv,
    };

    qemu_mutex_init(&s->lock);
    s->core = viommu_core_new(&config, &viommu_core_ops, s);
    viommu_core_set_bypass(s->core, s->boot_bypass);
    s->probe_buf = g_malloc0(s->probe_size);
    s->faults = g_new0(VirtIOIOMMUFault, s->max_pending_faults);
    viommu_as_init(s);
}

static void viommu_state_free(VirtIOIOMMU *s)
{
    viommu_mig_free(s);
    viommu_as_free(s);
    g_free(s->faults);
    g_free(s->probe_buf);
    g_free(s->resv);
    viommu_core_free(s->core);
    qemu_mutex_destroy(&s->lock);
}


/* Our own PCI function, when we sit on a PCI transport */
static PCIDevice *viommu_own_function(DeviceState *dev)
{
    BusState *bus = qdev_get_parent_bus(dev);

    if (bus && object_dynamic_cast(OBJECT(bus->parent), TYPE_PCI_DEVICE)) {
        return PCI_DEVICE(bus->parent);
    }
    return NULL;
}

static void viommu_realize(DeviceState *dev, Error **errp)
{
    VirtIODevice *vdev = VIRTIO_DEVICE(dev);
    VirtIOIOMMU *s = VIRTIO_IOMMU(dev);

    if (!viommu_check_properties(s, errp)) {
        return;
    }
    viommu_state_init(s);
    s->self = viommu_own_function(dev);
    s->fault_bh = virtio_bh_new_guarded(dev, viommu_fault_deliver, s);

    virtio_init(vdev, VIRTIO_ID_IOMMU, sizeof(struct virtio_iommu_config));
    s->req_vq = virtio_add_queue(vdev, VIOMMU_QUEUE_SIZE,
                                 viommu_handle_requestq);
    s->event_vq = virtio_add_queue(vdev, VIOMMU_QUEUE_SIZE,
                                   viommu_handle_eventq);
    viommu_get_config(vdev, vdev->config);
    pci_setup_iommu(s->primary_bus, &viommu_pci_ops, s);
    qemu_register_reset(viommu_system_reset, s);
}

static void viommu_unrealize(DeviceState *dev)
{
    VirtIOIOMMU *s = VIRTIO_IOMMU(dev);

    qemu_unregister_reset(viommu_system_reset, s);
    qemu_bh_delete(s->fault_bh);
    /* virtio_cleanup() does not free the virtqueues themselves */
    virtio_delete_queue(s->event_vq);
    virtio_delete_queue(s->req_vq);
    virtio_cleanup(VIRTIO_DEVICE(dev));
    viommu_state_free(s);
}

static const Property viommu_properties[] = {
    /* What the guest reads in the config space */
    DEFINE_PROP_GRANULE_MODE("granule", VirtIOIOMMU, granule_mode,
                             GRANULE_MODE_HOST),
    DEFINE_PROP_UINT8("aw-bits", VirtIOIOMMU, aw_bits, 64),
    DEFINE_PROP_BOOL("boot-bypass", VirtIOIOMMU, boot_bypass, true),
    /* Bounds on the state a guest can make the device hold */
    DEFINE_PROP_UINT32("max-domains", VirtIOIOMMU, max_domains, 65536),
    DEFINE_PROP_UINT32("max-domain-id", VirtIOIOMMU, max_domain_id,
                       UINT32_MAX),
    DEFINE_PROP_UINT64("max-mappings", VirtIOIOMMU, max_mappings, 1 << 20),
    DEFINE_PROP_UINT32("max-pending-faults", VirtIOIOMMU, max_pending_faults,
                       128),
    /* Migration */
    DEFINE_PROP_BOOL("migrate-pending-faults", VirtIOIOMMU,
                     migrate_pending_faults, false),
    /* Set by virtio-iommu-pci: the bus whose functions we translate */
    DEFINE_PROP_LINK("primary-bus", VirtIOIOMMU, primary_bus,
                     TYPE_PCI_BUS, PCIBus *),
};

/* What `-device virtio-iommu-pci,help` says of each property */
static const struct {
    const char *name;
    const char *text;
} viommu_prop_help[] = {
    { "boot-bypass", "DMA of endpoints not attached to a domain bypasses "
      "the IOMMU until the guest driver writes config field bypass" },
    { "granule", "smallest page size of mappings: 4k, 8k, 16k, 64k or "
      "host" },
    { "aw-bits", "input address width in bits, 32 to 64 (input_range)" },
    { "primary-bus", "the PCI bus whose functions are translated (set by "
      "virtio-iommu-pci)" },
    { "max-domains", "most domains alive at once; ATTACH past it fails "
      "with NOMEM" },
    { "max-domain-id", "highest domain ID (domain_range.end)" },
    { "max-mappings", "most mappings over all domains; MAP past it fails "
      "with NOMEM" },
    { "stats", "live counters: requests by type and status, faults, "
      "domains, mappings, attached endpoints" },
    { "max-pending-faults", "fault reports kept while the guest has no "
      "eventq buffer posted" },
    { "migrate-pending-faults", "migrate the fault reports still waiting "
      "for an eventq buffer; such a stream cannot be loaded by QEMU 10.0's "
      "device" },
};

static void viommu_class_init(ObjectClass *klass, void *data)
{
    VirtioDeviceClass *vdc = VIRTIO_DEVICE_CLASS(klass);
    DeviceClass *dc = DEVICE_CLASS(klass);
    size_t i;

    /* The virtio device: lifecycle, config space, features, its state */
    vdc->realize = viommu_realize;
    vdc->unrealize = viommu_unrealize;
    vdc->reset = viommu_reset;
    vdc->set_status = viommu_set_status;
    vdc->get_config = viommu_get_config;
    vdc->set_config = viommu_set_config;
    vdc->get_features = viommu_get_features;
    vdc->set_features = viommu_set_features;
    vdc->vmsd = &vmstate_viommu_device;
    vdc->post_load = viommu_mig_post_load;

    /* The qdev: its section of the stream, its properties and their help */
    dc->vmsd = &vmstate_viommu;
    set_bit(DEVICE_CATEGORY_MISC, dc->categories);
    device_class_set_props(dc, viommu_properties);
    object_class_property_add(klass, "stats", "VirtIOIOMMUStats",
                              viommu_get_stats, NULL, NULL, NULL);
    for (i = 0; i < ARRAY_SIZE(viommu_prop_help); i++) {
        object_class_property_set_description(klass,
                                              viommu_prop_help[i].name,
                                              viommu_prop_help[i].text);
    }
}

static const TypeInfo viommu_types[] = {
    {
        .name = TYPE_VIRTIO_IOMMU,
        .parent = TYPE_VIRTIO_DEVICE,
        .instance_size = sizeof(VirtIOIOMMU),
        .class_init = viommu_class_init,
    },
};

DEFINE_TYPES(viommu_types)
