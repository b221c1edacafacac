/*
 * virtio-iommu device (virtio ID 23): QEMU glue
 *
 * virtio-iommu: independent implementation, written from the virtio
 * specification.  This file connects the device logic of
 * virtio-iommu-core.c to QEMU: virtqueues, configuration space, one
 * IOMMU memory region per PCI function behind the IOMMU, fault reports on
 * the event queue, reset and properties.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/error-report.h"
#include "qemu/iov.h"
#include "qemu/log.h"
#include "qemu/range.h"
#include "qemu/units.h"
#include "qapi/error.h"
#include "qapi/qapi-builtin-visit.h"
#include "qapi/visitor.h"
#include "exec/address-spaces.h"
#include "exec/memory.h"
#include "hw/pci/pci_bus.h"
#include "hw/pci/pci_device.h"
#include "hw/qdev-properties.h"
#include "hw/qdev-properties-system.h"
#include "hw/virtio/virtio.h"
#include "hw/virtio/virtio-iommu.h"
#include "hw/virtio/virtio-iommu-core.h"
#include "hw/virtio/virtio-iommu-cache.h"
#include "hw/pci/pci_host.h"
#include "system/host_iommu_device.h"
#include "system/system.h"
#include "qemu/cutils.h"
#include "migration/vmstate.h"
#include "system/reset.h"
#include "standard-headers/linux/virtio_ids.h"
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

#define VIOMMU_FEATURES ((1ULL << VIRTIO_IOMMU_F_INPUT_RANGE) |   \
                         (1ULL << VIRTIO_IOMMU_F_DOMAIN_RANGE) |  \
                         (1ULL << VIRTIO_IOMMU_F_MAP_UNMAP) |     \
                         (1ULL << VIRTIO_IOMMU_F_PROBE) |         \
                         (1ULL << VIRTIO_IOMMU_F_MMIO) |          \
                         (1ULL << VIRTIO_IOMMU_F_BYPASS_CONFIG))

/* x-record-notifications: a notifier that logs what it receives */
typedef struct VIOMMURecorder {
    IOMMUNotifier notifier;
    VirtIOIOMMUSpace *sp;
    int index;
} VIOMMURecorder;

/* Translation cache statistics, updated without a lock */
typedef struct VIOMMUCacheStats {
    uint64_t hits;
    uint64_t misses;
} VIOMMUCacheStats;

/* The DMA address space of one PCI function (or requester ID alias) */
struct VirtIOIOMMUSpace {
    VirtIOIOMMU *viommu;
    PCIBus *bus;
    uint8_t devfn;
    /*
     * While attached, the endpoint ID the guest attached it as, under
     * s->lock.  Bus numbers change under our feet (a root port's reset
     * clears its secondary bus number before ours runs), so an attached
     * endpoint is never looked up by its current number.
     */
    bool bound;
    uint32_t bound_id;
    IOMMUMemoryRegion iommu_mr;
    MemoryRegion root;          /* holds iommu_mr and bypass_mr */
    MemoryRegion bypass_mr;     /* identity: an alias of system memory */
    AddressSpace as;
    IOMMUNotifierFlag notifier_flags;
    VIOMMUCache cache;          /* see virtio-iommu-cache.h */
    VIOMMUCacheStats cache_stats;
    VIOMMURecorder recorders[2];
    /* A host IOMMU device (VFIO) behind this function, and with it */
    HostIOMMUDevice *hiod;
    VIOMMUResvRegion *resv;     /* machine's and host's regions, sorted */
    size_t nr_resv;
};

struct VirtIOIOMMUFault {
    uint8_t reason;
    uint32_t flags;
    uint32_t endpoint;
    uint64_t address;
};

/* The requester ID the function has on the bus right now */
static uint32_t space_bus_id(VirtIOIOMMUSpace *sp)
{
    return PCI_BUILD_BDF(pci_bus_num(sp->bus), sp->devfn);
}

/* The endpoint ID the device state knows the function by */
static uint32_t space_endpoint_id(VirtIOIOMMUSpace *sp)
{
    return sp->bound ? sp->bound_id : space_bus_id(sp);
}

/*
 * Every space in creation order.  A flat list, not the per-bus tables:
 * UNMAP walks it to flush caches, so it costs the spaces that exist, not
 * 256 slots per bus.
 */
static void space_foreach(VirtIOIOMMU *s,
                          void (*fn)(VirtIOIOMMUSpace *sp, void *opaque),
                          void *opaque)
{
    guint i;

    for (i = 0; i < s->spaces->len; i++) {
        fn(g_ptr_array_index(s->spaces, i), opaque);
    }
}

typedef struct SpaceSearch {
    uint32_t ep_id;
    VirtIOIOMMUSpace *bound;
    VirtIOIOMMUSpace *on_bus;
} SpaceSearch;

static void space_match(VirtIOIOMMUSpace *sp, void *opaque)
{
    SpaceSearch *search = opaque;

    if (sp->bound) {
        if (sp->bound_id == search->ep_id && !search->bound) {
            search->bound = sp;
        }
    } else if (!search->on_bus && space_bus_id(sp) == search->ep_id &&
               sp->bus->devices[sp->devfn]) {
        search->on_bus = sp;
    }
}

/*
 * The address space of endpoint @ep_id: the one bound to it if it is
 * attached, else the function at that requester ID now.
 */
static VirtIOIOMMUSpace *space_by_endpoint(VirtIOIOMMU *s, uint32_t ep_id)
{
    SpaceSearch search = { .ep_id = ep_id };

    space_foreach(s, space_match, &search);
    return search.bound ? search.bound : search.on_bus;
}

/* s->lock held.  Only a bound space can be attached to anything. */
static const VIOMMUDomain *space_domain(VirtIOIOMMUSpace *sp)
{
    return sp->bound ? viommu_core_endpoint_domain(sp->viommu->core,
                                                   sp->bound_id) : NULL;
}

/* What DMA through a space in @domain (NULL: unattached) does */
static VIOMMUEndpointMode domain_mode(VirtIOIOMMU *s,
                                      const VIOMMUDomain *domain)
{
    if (!domain) {
        return viommu_core_get_bypass(s->core) ? VIOMMU_EP_BYPASS
                                               : VIOMMU_EP_BLOCKED;
    }
    return viommu_domain_is_bypass(domain) ? VIOMMU_EP_BYPASS
                                           : VIOMMU_EP_TRANSLATED;
}

static bool cache_lookup(VIOMMUCache *cache, uint64_t addr,
                         IOMMUAccessFlags access, IOMMUTLBEntry *entry)
{
    VIOMMUCacheEntry hit;

    if (!viommu_cache_lookup(cache, addr, access, &hit)) {
        return false;
    }
    entry->iova = hit.iova;
    entry->addr_mask = hit.mask;
    entry->translated_addr = hit.pa;
    entry->perm = hit.perm;
    return true;
}

/* s->lock held */
static void cache_insert(VIOMMUCache *cache, const IOMMUTLBEntry *entry)
{
    VIOMMUCacheEntry e = {
        .iova = entry->iova,
        .mask = entry->addr_mask,
        .pa = entry->translated_addr,
        .perm = entry->perm,
    };

    viommu_cache_insert(cache, &e);
}

/* Core callbacks; called with s->lock held */

static bool viommu_endpoint_exists(void *opaque, uint32_t ep_id)
{
    return space_by_endpoint(opaque, ep_id);
}

static size_t viommu_resv_regions(void *opaque, uint32_t ep_id,
                                  const VIOMMUResvRegion **regions)
{
    VirtIOIOMMU *s = opaque;
    VirtIOIOMMUSpace *sp;

    /* Only endpoints with a host IOMMU device have regions of their own */
    sp = s->nr_host_spaces ? space_by_endpoint(s, ep_id) : NULL;
    if (sp && sp->resv) {
        *regions = sp->resv;
        return sp->nr_resv;
    }
    *regions = s->resv;
    return s->nr_resv;
}

static IOMMUAccessFlags mapping_perm(const VIOMMUMapping *mapping)
{
    return IOMMU_ACCESS_FLAG(mapping->flags & VIRTIO_IOMMU_MAP_F_READ,
                             mapping->flags & VIRTIO_IOMMU_MAP_F_WRITE);
}

/*
 * IOMMU notifier events
 *
 * Requests queue events under s->lock; viommu_flush_events() delivers them
 * once the lock is released, since a notifier may call back into us.  Each
 * event covers a naturally aligned power-of-two IOVA block.  Mappings with
 * VIRTIO_IOMMU_MAP_F_MMIO target device registers, which a host IOMMU
 * cannot map: they are never sent as MAP, only unmapped.
 */

typedef struct VIOMMUPendingEvent {
    VirtIOIOMMUSpace *sp;
    IOMMUTLBEvent event;
} VIOMMUPendingEvent;

/* The largest aligned block starting at @iova that ends by @end */
static uint64_t block_mask_at(uint64_t iova, uint64_t end)
{
    uint64_t align_mask = iova ? (iova & -iova) - 1 : UINT64_MAX;
    uint64_t span = end - iova;
    uint64_t fit_mask = span == UINT64_MAX ? UINT64_MAX
                                           : pow2floor(span + 1) - 1;

    return MIN(align_mask, fit_mask);
}

typedef void (*BlockFn)(const IOMMUTLBEvent *event, void *opaque);

/* Split [start, end] of @mapping into events of @type */
static void foreach_block(const VIOMMUMapping *mapping, uint64_t start,
                          uint64_t end, IOMMUNotifierFlag type, BlockFn fn,
                          void *opaque)
{
    uint64_t iova = start;

    for (;;) {
        uint64_t mask = block_mask_at(iova, end);
        IOMMUTLBEvent event = {
            .type = type,
            .entry = {
                .target_as = &address_space_memory,
                .iova = iova,
                .translated_addr = mapping->phys_start +
                                   (iova - mapping->virt_start),
                .addr_mask = mask,
                .perm = type == IOMMU_NOTIFIER_MAP ? mapping_perm(mapping)
                                                   : IOMMU_NONE,
            },
        };

        fn(&event, opaque);
        if (iova + mask == end) {
            return;
        }
        iova += mask + 1;
    }
}

static void queue_block(const IOMMUTLBEvent *event, void *opaque)
{
    VIOMMUPendingEvent pending = { .sp = opaque, .event = *event };

    g_array_append_val(pending.sp->viommu->events, pending);
}

/* Queue what @sp's notifiers need to hear about @mapping; s->lock held */
static void queue_mapping(VirtIOIOMMUSpace *sp, const VIOMMUMapping *mapping,
                          bool added)
{
    IOMMUNotifierFlag flags = sp->notifier_flags;

    if (added) {
        if ((flags & IOMMU_NOTIFIER_MAP) &&
            !(mapping->flags & VIRTIO_IOMMU_MAP_F_MMIO)) {
            foreach_block(mapping, mapping->virt_start, mapping->virt_end,
                          IOMMU_NOTIFIER_MAP, queue_block, sp);
        }
        return;
    }
    if (flags & IOMMU_NOTIFIER_UNMAP) {
        foreach_block(mapping, mapping->virt_start, mapping->virt_end,
                      IOMMU_NOTIFIER_UNMAP, queue_block, sp);
    }
    if (flags & IOMMU_NOTIFIER_DEVIOTLB_UNMAP) {
        foreach_block(mapping, mapping->virt_start, mapping->virt_end,
                      IOMMU_NOTIFIER_DEVIOTLB_UNMAP, queue_block, sp);
    }
}

typedef struct QueueDomainEvents {
    VirtIOIOMMUSpace *sp;
    bool added;
} QueueDomainEvents;

static bool queue_domain_mapping(const VIOMMUMapping *mapping, void *opaque)
{
    QueueDomainEvents *q = opaque;

    queue_mapping(q->sp, mapping, q->added);
    return false;
}

/* The endpoint gains or loses every mapping of @domain */
static void queue_endpoint(VirtIOIOMMU *s, uint32_t ep_id,
                           const VIOMMUDomain *domain, bool added)
{
    QueueDomainEvents q = { .added = added };

    s->spaces_stale = true;
    q.sp = space_by_endpoint(s, ep_id);
    if (!q.sp) {
        return;
    }
    viommu_cache_flush(&q.sp->cache);
    if (q.sp->notifier_flags && !viommu_domain_is_bypass(domain)) {
        viommu_domain_foreach_mapping(domain, queue_domain_mapping, &q);
    }
    q.sp->bound = added;
    q.sp->bound_id = ep_id;
}

static void viommu_endpoint_detaching(void *opaque, uint32_t ep_id,
                                      const VIOMMUDomain *domain)
{
    queue_endpoint(opaque, ep_id, domain, false);
}

static void viommu_endpoint_attached(void *opaque, uint32_t ep_id,
                                     const VIOMMUDomain *domain)
{
    queue_endpoint(opaque, ep_id, domain, true);
}

typedef struct QueueSpaceEvents {
    const VIOMMUDomain *domain;
    const VIOMMUMapping *mapping;
    bool added;
} QueueSpaceEvents;

static void queue_space_mapping(VirtIOIOMMUSpace *sp, void *opaque)
{
    QueueSpaceEvents *q = opaque;

    if ((!q->added && sp->cache.used) || sp->notifier_flags) {
        if (space_domain(sp) == q->domain) {
            if (!q->added) {
                viommu_cache_flush(&sp->cache);
            }
            queue_mapping(sp, q->mapping, q->added);
        }
    }
}

/* Every endpoint of @domain gains or loses @mapping */
static void queue_domain(VirtIOIOMMU *s, const VIOMMUDomain *domain,
                         const VIOMMUMapping *mapping, bool added)
{
    QueueSpaceEvents q = { domain, mapping, added };

    if (!added || s->nr_notified_spaces) {
        space_foreach(s, queue_space_mapping, &q);
    }
}

static void viommu_mapping_added(void *opaque, const VIOMMUDomain *domain,
                                 const VIOMMUMapping *mapping)
{
    queue_domain(opaque, domain, mapping, true);
}

static void viommu_mapping_removed(void *opaque, const VIOMMUDomain *domain,
                                   const VIOMMUMapping *mapping)
{
    queue_domain(opaque, domain, mapping, false);
}

/* Deliver queued events; BQL held, s->lock not */
static void viommu_flush_events(VirtIOIOMMU *s)
{
    guint i;

    for (i = 0; i < s->events->len; i++) {
        VIOMMUPendingEvent *pending = &g_array_index(s->events,
                                                     VIOMMUPendingEvent, i);

        trace_viommu_notify(space_endpoint_id(pending->sp),
                            pending->event.type, pending->event.entry.iova,
                            pending->event.entry.addr_mask,
                            pending->event.entry.translated_addr,
                            pending->event.entry.perm);
        memory_region_notify_iommu(&pending->sp->iommu_mr, 0,
                                   pending->event);
    }
    g_array_set_size(s->events, 0);
}

static const VIOMMUCoreOps viommu_core_ops = {
    .endpoint_exists = viommu_endpoint_exists,
    .resv_regions = viommu_resv_regions,
    .endpoint_detaching = viommu_endpoint_detaching,
    .endpoint_attached = viommu_endpoint_attached,
    .mapping_added = viommu_mapping_added,
    .mapping_removed = viommu_mapping_removed,
};

/*
 * Memory regions can only be switched outside s->lock: a memory
 * transaction may call back into translate or replay.
 */
static void space_update(VirtIOIOMMUSpace *sp, void *opaque)
{
    VirtIOIOMMU *s = sp->viommu;
    VIOMMUEndpointMode mode;

    WITH_QEMU_LOCK_GUARD(&s->lock) {
        mode = domain_mode(s, space_domain(sp));
    }
    trace_viommu_space_mode(space_endpoint_id(sp), mode);
    memory_region_transaction_begin();
    memory_region_set_enabled(&sp->bypass_mr, mode == VIOMMU_EP_BYPASS);
    memory_region_set_enabled(MEMORY_REGION(&sp->iommu_mr),
                              mode != VIOMMU_EP_BYPASS);
    memory_region_transaction_commit();
}

/* s->lock held: whether an endpoint's mode may have changed since last */
static bool viommu_take_stale(VirtIOIOMMU *s)
{
    bool stale = s->spaces_stale;

    s->spaces_stale = false;
    return stale;
}

/* Tell notifiers, then switch memory regions if @stale; s->lock not held */
static void viommu_apply_changes(VirtIOIOMMU *s, bool stale)
{
    viommu_flush_events(s);
    if (stale) {
        space_foreach(s, space_update, NULL);
    }
}

/* After a state change made outside a request */
static void viommu_update_spaces(VirtIOIOMMU *s)
{
    bool stale;

    WITH_QEMU_LOCK_GUARD(&s->lock) {
        stale = viommu_take_stale(s);
    }
    viommu_apply_changes(s, stale);
}

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
}

/* Faults */

/* Queue a fault report; any thread, s->lock held */
static void viommu_queue_fault(VirtIOIOMMU *s, uint8_t reason,
                               uint32_t ep_id, IOMMUAccessFlags access,
                               uint64_t address)
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
                 (access & IOMMU_RO ? VIRTIO_IOMMU_FAULT_F_READ : 0) |
                 (access & IOMMU_WO ? VIRTIO_IOMMU_FAULT_F_WRITE : 0),
        .endpoint = ep_id,
        .address = address,
    };
    qemu_bh_schedule(s->fault_bh);
}

static bool viommu_peek_fault(VirtIOIOMMU *s, struct virtio_iommu_fault *rec)
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

static void viommu_drop_fault(VirtIOIOMMU *s)
{
    QEMU_LOCK_GUARD(&s->lock);
    s->fault_head = (s->fault_head + 1) % s->max_pending_faults;
    s->nr_faults--;
    s->stats.faults_delivered++;
}

/* Move queued faults into the eventq buffers the driver posted */
static void viommu_deliver_faults(void *opaque)
{
    VirtIOIOMMU *s = opaque;
    VirtIODevice *vdev = VIRTIO_DEVICE(s);
    struct virtio_iommu_fault rec;
    VirtQueueElement *elem;
    bool pushed = false;

    if (!(vdev->status & VIRTIO_CONFIG_S_DRIVER_OK)) {
        return;
    }
    while (viommu_peek_fault(s, &rec)) {
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
        viommu_drop_fault(s);
    }
    if (pushed) {
        virtio_notify(vdev, s->event_vq);
    }
}

static void viommu_handle_eventq(VirtIODevice *vdev, VirtQueue *vq)
{
    viommu_deliver_faults(VIRTIO_IOMMU(vdev));
}

/* Translation */

/* Translate @addr for a translated endpoint; s->lock held */
static void translate_in_domain(VirtIOIOMMUSpace *sp, uint32_t ep_id,
                                const VIOMMUDomain *domain, hwaddr addr,
                                IOMMUAccessFlags access, IOMMUTLBEntry *entry)
{
    VirtIOIOMMU *s = sp->viommu;
    const VIOMMUMapping *mapping = viommu_core_lookup(domain, addr);
    const VIOMMUResvRegion *resv;

    if (mapping) {
        entry->addr_mask = viommu_mapping_block_mask(mapping, addr);
        entry->iova = addr & ~entry->addr_mask;
        entry->translated_addr = mapping->phys_start +
                                 (entry->iova - mapping->virt_start);
        entry->perm = mapping_perm(mapping);
        if ((access & entry->perm) != access) {
            viommu_queue_fault(s, VIRTIO_IOMMU_FAULT_R_MAPPING, ep_id,
                               access, addr);
        } else if (entry->perm != IOMMU_NONE) {
            cache_insert(&sp->cache, entry);
        }
        return;
    }

    /* MSI doorbells reach the interrupt controller untranslated */
    resv = viommu_resv_find(s->resv, s->nr_resv, addr);
    if (resv && resv->subtype == VIRTIO_IOMMU_RESV_MEM_T_MSI) {
        entry->perm = IOMMU_RW;
        return;
    }
    if (access != IOMMU_NONE) {
        viommu_queue_fault(s, VIRTIO_IOMMU_FAULT_R_MAPPING, ep_id, access,
                           addr);
    }
}

static IOMMUTLBEntry viommu_translate(IOMMUMemoryRegion *iommu_mr,
                                      hwaddr addr, IOMMUAccessFlags access,
                                      int iommu_idx)
{
    VirtIOIOMMUSpace *sp = container_of(iommu_mr, VirtIOIOMMUSpace,
                                        iommu_mr);
    VirtIOIOMMU *s = sp->viommu;
    IOMMUTLBEntry entry = {
        .target_as = &address_space_memory,
        .iova = addr & ~(s->granule - 1),
        .translated_addr = addr & ~(s->granule - 1),
        .addr_mask = s->granule - 1,
        .perm = IOMMU_NONE,
    };
    const VIOMMUDomain *domain;
    VIOMMUEndpointMode mode;
    uint32_t ep_id;

    if (cache_lookup(&sp->cache, addr, access, &entry)) {
        qatomic_set(&sp->cache_stats.hits,
                    qatomic_read(&sp->cache_stats.hits) + 1);
        return entry;
    }
    qatomic_set(&sp->cache_stats.misses,
                qatomic_read(&sp->cache_stats.misses) + 1);

    QEMU_LOCK_GUARD(&s->lock);
    ep_id = space_endpoint_id(sp);
    domain = space_domain(sp);
    mode = domain_mode(s, domain);
    switch (mode) {
    case VIOMMU_EP_BYPASS:
        entry.perm = IOMMU_RW;
        break;
    case VIOMMU_EP_BLOCKED:
        if (access != IOMMU_NONE) {
            viommu_queue_fault(s, VIRTIO_IOMMU_FAULT_R_DOMAIN, ep_id, access,
                               addr);
        }
        break;
    case VIOMMU_EP_TRANSLATED:
        translate_in_domain(sp, ep_id, domain, addr, access, &entry);
        break;
    }
    trace_viommu_translate(ep_id, addr, access, mode, entry.translated_addr,
                           entry.addr_mask, entry.perm);
    return entry;
}

static uint64_t viommu_get_min_page_size(IOMMUMemoryRegion *iommu_mr)
{
    VirtIOIOMMUSpace *sp = container_of(iommu_mr, VirtIOIOMMUSpace,
                                        iommu_mr);

    return sp->viommu->granule;
}

static int viommu_notify_flag_changed(IOMMUMemoryRegion *iommu_mr,
                                      IOMMUNotifierFlag old,
                                      IOMMUNotifierFlag new, Error **errp)
{
    VirtIOIOMMUSpace *sp = container_of(iommu_mr, VirtIOIOMMUSpace,
                                        iommu_mr);
    VirtIOIOMMU *s = sp->viommu;

    QEMU_LOCK_GUARD(&s->lock);
    s->nr_notified_spaces += !!new - !!old;
    sp->notifier_flags = new;
    return 0;
}

typedef struct ReplayMapping {
    IOMMUNotifier *notifier;
    GArray *events;
} ReplayMapping;

static void replay_collect(const IOMMUTLBEvent *event, void *opaque)
{
    g_array_append_val((GArray *)opaque, *event);
}

static bool replay_mapping(const VIOMMUMapping *mapping, void *opaque)
{
    ReplayMapping *r = opaque;
    uint64_t start = MAX(mapping->virt_start, r->notifier->start);
    uint64_t end = MIN(mapping->virt_end, r->notifier->end);

    if (start <= end && !(mapping->flags & VIRTIO_IOMMU_MAP_F_MMIO)) {
        foreach_block(mapping, start, end, IOMMU_NOTIFIER_MAP,
                      replay_collect, r->events);
    }
    return false;
}

/* MAP every mapping the endpoint reaches, to @notifier alone */
static void viommu_replay(IOMMUMemoryRegion *iommu_mr, IOMMUNotifier *n)
{
    VirtIOIOMMUSpace *sp = container_of(iommu_mr, VirtIOIOMMUSpace,
                                        iommu_mr);
    VirtIOIOMMU *s = sp->viommu;
    g_autoptr(GArray) events = g_array_new(false, false,
                                           sizeof(IOMMUTLBEvent));
    ReplayMapping r = { .notifier = n, .events = events };
    const VIOMMUDomain *domain;
    uint32_t ep_id;
    guint i;

    if (!(n->notifier_flags & IOMMU_NOTIFIER_MAP)) {
        return;
    }
    WITH_QEMU_LOCK_GUARD(&s->lock) {
        ep_id = space_endpoint_id(sp);
        domain = space_domain(sp);
        if (domain_mode(s, domain) == VIOMMU_EP_TRANSLATED) {
            viommu_domain_foreach_mapping(domain, replay_mapping, &r);
        }
    }
    trace_viommu_replay(ep_id, events->len);
    for (i = 0; i < events->len; i++) {
        memory_region_notify_iommu_one(n, &g_array_index(events,
                                                         IOMMUTLBEvent, i));
    }
}

/*
 * Test hook: with x-record-notifications=on, every endpoint space carries
 * two notifiers that log what they receive, readable as x-notifications;
 * writing an endpoint ID to x-replay replays to the first one only.
 */

#define VIOMMU_NOTIFICATION_LOG_MAX 65536

static void viommu_record(IOMMUNotifier *n, IOMMUTLBEntry *entry)
{
    VIOMMURecorder *r = container_of(n, VIOMMURecorder, notifier);
    GPtrArray *log = r->sp->viommu->notification_log;

    if (log->len < VIOMMU_NOTIFICATION_LOG_MAX) {
        g_ptr_array_add(log, g_strdup_printf(
            "n%d %s ep=0x%x iova=0x%" PRIx64 " mask=0x%" PRIx64
            " pa=0x%" PRIx64 " perm=%d", r->index,
            entry->perm == IOMMU_NONE ? "UNMAP" : "MAP",
            space_endpoint_id(r->sp), entry->iova, entry->addr_mask,
            entry->translated_addr, entry->perm));
    }
}

static void space_add_recorders(VirtIOIOMMUSpace *sp)
{
    int i;

    for (i = 0; i < ARRAY_SIZE(sp->recorders); i++) {
        VIOMMURecorder *r = &sp->recorders[i];

        r->sp = sp;
        r->index = i;
        iommu_notifier_init(&r->notifier, viommu_record,
                            IOMMU_NOTIFIER_IOTLB_EVENTS, 0, UINT64_MAX, 0);
        memory_region_register_iommu_notifier(MEMORY_REGION(&sp->iommu_mr),
                                              &r->notifier, &error_abort);
    }
}

static void viommu_get_notifications(Object *obj, Visitor *v,
                                     const char *name, void *opaque,
                                     Error **errp)
{
    VirtIOIOMMU *s = VIRTIO_IOMMU(obj);
    strList *list = NULL, **tail = &list;
    guint i;

    for (i = 0; s->notification_log && i < s->notification_log->len; i++) {
        QAPI_LIST_APPEND(tail, g_strdup(s->notification_log->pdata[i]));
    }
    visit_type_strList(v, name, &list, errp);
    qapi_free_strList(list);
}

static void viommu_set_replay(Object *obj, Visitor *v, const char *name,
                              void *opaque, Error **errp)
{
    VirtIOIOMMU *s = VIRTIO_IOMMU(obj);
    VirtIOIOMMUSpace *sp;
    uint32_t ep_id;

    if (!visit_type_uint32(v, name, &ep_id, errp)) {
        return;
    }
    if (!s->record_notifications) {
        error_setg(errp, "x-replay needs x-record-notifications=on");
        return;
    }
    WITH_QEMU_LOCK_GUARD(&s->lock) {
        sp = space_by_endpoint(s, ep_id);
    }
    if (!sp) {
        error_setg(errp, "no endpoint 0x%" PRIx32, ep_id);
        return;
    }
    memory_region_iommu_replay(&sp->iommu_mr, &sp->recorders[0].notifier);
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

typedef struct SpaceTotals {
    uint64_t spaces;
    uint64_t cache_hits;
    uint64_t cache_misses;
} SpaceTotals;

static void count_space(VirtIOIOMMUSpace *sp, void *opaque)
{
    SpaceTotals *t = opaque;

    t->spaces++;
    t->cache_hits += qatomic_read(&sp->cache_stats.hits);
    t->cache_misses += qatomic_read(&sp->cache_stats.misses);
}

static bool visit_counter(Visitor *v, const char *name, uint64_t value,
                          Error **errp)
{
    return visit_type_uint64(v, name, &value, errp);
}

static bool visit_requests(Visitor *v, VirtIOIOMMUStats *stats, Error **errp)
{
    int type, status;
    bool ok = true;

    for (type = VIRTIO_IOMMU_T_ATTACH; ok && type <= VIRTIO_IOMMU_T_PROBE;
         type++) {
        ok = visit_start_struct(v, viommu_req_names[type], NULL, 0, errp);
        for (status = 0; ok && status <= VIRTIO_IOMMU_S_NOMEM; status++) {
            ok = visit_counter(v, viommu_status_names[status],
                               stats->requests[type][status], errp);
        }
        ok = ok && visit_check_struct(v, errp);
        visit_end_struct(v, NULL);
    }
    return ok;
}

static void viommu_get_stats(Object *obj, Visitor *v, const char *name,
                             void *opaque, Error **errp)
{
    VirtIOIOMMU *s = VIRTIO_IOMMU(obj);
    VirtIOIOMMUStats stats;
    VIOMMUCoreStats core;
    SpaceTotals totals = { 0 };
    bool ok;

    WITH_QEMU_LOCK_GUARD(&s->lock) {
        stats = s->stats;
        core = viommu_core_stats(s->core);
    }
    if (s->spaces) {
        space_foreach(s, count_space, &totals);
    }
    if (!visit_start_struct(v, name, NULL, 0, errp)) {
        return;
    }
    ok = visit_start_struct(v, "requests", NULL, 0, errp) &&
         visit_requests(v, &stats, errp) && visit_check_struct(v, errp);
    visit_end_struct(v, NULL);
    ok = ok &&
         visit_counter(v, "unanswered-requests", stats.unanswered, errp) &&
         visit_counter(v, "faults-reported", stats.faults_reported, errp) &&
         visit_counter(v, "faults-delivered", stats.faults_delivered, errp) &&
         visit_counter(v, "faults-dropped", stats.faults_dropped, errp) &&
         visit_counter(v, "domains", core.nr_domains, errp) &&
         visit_counter(v, "mappings", core.nr_mappings, errp) &&
         visit_counter(v, "attached-endpoints", core.nr_attached, errp) &&
         visit_counter(v, "address-spaces", totals.spaces, errp) &&
         visit_counter(v, "translation-cache-hits", totals.cache_hits,
                       errp) &&
         visit_counter(v, "translation-cache-misses", totals.cache_misses,
                       errp) &&
         visit_check_struct(v, errp);
    visit_end_struct(v, NULL);
}

/* Per-function address spaces */

static VirtIOIOMMUSpace *space_new(VirtIOIOMMU *s, PCIBus *bus, int devfn)
{
    VirtIOIOMMUSpace *sp = g_new0(VirtIOIOMMUSpace, 1);
    g_autofree char *name = g_strdup_printf("virtio-iommu-%s-%02x.%x",
                                            BUS(bus)->name,
                                            PCI_SLOT(devfn), PCI_FUNC(devfn));
    g_autofree char *bypass_name = g_strconcat(name, "-bypass", NULL);
    MemoryRegion *sysmem = get_system_memory();

    sp->viommu = s;
    sp->bus = bus;
    sp->devfn = devfn;
    viommu_cache_init(&sp->cache);
    memory_region_init_iommu(&sp->iommu_mr, sizeof(sp->iommu_mr),
                             TYPE_VIRTIO_IOMMU_MEMORY_REGION, OBJECT(s),
                             name, UINT64_MAX);
    memory_region_init(&sp->root, OBJECT(s), name, UINT64_MAX);
    memory_region_init_alias(&sp->bypass_mr, OBJECT(s), bypass_name, sysmem,
                             0, memory_region_size(sysmem));
    memory_region_add_subregion_overlap(&sp->root, 0,
                                        MEMORY_REGION(&sp->iommu_mr), 0);
    memory_region_add_subregion_overlap(&sp->root, 0, &sp->bypass_mr, 0);
    address_space_init(&sp->as, &sp->root, name);
    space_update(sp, NULL);
    if (s->record_notifications) {
        space_add_recorders(sp);
    }
    return sp;
}

static VirtIOIOMMUSpace *space_get(VirtIOIOMMU *s, PCIBus *bus, int devfn)
{
    VirtIOIOMMUSpace **spaces = g_hash_table_lookup(s->bus_spaces, bus);

    if (!spaces) {
        spaces = g_new0(VirtIOIOMMUSpace *, PCI_DEVFN_MAX);
        g_hash_table_insert(s->bus_spaces, bus, spaces);
    }
    if (!spaces[devfn]) {
        spaces[devfn] = space_new(s, bus, devfn);
        g_ptr_array_add(s->spaces, spaces[devfn]);
    }
    return spaces[devfn];
}

static bool is_self(VirtIOIOMMU *s, PCIBus *bus, int devfn)
{
    return s->self && pci_get_bus(s->self) == bus && s->self->devfn == devfn;
}

static AddressSpace *viommu_get_address_space(PCIBus *bus, void *opaque,
                                              int devfn)
{
    VirtIOIOMMU *s = opaque;

    /* The IOMMU's own DMA (its virtqueues) is never translated */
    if (is_self(s, bus, devfn)) {
        return &address_space_memory;
    }
    return &space_get(s, bus, devfn)->as;
}

/*
 * Host IOMMU devices
 *
 * A VFIO device's host IOMMU can only map some IOVA ranges and some page
 * sizes.  What it cannot map becomes RESERVED regions of that endpoint,
 * reported by PROBE and refused by MAP; the machine's regions keep
 * precedence where they overlap, so an MSI window stays an MSI window.
 * The page size mask narrows to what the host supports until machine init;
 * after that the guest may have read it, so a host device plugged later
 * must support our granule or it is refused.
 */

/* Append [start, end] minus every region of @cut to @out */
static void resv_add_uncut(GArray *out, uint64_t start, uint64_t end,
                           const VIOMMUResvRegion *cut, size_t nr_cut)
{
    size_t i;

    for (i = 0; i < nr_cut && start <= end; i++) {
        if (cut[i].end < start || cut[i].start > end) {
            continue;
        }
        if (cut[i].start > start) {
            VIOMMUResvRegion piece = {
                start, cut[i].start - 1, VIRTIO_IOMMU_RESV_MEM_T_RESERVED
            };

            g_array_append_val(out, piece);
        }
        if (cut[i].end == UINT64_MAX) {
            return;
        }
        start = cut[i].end + 1;
    }
    if (start <= end) {
        VIOMMUResvRegion piece = {
            start, end, VIRTIO_IOMMU_RESV_MEM_T_RESERVED
        };

        g_array_append_val(out, piece);
    }
}

static int resv_cmp(const void *a, const void *b)
{
    const VIOMMUResvRegion *x = a, *y = b;

    return x->start < y->start ? -1 : x->start > y->start;
}

/* The machine's regions plus what the host cannot map, sorted */
static GArray *host_resv_regions(VirtIOIOMMU *s, GList *usable)
{
    GArray *out = g_array_new(false, false, sizeof(VIOMMUResvRegion));
    GList *holes = NULL, *l;

    g_array_append_vals(out, s->resv, s->nr_resv);
    if (usable) {
        range_inverse_array(usable, &holes, 0,
                            MAKE_64BIT_MASK(0, s->aw_bits));
    }
    for (l = holes; l; l = l->next) {
        resv_add_uncut(out, range_lob(l->data), range_upb(l->data), s->resv,
                       s->nr_resv);
    }
    g_list_free_full(holes, g_free);
    g_array_sort(out, resv_cmp);
    return out;
}

static bool viommu_apply_host_mask(VirtIOIOMMU *s, uint64_t host_mask,
                                   const char *name, Error **errp)
{
    uint64_t mask = s->page_size_mask & host_mask;

    if (!host_mask) {
        return true;
    }
    if (phase_check(PHASE_MACHINE_READY)) {
        /* Frozen: the host must map our granule, in pages of its own */
        if (ctz64(host_mask) > ctz64(s->granule)) {
            error_setg(errp, "virtio-iommu: host IOMMU device %s needs pages "
                       "of at least 0x%llx, above the granule 0x%" PRIx64
                       " the guest already uses", name ? name : "",
                       1ULL << ctz64(host_mask), s->granule);
            return false;
        }
        return true;
    }
    if (!mask) {
        error_setg(errp, "virtio-iommu: host IOMMU device %s page sizes 0x%"
                   PRIx64 " share none with ours 0x%" PRIx64, name ? name : "",
                   host_mask, s->page_size_mask);
        return false;
    }
    s->page_size_mask = mask;
    s->granule = 1ULL << ctz64(mask);
    viommu_core_set_granule(s->core, s->granule);
    return true;
}

static bool viommu_set_iommu_device(PCIBus *bus, void *opaque, int devfn,
                                    HostIOMMUDevice *hiod, Error **errp)
{
    VirtIOIOMMU *s = opaque;
    HostIOMMUDeviceClass *hiodc = HOST_IOMMU_DEVICE_GET_CLASS(hiod);
    VirtIOIOMMUSpace *sp;
    GList *usable;
    GArray *regions;
    size_t capacity = s->probe_size /
                      sizeof(struct virtio_iommu_probe_resv_mem);

    if (is_self(s, bus, devfn)) {
        error_setg(errp, "virtio-iommu: cannot translate itself");
        return false;
    }
    sp = space_get(s, bus, devfn);
    if (sp->hiod) {
        error_setg(errp, "virtio-iommu: %02x.%x already has a host IOMMU "
                   "device", PCI_SLOT(devfn), PCI_FUNC(devfn));
        return false;
    }
    if (!viommu_apply_host_mask(s, hiodc->get_page_size_mask ?
                                hiodc->get_page_size_mask(hiod) : 0,
                                hiod->name, errp)) {
        return false;
    }
    usable = hiodc->get_iova_ranges ? hiodc->get_iova_ranges(hiod) : NULL;
    regions = host_resv_regions(s, usable);
    g_list_free_full(usable, g_free);
    if (regions->len > capacity) {
        error_setg(errp, "virtio-iommu: host IOMMU device %s has %u "
                   "reserved regions, PROBE holds %zu",
                   hiod->name ? hiod->name : "", regions->len, capacity);
        g_array_free(regions, true);
        return false;
    }

    QEMU_LOCK_GUARD(&s->lock);
    sp->hiod = hiod;
    sp->nr_resv = regions->len;
    sp->resv = (VIOMMUResvRegion *)g_array_free(regions, false);
    s->nr_host_spaces++;
    return true;
}

static void viommu_unset_iommu_device(PCIBus *bus, void *opaque, int devfn)
{
    VirtIOIOMMU *s = opaque;
    VirtIOIOMMUSpace **spaces = g_hash_table_lookup(s->bus_spaces, bus);
    VirtIOIOMMUSpace *sp = spaces ? spaces[devfn] : NULL;

    if (!sp || !sp->hiod) {
        return;
    }
    QEMU_LOCK_GUARD(&s->lock);
    sp->hiod = NULL;
    g_free(sp->resv);
    sp->resv = NULL;
    sp->nr_resv = 0;
    s->nr_host_spaces--;
}

static void viommu_test_hiod_realize(VirtIOIOMMU *s, PCIDevice *pdev);

static void viommu_device_realize(DeviceListener *listener, DeviceState *dev)
{
    VirtIOIOMMU *s = container_of(listener, VirtIOIOMMU, device_listener);

    if (s->test_hiods && object_dynamic_cast(OBJECT(dev), TYPE_PCI_DEVICE)) {
        viommu_test_hiod_realize(s, PCI_DEVICE(dev));
    }
}

/*
 * A PCI function behind us was unplugged.  Whatever comes next at its
 * address starts unattached: nothing of the old endpoint survives.
 * Functions behind a conventional PCI bridge share the bridge's address
 * space and are not looked up here; the bridge itself is.
 */
static void viommu_device_unrealize(DeviceListener *listener,
                                    DeviceState *dev)
{
    VirtIOIOMMU *s = container_of(listener, VirtIOIOMMU, device_listener);
    VirtIOIOMMUSpace **spaces, *sp;
    PCIDevice *pdev;

    if (!object_dynamic_cast(OBJECT(dev), TYPE_PCI_DEVICE)) {
        return;
    }
    pdev = PCI_DEVICE(dev);
    spaces = g_hash_table_lookup(s->bus_spaces, pci_get_bus(pdev));
    sp = spaces ? spaces[pdev->devfn] : NULL;
    if (!sp) {
        return;
    }
    WITH_QEMU_LOCK_GUARD(&s->lock) {
        viommu_core_forget_endpoint(s->core, space_endpoint_id(sp));
        viommu_cache_flush(&sp->cache);
        s->spaces_stale = true;
    }
    viommu_update_spaces(s);
}

/*
 * Test double of a host IOMMU device: x-test-host-iommu=<bdf>:<mask>[:
 * <start>-<end>...] plugs one at requester ID <bdf> with page size mask
 * <mask> and the usable IOVA ranges listed, as a VFIO device would; before
 * machine init it waits for machine init, after it applies at once and
 * reports refusal to the caller.  x-test-host-iommu-unplug=<bdf> removes
 * it.
 */
#define TYPE_VIOMMU_TEST_HIOD "x-virtio-iommu-test-host-iommu-device"
OBJECT_DECLARE_SIMPLE_TYPE(VIOMMUTestHIOD, VIOMMU_TEST_HIOD)

struct VIOMMUTestHIOD {
    HostIOMMUDevice parent_obj;
    uint32_t bdf;
    uint64_t page_size_mask;
    GList *usable;              /* Range */
};

static gpointer copy_range(gconstpointer src, gpointer unused)
{
    return g_memdup2(src, sizeof(Range));
}

static GList *test_hiod_get_iova_ranges(HostIOMMUDevice *hiod)
{
    return g_list_copy_deep(VIOMMU_TEST_HIOD(hiod)->usable, copy_range, NULL);
}

static uint64_t test_hiod_get_page_size_mask(HostIOMMUDevice *hiod)
{
    return VIOMMU_TEST_HIOD(hiod)->page_size_mask;
}

static bool test_hiod_realize(HostIOMMUDevice *hiod, void *opaque,
                              Error **errp)
{
    return true;
}

static void test_hiod_finalize(Object *obj)
{
    g_list_free_full(VIOMMU_TEST_HIOD(obj)->usable, g_free);
}

static void test_hiod_class_init(ObjectClass *klass, void *data)
{
    HostIOMMUDeviceClass *hiodc = HOST_IOMMU_DEVICE_CLASS(klass);

    hiodc->realize = test_hiod_realize;
    hiodc->get_iova_ranges = test_hiod_get_iova_ranges;
    hiodc->get_page_size_mask = test_hiod_get_page_size_mask;
}

static VIOMMUTestHIOD *test_hiod_parse(const char *str, Error **errp)
{
    g_auto(GStrv) fields = g_strsplit(str, ":", -1);
    VIOMMUTestHIOD *t;
    uint64_t bdf, start, end;
    const char *rest;
    int i;

    if (!fields[0] || !fields[1] ||
        qemu_strtou64(fields[0], NULL, 0, &bdf) || bdf > 0xffff) {
        error_setg(errp, "x-test-host-iommu: want <bdf>:<mask>[:<start>-<end>"
                   "...], got '%s'", str);
        return NULL;
    }
    t = VIOMMU_TEST_HIOD(object_new(TYPE_VIOMMU_TEST_HIOD));
    t->bdf = bdf;
    t->parent_obj.name = g_strdup_printf("test-hiod-%04" PRIx64, bdf);
    if (qemu_strtou64(fields[1], NULL, 0, &t->page_size_mask)) {
        goto bad;
    }
    for (i = 2; fields[i]; i++) {
        Range *r = g_new0(Range, 1);

        if (qemu_strtou64(fields[i], &rest, 0, &start) || *rest != '-' ||
            qemu_strtou64(rest + 1, NULL, 0, &end) || end < start) {
            g_free(r);
            goto bad;
        }
        range_set_bounds(r, start, end);
        t->usable = range_list_insert(t->usable, r);
    }
    return t;

bad:
    error_setg(errp, "x-test-host-iommu: cannot parse '%s'", str);
    object_unref(OBJECT(t));
    return NULL;
}

/* The bus of the PCI function at @bdf, as a VFIO device would have it */
static PCIBus *test_hiod_bus(VirtIOIOMMU *s, uint32_t bdf, Error **errp)
{
    PCIDevice *pdev = pci_find_device(s->primary_bus, PCI_BUS_NUM(bdf),
                                      bdf & 0xff);

    if (!pdev) {
        error_setg(errp, "x-test-host-iommu: no PCI function at 0x%x", bdf);
        return NULL;
    }
    return pci_get_bus(pdev);
}

static bool test_hiod_plug(VirtIOIOMMU *s, VIOMMUTestHIOD *t, Error **errp)
{
    PCIBus *bus = test_hiod_bus(s, t->bdf, errp);

    if (!bus || !viommu_set_iommu_device(bus, s, t->bdf & 0xff,
                                         HOST_IOMMU_DEVICE(t), errp)) {
        object_unref(OBJECT(t));
        return false;
    }
    return true;
}

static void viommu_set_test_hiod(Object *obj, const char *value,
                                 Error **errp)
{
    VirtIOIOMMU *s = VIRTIO_IOMMU(obj);
    VIOMMUTestHIOD *t = test_hiod_parse(value, errp);

    if (!t) {
        return;
    }
    if (!phase_check(PHASE_MACHINE_READY)) {
        s->test_hiods = g_list_append(s->test_hiods, t);
        return;
    }
    test_hiod_plug(s, t, errp);
}

static void viommu_set_test_hiod_unplug(Object *obj, Visitor *v,
                                        const char *name, void *opaque,
                                        Error **errp)
{
    VirtIOIOMMU *s = VIRTIO_IOMMU(obj);
    VirtIOIOMMUSpace **spaces;
    HostIOMMUDevice *hiod;
    PCIBus *bus;
    uint32_t bdf;

    if (!visit_type_uint32(v, name, &bdf, errp)) {
        return;
    }
    bus = test_hiod_bus(s, bdf, errp);
    if (!bus) {
        return;
    }
    spaces = g_hash_table_lookup(s->bus_spaces, bus);
    hiod = spaces && spaces[bdf & 0xff] ? spaces[bdf & 0xff]->hiod : NULL;
    if (!hiod || !object_dynamic_cast(OBJECT(hiod), TYPE_VIOMMU_TEST_HIOD)) {
        error_setg(errp, "x-test-host-iommu-unplug: nothing at 0x%x", bdf);
        return;
    }
    viommu_unset_iommu_device(bus, s, bdf & 0xff);
    object_unref(OBJECT(hiod));
}

/*
 * A test host IOMMU device given on the command line plugs when its PCI
 * function is realized, before machine init, as VFIO's would.
 */
static void viommu_test_hiod_realize(VirtIOIOMMU *s, PCIDevice *pdev)
{
    GList *l;

    for (l = s->test_hiods; l; l = l->next) {
        VIOMMUTestHIOD *t = l->data;

        if (t->bdf == PCI_BUILD_BDF(pci_dev_bus_num(pdev), pdev->devfn)) {
            s->test_hiods = g_list_delete_link(s->test_hiods, l);
            test_hiod_plug(s, t, &error_fatal);
            return;
        }
    }
}

static void viommu_machine_done(Notifier *notifier, void *data)
{
    VirtIOIOMMU *s = container_of(notifier, VirtIOIOMMU, machine_done);

    if (s->test_hiods) {
        error_report("x-test-host-iommu: no PCI function at 0x%x",
                     VIOMMU_TEST_HIOD(s->test_hiods->data)->bdf);
        exit(1);
    }
}

static const PCIIOMMUOps viommu_pci_ops = {
    .get_address_space = viommu_get_address_space,
    .set_iommu_device = viommu_set_iommu_device,
    .unset_iommu_device = viommu_unset_iommu_device,
};

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
    viommu_update_spaces(s);
}

/* System reset: bypass back to its initial value */
static void viommu_system_reset(void *opaque)
{
    VirtIOIOMMU *s = opaque;

    trace_viommu_system_reset(s->boot_bypass);
    viommu_set_bypass(s, s->boot_bypass);
}

/*
 * Migration
 *
 * The stream has stock QEMU's layout, so that a VM can move between its
 * device and ours: a GTree of domains with direct u32 keys, each holding
 * its ID, a GTree of mappings keyed by interval, a list of endpoint IDs
 * and its bypass flag; then config field bypass.  Saving builds that
 * shadow from the core; loading fills it and replays it through the core's
 * own ATTACH and MAP handlers, so an inconsistent or hostile stream fails
 * the migration instead of corrupting the state.
 */

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
    GTree *mappings;
    QLIST_HEAD(, VIOMMUMigEndpoint) endpoints;
    bool bypass;
} VIOMMUMigDomain;

/* A strict order: overlapping intervals in a stream stay distinct */
static gint mig_interval_cmp(gconstpointer a, gconstpointer b, gpointer u)
{
    const VIOMMUMigInterval *x = a, *y = b;

    if (x->virt_start != y->virt_start) {
        return x->virt_start < y->virt_start ? -1 : 1;
    }
    return x->virt_end < y->virt_end ? -1 : x->virt_end > y->virt_end;
}

static gint mig_domain_cmp(gconstpointer a, gconstpointer b, gpointer u)
{
    uint64_t x = (uintptr_t)a, y = (uintptr_t)b;

    return x < y ? -1 : x > y;
}

static void mig_domain_free(gpointer data)
{
    VIOMMUMigDomain *domain = data;
    VIOMMUMigEndpoint *ep, *next;

    if (domain->mappings) {
        g_tree_destroy(domain->mappings);
    }
    QLIST_FOREACH_SAFE(ep, &domain->endpoints, next, next) {
        g_free(ep);
    }
    g_free(domain);
}

static GTree *mig_domains_new(void)
{
    return g_tree_new_full(mig_domain_cmp, NULL, NULL, mig_domain_free);
}

static void mig_free(VirtIOIOMMU *s)
{
    if (s->mig_domains) {
        g_tree_destroy(s->mig_domains);
        s->mig_domains = NULL;
    }
    g_free(s->mig_faults);
    s->mig_faults = NULL;
    s->mig_nr_faults = 0;
}

static bool mig_save_mapping(const VIOMMUMapping *mapping, void *opaque)
{
    VIOMMUMigDomain *domain = opaque;
    VIOMMUMigInterval *key = g_new(VIOMMUMigInterval, 1);
    VIOMMUMigMapping *val = g_new(VIOMMUMigMapping, 1);

    *key = (VIOMMUMigInterval) { mapping->virt_start, mapping->virt_end };
    *val = (VIOMMUMigMapping) { mapping->phys_start, mapping->flags };
    g_tree_insert(domain->mappings, key, val);
    return false;
}

static void mig_save_endpoint(uint32_t ep_id, void *opaque)
{
    VIOMMUMigDomain *domain = opaque;
    VIOMMUMigEndpoint *ep = g_new0(VIOMMUMigEndpoint, 1);

    ep->id = ep_id;
    QLIST_INSERT_HEAD(&domain->endpoints, ep, next);
}

static VIOMMUMigDomain *mig_domain_new(void)
{
    VIOMMUMigDomain *domain = g_new0(VIOMMUMigDomain, 1);

    domain->mappings = g_tree_new_full(mig_interval_cmp, NULL, g_free,
                                       g_free);
    return domain;
}

static void mig_save_domain(const VIOMMUDomain *core_domain, void *opaque)
{
    GTree *domains = opaque;
    VIOMMUMigDomain *domain = mig_domain_new();

    domain->id = viommu_domain_id(core_domain);
    domain->bypass = viommu_domain_is_bypass(core_domain);
    viommu_domain_foreach_mapping(core_domain, mig_save_mapping, domain);
    viommu_domain_foreach_endpoint(core_domain, mig_save_endpoint, domain);
    g_tree_insert(domains, (gpointer)(uintptr_t)domain->id, domain);
}

static int viommu_pre_save(void *opaque)
{
    VirtIOIOMMU *s = opaque;
    uint32_t i;

    QEMU_LOCK_GUARD(&s->lock);
    mig_free(s);
    s->mig_domains = mig_domains_new();
    viommu_core_foreach_domain(s->core, mig_save_domain, s->mig_domains);
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

static int viommu_post_save(void *opaque)
{
    mig_free(opaque);
    return 0;
}

static int viommu_pre_load(void *opaque)
{
    VirtIOIOMMU *s = opaque;

    mig_free(s);
    s->mig_domains = mig_domains_new();
    return 0;
}

static int viommu_faults_pre_load(void *opaque)
{
    VirtIOIOMMU *s = opaque;

    g_free(s->mig_faults);
    s->mig_faults = NULL;
    return 0;
}

/* Replay one request through the core; s->lock held */
static uint8_t mig_replay(VirtIOIOMMU *s, const void *req, size_t len)
{
    VIOMMUReply reply = viommu_core_handle(s->core, req, len - 4, 4,
                                           s->probe_buf);

    return reply.has_status ? reply.status : VIRTIO_IOMMU_S_DEVERR;
}

typedef struct MigRestore {
    VirtIOIOMMU *s;
    VIOMMUMigDomain *domain;
    Error **errp;
} MigRestore;

static gboolean mig_restore_mapping(gpointer key, gpointer value,
                                    gpointer opaque)
{
    MigRestore *r = opaque;
    VIOMMUMigInterval *interval = key;
    VIOMMUMigMapping *mapping = value;
    struct virtio_iommu_req_map req = {
        .head.type = VIRTIO_IOMMU_T_MAP,
        .domain = cpu_to_le32(r->domain->id),
        .virt_start = cpu_to_le64(interval->virt_start),
        .virt_end = cpu_to_le64(interval->virt_end),
        .phys_start = cpu_to_le64(mapping->phys_start),
        .flags = cpu_to_le32(mapping->flags),
    };
    uint8_t status = mig_replay(r->s, &req, sizeof(req));

    if (status != VIRTIO_IOMMU_S_OK) {
        error_setg(r->errp, "domain %" PRIu32 ": mapping [0x%" PRIx64
                   ", 0x%" PRIx64 "] refused (status %u)", r->domain->id,
                   interval->virt_start, interval->virt_end, status);
        return true;
    }
    return false;
}

static bool mig_restore_endpoint(MigRestore *r, uint32_t ep_id)
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
    status = mig_replay(r->s, &req, sizeof(req));
    if (status != VIRTIO_IOMMU_S_OK) {
        error_setg(r->errp, "endpoint 0x%" PRIx32 " cannot attach to domain "
                   "%" PRIu32 " (status %u)", ep_id, r->domain->id, status);
        return false;
    }
    return true;
}

static gboolean mig_restore_domain(gpointer key, gpointer value,
                                   gpointer opaque)
{
    MigRestore *r = opaque;
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
        if (!mig_restore_endpoint(r, ep->id)) {
            return true;
        }
    }
    g_tree_foreach(r->domain->mappings, mig_restore_mapping, r);
    return *r->errp != NULL;
}

/* Checked before the array is allocated from the stream's count */
static bool viommu_faults_count_valid(void *opaque, int version_id)
{
    VirtIOIOMMU *s = opaque;

    return s->mig_nr_faults >= 0 &&
           s->mig_nr_faults <= s->max_pending_faults;
}

static bool mig_restore_faults(VirtIOIOMMU *s, Error **errp)
{
    int32_t i;

    if (!viommu_faults_count_valid(s, 1)) {
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

static bool mig_restore(VirtIOIOMMU *s, Error **errp)
{
    VirtIODevice *vdev = VIRTIO_DEVICE(s);
    MigRestore r = { .s = s, .errp = errp };

    QEMU_LOCK_GUARD(&s->lock);
    viommu_core_reset(s->core);
    if (s->mig_bypass > 1) {
        error_setg(errp, "config bypass is %u", s->mig_bypass);
        return false;
    }
    viommu_core_set_bypass(s->core, s->mig_bypass);
    /* The state was built by a driver that had these features */
    viommu_core_set_features(s->core, VIOMMU_FEATURES);
    g_tree_foreach(s->mig_domains, mig_restore_domain, &r);
    viommu_core_set_features(s->core, vdev->guest_features);
    s->spaces_stale = true;
    if (*errp) {
        viommu_core_reset(s->core);
        return false;
    }
    return mig_restore_faults(s, errp);
}

static int viommu_post_load(VirtIODevice *vdev)
{
    VirtIOIOMMU *s = VIRTIO_IOMMU(vdev);
    Error *err = NULL;
    bool ok = mig_restore(s, &err);

    trace_viommu_migration_load(g_tree_nnodes(s->mig_domains), ok);
    mig_free(s);
    viommu_update_spaces(s);
    if (!ok) {
        error_reportf_err(err, "virtio-iommu: cannot load state: ");
        return -EINVAL;
    }
    if (s->nr_faults) {
        qemu_bh_schedule(s->fault_bh);
    }
    return 0;
}

static const VMStateDescription vmstate_mig_interval_mapping[2] = {
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

static const VMStateDescription vmstate_mig_endpoint = {
    .name = "endpoint",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT32(id, VIOMMUMigEndpoint),
        VMSTATE_END_OF_LIST()
    },
};

static int mig_domain_pre_load(void *opaque)
{
    VIOMMUMigDomain *domain = opaque;

    domain->mappings = g_tree_new_full(mig_interval_cmp, NULL, g_free,
                                       g_free);
    QLIST_INIT(&domain->endpoints);
    return 0;
}

static const VMStateDescription vmstate_mig_domain = {
    .name = "domain",
    .version_id = 2,
    .minimum_version_id = 2,
    .pre_load = mig_domain_pre_load,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT32(id, VIOMMUMigDomain),
        VMSTATE_GTREE_V(mappings, VIOMMUMigDomain, 1,
                        vmstate_mig_interval_mapping,
                        VIOMMUMigInterval, VIOMMUMigMapping),
        VMSTATE_QLIST_V(endpoints, VIOMMUMigDomain, 1, vmstate_mig_endpoint,
                        VIOMMUMigEndpoint, next),
        VMSTATE_BOOL_V(bypass, VIOMMUMigDomain, 2),
        VMSTATE_END_OF_LIST()
    },
};

static const VMStateDescription vmstate_mig_fault = {
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
static bool viommu_faults_needed(void *opaque)
{
    VirtIOIOMMU *s = opaque;

    return s->migrate_pending_faults && s->mig_nr_faults;
}

static const VMStateDescription vmstate_viommu_faults = {
    .name = "virtio-iommu-device/pending-faults",
    .version_id = 1,
    .minimum_version_id = 1,
    .needed = viommu_faults_needed,
    .pre_load = viommu_faults_pre_load,
    .fields = (const VMStateField[]) {
        VMSTATE_INT32(mig_nr_faults, VirtIOIOMMU),
        VMSTATE_VALIDATE("pending faults within max-pending-faults",
                         viommu_faults_count_valid),
        VMSTATE_STRUCT_VARRAY_ALLOC(mig_faults, VirtIOIOMMU, mig_nr_faults,
                                    1, vmstate_mig_fault, VirtIOIOMMUFault),
        VMSTATE_END_OF_LIST()
    },
};

static const VMStateDescription vmstate_viommu_device = {
    .name = "virtio-iommu-device",
    .version_id = 2,
    .minimum_version_id = 2,
    .pre_save = viommu_pre_save,
    .post_save = viommu_post_save,
    .pre_load = viommu_pre_load,
    .fields = (const VMStateField[]) {
        VMSTATE_GTREE_DIRECT_KEY_V(mig_domains, VirtIOIOMMU, 2,
                                   &vmstate_mig_domain, VIOMMUMigDomain),
        VMSTATE_UINT8_V(mig_bypass, VirtIOIOMMU, 2),
        VMSTATE_END_OF_LIST()
    },
    .subsections = (const VMStateDescription * const []) {
        &vmstate_viommu_faults,
        NULL
    },
};

static const VMStateDescription vmstate_viommu = {
    .name = "virtio-iommu",
    .version_id = 2,
    .minimum_version_id = 2,
    .priority = MIG_PRI_IOMMU,
    .fields = (const VMStateField[]) {
        VMSTATE_VIRTIO_DEVICE,
        VMSTATE_END_OF_LIST()
    },
};

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
    qsort(s->resv, s->nr_resv, sizeof(*s->resv), resv_cmp);
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
    };

    qemu_mutex_init(&s->lock);
    s->core = viommu_core_new(&config, &viommu_core_ops, s);
    viommu_core_set_bypass(s->core, s->boot_bypass);
    s->probe_buf = g_malloc0(s->probe_size);
    s->faults = g_new0(VirtIOIOMMUFault, s->max_pending_faults);
    s->bus_spaces = g_hash_table_new_full(NULL, NULL, NULL, g_free);
    s->spaces = g_ptr_array_new();
    s->events = g_array_new(false, false, sizeof(VIOMMUPendingEvent));
    s->notification_log = g_ptr_array_new_with_free_func(g_free);
}

static void viommu_state_free(VirtIOIOMMU *s)
{
    mig_free(s);
    g_ptr_array_free(s->notification_log, true);
    g_array_free(s->events, true);
    g_ptr_array_free(s->spaces, true);
    g_hash_table_destroy(s->bus_spaces);
    g_free(s->faults);
    g_free(s->probe_buf);
    g_free(s->resv);
    viommu_core_free(s->core);
    qemu_mutex_destroy(&s->lock);
}

/* What the rest of QEMU calls us for: PCI DMA, device life, resets */
static void viommu_hook(VirtIOIOMMU *s)
{
    pci_setup_iommu(s->primary_bus, &viommu_pci_ops, s);
    s->device_listener = (DeviceListener) {
        .realize = viommu_device_realize,
        .unrealize = viommu_device_unrealize,
    };
    device_listener_register(&s->device_listener);
    s->machine_done.notify = viommu_machine_done;
    qemu_add_machine_init_done_notifier(&s->machine_done);
    qemu_register_reset(viommu_system_reset, s);
}

static void viommu_unhook(VirtIOIOMMU *s)
{
    qemu_unregister_reset(viommu_system_reset, s);
    qemu_remove_machine_init_done_notifier(&s->machine_done);
    device_listener_unregister(&s->device_listener);
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
    s->fault_bh = virtio_bh_new_guarded(dev, viommu_deliver_faults, s);

    virtio_init(vdev, VIRTIO_ID_IOMMU, sizeof(struct virtio_iommu_config));
    s->req_vq = virtio_add_queue(vdev, VIOMMU_QUEUE_SIZE,
                                 viommu_handle_requestq);
    s->event_vq = virtio_add_queue(vdev, VIOMMU_QUEUE_SIZE,
                                   viommu_handle_eventq);
    viommu_get_config(vdev, vdev->config);
    viommu_hook(s);
}

static void viommu_unrealize(DeviceState *dev)
{
    VirtIOIOMMU *s = VIRTIO_IOMMU(dev);

    viommu_unhook(s);
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
    /* For tests */
    DEFINE_PROP_BOOL("x-record-notifications", VirtIOIOMMU,
                     record_notifications, false),
};

static void viommu_class_init(ObjectClass *klass, void *data)
{
    DeviceClass *dc = DEVICE_CLASS(klass);
    VirtioDeviceClass *vdc = VIRTIO_DEVICE_CLASS(klass);

    device_class_set_props(dc, viommu_properties);
    dc->vmsd = &vmstate_viommu;
    set_bit(DEVICE_CATEGORY_MISC, dc->categories);
    vdc->realize = viommu_realize;
    vdc->unrealize = viommu_unrealize;
    vdc->reset = viommu_reset;
    vdc->get_config = viommu_get_config;
    vdc->set_config = viommu_set_config;
    vdc->get_features = viommu_get_features;
    vdc->set_features = viommu_set_features;
    vdc->vmsd = &vmstate_viommu_device;
    vdc->post_load = viommu_post_load;

    object_class_property_set_description(klass, "boot-bypass",
        "DMA of endpoints not attached to a domain bypasses the IOMMU "
        "until the guest driver writes config field bypass");
    object_class_property_set_description(klass, "granule",
        "smallest page size of mappings: 4k, 8k, 16k, 64k or host");
    object_class_property_set_description(klass, "aw-bits",
        "input address width in bits, 32 to 64 (input_range)");
    object_class_property_set_description(klass, "max-domains",
        "most domains alive at once; ATTACH past it fails with NOMEM");
    object_class_property_set_description(klass, "max-domain-id",
        "highest domain ID (domain_range.end)");
    object_class_property_set_description(klass, "max-mappings",
        "most mappings over all domains; MAP past it fails with NOMEM");
    object_class_property_add(klass, "stats", "VirtIOIOMMUStats",
                              viommu_get_stats, NULL, NULL, NULL);
    object_class_property_set_description(klass, "stats",
        "live counters: requests by type and status, faults, domains, "
        "mappings, attached endpoints");
    object_class_property_add_str(klass, "x-test-host-iommu", NULL,
                                  viommu_set_test_hiod);
    object_class_property_set_description(klass, "x-test-host-iommu",
        "testing: plug a fake host IOMMU device, "
        "<bdf>:<mask>[:<start>-<end>...] usable ranges");
    object_class_property_add(klass, "x-test-host-iommu-unplug", "uint32",
                              NULL, viommu_set_test_hiod_unplug, NULL, NULL);
    object_class_property_add(klass, "x-notifications", "strList",
                              viommu_get_notifications, NULL, NULL, NULL);
    object_class_property_add(klass, "x-replay", "uint32", NULL,
                              viommu_set_replay, NULL, NULL);
    object_class_property_set_description(klass, "x-record-notifications",
        "testing: log the IOMMU notifications of every endpoint");
    object_class_property_set_description(klass, "max-pending-faults",
        "fault reports kept while the guest has no eventq buffer posted");
    object_class_property_set_description(klass, "migrate-pending-faults",
        "migrate the fault reports still waiting for an eventq buffer; "
        "such a stream cannot be loaded by QEMU 10.0's device");
}

static void viommu_mr_class_init(ObjectClass *klass, void *data)
{
    IOMMUMemoryRegionClass *imrc = IOMMU_MEMORY_REGION_CLASS(klass);

    imrc->translate = viommu_translate;
    imrc->get_min_page_size = viommu_get_min_page_size;
    imrc->notify_flag_changed = viommu_notify_flag_changed;
    imrc->replay = viommu_replay;
}

static const TypeInfo viommu_types[] = {
    {
        .name = TYPE_VIRTIO_IOMMU,
        .parent = TYPE_VIRTIO_DEVICE,
        .instance_size = sizeof(VirtIOIOMMU),
        .class_init = viommu_class_init,
    },
    {
        .name = TYPE_VIRTIO_IOMMU_MEMORY_REGION,
        .parent = TYPE_IOMMU_MEMORY_REGION,
        .class_init = viommu_mr_class_init,
    },
    {
        .name = TYPE_VIOMMU_TEST_HIOD,
        .parent = TYPE_HOST_IOMMU_DEVICE,
        .instance_size = sizeof(VIOMMUTestHIOD),
        .instance_finalize = test_hiod_finalize,
        .class_init = test_hiod_class_init,
    },
};

DEFINE_TYPES(viommu_types)
