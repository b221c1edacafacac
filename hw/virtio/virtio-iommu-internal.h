/*
 * virtio-iommu: what the device's files share
 *
 * virtio-iommu.c        the VirtIODevice: requests, faults, config, reset
 * virtio-iommu-as.c     the endpoints' DMA address spaces: translate,
 *                       region switching, IOMMU notifiers, replay, unplug
 * virtio-iommu-host.c   host IOMMU devices (VFIO) behind endpoints
 * virtio-iommu-migration.c  the migration stream
 *
 * The device logic itself (requests, domains, mappings, the translation
 * policy) is in virtio-iommu-core*.c, which knows nothing of QEMU's
 * device model.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_VIRTIO_VIRTIO_IOMMU_INTERNAL_H
#define HW_VIRTIO_VIRTIO_IOMMU_INTERNAL_H

#include "exec/memory.h"
#include "hw/virtio/virtio-iommu.h"
#include "hw/virtio/virtio-iommu-core.h"
#include "hw/virtio/virtio-iommu-cache.h"
#include "migration/vmstate.h"
#include "system/host_iommu_device.h"

/* The device features we offer (and a migrated state was built with) */
#define VIOMMU_FEATURES ((1ULL << VIRTIO_IOMMU_F_INPUT_RANGE) |   \
                         (1ULL << VIRTIO_IOMMU_F_DOMAIN_RANGE) |  \
                         (1ULL << VIRTIO_IOMMU_F_MAP_UNMAP) |     \
                         (1ULL << VIRTIO_IOMMU_F_PROBE) |         \
                         (1ULL << VIRTIO_IOMMU_F_MMIO) |          \
                         (1ULL << VIRTIO_IOMMU_F_BYPASS_CONFIG))

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
    /* A host IOMMU device (VFIO) behind this function, and with it */
    HostIOMMUDevice *hiod;
    VIOMMUResvRegion *resv;     /* machine's and host's regions, sorted */
    size_t nr_resv;
};

/* A fault report waiting for an eventq buffer */
struct VirtIOIOMMUFault {
    uint8_t reason;
    uint32_t flags;
    uint32_t endpoint;
    uint64_t address;
};

/* virtio-iommu.c */

/* Queue a fault report; any thread, s->lock held */
void viommu_fault_queue(VirtIOIOMMU *s, uint8_t reason, uint32_t ep_id,
                        unsigned access, uint64_t address);

/* virtio-iommu-as.c */

extern const VIOMMUCoreOps viommu_core_ops;
extern const PCIIOMMUOps viommu_pci_ops;

void viommu_as_init(VirtIOIOMMU *s);
void viommu_as_free(VirtIOIOMMU *s);

/* The space of a PCI function, made on first use */
VirtIOIOMMUSpace *viommu_space_get(VirtIOIOMMU *s, PCIBus *bus, int devfn);
/* The space of a PCI function, if it has one */
VirtIOIOMMUSpace *viommu_space_find(VirtIOIOMMU *s, PCIBus *bus, int devfn);
/* Is this PCI function the IOMMU's own? */
bool viommu_is_self(VirtIOIOMMU *s, PCIBus *bus, int devfn);
/* The endpoint ID the device state knows the space's function by */
uint32_t viommu_space_endpoint_id(VirtIOIOMMUSpace *sp);
void viommu_space_foreach(VirtIOIOMMU *s,
                          void (*fn)(VirtIOIOMMUSpace *sp, void *opaque),
                          void *opaque);

/*
 * After a state change: deliver the notifier events it queued and switch
 * the memory regions of endpoints whose mode may have changed.
 * viommu_take_stale() is called with s->lock held, viommu_apply_changes()
 * without; viommu_update_spaces() does both.
 */
bool viommu_take_stale(VirtIOIOMMU *s);
void viommu_apply_changes(VirtIOIOMMU *s, bool stale);
void viommu_update_spaces(VirtIOIOMMU *s);

/* virtio-iommu-host.c */

bool viommu_host_set_iommu_device(PCIBus *bus, void *opaque, int devfn,
                                  HostIOMMUDevice *hiod, Error **errp);
void viommu_host_unset_iommu_device(PCIBus *bus, void *opaque, int devfn);

/* virtio-iommu-migration.c */

extern const VMStateDescription vmstate_viommu;
extern const VMStateDescription vmstate_viommu_device;
int viommu_mig_post_load(VirtIODevice *vdev);
void viommu_mig_free(VirtIOIOMMU *s);

#endif
