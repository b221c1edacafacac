/*
 * virtio-iommu: host IOMMU devices behind endpoints
 *
 * A VFIO device's host IOMMU can only map some IOVA ranges and some page
 * sizes.  What it cannot map becomes RESERVED regions of that endpoint,
 * reported by PROBE and refused by MAP; the machine's regions keep
 * precedence where they overlap, so an MSI window stays an MSI window
 * (viommu_resv_for_host() in the core does the arithmetic).  The page
 * size mask narrows to what the host supports until machine init; after
 * that the guest may have read it, so a host device plugged later must
 * support our granule or it is refused.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/lockable.h"
#include "qemu/range.h"
#include "hw/qdev-core.h"
#include "virtio-iommu-internal.h"

static bool viommu_host_apply_mask(VirtIOIOMMU *s, uint64_t host_mask,
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

/* The machine's regions and what the host cannot map, as the core says */
static VIOMMUResvRegion *viommu_host_resv(VirtIOIOMMU *s,
                                          HostIOMMUDevice *hiod,
                                          size_t *nr)
{
    HostIOMMUDeviceClass *hiodc = HOST_IOMMU_DEVICE_GET_CLASS(hiod);
    GList *usable = hiodc->get_iova_ranges ? hiodc->get_iova_ranges(hiod)
                                           : NULL;
    g_autofree VIOMMURange *ranges = g_new(VIOMMURange,
                                           g_list_length(usable));
    size_t nr_ranges = 0;
    GList *l;

    for (l = usable; l; l = l->next) {
        ranges[nr_ranges++] = (VIOMMURange) {
            range_lob(l->data), range_upb(l->data)
        };
    }
    g_list_free_full(usable, g_free);
    return viommu_resv_for_host(s->resv, s->nr_resv, ranges, nr_ranges,
                                MAKE_64BIT_MASK(0, s->aw_bits), nr);
}

bool viommu_host_set_iommu_device(PCIBus *bus, void *opaque, int devfn,
                                  HostIOMMUDevice *hiod, Error **errp)
{
    VirtIOIOMMU *s = opaque;
    HostIOMMUDeviceClass *hiodc = HOST_IOMMU_DEVICE_GET_CLASS(hiod);
    size_t capacity = s->probe_size /
                      sizeof(struct virtio_iommu_probe_resv_mem);
    VirtIOIOMMUSpace *sp;
    VIOMMUResvRegion *resv;
    size_t nr;

    if (viommu_is_self(s, bus, devfn)) {
        error_setg(errp, "virtio-iommu: cannot translate itself");
        return false;
    }
    sp = viommu_space_get(s, bus, devfn);
    if (sp->hiod) {
        error_setg(errp, "virtio-iommu: %02x.%x already has a host IOMMU "
                   "device", PCI_SLOT(devfn), PCI_FUNC(devfn));
        return false;
    }
    if (!viommu_host_apply_mask(s, hiodc->get_page_size_mask ?
                                hiodc->get_page_size_mask(hiod) : 0,
                                hiod->name, errp)) {
        return false;
    }
    resv = viommu_host_resv(s, hiod, &nr);
    if (nr > capacity) {
        error_setg(errp, "virtio-iommu: host IOMMU device %s has %zu "
                   "reserved regions, PROBE holds %zu",
                   hiod->name ? hiod->name : "", nr, capacity);
        g_free(resv);
        return false;
    }

    QEMU_LOCK_GUARD(&s->lock);
    sp->hiod = hiod;
    sp->nr_resv = nr;
    sp->resv = resv;
    s->nr_host_spaces++;
    return true;
}

void viommu_host_unset_iommu_device(PCIBus *bus, void *opaque, int devfn)
{
    VirtIOIOMMU *s = opaque;
    VirtIOIOMMUSpace *sp = viommu_space_find(s, bus, devfn);

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
