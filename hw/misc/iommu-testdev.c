/*
 * IOMMU test device: notifier recorders and fake host IOMMU devices
 *
 * It stands where VFIO and vhost stand, through the interfaces those use,
 * so that qtests can check what a vIOMMU tells its consumers without host
 * hardware:
 *
 *   -device iommu-testdev,id=T
 *
 *   record=ID (qom-set, or on the command line after device ID)
 *       registers two IOMMU notifiers, n0 and n1, for MAP and UNMAP over
 *       the whole address space, on the IOMMU memory region of PCI device
 *       ID's DMA address space; what they receive goes to the log
 *   recorded (qom-get)
 *       the IDs recorded
 *   log (qom-get)
 *       one line per event, oldest first: "n0 ID MAP iova=0x... mask=0x...
 *       pa=0x... perm=N" or "... UNMAP ..."; at most log-limit lines
 *   log-limit (on the command line; default 65536)
 *       the most lines the log keeps; 0 keeps none, for benchmarks that
 *       send millions of events and only count them
 *   counts (qom-get)
 *       one line per notifier: "n0 ID map=N unmap=N", every event counted,
 *       logged or not
 *   replay=ID
 *       asks the vIOMMU to replay ID's mappings to its n0 alone;
 *       replay-ns (qom-get) is how long the vIOMMU took
 *   dma-read=ID:ADDR:STRIDE:SPAN:COUNT
 *       PCI device ID reads 4 bytes COUNT times through its DMA address
 *       space, as its own DMA engine would (pci_dma_read(): bus mastering
 *       must be on), the i-th at ADDR + (i * STRIDE) % SPAN: translations
 *       timed through the real memory API without a qtest round trip
 *       each.  dma-read-ns (qom-get) is how long that took,
 *       dma-read-errors how many reads failed
 *   host-iommu=ID:MASK[:START-END...]
 *       gives the vIOMMU a host IOMMU device for PCI device ID, as VFIO
 *       gives its own: one that maps pages of MASK in the listed IOVA
 *       ranges only (none listed: anywhere).  On the command line after
 *       device ID it is given before machine init, as a cold-plugged VFIO
 *       device's is; with qom-set at once, and a refusal is the error
 *   host-iommu-unplug=ID
 *       takes it back, as VFIO does when its device goes away
 *
 * Built with CONFIG_TEST_DEVICES, as edu and pci-testdev are.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/qapi-builtin-visit.h"
#include "qapi/visitor.h"
#include "qemu/cutils.h"
#include "qemu/range.h"
#include "qemu/timer.h"
#include "exec/memory.h"
#include "hw/pci/pci.h"
#include "hw/pci/pci_device.h"
#include "hw/qdev-core.h"
#include "hw/qdev-properties.h"
#include "system/host_iommu_device.h"

#define TYPE_IOMMU_TESTDEV "iommu-testdev"
OBJECT_DECLARE_SIMPLE_TYPE(IOMMUTestDev, IOMMU_TESTDEV)

#define TYPE_IOMMU_TEST_HIOD "iommu-testdev-host-iommu-device"
OBJECT_DECLARE_SIMPLE_TYPE(IOMMUTestHIOD, IOMMU_TEST_HIOD)

/* A storm of events must not grow the log without bound */
#define IOMMU_TESTDEV_LOG_MAX 65536

typedef struct IOMMUTestRecorder IOMMUTestRecorder;

typedef struct IOMMUTestNotifier {
    IOMMUNotifier n;
    IOMMUTestRecorder *recorder;
    int index;
    uint64_t maps;              /* events received, logged or not */
    uint64_t unmaps;
} IOMMUTestNotifier;

struct IOMMUTestRecorder {
    IOMMUTestDev *dev;
    char *id;
    IOMMUMemoryRegion *iommu_mr;
    IOMMUTestNotifier notifiers[2];
};

struct IOMMUTestHIOD {
    HostIOMMUDevice parent_obj;
    char *id;
    uint64_t page_size_mask;
    GList *usable;              /* Range */
    PCIDevice *pdev;            /* where it was given, once given */
};

struct IOMMUTestDev {
    DeviceState parent_obj;
    GPtrArray *log;
    uint32_t log_limit;
    GPtrArray *recorders;       /* IOMMUTestRecorder */
    GPtrArray *hiods;           /* IOMMUTestHIOD, given or waiting */
    uint64_t replay_ns;         /* the last replay */
    uint64_t dma_read_ns;       /* the last dma-read */
    uint64_t dma_read_errors;
};

/* The PCI device with this ID */
static PCIDevice *iommu_testdev_find(const char *id, Error **errp)
{
    g_autofree char *path = g_strdup_printf("/machine/peripheral/%s", id);
    Object *obj = object_resolve_path_type(path, TYPE_PCI_DEVICE, NULL);

    if (!obj) {
        error_setg(errp, "iommu-testdev: no PCI device '%s'", id);
        return NULL;
    }
    return PCI_DEVICE(obj);
}

/* The first IOMMU memory region under @mr, enabled or not */
static IOMMUMemoryRegion *iommu_testdev_find_iommu(MemoryRegion *mr)
{
    MemoryRegion *sub;

    if (memory_region_is_iommu(mr)) {
        return IOMMU_MEMORY_REGION(mr);
    }
    QTAILQ_FOREACH(sub, &mr->subregions, subregions_link) {
        IOMMUMemoryRegion *iommu_mr = iommu_testdev_find_iommu(sub);

        if (iommu_mr) {
            return iommu_mr;
        }
    }
    return NULL;
}

/* Notifier recorders */

static void iommu_testdev_notify(IOMMUNotifier *n, IOMMUTLBEntry *e)
{
    IOMMUTestNotifier *tn = container_of(n, IOMMUTestNotifier, n);
    IOMMUTestRecorder *r = tn->recorder;
    GPtrArray *log = r->dev->log;

    if (e->perm == IOMMU_NONE) {
        tn->unmaps++;
    } else {
        tn->maps++;
    }
    if (log->len >= r->dev->log_limit) {
        return;
    }
    g_ptr_array_add(log, g_strdup_printf(
        "n%d %s %s iova=0x%" PRIx64 " mask=0x%" PRIx64 " pa=0x%" PRIx64
        " perm=%d", tn->index, r->id, e->perm == IOMMU_NONE ? "UNMAP" : "MAP",
        e->iova, e->addr_mask, e->translated_addr, e->perm));
}

static IOMMUTestRecorder *iommu_testdev_recorder(IOMMUTestDev *t,
                                                 const char *id)
{
    guint i;

    for (i = 0; i < t->recorders->len; i++) {
        IOMMUTestRecorder *r = g_ptr_array_index(t->recorders, i);

        if (!strcmp(r->id, id)) {
            return r;
        }
    }
    return NULL;
}

static void iommu_testdev_recorder_free(gpointer data)
{
    IOMMUTestRecorder *r = data;
    int i;

    for (i = 0; i < ARRAY_SIZE(r->notifiers); i++) {
        memory_region_unregister_iommu_notifier(MEMORY_REGION(r->iommu_mr),
                                                &r->notifiers[i].n);
    }
    g_free(r->id);
    g_free(r);
}

static void iommu_testdev_set_record(Object *obj, const char *id,
                                     Error **errp)
{
    IOMMUTestDev *t = IOMMU_TESTDEV(obj);
    PCIDevice *pdev = iommu_testdev_find(id, errp);
    IOMMUMemoryRegion *iommu_mr;
    IOMMUTestRecorder *r;
    int i;

    if (!pdev) {
        return;
    }
    if (iommu_testdev_recorder(t, id)) {
        error_setg(errp, "iommu-testdev: '%s' is recorded already", id);
        return;
    }
    iommu_mr = iommu_testdev_find_iommu(
                   pci_device_iommu_address_space(pdev)->root);
    if (!iommu_mr) {
        error_setg(errp, "iommu-testdev: '%s' is behind no IOMMU", id);
        return;
    }
    r = g_new0(IOMMUTestRecorder, 1);
    r->dev = t;
    r->id = g_strdup(id);
    r->iommu_mr = iommu_mr;
    for (i = 0; i < ARRAY_SIZE(r->notifiers); i++) {
        IOMMUTestNotifier *tn = &r->notifiers[i];

        tn->recorder = r;
        tn->index = i;
        iommu_notifier_init(&tn->n, iommu_testdev_notify,
                            IOMMU_NOTIFIER_IOTLB_EVENTS, 0, HWADDR_MAX,
                            memory_region_iommu_attrs_to_index(
                                iommu_mr, MEMTXATTRS_UNSPECIFIED));
        if (memory_region_register_iommu_notifier(MEMORY_REGION(iommu_mr),
                                                  &tn->n, errp)) {
            while (i--) {
                memory_region_unregister_iommu_notifier(
                    MEMORY_REGION(iommu_mr), &r->notifiers[i].n);
            }
            g_free(r->id);
            g_free(r);
            return;
        }
    }
    g_ptr_array_add(t->recorders, r);
}

static void iommu_testdev_set_replay(Object *obj, const char *id,
                                     Error **errp)
{
    IOMMUTestDev *t = IOMMU_TESTDEV(obj);
    IOMMUTestRecorder *r = iommu_testdev_recorder(t, id);
    int64_t start;

    if (!r) {
        error_setg(errp, "iommu-testdev: '%s' is not recorded", id);
        return;
    }
    start = get_clock();
    memory_region_iommu_replay(r->iommu_mr, &r->notifiers[0].n);
    t->replay_ns = get_clock() - start;
}

static void iommu_testdev_get_recorded(Object *obj, Visitor *v,
                                       const char *name, void *opaque,
                                       Error **errp)
{
    IOMMUTestDev *t = IOMMU_TESTDEV(obj);
    strList *list = NULL, **tail = &list;
    guint i;

    for (i = 0; i < t->recorders->len; i++) {
        IOMMUTestRecorder *r = g_ptr_array_index(t->recorders, i);

        QAPI_LIST_APPEND(tail, g_strdup(r->id));
    }
    visit_type_strList(v, name, &list, errp);
    qapi_free_strList(list);
}

static void iommu_testdev_get_counts(Object *obj, Visitor *v,
                                     const char *name, void *opaque,
                                     Error **errp)
{
    IOMMUTestDev *t = IOMMU_TESTDEV(obj);
    strList *list = NULL, **tail = &list;
    guint i;
    int j;

    for (i = 0; i < t->recorders->len; i++) {
        IOMMUTestRecorder *r = g_ptr_array_index(t->recorders, i);

        for (j = 0; j < ARRAY_SIZE(r->notifiers); j++) {
            IOMMUTestNotifier *tn = &r->notifiers[j];

            QAPI_LIST_APPEND(tail, g_strdup_printf(
                "n%d %s map=%" PRIu64 " unmap=%" PRIu64, j, r->id, tn->maps,
                tn->unmaps));
        }
    }
    visit_type_strList(v, name, &list, errp);
    qapi_free_strList(list);
}

static void iommu_testdev_get_log(Object *obj, Visitor *v, const char *name,
                                  void *opaque, Error **errp)
{
    IOMMUTestDev *t = IOMMU_TESTDEV(obj);
    strList *list = NULL, **tail = &list;
    guint i;

    for (i = 0; i < t->log->len; i++) {
        QAPI_LIST_APPEND(tail, g_strdup(t->log->pdata[i]));
    }
    visit_type_strList(v, name, &list, errp);
    qapi_free_strList(list);
}

/* DMA reads as a PCI device, timed */

typedef struct IOMMUTestDMARead {
    uint64_t addr;
    uint64_t stride;
    uint64_t span;
    uint64_t count;
} IOMMUTestDMARead;

/* ID:ADDR:STRIDE:SPAN:COUNT; the PCI device, or NULL */
static PCIDevice *iommu_testdev_parse_dma_read(const char *spec,
                                               IOMMUTestDMARead *d,
                                               Error **errp)
{
    g_auto(GStrv) fields = g_strsplit(spec, ":", -1);

    if (g_strv_length(fields) != 5 ||
        qemu_strtou64(fields[1], NULL, 0, &d->addr) ||
        qemu_strtou64(fields[2], NULL, 0, &d->stride) ||
        qemu_strtou64(fields[3], NULL, 0, &d->span) ||
        qemu_strtou64(fields[4], NULL, 0, &d->count) || !d->span) {
        error_setg(errp, "iommu-testdev: dma-read wants "
                   "ID:ADDR:STRIDE:SPAN:COUNT with SPAN > 0, got '%s'", spec);
        return NULL;
    }
    return iommu_testdev_find(fields[0], errp);
}

static void iommu_testdev_set_dma_read(Object *obj, const char *spec,
                                       Error **errp)
{
    IOMMUTestDev *t = IOMMU_TESTDEV(obj);
    IOMMUTestDMARead d;
    PCIDevice *pdev = iommu_testdev_parse_dma_read(spec, &d, errp);
    uint64_t i, errors = 0;
    uint32_t val;
    int64_t start;

    if (!pdev) {
        return;
    }
    start = get_clock();
    for (i = 0; i < d.count; i++) {
        uint64_t off = (i * d.stride) % d.span;

        if (pci_dma_read(pdev, d.addr + off, &val, sizeof(val)) != MEMTX_OK) {
            errors++;
        }
    }
    t->dma_read_ns = get_clock() - start;
    t->dma_read_errors = errors;
}

/* Fake host IOMMU devices */

static GList *iommu_test_hiod_get_iova_ranges(HostIOMMUDevice *hiod)
{
    IOMMUTestHIOD *h = IOMMU_TEST_HIOD(hiod);
    GList *copy = NULL, *l;

    for (l = h->usable; l; l = l->next) {
        copy = g_list_append(copy, g_memdup2(l->data, sizeof(Range)));
    }
    return copy;
}

static uint64_t iommu_test_hiod_get_page_size_mask(HostIOMMUDevice *hiod)
{
    return IOMMU_TEST_HIOD(hiod)->page_size_mask;
}

static bool iommu_test_hiod_realize(HostIOMMUDevice *hiod, void *opaque,
                                    Error **errp)
{
    return true;
}

static void iommu_test_hiod_finalize(Object *obj)
{
    IOMMUTestHIOD *h = IOMMU_TEST_HIOD(obj);

    g_list_free_full(h->usable, g_free);
    g_free(h->id);
}

static void iommu_test_hiod_class_init(ObjectClass *klass, void *data)
{
    HostIOMMUDeviceClass *hiodc = HOST_IOMMU_DEVICE_CLASS(klass);

    hiodc->realize = iommu_test_hiod_realize;
    hiodc->get_iova_ranges = iommu_test_hiod_get_iova_ranges;
    hiodc->get_page_size_mask = iommu_test_hiod_get_page_size_mask;
}

/* ID:MASK[:START-END...] */
static IOMMUTestHIOD *iommu_test_hiod_parse(const char *spec, Error **errp)
{
    g_auto(GStrv) fields = g_strsplit(spec, ":", -1);
    uint64_t start, end;
    IOMMUTestHIOD *h;
    const char *rest;
    int i;

    if (!fields[0] || !*fields[0] || !fields[1]) {
        error_setg(errp, "iommu-testdev: host-iommu wants ID:MASK"
                   "[:START-END...], got '%s'", spec);
        return NULL;
    }
    h = IOMMU_TEST_HIOD(object_new(TYPE_IOMMU_TEST_HIOD));
    h->id = g_strdup(fields[0]);
    HOST_IOMMU_DEVICE(h)->name = g_strdup(fields[0]);
    if (qemu_strtou64(fields[1], NULL, 0, &h->page_size_mask)) {
        goto bad;
    }
    for (i = 2; fields[i]; i++) {
        Range *r;

        if (qemu_strtou64(fields[i], &rest, 0, &start) || *rest != '-' ||
            qemu_strtou64(rest + 1, NULL, 0, &end) || end < start) {
            goto bad;
        }
        r = g_new0(Range, 1);
        range_set_bounds(r, start, end);
        h->usable = range_list_insert(h->usable, r);
    }
    return h;

bad:
    error_setg(errp, "iommu-testdev: cannot parse host-iommu '%s'", spec);
    object_unref(OBJECT(h));
    return NULL;
}

/* Give @h to the vIOMMU of its PCI device; on failure, drop it */
static bool iommu_test_hiod_plug(IOMMUTestDev *t, IOMMUTestHIOD *h,
                                 Error **errp)
{
    PCIDevice *pdev = iommu_testdev_find(h->id, errp);

    if (!pdev || !pci_device_set_iommu_device(pdev, HOST_IOMMU_DEVICE(h),
                                              errp)) {
        object_unref(OBJECT(h));
        return false;
    }
    h->pdev = pdev;
    g_ptr_array_add(t->hiods, h);
    return true;
}

static void iommu_testdev_set_host_iommu(Object *obj, const char *spec,
                                         Error **errp)
{
    IOMMUTestDev *t = IOMMU_TESTDEV(obj);
    IOMMUTestHIOD *h = iommu_test_hiod_parse(spec, errp);

    if (!h) {
        return;
    }
    if (!DEVICE(t)->realized) {
        /* On the command line: given at realize, before machine init */
        g_ptr_array_add(t->hiods, h);
        return;
    }
    iommu_test_hiod_plug(t, h, errp);
}

static void iommu_testdev_set_host_iommu_unplug(Object *obj, const char *id,
                                                Error **errp)
{
    IOMMUTestDev *t = IOMMU_TESTDEV(obj);
    guint i;

    for (i = 0; i < t->hiods->len; i++) {
        IOMMUTestHIOD *h = g_ptr_array_index(t->hiods, i);

        if (h->pdev && !strcmp(h->id, id)) {
            pci_device_unset_iommu_device(h->pdev);
            g_ptr_array_remove_index(t->hiods, i);
            return;
        }
    }
    error_setg(errp, "iommu-testdev: no host IOMMU device for '%s'", id);
}

static void iommu_testdev_realize(DeviceState *dev, Error **errp)
{
    IOMMUTestDev *t = IOMMU_TESTDEV(dev);
    g_autoptr(GPtrArray) waiting = t->hiods;
    guint i;

    t->hiods = g_ptr_array_new_with_free_func(object_unref);
    for (i = 0; i < waiting->len; i++) {
        IOMMUTestHIOD *h = g_steal_pointer(&waiting->pdata[i]);

        if (!iommu_test_hiod_plug(t, h, errp)) {
            return;
        }
    }
}

static void iommu_testdev_init(Object *obj)
{
    IOMMUTestDev *t = IOMMU_TESTDEV(obj);

    t->log = g_ptr_array_new_with_free_func(g_free);
    object_property_add_uint64_ptr(obj, "replay-ns", &t->replay_ns,
                                   OBJ_PROP_FLAG_READ);
    object_property_add_uint64_ptr(obj, "dma-read-ns", &t->dma_read_ns,
                                   OBJ_PROP_FLAG_READ);
    object_property_add_uint64_ptr(obj, "dma-read-errors",
                                   &t->dma_read_errors, OBJ_PROP_FLAG_READ);
    t->recorders = g_ptr_array_new_with_free_func(
                       iommu_testdev_recorder_free);
    t->hiods = g_ptr_array_new_with_free_func(object_unref);
}

static void iommu_testdev_finalize(Object *obj)
{
    IOMMUTestDev *t = IOMMU_TESTDEV(obj);

    g_ptr_array_free(t->hiods, true);
    g_ptr_array_free(t->recorders, true);
    g_ptr_array_free(t->log, true);
}

static const Property iommu_testdev_properties[] = {
    DEFINE_PROP_UINT32("log-limit", IOMMUTestDev, log_limit,
                       IOMMU_TESTDEV_LOG_MAX),
};

static void iommu_testdev_class_init(ObjectClass *klass, void *data)
{
    DeviceClass *dc = DEVICE_CLASS(klass);

    device_class_set_props(dc, iommu_testdev_properties);
    dc->realize = iommu_testdev_realize;
    dc->desc = "IOMMU test device: notifier recorders, fake host IOMMU "
               "devices";
    dc->hotpluggable = false;
    set_bit(DEVICE_CATEGORY_MISC, dc->categories);
    object_class_property_add_str(klass, "record", NULL,
                                  iommu_testdev_set_record);
    object_class_property_set_description(klass, "record",
        "ID of a PCI device: record its IOMMU notifications");
    object_class_property_add(klass, "recorded", "strList",
                              iommu_testdev_get_recorded, NULL, NULL, NULL);
    object_class_property_set_description(klass, "recorded",
        "the IDs of the PCI devices recorded");
    object_class_property_add(klass, "log", "strList", iommu_testdev_get_log,
                              NULL, NULL, NULL);
    object_class_property_set_description(klass, "log",
        "the recorded IOMMU notifications, oldest first");
    object_class_property_add(klass, "counts", "strList",
                              iommu_testdev_get_counts, NULL, NULL, NULL);
    object_class_property_set_description(klass, "counts",
        "MAP and UNMAP events each notifier received, logged or not");
    object_class_property_add_str(klass, "replay", NULL,
                                  iommu_testdev_set_replay);
    object_class_property_set_description(klass, "replay",
        "ID of a recorded PCI device: replay its mappings to its n0");
    object_class_property_add_str(klass, "dma-read", NULL,
                                  iommu_testdev_set_dma_read);
    object_class_property_set_description(klass, "dma-read",
        "ID:ADDR:STRIDE:SPAN:COUNT: PCI device ID reads 4 bytes COUNT "
        "times, the i-th at ADDR + (i * STRIDE) % SPAN");
    object_class_property_add_str(klass, "host-iommu", NULL,
                                  iommu_testdev_set_host_iommu);
    object_class_property_set_description(klass, "host-iommu",
        "ID:MASK[:START-END...]: a host IOMMU device for PCI device ID "
        "that maps pages of MASK in those IOVA ranges");
    object_class_property_add_str(klass, "host-iommu-unplug", NULL,
                                  iommu_testdev_set_host_iommu_unplug);
    object_class_property_set_description(klass, "host-iommu-unplug",
        "ID: take back the host IOMMU device of PCI device ID");
}

static const TypeInfo iommu_testdev_types[] = {
    {
        .name = TYPE_IOMMU_TESTDEV,
        .parent = TYPE_DEVICE,
        .instance_size = sizeof(IOMMUTestDev),
        .instance_init = iommu_testdev_init,
        .instance_finalize = iommu_testdev_finalize,
        .class_init = iommu_testdev_class_init,
    },
    {
        .name = TYPE_IOMMU_TEST_HIOD,
        .parent = TYPE_HOST_IOMMU_DEVICE,
        .instance_size = sizeof(IOMMUTestHIOD),
        .instance_finalize = iommu_test_hiod_finalize,
        .class_init = iommu_test_hiod_class_init,
    },
};

DEFINE_TYPES(iommu_testdev_types)
