/*
 * virtio-iommu: device logic independent of QEMU's device model
 *
 * Request decoding and validation, domains, endpoint attachments and the
 * per-domain interval map of mappings.  Nothing here touches virtqueues,
 * memory regions or QOM, so it can be unit-tested and fuzzed on its own.
 * Callers serialize calls (the device holds its lock around them).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_VIRTIO_VIRTIO_IOMMU_CORE_H
#define HW_VIRTIO_VIRTIO_IOMMU_CORE_H

/* Largest device-writable part of a request we accept (tail included) */
#define VIOMMU_MAX_WRITABLE     (1u << 20)

/* Largest endpoint ID: PCI requester IDs on segment 0 */
#define VIOMMU_MAX_ENDPOINT_ID  0xffff

typedef struct VIOMMUCore VIOMMUCore;
typedef struct VIOMMUDomain VIOMMUDomain;

typedef struct VIOMMUMapping {
    uint64_t virt_start;
    uint64_t virt_end;      /* inclusive */
    uint64_t phys_start;
    uint32_t flags;         /* VIRTIO_IOMMU_MAP_F_* */
} VIOMMUMapping;

typedef struct VIOMMUResvRegion {
    uint64_t start;
    uint64_t end;           /* inclusive */
    uint8_t subtype;        /* VIRTIO_IOMMU_RESV_MEM_T_* */
} VIOMMUResvRegion;

/* Access rights, with the values of QEMU's IOMMUAccessFlags */
#define VIOMMU_PERM_NONE        0
#define VIOMMU_PERM_READ        1
#define VIOMMU_PERM_WRITE       2
#define VIOMMU_PERM_RW          (VIOMMU_PERM_READ | VIOMMU_PERM_WRITE)

/* An inclusive address range */
typedef struct VIOMMURange {
    uint64_t start;
    uint64_t end;
} VIOMMURange;

/* What an endpoint's DMA sees, as far as translation is concerned */
typedef enum VIOMMUEndpointMode {
    VIOMMU_EP_BLOCKED,      /* unattached, bypass off: everything faults */
    VIOMMU_EP_BYPASS,       /* identity */
    VIOMMU_EP_TRANSLATED,   /* attached to a translating domain */
} VIOMMUEndpointMode;

typedef struct VIOMMUCoreOps {
    /* Does an endpoint with this ID sit behind the IOMMU right now? */
    bool (*endpoint_exists)(void *opaque, uint32_t ep_id);
    /*
     * The endpoint's reserved regions, sorted by address and not
     * overlapping.  The array stays valid until the next core call.
     */
    size_t (*resv_regions)(void *opaque, uint32_t ep_id,
                           const VIOMMUResvRegion **regions);
    /*
     * The endpoint is about to leave @domain, whose mappings are still
     * there; and it has just joined @domain.  Either way its mode or
     * domain changes.
     */
    void (*endpoint_detaching)(void *opaque, uint32_t ep_id,
                               const VIOMMUDomain *domain);
    void (*endpoint_attached)(void *opaque, uint32_t ep_id,
                              const VIOMMUDomain *domain);
    /*
     * A mapping became reachable from, or was removed from, a domain.  A
     * domain destroyed with its last endpoint reports nothing more: the
     * endpoint's detach already did.
     */
    void (*mapping_added)(void *opaque, const VIOMMUDomain *domain,
                          const VIOMMUMapping *mapping);
    void (*mapping_removed)(void *opaque, const VIOMMUDomain *domain,
                            const VIOMMUMapping *mapping);
    /*
     * An UNMAP is about to remove mappings of @domain: called once per
     * request, before its first mapping_removed, which only ever follows
     * it.  What concerns the whole domain (the endpoints' caches, which
     * of them must hear of each removal) is done here once, not per
     * mapping.
     */
    void (*domain_unmapping)(void *opaque, const VIOMMUDomain *domain);
} VIOMMUCoreOps;

typedef struct VIOMMUCoreLimits {
    uint32_t max_domains;
    uint64_t max_mappings;
} VIOMMUCoreLimits;

/* The device configuration the core validates requests against */
typedef struct VIOMMUCoreConfig {
    uint64_t granule;               /* power of two */
    uint64_t input_start;
    uint64_t input_end;
    uint32_t domain_start;
    uint32_t domain_end;
    uint32_t probe_size;
    VIOMMUCoreLimits limits;
    /*
     * The machine's reserved regions, sorted, for the core's life: their
     * MSI doorbells stay reachable from translated endpoints.
     */
    const VIOMMUResvRegion *msi_resv;
    size_t nr_msi_resv;
} VIOMMUCoreConfig;

/* Outcome of one request */
typedef struct VIOMMUReply {
    uint8_t type;           /* VIRTIO_IOMMU_T_*, 0 if unknown */
    bool has_status;        /* false: return the buffers unwritten */
    uint8_t status;
    size_t props_len;       /* PROBE: bytes of properties written */
} VIOMMUReply;

/* Read-only counters, for statistics and tests */
typedef struct VIOMMUCoreStats {
    uint32_t nr_domains;
    uint64_t nr_mappings;
    uint32_t nr_attached;
} VIOMMUCoreStats;

VIOMMUCore *viommu_core_new(const VIOMMUCoreConfig *config,
                            const VIOMMUCoreOps *ops, void *opaque);
void viommu_core_free(VIOMMUCore *core);

/* Negotiated features (VIRTIO_IOMMU_F_* bits), checked by handlers */
void viommu_core_set_features(VIOMMUCore *core, uint64_t features);

/* A host IOMMU device narrowed the page sizes before the guest started */
void viommu_core_set_granule(VIOMMUCore *core, uint64_t granule);

/* Config field bypass, as the guest currently sees it */
void viommu_core_set_bypass(VIOMMUCore *core, bool bypass);
bool viommu_core_get_bypass(const VIOMMUCore *core);

/*
 * Handle one request.  @in holds the device-readable bytes, @out_len is
 * the size of the device-writable part.  For PROBE, properties are written
 * to @props, which holds probe_size bytes.
 */
VIOMMUReply viommu_core_handle(VIOMMUCore *core, const void *in,
                               size_t in_len, size_t out_len, uint8_t *props);

/* The endpoint went away (hot-unplug): detach it if it is attached */
void viommu_core_forget_endpoint(VIOMMUCore *core, uint32_t ep_id);

/* Detach every endpoint and destroy every domain (device reset) */
void viommu_core_reset(VIOMMUCore *core);

/* Translation policy (virtio-iommu-core-translate.c) */

/* The configuration as it is now (the granule may have narrowed) */
const VIOMMUCoreConfig *viommu_core_config(const VIOMMUCore *core);

/* What DMA of an endpoint in @domain (NULL: not attached) does */
VIOMMUEndpointMode viommu_core_domain_mode(const VIOMMUCore *core,
                                           const VIOMMUDomain *domain);
VIOMMUEndpointMode viommu_core_endpoint_mode(const VIOMMUCore *core,
                                             uint32_t ep_id);
const VIOMMUDomain *viommu_core_endpoint_domain(const VIOMMUCore *core,
                                                uint32_t ep_id);
const VIOMMUMapping *viommu_core_lookup(const VIOMMUDomain *domain,
                                        uint64_t iova);
uint32_t viommu_domain_id(const VIOMMUDomain *domain);
bool viommu_domain_is_bypass(const VIOMMUDomain *domain);
uint32_t viommu_domain_nr_mappings(const VIOMMUDomain *domain);

/* What one DMA access gets */
typedef struct VIOMMUTranslation {
    VIOMMUEndpointMode mode;
    uint64_t iova;          /* start of the block the answer covers */
    uint64_t mask;          /* its size - 1 */
    uint64_t pa;            /* where @iova goes */
    unsigned perm;          /* VIOMMU_PERM_* over the whole block */
    bool fault;             /* report a fault with @reason */
    uint8_t reason;         /* VIRTIO_IOMMU_FAULT_R_* */
    bool cacheable;         /* a mapping's answer, fit to cache */
} VIOMMUTranslation;

/*
 * Translate an @access (VIOMMU_PERM_*; NONE for a lookup that must not
 * fault) at @addr by an endpoint in @domain (NULL: not attached).
 */
VIOMMUTranslation viommu_core_translate(const VIOMMUCore *core,
                                        const VIOMMUDomain *domain,
                                        uint64_t addr, unsigned access);

/* VIOMMU_PERM_* of a mapping's VIRTIO_IOMMU_MAP_F_READ and _WRITE */
unsigned viommu_mapping_perm(const VIOMMUMapping *mapping);

/*
 * The largest naturally aligned power-of-two block that holds @iova, lies
 * inside [@start, @end] and is at most 2^@max_bits bytes, as a mask
 * (size - 1).  The one block rule of the device: translate answers with
 * it, notifier events are cut by it.
 */
uint64_t viommu_block_mask(uint64_t iova, uint64_t start, uint64_t end,
                           unsigned max_bits);

/*
 * The block of viommu_block_mask() around @iova inside @mapping, aligned
 * identically on the physical side.
 */
uint64_t viommu_mapping_block_mask(const VIOMMUMapping *mapping,
                                   uint64_t iova);

/*
 * Cut [@start, @end] of @mapping into the fewest naturally aligned
 * power-of-two blocks, in address order, and call @fn for each with its
 * IOVA, mask and physical address.
 */
typedef void (*VIOMMUBlockFn)(uint64_t iova, uint64_t mask, uint64_t pa,
                              void *opaque);
void viommu_mapping_foreach_block(const VIOMMUMapping *mapping,
                                  uint64_t start, uint64_t end,
                                  VIOMMUBlockFn fn, void *opaque);

/*
 * The reserved regions of an endpoint whose host IOMMU can map only
 * @usable (@nr_usable ranges in any order, possibly overlapping; none:
 * anything): the machine's @machine regions, then RESERVED regions for
 * what of [0, @last] the host cannot map and no machine region covers,
 * sorted by address.  Returns a new array of *@nr_out regions.
 */
VIOMMUResvRegion *viommu_resv_for_host(const VIOMMUResvRegion *machine,
                                       size_t nr_machine,
                                       const VIOMMURange *usable,
                                       size_t nr_usable, uint64_t last,
                                       size_t *nr_out);

/* Sort @nr regions by start address */
void viommu_resv_sort(VIOMMUResvRegion *regions, size_t nr);

/* Find the reserved region containing @addr, or NULL */
const VIOMMUResvRegion *viommu_resv_find(const VIOMMUResvRegion *regions,
                                         size_t nr, uint64_t addr);

/*
 * Call @fn for each mapping of @domain, in address order, until it
 * returns true.
 */
typedef bool (*VIOMMUMappingFn)(const VIOMMUMapping *mapping, void *opaque);
void viommu_domain_foreach_mapping(const VIOMMUDomain *domain,
                                   VIOMMUMappingFn fn, void *opaque);

/* Call @fn for each domain, in no particular order */
typedef void (*VIOMMUDomainFn)(const VIOMMUDomain *domain, void *opaque);
void viommu_core_foreach_domain(const VIOMMUCore *core, VIOMMUDomainFn fn,
                                void *opaque);

/* Call @fn for each endpoint attached to @domain */
typedef void (*VIOMMUEndpointFn)(uint32_t ep_id, void *opaque);
void viommu_domain_foreach_endpoint(const VIOMMUDomain *domain,
                                    VIOMMUEndpointFn fn, void *opaque);

VIOMMUCoreStats viommu_core_stats(const VIOMMUCore *core);

/*
 * Loading saved state: a domain's mappings, in increasing IOVA order as a
 * domain hands them out, gathered before the domain exists again (a
 * migration stream holds them before the endpoints).  Adding refuses a
 * mapping that is not above the one before; viommu_core_load_mappings()
 * then checks the whole set as MAP would check each mapping, against the
 * domain @domain_id, which must exist and have none, and gives it the
 * set's mappings (the set is left empty), or changes nothing.
 */
typedef struct VIOMMUMappingSet VIOMMUMappingSet;
VIOMMUMappingSet *viommu_mapping_set_new(void);
void viommu_mapping_set_free(VIOMMUMappingSet *set);
bool viommu_mapping_set_add(VIOMMUMappingSet *set,
                            const VIOMMUMapping *mapping, Error **errp);
uint64_t viommu_mapping_set_size(const VIOMMUMappingSet *set);
bool viommu_core_load_mappings(VIOMMUCore *core, uint32_t domain_id,
                               VIOMMUMappingSet *set, Error **errp);

#endif
