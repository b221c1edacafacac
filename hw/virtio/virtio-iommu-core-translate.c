/*
 * virtio-iommu: translation policy, independent of QEMU's device model
 *
 * What one DMA access gets from the state of virtio-iommu-core.c: the
 * block of IOVA space an answer covers, the permissions, whether a fault
 * is reported and why; how a mapping is cut into the naturally aligned
 * blocks that IOMMU notifiers need; and which regions an endpoint with a
 * host IOMMU device must not map.  Pure functions, unit-tested with the
 * rest of the core.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/host-utils.h"
#include "standard-headers/linux/virtio_iommu.h"
#include "hw/virtio/virtio-iommu-core.h"

unsigned viommu_mapping_perm(const VIOMMUMapping *mapping)
{
    return (mapping->flags & VIRTIO_IOMMU_MAP_F_READ ? VIOMMU_PERM_READ : 0) |
           (mapping->flags & VIRTIO_IOMMU_MAP_F_WRITE ? VIOMMU_PERM_WRITE : 0);
}

/* Bits of a mask of 2^@bits bytes */
static uint64_t mask_of(unsigned bits)
{
    return bits >= 64 ? UINT64_MAX : (1ULL << bits) - 1;
}

uint64_t viommu_block_mask(uint64_t iova, uint64_t start, uint64_t end,
                           unsigned max_bits)
{
    uint64_t span = end - start;
    /* No block is larger than the range */
    unsigned bits = span == UINT64_MAX ? 64 : 63 - clz64(span + 1);

    for (bits = MIN(bits, max_bits); bits > 0; bits--) {
        uint64_t mask = mask_of(bits);

        if ((iova & ~mask) >= start && (iova | mask) <= end) {
            return mask;
        }
    }
    return 0;
}

uint64_t viommu_mapping_block_mask(const VIOMMUMapping *mapping,
                                   uint64_t iova)
{
    uint64_t delta = mapping->phys_start - mapping->virt_start;

    /* A block maps to a block only as far as both sides are aligned */
    return viommu_block_mask(iova, mapping->virt_start, mapping->virt_end,
                             delta ? ctz64(delta) : 64);
}

void viommu_mapping_foreach_block(const VIOMMUMapping *mapping,
                                  uint64_t start, uint64_t end,
                                  VIOMMUBlockFn fn, void *opaque)
{
    uint64_t iova = start;
    uint64_t span = end - start;

    /* Most mappings are one naturally aligned page or huge page */
    if (!(span & (span + 1)) && !(start & span)) {
        fn(start, span, mapping->phys_start + (start - mapping->virt_start),
           opaque);
        return;
    }
    for (;;) {
        /* The block that starts at @iova: one inside [iova, end] */
        uint64_t mask = viommu_block_mask(iova, iova, end, 64);

        fn(iova, mask, mapping->phys_start + (iova - mapping->virt_start),
           opaque);
        if (iova + mask == end) {
            return;
        }
        iova += mask + 1;
    }
}

const VIOMMUResvRegion *viommu_resv_find(const VIOMMUResvRegion *regions,
                                         size_t nr, uint64_t addr)
{
    size_t i;

    for (i = 0; i < nr; i++) {
        if (addr >= regions[i].start && addr <= regions[i].end) {
            return &regions[i];
        }
    }
    return NULL;
}

/* In an attached translating domain: the mapping decides */
static void translate_mapped(const VIOMMUCore *core,
                             const VIOMMUDomain *domain, uint64_t addr,
                             unsigned access, VIOMMUTranslation *t)
{
    const VIOMMUCoreConfig *config = viommu_core_config(core);
    const VIOMMUMapping *mapping = viommu_core_lookup(domain, addr);
    const VIOMMUResvRegion *resv;

    if (mapping) {
        t->mask = viommu_mapping_block_mask(mapping, addr);
        t->iova = addr & ~t->mask;
        t->pa = mapping->phys_start + (t->iova - mapping->virt_start);
        t->perm = viommu_mapping_perm(mapping);
        if ((access & t->perm) != access) {
            t->fault = true;
            t->reason = VIRTIO_IOMMU_FAULT_R_MAPPING;
        } else {
            t->cacheable = t->perm != VIOMMU_PERM_NONE;
        }
        return;
    }
    /* MSI doorbells reach the interrupt controller untranslated */
    resv = viommu_resv_find(config->msi_resv, config->nr_msi_resv, addr);
    if (resv && resv->subtype == VIRTIO_IOMMU_RESV_MEM_T_MSI) {
        t->perm = VIOMMU_PERM_RW;
        return;
    }
    t->fault = access != VIOMMU_PERM_NONE;
    t->reason = VIRTIO_IOMMU_FAULT_R_MAPPING;
}

VIOMMUTranslation viommu_core_translate(const VIOMMUCore *core,
                                        const VIOMMUDomain *domain,
                                        uint64_t addr, unsigned access)
{
    uint64_t granule = viommu_core_config(core)->granule;
    VIOMMUTranslation t = {
        .mode = viommu_core_domain_mode(core, domain),
        /* Without a mapping: identity, one granule */
        .iova = addr & ~(granule - 1),
        .mask = granule - 1,
        .perm = VIOMMU_PERM_NONE,
    };

    t.pa = t.iova;
    switch (t.mode) {
    case VIOMMU_EP_BYPASS:
        t.perm = VIOMMU_PERM_RW;
        break;
    case VIOMMU_EP_BLOCKED:
        t.fault = access != VIOMMU_PERM_NONE;
        t.reason = VIRTIO_IOMMU_FAULT_R_DOMAIN;
        break;
    case VIOMMU_EP_TRANSLATED:
        translate_mapped(core, domain, addr, access, &t);
        break;
    }
    return t;
}

static int range_cmp(const void *a, const void *b)
{
    const VIOMMURange *x = a, *y = b;

    return x->start < y->start ? -1 : x->start > y->start;
}

static int resv_cmp(const void *a, const void *b)
{
    const VIOMMUResvRegion *x = a, *y = b;

    return x->start < y->start ? -1 : x->start > y->start;
}

void viommu_resv_sort(VIOMMUResvRegion *regions, size_t nr)
{
    if (nr) {
        qsort(regions, nr, sizeof(*regions), resv_cmp);
    }
}

/* Append [start, end] minus every region of @cut (sorted) to @out */
static void add_uncut(GArray *out, uint64_t start, uint64_t end,
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
        if (cut[i].end >= end) {
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

VIOMMUResvRegion *viommu_resv_for_host(const VIOMMUResvRegion *machine,
                                       size_t nr_machine,
                                       const VIOMMURange *usable,
                                       size_t nr_usable, uint64_t last,
                                       size_t *nr_out)
{
    GArray *out = g_array_new(false, false, sizeof(VIOMMUResvRegion));
    g_autofree VIOMMURange *sorted = g_memdup2(usable,
                                               nr_usable * sizeof(*usable));
    uint64_t next = 0;          /* lowest address not known usable */
    bool covered = false;       /* up to @last, all is known */
    size_t i;

    g_array_append_vals(out, machine, nr_machine);
    if (nr_usable) {
        qsort(sorted, nr_usable, sizeof(*sorted), range_cmp);
    }
    for (i = 0; i < nr_usable && !covered; i++) {
        if (sorted[i].start > next) {
            /* The hole before this usable range */
            add_uncut(out, next, MIN(sorted[i].start - 1, last), machine,
                      nr_machine);
            covered = sorted[i].start - 1 >= last;
        }
        if (sorted[i].end >= last) {
            covered = true;
        } else {
            next = MAX(next, sorted[i].end + 1);
        }
    }
    if (nr_usable && !covered) {
        add_uncut(out, next, last, machine, nr_machine);
    }
    g_array_sort(out, resv_cmp);
    *nr_out = out->len;
    return (VIOMMUResvRegion *)g_array_free(out, false);
}
