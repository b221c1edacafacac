/*
 * virtio-iommu-pci: the virtio-iommu device on the virtio PCI transport
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/qapi-builtin-visit.h"
#include "qapi/visitor.h"
#include "qemu/range.h"
#include "hw/pci/pci_bus.h"
#include "hw/qdev-properties.h"
#include "hw/qdev-properties-system.h"
#include "hw/virtio/virtio-pci.h"
#include "hw/virtio/virtio-iommu.h"
#include "qom/object.h"

typedef struct VirtIOIOMMUPCI VirtIOIOMMUPCI;

#define TYPE_VIRTIO_IOMMU_PCI_BASE "virtio-iommu-pci-base"
DECLARE_INSTANCE_CHECKER(VirtIOIOMMUPCI, VIRTIO_IOMMU_PCI,
                         TYPE_VIRTIO_IOMMU_PCI_BASE)

struct VirtIOIOMMUPCI {
    VirtIOPCIProxy parent_obj;
    VirtIOIOMMU vdev;
};

/*
 * reserved-regions is a list of "0xSTART:0xEND:TYPE" strings.  Unlike a
 * DEFINE_PROP_ARRAY property it can be set more than once, each set adding
 * to the list: the machines' pre_plug hooks add their MSI doorbell window
 * to whatever the user gave, where a second set of an array property would
 * abort QEMU.
 */
static void viommu_pci_set_resv(Object *obj, Visitor *v, const char *name,
                                void *opaque, Error **errp)
{
    ERRP_GUARD();
    VirtIOIOMMU *s = &VIRTIO_IOMMU_PCI(obj)->vdev;
    g_autofree ReservedRegion *added = NULL;
    GenericList *list, *elem, *next;
    size_t nr = 0;
    bool ok;

    if (!visit_start_list(v, name, &list, sizeof(*list), errp)) {
        return;
    }
    for (elem = list, ok = true; elem && ok;
         elem = visit_next_list(v, elem, sizeof(*elem))) {
        ReservedRegion *rr;
        Property elem_prop = { .info = &qdev_prop_reserved_region };

        added = g_renew(ReservedRegion, added, nr + 1);
        rr = &added[nr++];
        /* The element parser finds its field at obj + offset */
        elem_prop.offset = (uintptr_t)rr - (uintptr_t)obj;
        qdev_prop_reserved_region.set(obj, v, NULL, &elem_prop, errp);
        ok = !*errp;
    }
    ok = ok && visit_check_list(v, errp);
    visit_end_list(v, (void **)&list);
    /* The visitor allocated the list nodes; the values are in @added */
    for (elem = list; elem; elem = next) {
        next = elem->next;
        g_free(elem);
    }
    if (!ok) {
        return;
    }
    s->prop_resv_regions = g_renew(ReservedRegion, s->prop_resv_regions,
                                   s->nr_prop_resv_regions + nr);
    memcpy(&s->prop_resv_regions[s->nr_prop_resv_regions], added,
           nr * sizeof(*added));
    s->nr_prop_resv_regions += nr;
}

static void viommu_pci_get_resv(Object *obj, Visitor *v, const char *name,
                                void *opaque, Error **errp)
{
    VirtIOIOMMU *s = &VIRTIO_IOMMU_PCI(obj)->vdev;
    strList *strs = NULL, **tail = &strs;
    uint32_t i;

    for (i = 0; i < s->nr_prop_resv_regions; i++) {
        ReservedRegion *rr = &s->prop_resv_regions[i];

        QAPI_LIST_APPEND(tail, g_strdup_printf("0x%" PRIx64 ":0x%" PRIx64
                                               ":%u", range_lob(&rr->range),
                                               range_upb(&rr->range),
                                               rr->type));
    }
    visit_type_strList(v, name, &strs, errp);
    qapi_free_strList(strs);
}

static void viommu_pci_release_resv(Object *obj, const char *name,
                                    void *opaque)
{
    VirtIOIOMMU *s = &VIRTIO_IOMMU_PCI(obj)->vdev;

    g_free(s->prop_resv_regions);
    s->prop_resv_regions = NULL;
    s->nr_prop_resv_regions = 0;
}

static const PropertyInfo viommu_prop_resv_regions = {
    .type = "list",
    .description = "list of \"0xSTART:0xEND:TYPE\" IOVA ranges endpoints "
                   "cannot map, TYPE 0 reserved, 1 MSI doorbell; reported "
                   "by PROBE",
    .get = viommu_pci_get_resv,
    .set = viommu_pci_set_resv,
    .release = viommu_pci_release_resv,
};

static const Property viommu_pci_properties[] = {
    /*
     * Guest ABI of QEMU 10.0's device, so that VMs migrate between it and
     * us with one command line: no MSI-X unless asked for (vectors=3, one
     * per virtqueue and one for config changes), and the class code
     * settable as there.
     */
    DEFINE_PROP_UINT32("vectors", VirtIOPCIProxy, nvectors, 0),
    DEFINE_PROP_UINT32("class", VirtIOPCIProxy, class_code, 0),
    DEFINE_PROP("reserved-regions", VirtIOIOMMUPCI, vdev.nr_prop_resv_regions,
                viommu_prop_resv_regions, uint32_t),
};

static void viommu_pci_realize(VirtIOPCIProxy *vpci_dev, Error **errp)
{
    VirtIOIOMMUPCI *dev = VIRTIO_IOMMU_PCI(vpci_dev);
    PCIBus *bus = pci_get_bus(&vpci_dev->pci_dev);

    /* Devices on the root bus reach us through pci_setup_iommu() */
    if (!pci_bus_is_root(bus)) {
        error_setg(errp, "virtio-iommu-pci must be plugged on a root bus");
        return;
    }
    virtio_pci_force_virtio_1(vpci_dev);
    object_property_set_link(OBJECT(&dev->vdev), "primary-bus", OBJECT(bus),
                             &error_abort);
    qdev_realize(DEVICE(&dev->vdev), BUS(&vpci_dev->bus), errp);
}

/* What the guest sees of the function: QEMU 10.0's device, unchanged */
static void viommu_pci_class_set_identity(PCIDeviceClass *pdc)
{
    pdc->class_id = PCI_CLASS_OTHERS;
    pdc->revision = VIRTIO_PCI_ABI_VERSION;
}

static void viommu_pci_class_init(ObjectClass *klass, void *data)
{
    DeviceClass *dc = DEVICE_CLASS(klass);

    viommu_pci_class_set_identity(PCI_DEVICE_CLASS(klass));
    VIRTIO_PCI_CLASS(klass)->realize = viommu_pci_realize;
    /* The firmware tables describe the IOMMU at machine init */
    dc->hotpluggable = false;
    device_class_set_props(dc, viommu_pci_properties);
    object_class_property_set_description(klass, "vectors",
        "MSI-X vectors: 0 (default) for INTx as QEMU 10.0's device, "
        "3 for one per virtqueue and one for config changes");
    object_class_property_set_description(klass, "class",
        "PCI class code (default 0x00ff, other)");
    set_bit(DEVICE_CATEGORY_MISC, dc->categories);
}

static void viommu_pci_instance_init(Object *obj)
{
    VirtIOIOMMUPCI *dev = VIRTIO_IOMMU_PCI(obj);

    virtio_instance_init_common(obj, &dev->vdev, sizeof(dev->vdev),
                                TYPE_VIRTIO_IOMMU);
}

static const VirtioPCIDeviceTypeInfo viommu_pci_info = {
    .base_name = TYPE_VIRTIO_IOMMU_PCI_BASE,
    .generic_name = TYPE_VIRTIO_IOMMU_PCI,
    .instance_size = sizeof(VirtIOIOMMUPCI),
    .instance_init = viommu_pci_instance_init,
    .class_init = viommu_pci_class_init,
};

static void viommu_pci_register(void)
{
    virtio_pci_types_register(&viommu_pci_info);
}

type_init(viommu_pci_register)
