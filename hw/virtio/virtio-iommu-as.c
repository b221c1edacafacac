/*
 * virtio-iommu: the DMA address spaces of the endpoints
 *
 * Every PCI function behind the IOMMU gets an address space whose root
 * holds two regions: an IOMMU memory region that translates, and an alias
 * of system memory for endpoints in bypass; exactly one is enabled, as the
 * endpoint's mode says.  This file answers the memory core's translate
 * calls (through a lock-free cache per space), tells IOMMU notifiers (VFIO,
 * vhost) what endpoints gain and lose, replays mappings to a new notifier,
 * and forgets an endpoint whose function is unplugged.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/lockable.h"
#include "qemu/main-loop.h"
#include "exec/address-spaces.h"
#include "hw/pci/pci_bus.h"
#include "hw/pci/pci_device.h"
#include "hw/pci/pcie.h"
#include "hw/qdev-core.h"
#include "standard-headers/linux/virtio_iommu.h"
#include "virtio-iommu-internal.h"
#include "trace.h"

/* The core speaks QEMU's access flags without depending on QEMU */
QEMU_BUILD_BUG_ON(VIOMMU_PERM_READ != IOMMU_RO ||
                  VIOMMU_PERM_WRITE != IOMMU_WO ||
                  VIOMMU_PERM_RW != IOMMU_RW);

/* The requester ID the function has on the bus right now */
static uint32_t viommu_space_bus_id(VirtIOIOMMUSpace *sp)
{
    return PCI_BUILD_BDF(pci_bus_num(sp->bus), sp->devfn);
}

uint32_t viommu_space_endpoint_id(VirtIOIOMMUSpace *sp)
{
    return sp->bound ? sp->bound_id : viommu_space_bus_id(sp);
}

/*
 * Every space in creation order.  A flat list, not the per-bus tables:
 * an UNMAP walks it once to flush caches, so it costs the spaces that
 * exist, not 256 slots per bus.
 */
void viommu_space_foreach(VirtIOIOMMU *s,
                          void (*fn)(VirtIOIOMMUSpace *sp, void *opaque),
                          void *opaque)
{
    guint i;

    for (i = 0; i < s->spaces->len; i++) {
        fn(g_ptr_array_index(s->spaces, i), opaque);
    }
}

/*
 * DMA aliases
 *
 * A conventional PCI bus hides its functions' requester IDs: behind a
 * PCIe-to-PCI bridge their DMA reaches us as the secondary bus with devfn
 * 0, behind other bridges as the bridge's own ID, the rules of QEMU's
 * pci_device_get_iommu_bus_devfn() (and of Linux's
 * pci_for_each_dma_alias()).  QEMU gives all of them the one address space
 * of that alias.  The guest knows such a function by its own ID and by the
 * alias, probes the first and attaches both: both IDs are endpoints, and
 * the alias's attachment decides the space's translation (it "governs"
 * the space); the function's own ID is accepted and recorded, and changes
 * nothing the space does.  Faults name the alias, the ID the DMA carries.
 */

/* Is @sp the alias of the functions of a PCIe-to-PCI bridge's bus? */
static bool viommu_space_is_bridge_alias(VirtIOIOMMUSpace *sp)
{
    PCIDevice *bridge = sp->bus->parent_dev;

    return sp->devfn == PCI_DEVFN(0, 0) && bridge &&
           !pci_bus_is_express(sp->bus) && pci_is_express(bridge) &&
           pcie_cap_get_type(bridge) == PCI_EXP_TYPE_PCI_BRIDGE;
}

/* Does any function's DMA reach us through @sp now? */
static bool viommu_space_in_use(VirtIOIOMMUSpace *sp)
{
    int devfn;

    if (sp->bus->devices[sp->devfn]) {
        return true;
    }
    if (!viommu_space_is_bridge_alias(sp)) {
        return false;
    }
    for (devfn = 0; devfn < PCI_DEVFN_MAX; devfn++) {
        if (sp->bus->devices[devfn]) {
            return true;
        }
    }
    return false;
}

/* Where @pdev's DMA reaches the IOMMU: the alias's bus and devfn */
static void viommu_dma_alias(PCIDevice *pdev, PCIBus **bus, int *devfn)
{
    PCIBus *iommu_bus = pci_get_bus(pdev);

    *bus = iommu_bus;
    *devfn = pdev->devfn;
    while (!iommu_bus->iommu_ops && iommu_bus->parent_dev) {
        PCIDevice *bridge = iommu_bus->parent_dev;

        if (!pci_bus_is_express(iommu_bus)) {
            if (pci_is_express(bridge) &&
                pcie_cap_get_type(bridge) == PCI_EXP_TYPE_PCI_BRIDGE) {
                *bus = iommu_bus;
                *devfn = PCI_DEVFN(0, 0);
            } else {
                *bus = pci_get_bus(bridge);
                *devfn = bridge->devfn;
            }
        }
        iommu_bus = pci_get_bus(bridge);
    }
}

typedef struct VIOMMUSpaceSearch {
    uint32_t ep_id;
    VirtIOIOMMUSpace *bound;
    VirtIOIOMMUSpace *on_bus;
} VIOMMUSpaceSearch;

static void viommu_space_match(VirtIOIOMMUSpace *sp, void *opaque)
{
    VIOMMUSpaceSearch *search = opaque;

    if (sp->bound) {
        if (sp->bound_id == search->ep_id && !search->bound) {
            search->bound = sp;
        }
    } else if (!search->on_bus && viommu_space_bus_id(sp) == search->ep_id &&
               viommu_space_in_use(sp)) {
        search->on_bus = sp;
    }
}

/*
 * The address space of endpoint @ep_id, and whether @ep_id governs it:
 * the space bound to it if it is attached, else the space whose
 * requester ID or alias it is now; or, for the own ID of a function
 * behind an alias, the alias's space, which @ep_id does not govern.
 */
static VirtIOIOMMUSpace *viommu_space_of_endpoint(VirtIOIOMMU *s,
                                                  uint32_t ep_id,
                                                  bool *governs)
{
    VIOMMUSpaceSearch search = { .ep_id = ep_id };
    PCIDevice *pdev;
    PCIBus *bus;
    int devfn;

    viommu_space_foreach(s, viommu_space_match, &search);
    *governs = true;
    if (search.bound || search.on_bus) {
        return search.bound ? search.bound : search.on_bus;
    }
    pdev = ep_id <= VIOMMU_MAX_ENDPOINT_ID ?
           pci_find_device(s->primary_bus, PCI_BUS_NUM(ep_id),
                           ep_id & 0xff) : NULL;
    if (!pdev || (s->self && pdev == s->self)) {
        return NULL;
    }
    *governs = false;
    viommu_dma_alias(pdev, &bus, &devfn);
    return viommu_space_find(s, bus, devfn);
}

static VirtIOIOMMUSpace *viommu_space_by_endpoint(VirtIOIOMMU *s,
                                                  uint32_t ep_id)
{
    bool governs;

    return viommu_space_of_endpoint(s, ep_id, &governs);
}

/* s->lock held.  Only a bound space can be attached to anything. */
static const VIOMMUDomain *viommu_space_domain(VirtIOIOMMUSpace *sp)
{
    return sp->bound ? viommu_core_endpoint_domain(sp->viommu->core,
                                                   sp->bound_id) : NULL;
}

static bool viommu_space_cache_lookup(VirtIOIOMMUSpace *sp, uint64_t addr,
                                      IOMMUAccessFlags access,
                                      IOMMUTLBEntry *entry)
{
    /* Set only on a hit, which GCC cannot see through the seqlock loop */
    VIOMMUCacheEntry hit = { 0 };

    if (!viommu_cache_lookup(&sp->cache, addr, access, &hit)) {
        return false;
    }
    entry->iova = hit.iova;
    entry->addr_mask = hit.mask;
    entry->translated_addr = hit.pa;
    entry->perm = hit.perm;
    return true;
}

/* s->lock held */
static void viommu_space_cache_insert(VirtIOIOMMUSpace *sp,
                                      const IOMMUTLBEntry *entry)
{
    VIOMMUCacheEntry e = {
        .iova = entry->iova,
        .mask = entry->addr_mask,
        .pa = entry->translated_addr,
        .perm = entry->perm,
    };

    viommu_cache_insert(&sp->cache, &e);
}

/*
 * IOMMU notifier events
 *
 * Requests queue events under s->lock; viommu_event_flush() delivers them
 * once the lock is released, since a notifier may call back into us.  Each
 * event covers a naturally aligned power-of-two IOVA block.  Mappings with
 * VIRTIO_IOMMU_MAP_F_MMIO target device registers, which a host IOMMU
 * cannot map: they are never sent as MAP, only unmapped.
 */

typedef struct VIOMMUEvent {
    VirtIOIOMMUSpace *sp;
    IOMMUTLBEvent event;
} VIOMMUEvent;

/* Where the blocks of one mapping go, and as what */
typedef struct VIOMMUEventBlocks {
    GArray *out;                /* VIOMMUEvent */
    VirtIOIOMMUSpace *sp;
    IOMMUNotifierFlag type;
    IOMMUAccessFlags perm;
} VIOMMUEventBlocks;

static void viommu_event_block(uint64_t iova, uint64_t mask, uint64_t pa,
                               void *opaque)
{
    VIOMMUEventBlocks *b = opaque;
    VIOMMUEvent ev = {
        .sp = b->sp,
        .event = {
            .type = b->type,
            .entry = {
                .target_as = &address_space_memory,
                .iova = iova,
                .translated_addr = pa,
                .addr_mask = mask,
                .perm = b->perm,
            },
        },
    };

    g_array_append_val(b->out, ev);
}

/* Append events of @type for [start, end] of @mapping to @out */
static void viommu_event_blocks(GArray *out, VirtIOIOMMUSpace *sp,
                                const VIOMMUMapping *mapping, uint64_t start,
                                uint64_t end, IOMMUNotifierFlag type)
{
    VIOMMUEventBlocks b = {
        .out = out,
        .sp = sp,
        .type = type,
        .perm = type == IOMMU_NOTIFIER_MAP ? viommu_mapping_perm(mapping)
                                           : IOMMU_NONE,
    };

    viommu_mapping_foreach_block(mapping, start, end, viommu_event_block, &b);
}

/* Queue what @sp's notifiers need to hear about @mapping; s->lock held */
static void viommu_event_queue_mapping(VirtIOIOMMUSpace *sp,
                                       const VIOMMUMapping *mapping,
                                       bool added)
{
    GArray *out = sp->viommu->events;
    IOMMUNotifierFlag flags = sp->notifier_flags;
    uint64_t start = mapping->virt_start, end = mapping->virt_end;

    if (added) {
        if ((flags & IOMMU_NOTIFIER_MAP) &&
            !(mapping->flags & VIRTIO_IOMMU_MAP_F_MMIO)) {
            viommu_event_blocks(out, sp, mapping, start, end,
                                IOMMU_NOTIFIER_MAP);
        }
        return;
    }
    if (flags & IOMMU_NOTIFIER_UNMAP) {
        viommu_event_blocks(out, sp, mapping, start, end,
                            IOMMU_NOTIFIER_UNMAP);
    }
    if (flags & IOMMU_NOTIFIER_DEVIOTLB_UNMAP) {
        viommu_event_blocks(out, sp, mapping, start, end,
                            IOMMU_NOTIFIER_DEVIOTLB_UNMAP);
    }
}

typedef struct VIOMMUEventEndpoint {
    VirtIOIOMMUSpace *sp;
    bool added;
} VIOMMUEventEndpoint;

static bool viommu_event_endpoint_mapping(const VIOMMUMapping *mapping,
                                          void *opaque)
{
    VIOMMUEventEndpoint *e = opaque;

    viommu_event_queue_mapping(e->sp, mapping, e->added);
    return false;
}

/* The endpoint gains or loses every mapping of @domain */
static void viommu_event_queue_endpoint(VirtIOIOMMU *s, uint32_t ep_id,
                                        const VIOMMUDomain *domain,
                                        bool added)
{
    VIOMMUEventEndpoint e = { .added = added };
    bool governs;

    e.sp = viommu_space_of_endpoint(s, ep_id, &governs);
    if (!e.sp || !governs) {
        /* Only the alias decides what the space does */
        return;
    }
    s->spaces_stale = true;
    viommu_cache_flush(&e.sp->cache);
    if (e.sp->notifier_flags && !viommu_domain_is_bypass(domain)) {
        viommu_domain_foreach_mapping(domain, viommu_event_endpoint_mapping,
                                      &e);
    }
    e.sp->bound = added;
    e.sp->bound_id = ep_id;
}

typedef struct VIOMMUEventDomain {
    const VIOMMUDomain *domain;
    const VIOMMUMapping *mapping;
} VIOMMUEventDomain;

static void viommu_event_domain_space(VirtIOIOMMUSpace *sp, void *opaque)
{
    VIOMMUEventDomain *e = opaque;

    if (sp->notifier_flags && viommu_space_domain(sp) == e->domain) {
        viommu_event_queue_mapping(sp, e->mapping, true);
    }
}

/* Every endpoint of @domain gains @mapping */
static void viommu_event_queue_added(VirtIOIOMMU *s,
                                     const VIOMMUDomain *domain,
                                     const VIOMMUMapping *mapping)
{
    VIOMMUEventDomain e = { domain, mapping };

    if (s->nr_notified_spaces) {
        viommu_space_foreach(s, viommu_event_domain_space, &e);
    }
}

/* Deliver queued events; BQL held, s->lock not */
static void viommu_event_flush(VirtIOIOMMU *s)
{
    guint i;

    for (i = 0; i < s->events->len; i++) {
        VIOMMUEvent *ev = &g_array_index(s->events, VIOMMUEvent, i);

        trace_viommu_notify(viommu_space_endpoint_id(ev->sp),
                            ev->event.type, ev->event.entry.iova,
                            ev->event.entry.addr_mask,
                            ev->event.entry.translated_addr,
                            ev->event.entry.perm);
        memory_region_notify_iommu(&ev->sp->iommu_mr, 0, ev->event);
    }
    g_array_set_size(s->events, 0);
}

/* Core callbacks; called with s->lock held */

static bool viommu_on_endpoint_exists(void *opaque, uint32_t ep_id)
{
    return viommu_space_by_endpoint(opaque, ep_id);
}

static size_t viommu_on_resv_regions(void *opaque, uint32_t ep_id,
                                     const VIOMMUResvRegion **regions)
{
    VirtIOIOMMU *s = opaque;
    VirtIOIOMMUSpace *sp;

    /* Only endpoints with a host IOMMU device have regions of their own */
    sp = s->nr_host_spaces ? viommu_space_by_endpoint(s, ep_id) : NULL;
    if (sp && sp->resv) {
        *regions = sp->resv;
        return sp->nr_resv;
    }
    *regions = s->resv;
    return s->nr_resv;
}

static void viommu_on_endpoint_detaching(void *opaque, uint32_t ep_id,
                                         const VIOMMUDomain *domain)
{
    viommu_event_queue_endpoint(opaque, ep_id, domain, false);
}

static void viommu_on_endpoint_attached(void *opaque, uint32_t ep_id,
                                        const VIOMMUDomain *domain)
{
    viommu_event_queue_endpoint(opaque, ep_id, domain, true);
}

static void viommu_on_mapping_added(void *opaque,
                                    const VIOMMUDomain *domain,
                                    const VIOMMUMapping *mapping)
{
    viommu_event_queue_added(opaque, domain, mapping);
}

/*
 * An UNMAP of @domain begins: flush the caches of its endpoints' spaces
 * now, under the lock the whole request holds (a translation can only be
 * cached again under it, from the mappings left), and note which of them
 * have notifiers: each removal goes to those alone, not to every space.
 */
static void viommu_on_domain_unmapping(void *opaque,
                                       const VIOMMUDomain *domain)
{
    VirtIOIOMMU *s = opaque;
    guint i;

    g_ptr_array_set_size(s->unmap_spaces, 0);
    for (i = 0; i < s->spaces->len; i++) {
        VirtIOIOMMUSpace *sp = g_ptr_array_index(s->spaces, i);

        if ((sp->cache.used || sp->notifier_flags) &&
            viommu_space_domain(sp) == domain) {
            viommu_cache_flush(&sp->cache);
            if (sp->notifier_flags) {
                g_ptr_array_add(s->unmap_spaces, sp);
            }
        }
    }
}

static void viommu_on_mapping_removed(void *opaque,
                                      const VIOMMUDomain *domain,
                                      const VIOMMUMapping *mapping)
{
    VirtIOIOMMU *s = opaque;
    guint i;

    for (i = 0; i < s->unmap_spaces->len; i++) {
        viommu_event_queue_mapping(g_ptr_array_index(s->unmap_spaces, i),
                                   mapping, false);
    }
}

const VIOMMUCoreOps viommu_core_ops = {
    .endpoint_exists = viommu_on_endpoint_exists,
    .resv_regions = viommu_on_resv_regions,
    .endpoint_detaching = viommu_on_endpoint_detaching,
    .endpoint_attached = viommu_on_endpoint_attached,
    .mapping_added = viommu_on_mapping_added,
    .mapping_removed = viommu_on_mapping_removed,
    .domain_unmapping = viommu_on_domain_unmapping,
};

/*
 * Memory regions can only be switched outside s->lock: a memory
 * transaction may call back into translate or replay.
 */
static void viommu_space_update(VirtIOIOMMUSpace *sp, void *opaque)
{
    VirtIOIOMMU *s = sp->viommu;
    VIOMMUEndpointMode mode;

    WITH_QEMU_LOCK_GUARD(&s->lock) {
        mode = viommu_core_domain_mode(s->core, viommu_space_domain(sp));
    }
    trace_viommu_space_mode(viommu_space_endpoint_id(sp), mode);
    memory_region_transaction_begin();
    memory_region_set_enabled(&sp->bypass_mr, mode == VIOMMU_EP_BYPASS);
    memory_region_set_enabled(MEMORY_REGION(&sp->iommu_mr),
                              mode != VIOMMU_EP_BYPASS);
    memory_region_transaction_commit();
}

bool viommu_take_stale(VirtIOIOMMU *s)
{
    bool stale = s->spaces_stale;

    s->spaces_stale = false;
    return stale;
}

void viommu_apply_changes(VirtIOIOMMU *s, bool stale)
{
    viommu_event_flush(s);
    if (stale) {
        viommu_space_foreach(s, viommu_space_update, NULL);
    }
}

void viommu_update_spaces(VirtIOIOMMU *s)
{
    bool stale;

    WITH_QEMU_LOCK_GUARD(&s->lock) {
        stale = viommu_take_stale(s);
    }
    viommu_apply_changes(s, stale);
}

/* The IOMMU memory region */

static IOMMUTLBEntry viommu_mr_translate(IOMMUMemoryRegion *iommu_mr,
                                         hwaddr addr,
                                         IOMMUAccessFlags access,
                                         int iommu_idx)
{
    VirtIOIOMMUSpace *sp = container_of(iommu_mr, VirtIOIOMMUSpace,
                                        iommu_mr);
    VirtIOIOMMU *s = sp->viommu;
    IOMMUTLBEntry entry = { .target_as = &address_space_memory };
    VIOMMUTranslation t;
    uint32_t ep_id;

    if (viommu_space_cache_lookup(sp, addr, access, &entry)) {
        qatomic_set(&sp->cache_stats.hits,
                    qatomic_read(&sp->cache_stats.hits) + 1);
        return entry;
    }
    qatomic_set(&sp->cache_stats.misses,
                qatomic_read(&sp->cache_stats.misses) + 1);

    QEMU_LOCK_GUARD(&s->lock);
    ep_id = viommu_space_endpoint_id(sp);
    t = viommu_core_translate(s->core, viommu_space_domain(sp), addr,
                              access);
    if (t.fault) {
        viommu_fault_queue(s, t.reason, ep_id, access, addr);
    }
    entry.iova = t.iova;
    entry.translated_addr = t.pa;
    entry.addr_mask = t.mask;
    entry.perm = t.perm;
    if (t.cacheable) {
        viommu_space_cache_insert(sp, &entry);
    }
    trace_viommu_translate(ep_id, addr, access, t.mode, entry.translated_addr,
                           entry.addr_mask, entry.perm);
    return entry;
}

static uint64_t viommu_mr_get_min_page_size(IOMMUMemoryRegion *iommu_mr)
{
    VirtIOIOMMUSpace *sp = container_of(iommu_mr, VirtIOIOMMUSpace,
                                        iommu_mr);

    return sp->viommu->granule;
}

static int viommu_mr_notify_flag_changed(IOMMUMemoryRegion *iommu_mr,
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

typedef struct VIOMMUReplay {
    IOMMUNotifier *notifier;
    GArray *events;             /* VIOMMUEvent; NULL: notify at once */
    IOMMUAccessFlags perm;      /* of the mapping being notified */
    unsigned count;
} VIOMMUReplay;

static void viommu_replay_block(uint64_t iova, uint64_t mask, uint64_t pa,
                                void *opaque)
{
    VIOMMUReplay *r = opaque;
    IOMMUTLBEvent event = {
        .type = IOMMU_NOTIFIER_MAP,
        .entry = {
            .target_as = &address_space_memory,
            .iova = iova,
            .translated_addr = pa,
            .addr_mask = mask,
            .perm = r->perm,
        },
    };

    memory_region_notify_iommu_one(r->notifier, &event);
    r->count++;
}

static bool viommu_replay_mapping(const VIOMMUMapping *mapping, void *opaque)
{
    VIOMMUReplay *r = opaque;
    uint64_t start = MAX(mapping->virt_start, r->notifier->start);
    uint64_t end = MIN(mapping->virt_end, r->notifier->end);

    if (start > end || (mapping->flags & VIRTIO_IOMMU_MAP_F_MMIO)) {
        return false;
    }
    if (r->events) {
        viommu_event_blocks(r->events, NULL, mapping, start, end,
                            IOMMU_NOTIFIER_MAP);
    } else {
        r->perm = viommu_mapping_perm(mapping);
        viommu_mapping_foreach_block(mapping, start, end, viommu_replay_block,
                                     r);
    }
    return false;
}

/* MAP every mapping the endpoint reaches, to @n alone */
static void viommu_mr_replay(IOMMUMemoryRegion *iommu_mr, IOMMUNotifier *n)
{
    VirtIOIOMMUSpace *sp = container_of(iommu_mr, VirtIOIOMMUSpace,
                                        iommu_mr);
    VirtIOIOMMU *s = sp->viommu;
    g_autoptr(GArray) events = NULL;
    VIOMMUReplay r = { .notifier = n };
    const VIOMMUDomain *domain;
    uint32_t ep_id;
    guint i;

    if (!(n->notifier_flags & IOMMU_NOTIFIER_MAP)) {
        return;
    }
    if (bql_locked()) {
        /*
         * Domains and mappings change only under the BQL (requests, reset,
         * migration and unplug run in the main loop); translate in other
         * threads only reads them.  So the walk needs no s->lock and
         * notifies as it goes, without a copy of every event of the
         * domain; a notifier may still call back into translate.
         */
        ep_id = viommu_space_endpoint_id(sp);
        domain = viommu_space_domain(sp);
        if (viommu_core_domain_mode(s->core, domain) ==
            VIOMMU_EP_TRANSLATED) {
            viommu_domain_foreach_mapping(domain, viommu_replay_mapping, &r);
        }
        trace_viommu_replay(ep_id, r.count);
        return;
    }
    events = g_array_new(false, false, sizeof(VIOMMUEvent));
    r.events = events;
    WITH_QEMU_LOCK_GUARD(&s->lock) {
        ep_id = viommu_space_endpoint_id(sp);
        domain = viommu_space_domain(sp);
        if (viommu_core_domain_mode(s->core, domain) ==
            VIOMMU_EP_TRANSLATED) {
            viommu_domain_foreach_mapping(domain, viommu_replay_mapping, &r);
        }
    }
    trace_viommu_replay(ep_id, events->len);
    for (i = 0; i < events->len; i++) {
        memory_region_notify_iommu_one(n, &g_array_index(events, VIOMMUEvent,
                                                         i).event);
    }
}

/* Spaces */

static VirtIOIOMMUSpace *viommu_space_new(VirtIOIOMMU *s, PCIBus *bus,
                                          int devfn)
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
    viommu_space_update(sp, NULL);
    return sp;
}

VirtIOIOMMUSpace *viommu_space_find(VirtIOIOMMU *s, PCIBus *bus, int devfn)
{
    VirtIOIOMMUSpace **spaces = g_hash_table_lookup(s->bus_spaces, bus);

    return spaces ? spaces[devfn] : NULL;
}

VirtIOIOMMUSpace *viommu_space_get(VirtIOIOMMU *s, PCIBus *bus, int devfn)
{
    VirtIOIOMMUSpace **spaces = g_hash_table_lookup(s->bus_spaces, bus);

    if (!spaces) {
        spaces = g_new0(VirtIOIOMMUSpace *, PCI_DEVFN_MAX);
        g_hash_table_insert(s->bus_spaces, bus, spaces);
    }
    if (!spaces[devfn]) {
        spaces[devfn] = viommu_space_new(s, bus, devfn);
        g_ptr_array_add(s->spaces, spaces[devfn]);
    }
    return spaces[devfn];
}

bool viommu_is_self(VirtIOIOMMU *s, PCIBus *bus, int devfn)
{
    return s->self && pci_get_bus(s->self) == bus && s->self->devfn == devfn;
}

static AddressSpace *viommu_get_address_space(PCIBus *bus, void *opaque,
                                              int devfn)
{
    VirtIOIOMMU *s = opaque;

    /* The IOMMU's own DMA (its virtqueues) is never translated */
    if (viommu_is_self(s, bus, devfn)) {
        return &address_space_memory;
    }
    return &viommu_space_get(s, bus, devfn)->as;
}

const PCIIOMMUOps viommu_pci_ops = {
    .get_address_space = viommu_get_address_space,
    .set_iommu_device = viommu_host_set_iommu_device,
    .unset_iommu_device = viommu_host_unset_iommu_device,
};

/*
 * A PCI function behind us was unplugged.  Whatever comes next at its
 * address starts unattached: nothing of the old endpoint survives.  A
 * function behind an alias takes its own ID with it, and the alias too
 * once no function uses it any more.
 */
static void viommu_device_unrealize(DeviceListener *listener,
                                    DeviceState *dev)
{
    VirtIOIOMMU *s = container_of(listener, VirtIOIOMMU, device_listener);
    VirtIOIOMMUSpace *sp;
    PCIDevice *pdev;
    PCIBus *bus;
    int devfn;

    if (!object_dynamic_cast(OBJECT(dev), TYPE_PCI_DEVICE)) {
        return;
    }
    pdev = PCI_DEVICE(dev);
    viommu_dma_alias(pdev, &bus, &devfn);
    sp = viommu_space_find(s, bus, devfn);
    if (!sp) {
        return;
    }
    WITH_QEMU_LOCK_GUARD(&s->lock) {
        if (bus != pci_get_bus(pdev) || devfn != pdev->devfn) {
            viommu_core_forget_endpoint(s->core,
                                        PCI_BUILD_BDF(pci_dev_bus_num(pdev),
                                                      pdev->devfn));
        }
        if (!viommu_space_in_use(sp)) {
            viommu_core_forget_endpoint(s->core,
                                        viommu_space_endpoint_id(sp));
            viommu_cache_flush(&sp->cache);
            s->spaces_stale = true;
        }
    }
    viommu_update_spaces(s);
}

void viommu_as_init(VirtIOIOMMU *s)
{
    s->bus_spaces = g_hash_table_new_full(NULL, NULL, NULL, g_free);
    s->spaces = g_ptr_array_new();
    s->events = g_array_new(false, false, sizeof(VIOMMUEvent));
    s->unmap_spaces = g_ptr_array_new();
    s->device_listener = (DeviceListener) {
        .unrealize = viommu_device_unrealize,
    };
    device_listener_register(&s->device_listener);
}

void viommu_as_free(VirtIOIOMMU *s)
{
    device_listener_unregister(&s->device_listener);
    g_array_free(s->events, true);
    g_ptr_array_free(s->unmap_spaces, true);
    g_ptr_array_free(s->spaces, true);
    g_hash_table_destroy(s->bus_spaces);
}

/* The region every endpoint's DMA goes through when translated */
static void viommu_mr_class_init(ObjectClass *klass, void *data)
{
    IOMMUMemoryRegionClass *imrc = IOMMU_MEMORY_REGION_CLASS(klass);

    imrc->get_min_page_size = viommu_mr_get_min_page_size;
    imrc->notify_flag_changed = viommu_mr_notify_flag_changed;
    imrc->replay = viommu_mr_replay;
    imrc->translate = viommu_mr_translate;
}

static const TypeInfo viommu_mr_types[] = {
    {
        .name = TYPE_VIRTIO_IOMMU_MEMORY_REGION,
        .parent = TYPE_IOMMU_MEMORY_REGION,
        .class_init = viommu_mr_class_init,
    },
};

DEFINE_TYPES(viommu_mr_types)
