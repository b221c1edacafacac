/*
 * virtio-iommu device (virtio ID 23)
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef QEMU_VIRTIO_IOMMU_H
#define QEMU_VIRTIO_IOMMU_H

#include "standard-headers/linux/virtio_iommu.h"
#include "hw/virtio/virtio.h"
#include "hw/pci/pci.h"
#include "qapi/qapi-types-virtio.h"
#include "qemu/thread.h"
#include "qom/object.h"

#define TYPE_VIRTIO_IOMMU "virtio-iommu-device"
#define TYPE_VIRTIO_IOMMU_PCI "virtio-iommu-pci"
#define TYPE_VIRTIO_IOMMU_MEMORY_REGION "virtio-iommu-memory-region"

OBJECT_DECLARE_SIMPLE_TYPE(VirtIOIOMMU, VIRTIO_IOMMU)

typedef struct VIOMMUCore VIOMMUCore;
typedef struct VIOMMUResvRegion VIOMMUResvRegion;
typedef struct VirtIOIOMMUSpace VirtIOIOMMUSpace;
typedef struct VirtIOIOMMUFault VirtIOIOMMUFault;

/* Live counters, read with qom-get of property "stats" */
typedef struct VirtIOIOMMUStats {
    /* Requests answered, by type and status */
    uint64_t requests[VIRTIO_IOMMU_T_PROBE + 1][VIRTIO_IOMMU_S_NOMEM + 1];
    uint64_t unanswered;            /* returned with used length 0 */
    uint64_t faults_reported;       /* queued for the eventq */
    uint64_t faults_delivered;
    uint64_t faults_dropped;        /* queue full */
} VirtIOIOMMUStats;

struct VirtIOIOMMU {
    VirtIODevice parent_obj;
    VirtQueue *req_vq;
    VirtQueue *event_vq;

    /* Properties */
    PCIBus *primary_bus;
    bool boot_bypass;
    GranuleMode granule_mode;
    uint8_t aw_bits;
    uint32_t nr_prop_resv_regions;
    ReservedRegion *prop_resv_regions;
    uint32_t max_domains;
    uint32_t max_domain_id;
    uint64_t max_mappings;
    uint32_t max_pending_faults;
    bool migrate_pending_faults;    /* a stream QEMU 10.0 cannot load */

    /* Fixed at realize; host IOMMU devices narrow them until machine init */
    uint64_t granule;
    uint64_t page_size_mask;
    uint32_t probe_size;
    VIOMMUResvRegion *resv;         /* sorted, from reserved-regions */
    size_t nr_resv;
    PCIDevice *self;                /* our own PCI function: never translated */
    GHashTable *bus_spaces;         /* PCIBus * -> VirtIOIOMMUSpace *[256] */
    GPtrArray *spaces;              /* the same spaces, in creation order */
    DeviceListener device_listener; /* hot-unplug of endpoints */
    uint32_t nr_host_spaces;        /* spaces with a host IOMMU device */
    QEMUBH *fault_bh;

    /*
     * @lock protects the core state and the fault ring: translate runs in
     * vCPU threads and iothreads, requests run in the main loop.
     */
    QemuMutex lock;
    VIOMMUCore *core;
    bool spaces_stale;              /* an endpoint's mode may have changed */
    uint32_t nr_notified_spaces;    /* spaces with IOMMU notifiers */
    /* The UNMAP in progress: its domain's spaces with notifiers */
    GPtrArray *unmap_spaces;
    GArray *events;                 /* notifier events to send, BQL */
    VirtIOIOMMUFault *faults;       /* ring of max_pending_faults */
    uint32_t fault_head;
    uint32_t nr_faults;
    /* The driver is ready for fault reports (BQL): see viommu_set_status */
    bool events_ready;
    VirtIOIOMMUStats stats;
    uint8_t *probe_buf;             /* probe_size bytes */

    /* Migration: stock QEMU's stream layout, only while saving or loading */
    GTree *mig_domains;
    uint8_t mig_bypass;
    int32_t mig_nr_faults;
    VirtIOIOMMUFault *mig_faults;
};

#endif
