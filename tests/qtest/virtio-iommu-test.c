/*
 * QTest cases for the virtio-iommu device: its requests
 *
 * Requests are sent through the requestq with layouts chosen by each test,
 * so that malformed requests can be checked as well as correct ones.  The
 * expected statuses, and their order where a request breaks several rules,
 * are those of the project's docs/behaviour-contract.md; the virtio
 * specification decides everything else.  Config space, the guest ABI,
 * negotiated features, bypass and reset are checked here too; the other
 * themes have files of their own (virtio-iommu-test.h lists them).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/module.h"
#include "virtio-iommu-test.h"
#include "standard-headers/linux/virtio_config.h"
#include "standard-headers/linux/virtio_pci.h"
#include "standard-headers/linux/pci_regs.h"
#include "standard-headers/linux/virtio_ring.h"

#define VIT_THEME               "virtio-iommu-requests"

/* ------------------------------------------------------------------ */
/* Config and features                                                 */

static void check_config(QViommu *v, uint64_t granule, unsigned aw_bits,
                         uint32_t domain_end, uint8_t bypass)
{
    /* QEMU 10.0's ABI: every size from the granule up, aw-bits aside */
    CHECK_EQ(qviommu_config_readq(v, CFG_OFF(page_size_mask)),
             ~(granule - 1));
    CHECK_EQ(qviommu_config_readq(v, CFG_OFF(input_range.start)), 0);
    CHECK_EQ(qviommu_config_readq(v, CFG_OFF(input_range.end)),
             vit_aw_mask(aw_bits));
    CHECK_EQ(qviommu_config_readl(v, CFG_OFF(domain_range.start)), 0);
    CHECK_EQ(qviommu_config_readl(v, CFG_OFF(domain_range.end)),
             domain_end);
    CHECK_EQ(vit_probe_size(v), 512);
    CHECK_EQ(qviommu_config_readb(v, CFG_OFF(bypass)), bypass);
}

static void test_config(void *obj, void *data, QGuestAllocator *alloc)
{
    QViommu *v = obj;
    const TestCfg *cfg = data;
    uint64_t offered = qvirtio_get_features(v->vdev);
    Machine m;

    if (!vit_machine_info(v, cfg, &m)) {
        return;
    }

    CHECK(offered & BIT64(VIRTIO_F_VERSION_1));
    CHECK(offered & BIT64(VIRTIO_IOMMU_F_INPUT_RANGE));
    CHECK(offered & BIT64(VIRTIO_IOMMU_F_DOMAIN_RANGE));
    CHECK(offered & BIT64(VIRTIO_IOMMU_F_MAP_UNMAP));
    CHECK(offered & BIT64(VIRTIO_IOMMU_F_PROBE));
    CHECK(offered & BIT64(VIRTIO_IOMMU_F_MMIO));
    CHECK(offered & BIT64(VIRTIO_IOMMU_F_BYPASS_CONFIG));
    /* superseded by BYPASS_CONFIG; not both */
    CHECK(!(offered & BIT64(VIRTIO_IOMMU_F_BYPASS)));

    /* granule defaults to the host page size */
    CHECK(qviommu_config_readq(v, CFG_OFF(page_size_mask)) != 0);
    check_config(v, qemu_real_host_page_size(), m.aw_bits, UINT32_MAX, 1);
}

static void test_config_props(void *obj, void *data, QGuestAllocator *alloc)
{
    /* granule=64k,aw-bits=40,max-domain-id=7,boot-bypass=off */
    check_config(obj, 0x10000, 40, 7, 0);
}

static void test_config_granule_4k(void *obj, void *data,
                                   QGuestAllocator *alloc)
{
    /* granule=4k,aw-bits=32 */
    check_config(obj, 0x1000, 32, UINT32_MAX, 1);
}

/* ------------------------------------------------------------------ */
/* Guest ABI                                                           */

/*
 * What QEMU 10.0's own virtio-iommu-pci presents to a guest, field by
 * field, on every machine type QEMU 10.0 has: a VM moves between that
 * device and ours with one command line only while ours presents the same
 * bytes.  The values follow from the virtio 1.x PCI transport (IDs and
 * capabilities), the virtio-iommu chapter (features and config fields) and
 * the choices of QEMU's device (no MSI-X, a 512-byte probe_size, a
 * page_size_mask of every size from the granule up, the machine's
 * aw-bits).  tests/migration/run-cross-migration.sh also runs these tests
 * against stock QEMU's binary, which proves the values are its own.
 */

typedef struct AbiField {
    const char *name;
    uint8_t off;
    uint8_t size;               /* 1, 2 or 4 bytes; 0: the guest's */
    uint32_t want;
    uint32_t dynamic;           /* bits that change at run time */
    uint8_t span;               /* bytes the guest's field covers */
} AbiField;

/* The type 0 header; the BARs are checked by sizing them */
static const AbiField abi_header[] = {
    { "vendor ID", PCI_VENDOR_ID, 2, 0x1af4 },
    { "device ID (0x1040 + 23)", PCI_DEVICE_ID, 2, 0x1057 },
    { "command", PCI_COMMAND, .span = 2 },
    { "status", PCI_STATUS, 2, PCI_STATUS_CAP_LIST, PCI_STATUS_INTERRUPT },
    { "revision (virtio 1.x)", PCI_REVISION_ID, 1, 1 },
    { "programming interface", PCI_CLASS_PROG, 1, 0 },
    { "class", PCI_CLASS_DEVICE, 2, 0x00ff },
    { "cache line size", PCI_CACHE_LINE_SIZE, .span = 1 },
    { "latency timer", PCI_LATENCY_TIMER, .span = 1 },
    { "header type", PCI_HEADER_TYPE, 1, PCI_HEADER_TYPE_NORMAL },
    { "BIST", PCI_BIST, 1, 0 },
    { "BARs", PCI_BASE_ADDRESS_0, .span = 24 },
    { "CardBus CIS", PCI_CARDBUS_CIS, 4, 0 },
    { "subsystem vendor ID", PCI_SUBSYSTEM_VENDOR_ID, 2, 0x1af4 },
    { "subsystem ID", PCI_SUBSYSTEM_ID, 2, 0x1100 },
    { "expansion ROM", PCI_ROM_ADDRESS, 4, 0 },
    { "capability pointer", PCI_CAPABILITY_LIST, 1, 0x84 },
    { "interrupt line", PCI_INTERRUPT_LINE, .span = 1 },
    { "interrupt pin (INTA)", PCI_INTERRUPT_PIN, 1, 1 },
    { "min grant", PCI_MIN_GNT, 1, 0 },
    { "max latency", PCI_MAX_LAT, 1, 0 },
};

/* One virtio vendor capability (struct virtio_pci_cap) */
typedef struct AbiCap {
    uint8_t off;
    uint8_t next;
    uint8_t len;
    uint8_t cfg_type;
    uint32_t offset;            /* in BAR 4 */
    uint32_t length;
} AbiCap;

/*
 * Common, ISR, device, notify and PCI config access, in BAR 4, each added
 * at the head of the list; no MSI-X
 */
static const AbiCap abi_caps[] = {
    { 0x40, 0x00, 16, VIRTIO_PCI_CAP_COMMON_CFG, 0x0000, 0x1000 },
    { 0x50, 0x40, 16, VIRTIO_PCI_CAP_ISR_CFG, 0x1000, 0x1000 },
    { 0x60, 0x50, 16, VIRTIO_PCI_CAP_DEVICE_CFG, 0x2000, 0x1000 },
    { 0x70, 0x60, 20, VIRTIO_PCI_CAP_NOTIFY_CFG, 0x3000, 0x1000 },
    { 0x84, 0x70, 20, VIRTIO_PCI_CAP_PCI_CFG, 0, 0 },
};

/* Notify capability: the queues' doorbells 4 bytes apart */
#define ABI_NOTIFY_MULTIPLIER   4

/* BAR 4: 64-bit prefetchable memory of 16 KiB, no other BAR */
#define ABI_BAR                 4
#define ABI_BAR_SIZE            0x4000ull

#define ABI_FEATURES                                                    \
    (BIT64(VIRTIO_IOMMU_F_INPUT_RANGE) |                                \
     BIT64(VIRTIO_IOMMU_F_DOMAIN_RANGE) |                               \
     BIT64(VIRTIO_IOMMU_F_MAP_UNMAP) |                                  \
     BIT64(VIRTIO_IOMMU_F_PROBE) |                                      \
     BIT64(VIRTIO_IOMMU_F_MMIO) |                                       \
     BIT64(VIRTIO_IOMMU_F_BYPASS_CONFIG) |                              \
     BIT64(VIRTIO_RING_F_INDIRECT_DESC) |                               \
     BIT64(VIRTIO_RING_F_EVENT_IDX) |                                   \
     BIT64(VIRTIO_F_VERSION_1) |                                        \
     BIT64(VIRTIO_F_RING_RESET))

/* Two queues; QEMU 10.0.13's virtio core makes every queue 1024 long */
#define ABI_QUEUES              2
#define ABI_QUEUE_SIZE          1024
#define ABI_PROBE_SIZE          512

static uint32_t abi_read(QPCIDevice *pdev, uint8_t off, uint8_t size)
{
    switch (size) {
    case 1:
        return qpci_config_readb(pdev, off);
    case 2:
        return qpci_config_readw(pdev, off);
    default:
        return qpci_config_readl(pdev, off);
    }
}

static void abi_check(const char *what, uint8_t off, uint32_t got,
                      uint32_t want)
{
    if (got != want) {
        qviommu_report(__func__, __LINE__, "config space 0x%02x %s: QEMU 10.0 "
                       "presents 0x%x, got 0x%x", off, what, want, got);
    }
}

/* Mark @size bytes at @off as checked */
static void abi_cover(bool *covered, unsigned off, unsigned size)
{
    memset(covered + off, true, size);
}

static void abi_check_header(QPCIDevice *pdev, bool *covered)
{
    size_t i;

    for (i = 0; i < ARRAY_SIZE(abi_header); i++) {
        const AbiField *f = &abi_header[i];

        if (f->size) {
            abi_check(f->name, f->off,
                      abi_read(pdev, f->off, f->size) & ~f->dynamic,
                      f->want);
        }
        abi_cover(covered, f->off, f->size ? f->size : f->span);
    }
}

static void abi_check_caps(QPCIDevice *pdev, bool *covered)
{
    size_t i;

    for (i = 0; i < ARRAY_SIZE(abi_caps); i++) {
        const AbiCap *c = &abi_caps[i];
        uint8_t o = c->off;

        abi_check("capability ID (vendor)", o + VIRTIO_PCI_CAP_VNDR,
                  qpci_config_readb(pdev, o + VIRTIO_PCI_CAP_VNDR),
                  PCI_CAP_ID_VNDR);
        abi_check("capability next", o + VIRTIO_PCI_CAP_NEXT,
                  qpci_config_readb(pdev, o + VIRTIO_PCI_CAP_NEXT), c->next);
        abi_check("capability length", o + VIRTIO_PCI_CAP_LEN,
                  qpci_config_readb(pdev, o + VIRTIO_PCI_CAP_LEN), c->len);
        abi_check("virtio cfg_type", o + VIRTIO_PCI_CAP_CFG_TYPE,
                  qpci_config_readb(pdev, o + VIRTIO_PCI_CAP_CFG_TYPE),
                  c->cfg_type);
        abi_cover(covered, o, 4);
        if (c->cfg_type == VIRTIO_PCI_CAP_PCI_CFG) {
            /* bar, offset, length and data are the guest's window */
            abi_cover(covered, o + 4, c->len - 4);
            continue;
        }
        abi_check("virtio bar", o + VIRTIO_PCI_CAP_BAR,
                  qpci_config_readb(pdev, o + VIRTIO_PCI_CAP_BAR), ABI_BAR);
        abi_check("virtio id and padding", o + 5,
                  qpci_config_readb(pdev, o + 5) |
                  qpci_config_readw(pdev, o + 6) << 8, 0);
        abi_check("virtio offset", o + VIRTIO_PCI_CAP_OFFSET,
                  qpci_config_readl(pdev, o + VIRTIO_PCI_CAP_OFFSET),
                  c->offset);
        abi_check("virtio length", o + VIRTIO_PCI_CAP_LENGTH,
                  qpci_config_readl(pdev, o + VIRTIO_PCI_CAP_LENGTH),
                  c->length);
        if (c->cfg_type == VIRTIO_PCI_CAP_NOTIFY_CFG) {
            abi_check("notify_off_multiplier", o + 16,
                      qpci_config_readl(pdev, o + 16),
                      ABI_NOTIFY_MULTIPLIER);
        }
        abi_cover(covered, o, c->len);
    }
}

/* Size every BAR the way firmware does: all ones, read back, restore */
static uint64_t abi_bar_size(QPCIDevice *pdev, int bar, uint32_t *flags)
{
    uint8_t reg = PCI_BASE_ADDRESS_0 + bar * 4;
    uint32_t lo = qpci_config_readl(pdev, reg), hi = 0, mask_hi = 0;
    uint32_t mask_lo;
    bool is64;

    qpci_config_writel(pdev, reg, 0xffffffff);
    mask_lo = qpci_config_readl(pdev, reg);
    qpci_config_writel(pdev, reg, lo);
    *flags = mask_lo & 0xf;
    is64 = !(lo & PCI_BASE_ADDRESS_SPACE_IO) &&
           (lo & PCI_BASE_ADDRESS_MEM_TYPE_MASK) ==
           PCI_BASE_ADDRESS_MEM_TYPE_64;
    if (is64 && bar < 5) {
        hi = qpci_config_readl(pdev, reg + 4);
        qpci_config_writel(pdev, reg + 4, 0xffffffff);
        mask_hi = qpci_config_readl(pdev, reg + 4);
        qpci_config_writel(pdev, reg + 4, hi);
    }
    if (!(mask_lo & ~0xfu) && !mask_hi) {
        return 0;
    }
    if (!is64) {
        mask_hi = 0xffffffff;
    }
    return -(((uint64_t)mask_hi << 32) | (mask_lo & ~0xfu));
}

static void abi_check_bars(QPCIDevice *pdev)
{
    uint16_t cmd = qpci_config_readw(pdev, PCI_COMMAND);
    uint32_t flags;
    int bar;

    /* No decoding while a BAR holds all ones */
    qpci_config_writew(pdev, PCI_COMMAND,
                       cmd & ~(PCI_COMMAND_MEMORY | PCI_COMMAND_IO));
    for (bar = 0; bar < 6; bar++) {
        uint64_t size = abi_bar_size(pdev, bar, &flags);

        if (bar == ABI_BAR) {
            CHECK_EQ(size, ABI_BAR_SIZE);
            CHECK_EQ(flags, PCI_BASE_ADDRESS_MEM_TYPE_64 |
                     PCI_BASE_ADDRESS_MEM_PREFETCH);
            bar++;                  /* its upper half */
        } else if (size) {
            qviommu_report(__func__, __LINE__, "BAR %d: QEMU 10.0 has none, "
                           "got 0x%" PRIx64 " bytes (flags 0x%x)", bar, size,
                           flags);
        }
    }
    qpci_config_writew(pdev, PCI_COMMAND, cmd);
}

/* Everything not named above reads as zero: no capability of our own */
static void abi_check_rest(QPCIDevice *pdev, const bool *covered)
{
    unsigned off;

    for (off = 0; off < PCI_CFG_SPACE_SIZE; off++) {
        if (!covered[off]) {
            abi_check("unnamed byte", off, qpci_config_readb(pdev, off), 0);
        }
    }
}

static uint32_t abi_common_readl(QVirtioPCIDevice *t, uint32_t off)
{
    return qpci_io_readl(t->pdev, t->bar, t->common_cfg_offset + off);
}

static uint16_t abi_common_readw(QVirtioPCIDevice *t, uint32_t off)
{
    return qpci_io_readw(t->pdev, t->bar, t->common_cfg_offset + off);
}

static void abi_common_writew(QVirtioPCIDevice *t, uint32_t off, uint16_t v)
{
    qpci_io_writew(t->pdev, t->bar, t->common_cfg_offset + off, v);
}

static void abi_common_writel(QVirtioPCIDevice *t, uint32_t off, uint32_t v)
{
    qpci_io_writel(t->pdev, t->bar, t->common_cfg_offset + off, v);
}

static void abi_check_virtio(QViommu *v, unsigned aw_bits)
{
    QVirtioPCIDevice *t = v->transport;
    uint64_t features;
    uint16_t q;
    int i;

    abi_common_writel(t, VIRTIO_PCI_COMMON_DFSELECT, 0);
    features = abi_common_readl(t, VIRTIO_PCI_COMMON_DF);
    abi_common_writel(t, VIRTIO_PCI_COMMON_DFSELECT, 1);
    features |= (uint64_t)abi_common_readl(t, VIRTIO_PCI_COMMON_DF) << 32;
    CHECK_EQ(features, ABI_FEATURES);

    CHECK_EQ(abi_common_readw(t, VIRTIO_PCI_COMMON_NUMQ), ABI_QUEUES);
    for (q = 0; q < ABI_QUEUES; q++) {
        abi_common_writew(t, VIRTIO_PCI_COMMON_Q_SELECT, q);
        CHECK_EQ(abi_common_readw(t, VIRTIO_PCI_COMMON_Q_SIZE),
                 ABI_QUEUE_SIZE);
    }

    CHECK_EQ(qviommu_config_readq(v, CFG_OFF(page_size_mask)),
             ~(qemu_real_host_page_size() - 1));
    CHECK_EQ(qviommu_config_readq(v, CFG_OFF(input_range.start)), 0);
    CHECK_EQ(qviommu_config_readq(v, CFG_OFF(input_range.end)),
             vit_aw_mask(aw_bits));
    CHECK_EQ(qviommu_config_readl(v, CFG_OFF(domain_range.start)), 0);
    CHECK_EQ(qviommu_config_readl(v, CFG_OFF(domain_range.end)),
             UINT32_MAX);
    CHECK_EQ(vit_probe_size(v), ABI_PROBE_SIZE);
    CHECK_EQ(qviommu_config_readb(v, CFG_OFF(bypass)), 1);
    for (i = 0; i < 3; i++) {
        CHECK_EQ(qviommu_config_readb(v, CFG_OFF(reserved) + i), 0);
    }
    /* The config space ends there */
    CHECK_EQ(qviommu_config_readb(v, sizeof(struct virtio_iommu_config)),
             0xff);
}

static void test_abi(void *obj, void *data, QGuestAllocator *alloc)
{
    QViommu *v = obj;
    QPCIDevice *pdev = v->transport->pdev;
    bool covered[PCI_CFG_SPACE_SIZE] = { false };
    Machine m;

    if (!vit_machine_info(v, data, &m)) {
        return;
    }
    abi_check_header(pdev, covered);
    abi_check_caps(pdev, covered);
    abi_check_rest(pdev, covered);
    abi_check_bars(pdev);
    abi_check_virtio(v, m.aw_bits);
}

/*
 * vectors=3, the opt-in: one MSI-X capability more, at the head of the
 * list, its table and PBA in BAR 1; everything else as without.
 */
static void test_abi_msix(void *obj, void *data, QGuestAllocator *alloc)
{
    QViommu *v = obj;
    QPCIDevice *pdev = v->transport->pdev;
    uint8_t msix = qpci_find_capability(pdev, PCI_CAP_ID_MSIX, 0);
    uint32_t flags;

    CHECK_EQ(qpci_config_readb(pdev, PCI_CAPABILITY_LIST), msix);
    CHECK_EQ(qpci_config_readb(pdev, msix + PCI_CAP_LIST_NEXT),
             abi_caps[ARRAY_SIZE(abi_caps) - 1].off);
    CHECK_EQ((qpci_config_readw(pdev, msix + PCI_MSIX_FLAGS) &
              PCI_MSIX_FLAGS_QSIZE) + 1, 3);
    CHECK_EQ(qpci_config_readl(pdev, msix + PCI_MSIX_TABLE) &
             PCI_MSIX_TABLE_BIR, 1);
    CHECK(abi_bar_size(pdev, 1, &flags) != 0);
}

/* ------------------------------------------------------------------ */
/* ATTACH                                                              */

static void test_attach_detach(void *obj, void *data, QGuestAllocator *a)
{
    QViommu *v = obj;

    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 1, EP1, 0), VIRTIO_IOMMU_S_OK);
    /* a second endpoint may join the domain */
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 1, EP2, 0), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, 0, PAGE - 1, 0, RW),
                          VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_detach_req(v, 1, EP1), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_detach_req(v, 1, EP1), VIRTIO_IOMMU_S_INVAL);
    /* the domain lives on with EP2, mappings included */
    CHECK(vit_is_mapped(v, 1, 0, PAGE - 1));
    QVIOMMU_EXPECT_STATUS(qviommu_detach_req(v, 1, EP2), VIRTIO_IOMMU_S_OK);
    /* the last endpoint leaving destroyed the domain */
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, 0, PAGE - 1, 0, RW),
                          VIRTIO_IOMMU_S_NOENT);
    QVIOMMU_EXPECT_STATUS(qviommu_detach_req(v, 1, EP2), VIRTIO_IOMMU_S_INVAL);

    /* domain IDs at both ends of the default domain_range */
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 0, EP1, 0), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, UINT32_MAX, EP2, 0),
                          VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_detach_req(v, 0, EP1), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_detach_req(v, UINT32_MAX, EP2),
                          VIRTIO_IOMMU_S_OK);
}

static void test_attach_reserved(void *obj, void *data, QGuestAllocator *a)
{
    QViommu *v = obj;
    QViommuReq b;
    uint32_t len;
    int i;

    for (i = 0; i < 4; i++) {
        len = qviommu_enc_attach(&b, 1, EP1, 0);
        b.attach.reserved[i] = 1 << i;
        QVIOMMU_EXPECT_STATUS(qviommu_send_req(v, &b, len, 4),
                              VIRTIO_IOMMU_S_INVAL);
    }
    /* reserved is checked first, even for an unknown endpoint */
    len = qviommu_enc_attach(&b, 1, EP_NO_SLOT, 0);
    b.attach.reserved[3] = 0x80;
    QVIOMMU_EXPECT_STATUS(qviommu_send_req(v, &b, len, 4),
                          VIRTIO_IOMMU_S_INVAL);

    /* the head's reserved bytes are ignored */
    len = qviommu_enc_attach(&b, 1, EP1, 0);
    b.head.reserved[0] = 0xff;
    b.head.reserved[2] = 0x12;
    QVIOMMU_EXPECT_STATUS(qviommu_send_req(v, &b, len, 4), VIRTIO_IOMMU_S_OK);

    /* nothing was attached by the rejected requests but the last one */
    QVIOMMU_EXPECT_STATUS(qviommu_detach_req(v, 1, EP1), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_detach_req(v, 1, EP1), VIRTIO_IOMMU_S_INVAL);
}

static void test_attach_flags(void *obj, void *data, QGuestAllocator *a)
{
    QViommu *v = obj;
    int bit;

    for (bit = 1; bit < 32; bit++) {
        QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 1, EP1, 1u << bit),
                              VIRTIO_IOMMU_S_INVAL);
    }
    /* flags are checked before the endpoint */
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 1, EP_NO_SLOT, 2),
                          VIRTIO_IOMMU_S_INVAL);
    QVIOMMU_EXPECT_STATUS(qviommu_detach_req(v, 1, EP1), VIRTIO_IOMMU_S_INVAL);

    /* ATTACH_F_BYPASS is known when BYPASS_CONFIG is negotiated */
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 1, EP1,
                                             VIRTIO_IOMMU_ATTACH_F_BYPASS),
                          VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_detach_req(v, 1, EP1), VIRTIO_IOMMU_S_OK);

    /* ... and unknown when it is not */
    qviommu_start(v, qviommu_known_features(v) &
                  ~BIT64(VIRTIO_IOMMU_F_BYPASS_CONFIG));
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 1, EP1,
                                             VIRTIO_IOMMU_ATTACH_F_BYPASS),
                          VIRTIO_IOMMU_S_INVAL);
    QVIOMMU_EXPECT_STATUS(qviommu_detach_req(v, 1, EP1), VIRTIO_IOMMU_S_INVAL);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 1, EP1, 0), VIRTIO_IOMMU_S_OK);
}

static void test_attach_noent(void *obj, void *data, QGuestAllocator *a)
{
    QViommu *v = obj;

    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 1, EP_NO_SLOT, 0),
                          VIRTIO_IOMMU_S_NOENT);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 1, EP_NO_FN, 0),
                          VIRTIO_IOMMU_S_NOENT);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 1, 0xffff, 0),
                          VIRTIO_IOMMU_S_NOENT);
    /* IDs above 16 bits do not alias a requester ID */
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 1, EP_ALIAS, 0),
                          VIRTIO_IOMMU_S_NOENT);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 1, UINT32_MAX, 0),
                          VIRTIO_IOMMU_S_NOENT);
    /* and nothing got attached to domain 1 */
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, 0, PAGE - 1, 0, RW),
                          VIRTIO_IOMMU_S_NOENT);
    QVIOMMU_EXPECT_STATUS(qviommu_detach_req(v, 1, EP1), VIRTIO_IOMMU_S_INVAL);
}

static void test_attach_range(void *obj, void *data, QGuestAllocator *a)
{
    QViommu *v = obj;

    /* max-domain-id=7 */
    CHECK_EQ(qviommu_config_readl(v, CFG_OFF(domain_range.end)), 7);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 8, EP1, 0),
                          VIRTIO_IOMMU_S_RANGE);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, UINT32_MAX, EP1, 0),
                          VIRTIO_IOMMU_S_RANGE);
    /* the endpoint is checked before the domain */
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 8, EP_NO_SLOT, 0),
                          VIRTIO_IOMMU_S_NOENT);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 7, EP1, 0), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 0, EP2, 0), VIRTIO_IOMMU_S_OK);

    /* DETACH: endpoint, then domain range, then membership */
    QVIOMMU_EXPECT_STATUS(qviommu_detach_req(v, 8, EP1), VIRTIO_IOMMU_S_RANGE);
    QVIOMMU_EXPECT_STATUS(qviommu_detach_req(v, 8, EP_NO_SLOT),
                          VIRTIO_IOMMU_S_NOENT);
    QVIOMMU_EXPECT_STATUS(qviommu_detach_req(v, 7, EP1), VIRTIO_IOMMU_S_OK);

    /* MAP and UNMAP */
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 8, 0, PAGE - 1, 0, RW),
                          VIRTIO_IOMMU_S_RANGE);
    QVIOMMU_EXPECT_STATUS(qviommu_unmap_req(v, 8, 0, PAGE - 1),
                          VIRTIO_IOMMU_S_RANGE);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 0, 0, PAGE - 1, 0, RW),
                          VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_unmap_req(v, 0, 0, PAGE - 1),
                          VIRTIO_IOMMU_S_OK);
}

static void test_attach_bypass_mismatch(void *obj, void *data,
                                        QGuestAllocator *a)
{
    QViommu *v = obj;

    /* domain 1 translates, with EP1 in it and one mapping */
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 1, EP1, 0), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, 0, PAGE - 1, 0, RW),
                          VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 1, EP2,
                                             VIRTIO_IOMMU_ATTACH_F_BYPASS),
                          VIRTIO_IOMMU_S_INVAL);
    /* domain 2 is a bypass domain, with EP2 in it */
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 2, EP2,
                                             VIRTIO_IOMMU_ATTACH_F_BYPASS),
                          VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 2, EP1, 0),
                          VIRTIO_IOMMU_S_INVAL);

    /* the failed ATTACH left EP1 in domain 1, mappings intact */
    CHECK(vit_is_mapped(v, 1, 0, PAGE - 1));
    QVIOMMU_EXPECT_STATUS(qviommu_detach_req(v, 2, EP1), VIRTIO_IOMMU_S_INVAL);

    /* MAP and UNMAP on a bypass domain */
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 2, 0, PAGE - 1, 0, RW),
                          VIRTIO_IOMMU_S_INVAL);
    QVIOMMU_EXPECT_STATUS(qviommu_unmap_req(v, 2, 0, PAGE - 1),
                          VIRTIO_IOMMU_S_INVAL);
    /* the bypass check comes before range and alignment checks */
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 2, 0x10, 0x8, 0x3, RW),
                          VIRTIO_IOMMU_S_INVAL);

    /*
     * EP2 alone in bypass domain 2: re-attaching it without the flag
     * destroys the domain first, so the new domain 2 translates.
     */
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 2, EP2, 0), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 2, 0, PAGE - 1, 0, RW),
                          VIRTIO_IOMMU_S_OK);

    QVIOMMU_EXPECT_STATUS(qviommu_detach_req(v, 1, EP1), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_detach_req(v, 2, EP2), VIRTIO_IOMMU_S_OK);
}

static void test_attach_move(void *obj, void *data, QGuestAllocator *a)
{
    QViommu *v = obj;

    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 1, EP1, 0), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, 0, PAGE - 1, 0, RW),
                          VIRTIO_IOMMU_S_OK);
    /* moving EP1 detaches it from domain 1, which dies empty */
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 2, EP1, 0), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_detach_req(v, 1, EP1), VIRTIO_IOMMU_S_INVAL);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, 0, PAGE - 1, 0, RW),
                          VIRTIO_IOMMU_S_NOENT);
    CHECK(!vit_is_mapped(v, 2, 0, PAGE - 1));

    /*
     * Re-attaching to the domain of which it is the only endpoint empties
     * the domain (the Linux driver replays its mappings).
     */
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 2, PAGE, 2 * PAGE - 1, 0, RW),
                          VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 2, EP1, 0), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 2, PAGE, 2 * PAGE - 1, 0, RW),
                          VIRTIO_IOMMU_S_OK);

    /* with a second endpoint the domain survives, mappings too */
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 2, EP2, 0), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 2, EP1, 0), VIRTIO_IOMMU_S_OK);
    CHECK(vit_is_mapped(v, 2, PAGE, 2 * PAGE - 1));
}

static void test_attach_nomem(void *obj, void *data, QGuestAllocator *a)
{
    QViommu *v = obj;

    /* max-domains=1 */
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 1, EP1, 0), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 2, EP2, 0),
                          VIRTIO_IOMMU_S_NOMEM);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 2, EP2,
                                             VIRTIO_IOMMU_ATTACH_F_BYPASS),
                          VIRTIO_IOMMU_S_NOMEM);
    /* joining the existing domain needs no new one */
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 1, EP2, 0), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_detach_req(v, 1, EP1), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_detach_req(v, 1, EP2), VIRTIO_IOMMU_S_OK);
    /* the domain died with its last endpoint: room for another */
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 2, EP2, 0), VIRTIO_IOMMU_S_OK);
}

/* ------------------------------------------------------------------ */
/* DETACH                                                              */

static void test_detach_status(void *obj, void *data, QGuestAllocator *a)
{
    QViommu *v = obj;
    QViommuReq b;
    uint32_t len;
    int i;

    QVIOMMU_EXPECT_STATUS(qviommu_detach_req(v, 1, EP_NO_SLOT),
                          VIRTIO_IOMMU_S_NOENT);
    QVIOMMU_EXPECT_STATUS(qviommu_detach_req(v, 1, EP_NO_FN),
                          VIRTIO_IOMMU_S_NOENT);
    QVIOMMU_EXPECT_STATUS(qviommu_detach_req(v, 1, EP_ALIAS),
                          VIRTIO_IOMMU_S_NOENT);
    /* no domain 1 */
    QVIOMMU_EXPECT_STATUS(qviommu_detach_req(v, 1, EP1), VIRTIO_IOMMU_S_INVAL);

    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 1, EP1, 0), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 2, EP2, 0), VIRTIO_IOMMU_S_OK);
    /* EP1 is not in domain 2, nor EP2 in domain 1; no domain 3 */
    QVIOMMU_EXPECT_STATUS(qviommu_detach_req(v, 2, EP1), VIRTIO_IOMMU_S_INVAL);
    QVIOMMU_EXPECT_STATUS(qviommu_detach_req(v, 1, EP2), VIRTIO_IOMMU_S_INVAL);
    QVIOMMU_EXPECT_STATUS(qviommu_detach_req(v, 3, EP1), VIRTIO_IOMMU_S_INVAL);
    QVIOMMU_EXPECT_STATUS(qviommu_detach_req(v, 1, EP_ALIAS),
                          VIRTIO_IOMMU_S_NOENT);

    /* reserved fields are ignored */
    len = qviommu_enc_detach(&b, 1, EP1);
    for (i = 0; i < 8; i++) {
        b.detach.reserved[i] = 0xff;
    }
    b.head.reserved[1] = 0xff;
    QVIOMMU_EXPECT_STATUS(qviommu_send_req(v, &b, len, 4), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_detach_req(v, 2, EP2), VIRTIO_IOMMU_S_OK);
}

/* ------------------------------------------------------------------ */
/* MAP                                                                 */

static void test_map_flags(void *obj, void *data, QGuestAllocator *a)
{
    QViommu *v = obj;
    int bit;

    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 1, EP1, 0), VIRTIO_IOMMU_S_OK);
    for (bit = 3; bit < 32; bit++) {
        QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, 0, PAGE - 1, 0,
                                              RW | (1u << bit)),
                              VIRTIO_IOMMU_S_INVAL);
    }
    /* flags come first: unknown flag on a missing domain */
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 9, 0, PAGE - 1, 0, 1u << 31),
                          VIRTIO_IOMMU_S_INVAL);
    CHECK(!vit_is_mapped(v, 1, 0, PAGE - 1));

    /* every combination of the known flags (F_MMIO negotiated) */
    for (bit = 0; bit < 8; bit++) {
        QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, bit * PAGE,
                                              bit * PAGE + PAGE - 1,
                                              0x200000, bit),
                              VIRTIO_IOMMU_S_OK);
    }
    QVIOMMU_EXPECT_STATUS(qviommu_unmap_req(v, 1, 0, 8 * PAGE - 1),
                          VIRTIO_IOMMU_S_OK);
}

static void test_map_noent(void *obj, void *data, QGuestAllocator *a)
{
    QViommu *v = obj;

    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, 0, PAGE - 1, 0, RW),
                          VIRTIO_IOMMU_S_NOENT);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, UINT32_MAX, 0, PAGE - 1, 0, RW),
                          VIRTIO_IOMMU_S_NOENT);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 1, EP1, 0), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 2, 0, PAGE - 1, 0, RW),
                          VIRTIO_IOMMU_S_NOENT);
    /* the domain check comes before range checks */
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 2, PAGE, 0, 1, RW),
                          VIRTIO_IOMMU_S_NOENT);
}

static void test_map_range(void *obj, void *data, QGuestAllocator *a)
{
    QViommu *v = obj;
    uint64_t end = vit_input_end(v);

    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 1, EP1, 0), VIRTIO_IOMMU_S_OK);

    /* virt_end < virt_start */
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, 2 * PAGE, PAGE - 1, 0, RW),
                          VIRTIO_IOMMU_S_INVAL);
    /* reversed comes before misaligned */
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, 0x1234, 0x123, 0x5, RW),
                          VIRTIO_IOMMU_S_INVAL);
    CHECK(!vit_is_mapped(v, 1, 0, 2 * PAGE - 1));

    /* the spec's examples map [0, 4]: not on a 4k granule */
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, 0, 4, 0, RW),
                          VIRTIO_IOMMU_S_RANGE);
    /* virt_start, phys_start, virt_end + 1 misaligned in turn */
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, 0x800, 0x1fff, 0x0, RW),
                          VIRTIO_IOMMU_S_RANGE);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, 0x1000, 0x1fff, 0x800, RW),
                          VIRTIO_IOMMU_S_RANGE);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, 0x1000, 0x17ff, 0x0, RW),
                          VIRTIO_IOMMU_S_RANGE);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, 0x1000, 0x1000, 0x0, RW),
                          VIRTIO_IOMMU_S_RANGE);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, 0x1001, 0x1fff, 0x1, RW),
                          VIRTIO_IOMMU_S_RANGE);
    CHECK(!vit_is_mapped(v, 1, 0, 2 * PAGE - 1));

    /* the physical end past 2^64 */
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, 0, 2 * PAGE - 1,
                                          UINT64_MAX - PAGE + 1, RW),
                          VIRTIO_IOMMU_S_RANGE);
    /* the last page of the physical space is fine */
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, 0, PAGE - 1,
                                          UINT64_MAX - PAGE + 1, RW),
                          VIRTIO_IOMMU_S_OK);

    /* the last page of the input range, and a mapping up to it */
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, end - PAGE + 1, end, 0, RW),
                          VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_unmap_req(v, 1, end - PAGE + 1, end),
                          VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, end - 16 * PAGE + 1, end,
                                          0x100000, RW),
                          VIRTIO_IOMMU_S_OK);
    CHECK(vit_is_mapped(v, 1, end - PAGE + 1, end));
    QVIOMMU_EXPECT_STATUS(qviommu_unmap_req(v, 1, 0, end), VIRTIO_IOMMU_S_OK);
    CHECK(!vit_is_mapped(v, 1, end - PAGE + 1, end));
    CHECK(!vit_is_mapped(v, 1, 0, PAGE - 1));
}

static void test_map_input_range(void *obj, void *data, QGuestAllocator *a)
{
    QViommu *v = obj;
    uint64_t top = BIT64(40);

    /* aw-bits=40 */
    CHECK_EQ(vit_input_end(v), top - 1);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 1, EP1, 0), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, top, top + PAGE - 1, 0, RW),
                          VIRTIO_IOMMU_S_RANGE);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, top - PAGE, top + PAGE - 1,
                                          0, RW),
                          VIRTIO_IOMMU_S_RANGE);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, UINT64_MAX - PAGE + 1,
                                          UINT64_MAX, 0, RW),
                          VIRTIO_IOMMU_S_RANGE);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, top - PAGE, top - 1, 0, RW),
                          VIRTIO_IOMMU_S_OK);

    QVIOMMU_EXPECT_STATUS(qviommu_unmap_req(v, 1, top, top + PAGE - 1),
                          VIRTIO_IOMMU_S_RANGE);
    QVIOMMU_EXPECT_STATUS(qviommu_unmap_req(v, 1, top - PAGE, top + PAGE - 1),
                          VIRTIO_IOMMU_S_RANGE);
    CHECK(vit_is_mapped(v, 1, top - PAGE, top - 1));
    QVIOMMU_EXPECT_STATUS(qviommu_unmap_req(v, 1, 0, top - 1),
                          VIRTIO_IOMMU_S_OK);
    CHECK(!vit_is_mapped(v, 1, top - PAGE, top - 1));
}

static void test_map_overlap(void *obj, void *data, QGuestAllocator *a)
{
    QViommu *v = obj;
    const uint64_t s = 0x10 * PAGE, e = 0x14 * PAGE - 1;   /* 4 pages */

    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 1, EP1, 0), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, s, e, 0x100000, RW),
                          VIRTIO_IOMMU_S_OK);

    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, s, e, 0x100000, RW),
                          VIRTIO_IOMMU_S_INVAL);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, s - PAGE, s + PAGE - 1, 0, RW),
                          VIRTIO_IOMMU_S_INVAL);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, e + 1 - PAGE, e + PAGE, 0, RW),
                          VIRTIO_IOMMU_S_INVAL);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, e + 1 - PAGE, e, 0, RW),
                          VIRTIO_IOMMU_S_INVAL);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, s + PAGE, s + 2 * PAGE - 1,
                                          0, RW),
                          VIRTIO_IOMMU_S_INVAL);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, 0, 0x100 * PAGE - 1, 0, RW),
                          VIRTIO_IOMMU_S_INVAL);

    /* adjacent on both sides is fine */
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, s - PAGE, s - 1, 0, RW),
                          VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, e + 1, e + PAGE, 0, RW),
                          VIRTIO_IOMMU_S_OK);

    /* another domain has its own address space */
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 2, EP2, 0), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 2, s, e, 0, RW),
                          VIRTIO_IOMMU_S_OK);
}

static void test_map_msi(void *obj, void *data, QGuestAllocator *a)
{
    QViommu *v = obj;
    const TestCfg *cfg = data;
    Machine m;
    uint64_t ms, me;

    if (!vit_machine_info(v, cfg, &m)) {
        return;
    }
    ms = m.msi.start;
    me = m.msi.end;

    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 1, EP1, 0), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, ms, ms + PAGE - 1, ms, RW),
                          VIRTIO_IOMMU_S_INVAL);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, me + 1 - PAGE, me, 0, RW),
                          VIRTIO_IOMMU_S_INVAL);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, ms - PAGE, ms + PAGE - 1,
                                          0, RW),
                          VIRTIO_IOMMU_S_INVAL);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, me + 1 - PAGE, me + PAGE,
                                          0, RW),
                          VIRTIO_IOMMU_S_INVAL);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, 0, 0x100000000ull - 1, 0, RW),
                          VIRTIO_IOMMU_S_INVAL);
    /* the pages around the window are free */
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, ms - PAGE, ms - 1, 0, RW),
                          VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, me + 1, me + PAGE, 0, RW),
                          VIRTIO_IOMMU_S_OK);
}

static void test_map_nomem(void *obj, void *data, QGuestAllocator *a)
{
    QViommu *v = obj;

    /* max-mappings=2, counted over all domains */
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 1, EP1, 0), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 2, EP2, 0), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, 0, PAGE - 1, 0, RW),
                          VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 2, 0, PAGE - 1, 0, RW),
                          VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, PAGE, 2 * PAGE - 1, 0, RW),
                          VIRTIO_IOMMU_S_NOMEM);
    /* overlap is checked before the limit */
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, 0, PAGE - 1, 0, RW),
                          VIRTIO_IOMMU_S_INVAL);
    QVIOMMU_EXPECT_STATUS(qviommu_unmap_req(v, 2, 0, PAGE - 1),
                          VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, PAGE, 2 * PAGE - 1, 0, RW),
                          VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 2, PAGE, 2 * PAGE - 1, 0, RW),
                          VIRTIO_IOMMU_S_NOMEM);
    /* destroying a domain frees its mappings */
    QVIOMMU_EXPECT_STATUS(qviommu_detach_req(v, 1, EP1), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 2, 0, PAGE - 1, 0, RW),
                          VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 2, PAGE, 2 * PAGE - 1, 0, RW),
                          VIRTIO_IOMMU_S_OK);
}

/* ------------------------------------------------------------------ */
/* UNMAP                                                               */

static void test_unmap_status(void *obj, void *data, QGuestAllocator *a)
{
    QViommu *v = obj;
    QViommuReq b;
    uint32_t len;
    int i;

    QVIOMMU_EXPECT_STATUS(qviommu_unmap_req(v, 1, 0, PAGE - 1),
                          VIRTIO_IOMMU_S_NOENT);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 1, EP1, 0), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, 0, PAGE - 1, 0, RW),
                          VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_unmap_req(v, 2, 0, PAGE - 1),
                          VIRTIO_IOMMU_S_NOENT);

    /* reserved != 0: INVAL, nothing unmapped */
    for (i = 0; i < 4; i++) {
        len = qviommu_enc_unmap(&b, 1, 0, PAGE - 1);
        b.unmap.reserved[i] = 1;
        QVIOMMU_EXPECT_STATUS(qviommu_send_req(v, &b, len, 4),
                              VIRTIO_IOMMU_S_INVAL);
    }
    /* reserved is checked before the domain */
    len = qviommu_enc_unmap(&b, 9, 0, PAGE - 1);
    b.unmap.reserved[0] = 1;
    QVIOMMU_EXPECT_STATUS(qviommu_send_req(v, &b, len, 4),
                          VIRTIO_IOMMU_S_INVAL);
    CHECK(vit_is_mapped(v, 1, 0, PAGE - 1));

    /* reversed range */
    QVIOMMU_EXPECT_STATUS(qviommu_unmap_req(v, 1, PAGE - 1, 0),
                          VIRTIO_IOMMU_S_INVAL);
    CHECK(vit_is_mapped(v, 1, 0, PAGE - 1));

    /* bypass domain */
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 2, EP2,
                                             VIRTIO_IOMMU_ATTACH_F_BYPASS),
                          VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_unmap_req(v, 2, 0, PAGE - 1),
                          VIRTIO_IOMMU_S_INVAL);

    /* unaligned UNMAP ranges that split nothing are fine */
    QVIOMMU_EXPECT_STATUS(qviommu_unmap_req(v, 1, 0x5000, 0x5003),
                          VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_unmap_req(v, 1, 0, vit_input_end(v)),
                          VIRTIO_IOMMU_S_OK);
    CHECK(!vit_is_mapped(v, 1, 0, PAGE - 1));
}

static void test_unmap_split(void *obj, void *data, QGuestAllocator *a)
{
    QViommu *v = obj;

    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 1, EP1, 0), VIRTIO_IOMMU_S_OK);
    /* a = 2 pages, b = 4 pages right after, c = 1 page further on */
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, 0, 2 * PAGE - 1, 0, RW),
                          VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, 2 * PAGE, 6 * PAGE - 1, 0, RW),
                          VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, 8 * PAGE, 9 * PAGE - 1, 0, RW),
                          VIRTIO_IOMMU_S_OK);

    /* covers a entirely but only half of b: nothing removed */
    QVIOMMU_EXPECT_STATUS(qviommu_unmap_req(v, 1, 0, 4 * PAGE - 1),
                          VIRTIO_IOMMU_S_RANGE);
    /* starts inside b, covers c */
    QVIOMMU_EXPECT_STATUS(qviommu_unmap_req(v, 1, 3 * PAGE, 10 * PAGE - 1),
                          VIRTIO_IOMMU_S_RANGE);
    /* inside a single page of a */
    QVIOMMU_EXPECT_STATUS(qviommu_unmap_req(v, 1, 0x10, 0x20),
                          VIRTIO_IOMMU_S_RANGE);
    /* ends one byte short of a's end */
    QVIOMMU_EXPECT_STATUS(qviommu_unmap_req(v, 1, 0, 2 * PAGE - 2),
                          VIRTIO_IOMMU_S_RANGE);
    CHECK(vit_is_mapped(v, 1, 0, 2 * PAGE - 1));
    CHECK(vit_is_mapped(v, 1, 2 * PAGE, 6 * PAGE - 1));
    CHECK(vit_is_mapped(v, 1, 8 * PAGE, 9 * PAGE - 1));

    /* exact covers work */
    QVIOMMU_EXPECT_STATUS(qviommu_unmap_req(v, 1, 0, 6 * PAGE - 1),
                          VIRTIO_IOMMU_S_OK);
    CHECK(!vit_is_mapped(v, 1, 0, 2 * PAGE - 1));
    CHECK(!vit_is_mapped(v, 1, 2 * PAGE, 6 * PAGE - 1));
    CHECK(vit_is_mapped(v, 1, 8 * PAGE, 9 * PAGE - 1));
}

/* The spec's map(s, e) scaled so that every mapping is page aligned */
#define VS(s)       ((uint64_t)(s) * PAGE)
#define VE(e)       ((uint64_t)(e) * PAGE + PAGE - 1)

static void test_unmap_examples(void *obj, void *data, QGuestAllocator *a)
{
    QViommu *v = obj;
    uint32_t d = 100;

    /* each sequence starts on a blank address space: a fresh domain */

    /* (1) unmap(0, 4) -> succeeds, doesn't unmap anything */
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, ++d, EP1, 0),
                          VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_unmap_req(v, d, VS(0), VE(4)),
                          VIRTIO_IOMMU_S_OK);

    /* (2) a = map(0, 9); unmap(0, 9) -> succeeds, unmaps a */
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, ++d, EP1, 0),
                          VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, d, VS(0), VE(9), 0, RW),
                          VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_unmap_req(v, d, VS(0), VE(9)),
                          VIRTIO_IOMMU_S_OK);
    CHECK(!vit_is_mapped(v, d, VS(0), VE(9)));

    /* (3) a = map(0, 4); b = map(5, 9); unmap(0, 9) -> unmaps a and b */
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, ++d, EP1, 0),
                          VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, d, VS(0), VE(4), 0, RW),
                          VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, d, VS(5), VE(9), 0, RW),
                          VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_unmap_req(v, d, VS(0), VE(9)),
                          VIRTIO_IOMMU_S_OK);
    CHECK(!vit_is_mapped(v, d, VS(0), VE(4)));
    CHECK(!vit_is_mapped(v, d, VS(5), VE(9)));

    /* (4) a = map(0, 9); unmap(0, 4) -> fails, doesn't unmap anything */
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, ++d, EP1, 0),
                          VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, d, VS(0), VE(9), 0, RW),
                          VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_unmap_req(v, d, VS(0), VE(4)),
                          VIRTIO_IOMMU_S_RANGE);
    CHECK(vit_is_mapped(v, d, VS(0), VE(9)));

    /* (5) a = map(0, 4); b = map(5, 9); unmap(0, 4) -> unmaps a */
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, ++d, EP1, 0),
                          VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, d, VS(0), VE(4), 0, RW),
                          VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, d, VS(5), VE(9), 0, RW),
                          VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_unmap_req(v, d, VS(0), VE(4)),
                          VIRTIO_IOMMU_S_OK);
    CHECK(!vit_is_mapped(v, d, VS(0), VE(4)));
    CHECK(vit_is_mapped(v, d, VS(5), VE(9)));

    /* (6) a = map(0, 4); unmap(0, 9) -> succeeds, unmaps a */
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, ++d, EP1, 0),
                          VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, d, VS(0), VE(4), 0, RW),
                          VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_unmap_req(v, d, VS(0), VE(9)),
                          VIRTIO_IOMMU_S_OK);
    CHECK(!vit_is_mapped(v, d, VS(0), VE(4)));

    /* (7) a = map(0, 4); b = map(10, 14); unmap(0, 14) -> a and b */
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, ++d, EP1, 0),
                          VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, d, VS(0), VE(4), 0, RW),
                          VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, d, VS(10), VE(14), 0, RW),
                          VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_unmap_req(v, d, VS(0), VE(14)),
                          VIRTIO_IOMMU_S_OK);
    CHECK(!vit_is_mapped(v, d, VS(0), VE(4)));
    CHECK(!vit_is_mapped(v, d, VS(10), VE(14)));
}

/* ------------------------------------------------------------------ */
/* PROBE                                                               */

static void test_probe(void *obj, void *data, QGuestAllocator *a)
{
    QViommu *v = obj;
    const TestCfg *cfg = data;
    uint32_t size = vit_probe_size(v);
    g_autofree uint8_t *out = g_malloc(size + 4 + 256);
    Machine m;
    QViommuReq b;
    uint32_t len;
    QViommuRes r;

    if (!vit_machine_info(v, cfg, &m)) {
        return;
    }
    g_assert_cmpuint(size, >=, sizeof(struct virtio_iommu_probe_resv_mem));

    r = qviommu_probe_req(v, EP1, size, out);
    if (QVIOMMU_EXPECT_STATUS(r, VIRTIO_IOMMU_S_OK)) {
        CHECK_PROPS(out, size, &m.msi, 1);
    }
    /* every endpoint has the machine's MSI window */
    r = qviommu_probe_req(v, EP2, size, out);
    if (QVIOMMU_EXPECT_STATUS(r, VIRTIO_IOMMU_S_OK)) {
        CHECK_PROPS(out, size, &m.msi, 1);
    }

    /* a bigger writable part: the rest is zero, the tail at the end */
    r = qviommu_probe_req(v, EP1, size + 256, out);
    if (QVIOMMU_EXPECT_STATUS(r, VIRTIO_IOMMU_S_OK)) {
        CHECK_PROPS(out, size + 256, &m.msi, 1);
    }

    /* reserved fields are ignored */
    len = qviommu_enc_probe(&b, EP1);
    memset(b.raw + offsetof(struct virtio_iommu_req_probe, reserved), 0xff,
           64);
    b.head.reserved[0] = 0xff;
    r = qviommu_send_layout(v, &b, len, 0, size + 4, 0, out);
    if (QVIOMMU_EXPECT_STATUS(r, VIRTIO_IOMMU_S_OK)) {
        CHECK_PROPS(out, size, &m.msi, 1);
    }

    QVIOMMU_EXPECT_STATUS(qviommu_probe_req(v, EP_NO_SLOT, size, NULL),
                          VIRTIO_IOMMU_S_NOENT);
    QVIOMMU_EXPECT_STATUS(qviommu_probe_req(v, EP_NO_FN, size, NULL),
                          VIRTIO_IOMMU_S_NOENT);
    QVIOMMU_EXPECT_STATUS(qviommu_probe_req(v, EP_ALIAS, size, NULL),
                          VIRTIO_IOMMU_S_NOENT);
}

static void test_probe_small(void *obj, void *data, QGuestAllocator *a)
{
    QViommu *v = obj;
    uint32_t size = vit_probe_size(v);
    g_autofree uint8_t *out = g_malloc(size + 4);
    uint32_t lens[] = { size - 1, size - 4, 24, 1, 0 };
    unsigned i;
    QViommuRes r;

    for (i = 0; i < ARRAY_SIZE(lens); i++) {
        r = qviommu_probe_req(v, EP1, lens[i], out);
        if (!QVIOMMU_EXPECT_STATUS(r, VIRTIO_IOMMU_S_INVAL)) {
            qviommu_report(__func__, __LINE__, "(properties part of %u bytes, "
                           "probe_size %u)", lens[i], size);
        } else if (!r.zero_prefix && !r.untouched) {
            /* no property written: left alone or zero-filled */
            qviommu_report(__func__, __LINE__, "PROBE with %u bytes of "
                           "properties: properties part written", lens[i]);
        }
    }
    /* the size check comes before the endpoint check */
    QVIOMMU_EXPECT_STATUS(qviommu_probe_req(v, EP_NO_SLOT, size - 4, NULL),
                          VIRTIO_IOMMU_S_INVAL);
}

/* reserved-regions given by the user, on top of the machine's */
#define USER_RESV_JSON                                                  \
    "{\"driver\":\"virtio-iommu-pci\",\"addr\":\"" QVIOMMU_PCI_ADDR_STR  \
    "\",\"reserved-regions\":[\"0x30000000:0x30000fff:0\","             \
    "\"0x20000000:0x2001ffff:0\"]}"

static void test_probe_user_regions(void *obj, void *data,
                                    QGuestAllocator *a)
{
    QViommu *v = obj;
    uint32_t size = vit_probe_size(v);
    g_autofree uint8_t *out = g_malloc(size + 4);
    Resv user[2] = {
        { 0x20000000, 0x2001ffff, VIRTIO_IOMMU_RESV_MEM_T_RESERVED },
        { 0x30000000, 0x30000fff, VIRTIO_IOMMU_RESV_MEM_T_RESERVED },
    };
    Resv want[3];
    Machine m;
    QViommuRes r;

    if (!vit_machine_info(v, NULL, &m)) {
        return;
    }
    /* sorted by address */
    if (m.msi.start < user[0].start) {
        want[0] = m.msi;
        want[1] = user[0];
        want[2] = user[1];
    } else {
        want[0] = user[0];
        want[1] = user[1];
        want[2] = m.msi;
    }
    r = qviommu_probe_req(v, EP1, size, out);
    if (QVIOMMU_EXPECT_STATUS(r, VIRTIO_IOMMU_S_OK)) {
        CHECK_PROPS(out, size, want, 3);
    }

    /* MAP may not overlap a reserved region */
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 1, EP1, 0), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, 0x20010000, 0x20010fff, 0, RW),
                          VIRTIO_IOMMU_S_INVAL);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, 0x2fff0000, 0x30000fff, 0, RW),
                          VIRTIO_IOMMU_S_INVAL);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, 0x20020000, 0x20020fff, 0, RW),
                          VIRTIO_IOMMU_S_OK);

    /* a RESERVED region faults for a translated endpoint */
    {
        g_autoptr(Ep) ep = vit_ep_open(v, EP1_SLOT);
        Faults fs;

        qviommu_post_events(v, 16, 32, QVIOMMU_FILL);
        vit_ep_start_std(ep, 1, a, RW);
        vit_ep_submit(ep, 0, 0x20000100, 16);
        vit_collect_faults(v, &fs, FAULT_WAIT_US, QUIET_WAIT_US);
        FIND_FAULT(&fs, VIRTIO_IOMMU_FAULT_R_MAPPING, F_WRITE_ADDR, EP1,
                   0x20000100, 0x20000100);
    }
}

/* ------------------------------------------------------------------ */
/* Malformed requests                                                  */

static void test_unknown_type(void *obj, void *data, QGuestAllocator *a)
{
    QViommu *v = obj;
    static const uint8_t types[] = { 0, 6, 7, 0x42, 0x80, 0xff };
    QViommuReq b;
    uint32_t len;
    unsigned i;

    for (i = 0; i < ARRAY_SIZE(types); i++) {
        len = qviommu_enc_attach(&b, 1, EP1, 0);
        b.head.type = types[i];
        QVIOMMU_EXPECT_UNUSED(qviommu_send_req(v, &b, len, 4));
        QVIOMMU_EXPECT_UNUSED(qviommu_send_req(v, &b, len, 64));
        QVIOMMU_EXPECT_UNUSED(qviommu_send_req(v, &b, 4, 4));
    }
    /* nothing happened, and the queue still works */
    QVIOMMU_EXPECT_STATUS(qviommu_detach_req(v, 1, EP1), VIRTIO_IOMMU_S_INVAL);
}

static void test_short_writable(void *obj, void *data, QGuestAllocator *a)
{
    QViommu *v = obj;
    QViommuReq b;
    uint32_t len, out;

    /* writable part shorter than a tail: completed, used length 0 */
    for (out = 0; out < 4; out++) {
        len = qviommu_enc_attach(&b, 1, EP1, 0);
        QVIOMMU_EXPECT_UNUSED(qviommu_send_req(v, &b, len, out));
        len = qviommu_enc_map(&b, 1, 0, PAGE - 1, 0, RW);
        QVIOMMU_EXPECT_UNUSED(qviommu_send_req(v, &b, len, out));
        len = qviommu_enc_probe(&b, EP1);
        QVIOMMU_EXPECT_UNUSED(qviommu_send_req(v, &b, len, out));
        len = qviommu_enc_attach(&b, 1, EP1, 0);
        b.head.type = 0x55;
        QVIOMMU_EXPECT_UNUSED(qviommu_send_req(v, &b, len, out));
    }
    /* none of them was executed */
    QVIOMMU_EXPECT_STATUS(qviommu_detach_req(v, 1, EP1), VIRTIO_IOMMU_S_INVAL);

    /* more than 1 MiB of writable part is refused too... */
    len = qviommu_enc_attach(&b, 1, EP1, 0);
    QVIOMMU_EXPECT_UNUSED(qviommu_send_req(v, &b, len, (1u << 20) + 1));
    QVIOMMU_EXPECT_STATUS(qviommu_detach_req(v, 1, EP1), VIRTIO_IOMMU_S_INVAL);
    /* ... but 1 MiB is fine, zero-filled before the tail */
    {
        QViommuRes r = qviommu_send_req(v, &b, len, 1u << 20);

        QVIOMMU_EXPECT_STATUS(r, VIRTIO_IOMMU_S_OK);
        CHECK(r.zero_prefix);
    }
    QVIOMMU_EXPECT_STATUS(qviommu_detach_req(v, 1, EP1), VIRTIO_IOMMU_S_OK);
}

static void test_short_readable(void *obj, void *data, QGuestAllocator *a)
{
    QViommu *v = obj;
    QViommuReq b;
    uint32_t len;

    /* no head: nothing to go by */
    len = qviommu_enc_attach(&b, 1, EP1, 0);
    QVIOMMU_EXPECT_UNUSED(qviommu_send_req(v, &b, 0, 4));
    QVIOMMU_EXPECT_UNUSED(qviommu_send_req(v, &b, 1, 4));
    QVIOMMU_EXPECT_UNUSED(qviommu_send_req(v, &b, 3, 4));

    /* a head and a tail, but the body is cut short: IOERR */
    QVIOMMU_EXPECT_STATUS(qviommu_send_req(v, &b, 4, 4), VIRTIO_IOMMU_S_IOERR);
    QVIOMMU_EXPECT_STATUS(qviommu_send_req(v, &b, len - 1, 4),
                          VIRTIO_IOMMU_S_IOERR);
    QVIOMMU_EXPECT_STATUS(qviommu_send_req(v, &b, len - 4, 4),
                          VIRTIO_IOMMU_S_IOERR);
    QVIOMMU_EXPECT_STATUS(qviommu_detach_req(v, 1, EP1), VIRTIO_IOMMU_S_INVAL);

    len = qviommu_enc_detach(&b, 1, EP1);
    QVIOMMU_EXPECT_STATUS(qviommu_send_req(v, &b, len - 1, 4),
                          VIRTIO_IOMMU_S_IOERR);

    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 1, EP1, 0), VIRTIO_IOMMU_S_OK);
    len = qviommu_enc_map(&b, 1, 0, PAGE - 1, 0, RW);
    QVIOMMU_EXPECT_STATUS(qviommu_send_req(v, &b, len - 1, 4),
                          VIRTIO_IOMMU_S_IOERR);
    QVIOMMU_EXPECT_STATUS(qviommu_send_req(v, &b, 8, 4), VIRTIO_IOMMU_S_IOERR);
    CHECK(!vit_is_mapped(v, 1, 0, PAGE - 1));

    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, 0, PAGE - 1, 0, RW),
                          VIRTIO_IOMMU_S_OK);
    len = qviommu_enc_unmap(&b, 1, 0, PAGE - 1);
    QVIOMMU_EXPECT_STATUS(qviommu_send_req(v, &b, len - 1, 4),
                          VIRTIO_IOMMU_S_IOERR);
    CHECK(vit_is_mapped(v, 1, 0, PAGE - 1));

    /* PROBE's readable part includes the 64 reserved bytes */
    len = qviommu_enc_probe(&b, EP1);
    QVIOMMU_EXPECT_STATUS(qviommu_send_layout(v, &b, len - 1, 0,
                                              vit_probe_size(v) + 4, 0, NULL),
                          VIRTIO_IOMMU_S_IOERR);
    QVIOMMU_EXPECT_STATUS(qviommu_send_layout(v, &b, 8, 0,
                                              vit_probe_size(v) + 4, 0, NULL),
                          VIRTIO_IOMMU_S_IOERR);
}

static void test_layouts(void *obj, void *data, QGuestAllocator *a)
{
    QViommu *v = obj;
    uint32_t size = vit_probe_size(v);
    g_autofree uint8_t *out = g_malloc(size + 4);
    QViommuReq b;
    uint32_t len;
    QViommuRes r;

    /* byte-sized descriptors, both parts */
    len = qviommu_enc_attach(&b, 1, EP1, 0);
    QVIOMMU_EXPECT_STATUS(qviommu_send_layout(v, &b, len, 1, 4, 1, NULL),
                          VIRTIO_IOMMU_S_OK);
    len = qviommu_enc_map(&b, 1, 0, PAGE - 1, 0x300000, RW);
    QVIOMMU_EXPECT_STATUS(qviommu_send_layout(v, &b, len, 5, 4, 3, NULL),
                          VIRTIO_IOMMU_S_OK);
    CHECK(vit_is_mapped(v, 1, 0, PAGE - 1));
    len = qviommu_enc_unmap(&b, 1, 0, PAGE - 1);
    QVIOMMU_EXPECT_STATUS(qviommu_send_layout(v, &b, len, 7, 4, 2, NULL),
                          VIRTIO_IOMMU_S_OK);
    CHECK(!vit_is_mapped(v, 1, 0, PAGE - 1));
    len = qviommu_enc_probe(&b, EP1);
    r = qviommu_send_layout(v, &b, len, 13, size + 4, 17, out);
    QVIOMMU_EXPECT_STATUS(r, VIRTIO_IOMMU_S_OK);

    /* extra readable bytes are ignored */
    len = qviommu_enc_detach(&b, 1, EP1);
    memset(b.raw + len, 0xee, 32);
    QVIOMMU_EXPECT_STATUS(qviommu_send_req(v, &b, len + 32, 4),
                          VIRTIO_IOMMU_S_OK);

    /* extra writable bytes are zero-filled, the status is at the end */
    len = qviommu_enc_attach(&b, 1, EP1, 0);
    r = qviommu_send_req(v, &b, len, 64);
    QVIOMMU_EXPECT_STATUS(r, VIRTIO_IOMMU_S_OK);
    CHECK(r.zero_prefix);
    len = qviommu_enc_detach(&b, 1, EP1);
    r = qviommu_send_layout(v, &b, len, 0, 13, 4, NULL);
    QVIOMMU_EXPECT_STATUS(r, VIRTIO_IOMMU_S_OK);
    CHECK(r.zero_prefix);
}

#define BATCH   32

static void test_batch(void *obj, void *data, QGuestAllocator *a)
{
    QViommu *v = obj;
    uint32_t size = vit_probe_size(v);
    g_autofree QViommuReq *b = g_new0(QViommuReq, BATCH);
    g_autofree uint8_t *out = g_malloc(BATCH * (size + 4));
    QViommuXfer x[BATCH];
    uint32_t used[BATCH];
    unsigned i;

    /* many MAPs, one notification, as Linux queues them */
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 1, EP1, 0), VIRTIO_IOMMU_S_OK);
    memset(out, QVIOMMU_FILL, BATCH * 4);
    for (i = 0; i < BATCH; i++) {
        /* request 7 maps what request 6 mapped */
        uint64_t page = i == 7 ? 6 : i;

        x[i] = (QViommuXfer) {
            .in = &b[i],
            .in_len = qviommu_enc_map(&b[i], 1, page * PAGE,
                                      page * PAGE + PAGE - 1,
                                      0x400000 + page * PAGE, RW),
            .out = out + i * 4, .out_len = 4,
        };
    }
    qviommu_xfer_batch(v, x, BATCH, used);
    for (i = 0; i < BATCH; i++) {
        if (!QVIOMMU_EXPECT_STATUS(qviommu_res_of(used[i], out + i * 4, 4),
                                   i == 7 ? VIRTIO_IOMMU_S_INVAL :
                                   VIRTIO_IOMMU_S_OK)) {
            qviommu_report(__func__, __LINE__, "(MAP request %u of the batch)",
                           i);
        }
    }
    CHECK(vit_is_mapped(v, 1, 0, PAGE - 1));
    CHECK(vit_is_mapped(v, 1, 31 * PAGE, 32 * PAGE - 1));
    CHECK(!vit_is_mapped(v, 1, 7 * PAGE, 8 * PAGE - 1));

    /* mixed requests, each with its own status */
    memset(out, QVIOMMU_FILL, BATCH * (size + 4));
    x[0] = (QViommuXfer) {
        .in = &b[0], .in_len = qviommu_enc_attach(&b[0], 2, EP2, 0),
        .out_len = 4,
    };
    x[1] = (QViommuXfer) {
        .in = &b[1], .in_len = qviommu_enc_map(&b[1], 2, 0, PAGE - 1, 0, RW),
        .out_len = 4,
    };
    x[2] = (QViommuXfer) {
        .in = &b[2], .in_len = qviommu_enc_probe(&b[2], EP1),
        .out_len = size + 4,
    };
    x[3] = (QViommuXfer) {
        .in = &b[3], .in_len = qviommu_enc_attach(&b[3], 2, EP1, 0),
        .out_len = 4,
    };
    b[3].head.type = 0x33;
    x[4] = (QViommuXfer) {
        .in = &b[4], .in_len = qviommu_enc_unmap(&b[4], 1, 0, 32 * PAGE - 1),
        .out_len = 4,
    };
    x[5] = (QViommuXfer) {
        .in = &b[5], .in_len = qviommu_enc_detach(&b[5], 2, EP2),
        .out_len = 4,
    };
    x[6] = (QViommuXfer) {
        .in = &b[6], .in_len = qviommu_enc_map(&b[6], 2, 0, PAGE - 1, 0, RW),
        .out_len = 4,
    };
    for (i = 0; i < 7; i++) {
        x[i].out = out + i * (size + 4);
    }
    qviommu_xfer_batch(v, x, 7, used);
    QVIOMMU_EXPECT_STATUS(qviommu_res_of(used[0], x[0].out, 4),
                          VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_res_of(used[1], x[1].out, 4),
                          VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_res_of(used[2], x[2].out, size + 4),
                          VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_UNUSED(qviommu_res_of(used[3], x[3].out, 4));
    QVIOMMU_EXPECT_STATUS(qviommu_res_of(used[4], x[4].out, 4),
                          VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_res_of(used[5], x[5].out, 4),
                          VIRTIO_IOMMU_S_OK);
    /* domain 2 died with EP2 */
    QVIOMMU_EXPECT_STATUS(qviommu_res_of(used[6], x[6].out, 4),
                          VIRTIO_IOMMU_S_NOENT);
    CHECK(!vit_is_mapped(v, 1, 0, PAGE - 1));
}

/*
 * The host-side cost of a request, for tests/bench/run-bench.sh; a
 * benchmark, so it exists only with -m perf (qos-test -m perf -l lists
 * it).  With qtest the notification returns once the device has completed
 * the whole batch, so the slope between batches of one and of COST_BATCH
 * requests is the device's time per request, free of the qtest round
 * trip.  The same binary measures upstream's device.
 */
#define COST_BATCH      128     /* two descriptors each: a full ring */
#define COST_REPS       41
#define COST_LIVE       1024    /* mappings that stay in the domain */
#define COST_IOVA       0x100000000ull

static int64_t cost_batch(QViommu *v, unsigned n, bool map, uint64_t page)
{
    g_autofree QViommuReq *b = g_new0(QViommuReq, n);
    g_autofree QViommuXfer *x = g_new0(QViommuXfer, n);
    g_autofree uint32_t *used = g_new0(uint32_t, n);
    g_autofree uint8_t *out = g_malloc0(n * 4);
    unsigned i;

    for (i = 0; i < n; i++) {
        uint64_t iova = COST_IOVA + (page + i) * PAGE;

        x[i] = (QViommuXfer) {
            .in = &b[i],
            .in_len = map ? qviommu_enc_map(&b[i], 1, iova, iova + PAGE - 1,
                                            0x400000 + (i % 256) * PAGE, RW)
                          : qviommu_enc_unmap(&b[i], 1, iova, iova + PAGE - 1),
            .out = out + i * 4, .out_len = 4,
        };
    }
    qviommu_xfer_batch(v, x, n, used);
    for (i = 0; i < n; i++) {
        QVIOMMU_EXPECT_STATUS(qviommu_res_of(used[i], out + i * 4, 4),
                              VIRTIO_IOMMU_S_OK);
    }
    return v->last_kick_ns;
}

static int cmp_int64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return x < y ? -1 : x > y;
}

static double median_ns(int64_t *t, unsigned n)
{
    qsort(t, n, sizeof(*t), cmp_int64);
    return t[n / 2];
}

static void test_request_cost(void *obj, void *data, QGuestAllocator *a)
{
    QViommu *v = obj;
    int64_t map1[COST_REPS], unmap1[COST_REPS];
    int64_t map_n[COST_REPS], unmap_n[COST_REPS];
    double map_ns, unmap_ns;
    unsigned i;

    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 1, EP1, 0), VIRTIO_IOMMU_S_OK);
    /* a domain with some life in it, far from the measured pages */
    for (i = 0; i < COST_LIVE; i += COST_BATCH) {
        cost_batch(v, COST_BATCH, true, 0x100000 + i);
    }
    for (i = 0; i < COST_REPS && !g_test_failed(); i++) {
        map1[i] = cost_batch(v, 1, true, 0);
        unmap1[i] = cost_batch(v, 1, false, 0);
        map_n[i] = cost_batch(v, COST_BATCH, true, 0);
        unmap_n[i] = cost_batch(v, COST_BATCH, false, 0);
    }
    if (g_test_failed()) {
        return;
    }
    map_ns = (median_ns(map_n, COST_REPS) - median_ns(map1, COST_REPS)) /
             (COST_BATCH - 1);
    unmap_ns = (median_ns(unmap_n, COST_REPS) -
                median_ns(unmap1, COST_REPS)) / (COST_BATCH - 1);
    g_test_message("request-cost: map_ns=%.0f unmap_ns=%.0f "
                   "notify1_ns=%.0f batch=%u live=%u reps=%u",
                   map_ns, unmap_ns, median_ns(map1, COST_REPS),
                   COST_BATCH, COST_LIVE, COST_REPS);
}

/* ------------------------------------------------------------------ */
/* Negotiated features                                                 */

static void test_no_map_unmap(void *obj, void *data, QGuestAllocator *a)
{
    QViommu *v = obj;

    qviommu_start(v, qviommu_known_features(v) &
                  ~BIT64(VIRTIO_IOMMU_F_MAP_UNMAP));
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 1, EP1, 0), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_UNUSED(qviommu_map_req(v, 1, 0, PAGE - 1, 0, RW));
    QVIOMMU_EXPECT_UNUSED(qviommu_unmap_req(v, 1, 0, PAGE - 1));
    /* a malformed one as well */
    QVIOMMU_EXPECT_UNUSED(qviommu_map_req(v, 1, 3, 1, 0, 0xff));
    QVIOMMU_EXPECT_STATUS(qviommu_detach_req(v, 1, EP1), VIRTIO_IOMMU_S_OK);
}

static void test_no_probe(void *obj, void *data, QGuestAllocator *a)
{
    QViommu *v = obj;
    uint32_t size = vit_probe_size(v);

    qviommu_start(v, qviommu_known_features(v) &
                  ~BIT64(VIRTIO_IOMMU_F_PROBE));
    QVIOMMU_EXPECT_UNUSED(qviommu_probe_req(v, EP1, size, NULL));
    QVIOMMU_EXPECT_UNUSED(qviommu_probe_req(v, EP_NO_SLOT, size, NULL));
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 1, EP1, 0), VIRTIO_IOMMU_S_OK);
}

static void test_no_mmio(void *obj, void *data, QGuestAllocator *a)
{
    QViommu *v = obj;

    qviommu_start(v, qviommu_known_features(v) &
                  ~BIT64(VIRTIO_IOMMU_F_MMIO));
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 1, EP1, 0), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, 0, PAGE - 1, 0,
                                          RW | VIRTIO_IOMMU_MAP_F_MMIO),
                          VIRTIO_IOMMU_S_INVAL);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, 0, PAGE - 1, 0,
                                          VIRTIO_IOMMU_MAP_F_MMIO),
                          VIRTIO_IOMMU_S_INVAL);
    CHECK(!vit_is_mapped(v, 1, 0, PAGE - 1));

    qviommu_start(v, qviommu_known_features(v));
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 1, EP1, 0), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, 0, PAGE - 1, 0,
                                          RW | VIRTIO_IOMMU_MAP_F_MMIO),
                          VIRTIO_IOMMU_S_OK);
}

/* ------------------------------------------------------------------ */
/* Config bypass and reset                                             */

static void test_bypass_config(void *obj, void *data, QGuestAllocator *a)
{
    QViommu *v = obj;
    static const uint8_t bad[] = { 2, 3, 0x80, 0xff };
    unsigned i;

    CHECK_EQ(vit_bypass_get(v), 1);
    vit_bypass_set(v, 0);
    CHECK_EQ(vit_bypass_get(v), 0);
    for (i = 0; i < ARRAY_SIZE(bad); i++) {
        vit_bypass_set(v, bad[i]);
        CHECK_EQ(vit_bypass_get(v), 0);
    }
    vit_bypass_set(v, 1);
    CHECK_EQ(vit_bypass_get(v), 1);
    for (i = 0; i < ARRAY_SIZE(bad); i++) {
        vit_bypass_set(v, bad[i]);
        CHECK_EQ(vit_bypass_get(v), 1);
    }

    /* writes to the other fields are ignored */
    qviommu_config_writeb(v, CFG_OFF(probe_size), 0);
    qviommu_config_writeb(v, CFG_OFF(domain_range.end), 0);
    qviommu_config_writeb(v, CFG_OFF(reserved), 0x55);
    CHECK(vit_probe_size(v) > 0);
    CHECK_EQ(qviommu_config_readl(v, CFG_OFF(domain_range.end)), UINT32_MAX);
    CHECK_EQ(qviommu_config_readb(v, CFG_OFF(reserved)), 0);
    CHECK_EQ(vit_bypass_get(v), 1);
}

static void test_bypass_config_not_negotiated(void *obj, void *data,
                                              QGuestAllocator *a)
{
    QViommu *v = obj;

    qviommu_start(v, qviommu_known_features(v) &
                  ~BIT64(VIRTIO_IOMMU_F_BYPASS_CONFIG));
    CHECK_EQ(vit_bypass_get(v), 1);
    vit_bypass_set(v, 0);
    CHECK_EQ(vit_bypass_get(v), 1);
}

static void test_bypass_config_reset(void *obj, void *data,
                                     QGuestAllocator *a)
{
    QViommu *v = obj;

    vit_bypass_set(v, 0);
    CHECK_EQ(vit_bypass_get(v), 0);

    /* a device reset keeps it */
    qviommu_start(v, qviommu_known_features(v));
    CHECK_EQ(vit_bypass_get(v), 0);

    /* a system reset goes back to boot-bypass */
    vit_system_reset_restart(v);
    CHECK_EQ(vit_bypass_get(v), 1);
}

static void test_boot_bypass_off(void *obj, void *data, QGuestAllocator *a)
{
    QViommu *v = obj;

    /* boot-bypass=off */
    CHECK_EQ(vit_bypass_get(v), 0);
    vit_bypass_set(v, 1);
    CHECK_EQ(vit_bypass_get(v), 1);
    vit_system_reset_restart(v);
    CHECK_EQ(vit_bypass_get(v), 0);
}

static void test_reset_detaches(void *obj, void *data, QGuestAllocator *a)
{
    QViommu *v = obj;

    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 1, EP1, 0), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, 0, PAGE - 1, 0, RW),
                          VIRTIO_IOMMU_S_OK);
    qviommu_start(v, qviommu_known_features(v));
    /* no endpoint attached, no domain left */
    QVIOMMU_EXPECT_STATUS(qviommu_detach_req(v, 1, EP1), VIRTIO_IOMMU_S_INVAL);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, 0, PAGE - 1, 0, RW),
                          VIRTIO_IOMMU_S_NOENT);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 1, EP1, 0), VIRTIO_IOMMU_S_OK);
    CHECK(!vit_is_mapped(v, 1, 0, PAGE - 1));
}

/* ------------------------------------------------------------------ */

static void register_virtio_iommu_test(void)
{
    static const TestCfg q35 = { .q35 = true };
    /* What stock QEMU can run too: no test device */
    static const TestCfg plain = { .plain = true };
    static const TestCfg plain_q35 = { .plain = true, .q35 = true };
    static const TestCfg plain_8_2 = {
        .plain = true,
        .x86_machine = "pc-q35-8.2",
        .arm_machine = "virt-8.2",
        .aw_bits = 64,
    };
    static const TestCfg user_regions = {
        .iommu_json = USER_RESV_JSON,
        .subprocess = true,
    };

    vit_add_test("config", test_config, NULL, NULL);
    /* q35 variants, of x86 only, each next to its own test */
    if (vit_arch_is_x86()) {
        vit_add_test("config-q35", test_config, NULL, &q35);
    }
    vit_add_test("config-props", test_config_props,
                 "granule=64k,aw-bits=40,max-domain-id=7,boot-bypass=off",
                 NULL);
    vit_add_test("config-granule-4k", test_config_granule_4k,
                 "granule=4k,aw-bits=32", NULL);
    vit_add_test("abi", test_abi, NULL, &plain);
    if (vit_arch_is_x86()) {
        vit_add_test("abi-q35", test_abi, NULL, &plain_q35);
    }
    /* Machine types of 8.2 and older: granule 4k, aw-bits 64 (compat) */
    vit_add_test("abi-8.2", test_abi, NULL, &plain_8_2);
    vit_add_test("msix-opt-in", test_abi_msix, "vectors=3", NULL);
    /* QEMU 10.0's device offers these two whatever the properties say */
    vit_add_test("abi-ring-features", test_abi,
                 "event_idx=off,indirect_desc=off", &plain);

    vit_add_test("attach-detach", test_attach_detach, NULL, NULL);
    vit_add_test("attach-reserved", test_attach_reserved, NULL, NULL);
    vit_add_test("attach-flags", test_attach_flags, NULL, NULL);
    vit_add_test("attach-noent", test_attach_noent, NULL, NULL);
    vit_add_test("attach-domain-range", test_attach_range,
                 "max-domain-id=7", NULL);
    vit_add_test("attach-bypass-mismatch", test_attach_bypass_mismatch,
                 NULL, NULL);
    vit_add_test("attach-move", test_attach_move, NULL, NULL);
    vit_add_test("attach-nomem", test_attach_nomem, "max-domains=1", NULL);
    vit_add_test("detach-status", test_detach_status, NULL, NULL);

    vit_add_test("map-flags", test_map_flags, NULL, NULL);
    vit_add_test("map-noent", test_map_noent, NULL, NULL);
    vit_add_test("map-range", test_map_range, NULL, NULL);
    vit_add_test("map-input-range", test_map_input_range, "aw-bits=40", NULL);
    vit_add_test("map-overlap", test_map_overlap, NULL, NULL);
    vit_add_test("map-msi", test_map_msi, NULL, NULL);
    if (vit_arch_is_x86()) {
        vit_add_test("map-msi-q35", test_map_msi, NULL, &q35);
    }
    vit_add_test("map-nomem", test_map_nomem, "max-mappings=2", NULL);

    vit_add_test("unmap-status", test_unmap_status, NULL, NULL);
    vit_add_test("unmap-split", test_unmap_split, NULL, NULL);
    vit_add_test("unmap-examples", test_unmap_examples, NULL, NULL);

    vit_add_test("probe", test_probe, NULL, NULL);
    if (vit_arch_is_x86()) {
        vit_add_test("probe-q35", test_probe, NULL, &q35);
    }
    vit_add_test("probe-small", test_probe_small, NULL, NULL);

    vit_add_test("unknown-type", test_unknown_type, NULL, NULL);
    vit_add_test("short-writable", test_short_writable, NULL, NULL);
    vit_add_test("short-readable", test_short_readable, NULL, NULL);
    vit_add_test("layouts", test_layouts, NULL, NULL);
    vit_add_test("batch", test_batch, NULL, NULL);
    if (g_test_perf()) {
        vit_add_test("request-cost", test_request_cost, NULL, NULL);
    }

    vit_add_test("no-map-unmap", test_no_map_unmap, NULL, NULL);
    vit_add_test("no-probe", test_no_probe, NULL, NULL);
    vit_add_test("no-mmio", test_no_mmio, NULL, NULL);

    vit_add_test("bypass-config", test_bypass_config, NULL, NULL);
    vit_add_test("bypass-config-not-negotiated",
                 test_bypass_config_not_negotiated, NULL, NULL);
    vit_add_test("bypass-config-reset", test_bypass_config_reset, NULL, NULL);
    vit_add_test("boot-bypass-off", test_boot_bypass_off,
                 "boot-bypass=off", NULL);
    vit_add_test("reset-detaches", test_reset_detaches, NULL, NULL);

    /*
     * Last of all the virtio-iommu tests (this file comes last in
     * qos-test's link order): if QEMU cannot start with user
     * reserved-regions next to the machine's, the child fails and
     * qos-test stops here.
     */
    vit_add_test("probe-user-regions", test_probe_user_regions, NULL,
                 &user_regions);
}

libqos_init(register_virtio_iommu_test);
