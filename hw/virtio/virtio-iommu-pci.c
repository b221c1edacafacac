/*
 * virtio-iommu-pci: the virtio-iommu device on the virtio PCI transport
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
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

/* One MSI-X vector per virtqueue, one for configuration changes */
#define VIRTIO_IOMMU_PCI_VECTORS 3

static const Property viommu_pci_properties[] = {
    DEFINE_PROP_UINT32("vectors", VirtIOPCIProxy, nvectors,
                       DEV_NVECTORS_UNSPECIFIED),
    /* The machines write the MSI doorbell window here (pre_plug) */
    DEFINE_PROP_ARRAY("reserved-regions", VirtIOIOMMUPCI,
                      vdev.nr_prop_resv_regions, vdev.prop_resv_regions,
                      qdev_prop_reserved_region, ReservedRegion),
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
    if (vpci_dev->nvectors == DEV_NVECTORS_UNSPECIFIED) {
        vpci_dev->nvectors = VIRTIO_IOMMU_PCI_VECTORS;
    }
    virtio_pci_force_virtio_1(vpci_dev);
    object_property_set_link(OBJECT(&dev->vdev), "primary-bus", OBJECT(bus),
                             &error_abort);
    qdev_realize(DEVICE(&dev->vdev), BUS(&vpci_dev->bus), errp);
}

static void viommu_pci_class_init(ObjectClass *klass, void *data)
{
    DeviceClass *dc = DEVICE_CLASS(klass);
    VirtioPCIClass *k = VIRTIO_PCI_CLASS(klass);
    PCIDeviceClass *pcidev_k = PCI_DEVICE_CLASS(klass);

    k->realize = viommu_pci_realize;
    set_bit(DEVICE_CATEGORY_MISC, dc->categories);
    device_class_set_props(dc, viommu_pci_properties);
    /* The firmware tables describe the IOMMU at machine init */
    dc->hotpluggable = false;
    pcidev_k->revision = VIRTIO_PCI_ABI_VERSION;
    pcidev_k->class_id = PCI_CLASS_OTHERS;
    object_class_property_set_description(klass, "reserved-regions",
        "list of \"0xSTART:0xEND:TYPE\" IOVA ranges endpoints cannot map, "
        "TYPE 0 reserved, 1 MSI doorbell; reported by PROBE");
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
