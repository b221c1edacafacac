/*
 * virtio-iommu fuzz target: the whole device, through virtio-pci, with DMA
 * through the IOMMU
 *
 * A q35 machine with virtio-iommu-pci (small limits) and two edu devices
 * behind it.  The input is a program of actions (encoding below and in
 * docs/fuzzing.md): requestq descriptor chains of any layout, kicks, eventq
 * buffers, config space and virtio-pci register writes, feature
 * negotiation, device and system resets, and DMA by the edu devices at
 * IOVAs, which runs translate against whatever mappings the requests made.
 *
 * Besides the sanitizers, the target checks what the device promises
 * (docs/behaviour-contract.md) while the driver side plays by the rules:
 * every request is used after a kick, with used length 0 or the whole
 * writable part and a valid status in the tail; fault reports are well
 * formed and have the used length the contract gives; the device never
 * asks for a reset; the counters stay within the limits; a system reset
 * leaves no domain, mapping or attached endpoint.  A broken promise
 * aborts, so libFuzzer keeps the input like any crash.
 *
 * VIOMMU_FUZZ_TRACE=1 prints each action on stderr (for reproducers).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/bswap.h"
#include "qapi/error.h"
#include "exec/memory.h"
#include "qemu/main-loop.h"
#include "system/runstate.h"
#include "qobject/qdict.h"
#include "qom/object.h"
#include "qom/qom-qobject.h"

#include "tests/qtest/libqtest.h"
#include "tests/qtest/libqos/pci.h"
#include "tests/qtest/libqos/virtio.h"
#include "tests/qtest/libqos/virtio-pci.h"
#include "tests/qtest/libqos/virtio-iommu.h"
#include "tests/qtest/libqos/edu.h"
#include "standard-headers/linux/pci_regs.h"
#include "standard-headers/linux/virtio_config.h"
#include "standard-headers/linux/virtio_iommu.h"
#include "standard-headers/linux/virtio_pci.h"
#include "standard-headers/linux/virtio_ring.h"
#include "fuzz.h"
#include "qos_fuzz.h"

/*
 * The machine: limits small enough for an input to reach them; the IOMMU
 * test device records IOMMU notifications of every edu, so that MAP/UNMAP
 * events, their splitting into blocks and replay run (nothing else in the
 * machine registers notifiers)
 */
#define MAX_DOMAINS         3
#define MAX_MAPPINGS        64
#define MAX_DOMAIN_ID       1000
/* MSI-X opted in: its vectors are transport state the input can set */
#define IOMMU_OPTS          "max-domains=3,max-mappings=64," \
                            "max-pending-faults=8,max-domain-id=1000," \
                            "vectors=3"
/*
 * Endpoints: four edu on pcie.0 and a fifth behind a PCIe root port,
 * whose secondary bus number (the fifth's endpoint ID) the input can
 * change; q35's own functions (host bridge, LPC, SATA, SMBus) are
 * endpoints too but do no DMA.  The port's window and numbering are
 * firmware's job, done by the target.
 */
#define NR_EDU              5
#define EDU_SLOT            5
#define EDU(i)              QPCI_DEVFN(EDU_SLOT + (i), 0)
#define EDU1                EDU(0)
#define EDU2                EDU(1)
#define PORT                QPCI_DEVFN(9, 0)
#define PORT_BUS            1
#define PORT_EDU            (PORT_BUS << 8)     /* bus 1, 00.0 */
#define EDU_ARG(id, where)  "-device edu,id=" id "," where \
                            ",dma_mask=0xffffffffffffffff "
#define EDU_ARGS            "-nodefaults " EDU_ARG("edu0", "addr=05.0") \
                            EDU_ARG("edu1", "addr=06.0") \
                            EDU_ARG("edu2", "addr=07.0") \
                            EDU_ARG("edu3", "addr=08.0") \
                            "-device pcie-root-port,id=rp,addr=09.0," \
                            "chassis=1 " EDU_ARG("edu4", "bus=rp,addr=00.0") \
                            "-device iommu-testdev,id=itd "
#define SELF                QPCI_DEVFN(QVIOMMU_PCI_SLOT, 0)
#define NO_DEVICE           QPCI_DEVFN(0xa, 0)
#define HOST_BRIDGE         QPCI_DEVFN(0, 0)
#define LPC                 QPCI_DEVFN(0x1f, 0)

/* Guest memory (the machine has 64 MiB) */
#define QUEUE_MAX           1024
#define RING_BASE(q)        (0x1000000ull + (q) * 0x8000)
#define RING_AVAIL          0x4000
#define RING_USED           0x5000
#define EVT_BASE            0x1080000ull        /* 64 bytes per descriptor */
#define EVT_BUF_MAX         64
#define ARENA_BASE          0x1100000ull
#define ARENA_SIZE          0x400000ull
#define DMA_BASE            0x2000000ull
#define DMA_PAGES           256
#define PAGE                0x1000ull

#define MAX_SEGS            128
#define VIOMMU_MAX_WRITABLE (1u << 20)
#define CFG_OFF(f)          offsetof(struct virtio_iommu_config, f)
#define COMMON(f)           offsetof(struct virtio_pci_common_cfg, f)

/* Actions: the first byte of each, modulo OP_COUNT */
enum {
    OP_START,       /* u32 feat_lo, u32 feat_hi, u8 sizes, u8 flags */
    OP_REQ,         /* see do_req() */
    OP_KICK,        /* u8 queue */
    OP_EVENTS,      /* u8 count, u8 size */
    OP_DMA,         /* u8 edu, u8 mode, u16 iova, u16 offset, u16 count */
    OP_CONFIG,      /* u8 offset, u8 width, u64 value */
    OP_STATUS,      /* u8 status */
    OP_COMMON,      /* u8 offset, u8 width, u32 value */
    OP_CLOCK,       /* u8 milliseconds - 1 */
    OP_EDU_CMD,     /* u8 edu, u16 PCI command */
    OP_SYS_RESET,   /* nothing */
    OP_STORM,       /* u8 count, u32 seed, u8 mix */
    OP_DMA_STORM,   /* u8 count, u32 seed */
    OP_BUS_NUMBER,  /* u8 secondary bus of the root port */
    OP_REPLAY,      /* u8 edu: replay its mappings to its first notifier */
    OP_COUNT
};

typedef struct Input {
    const uint8_t *p;
    size_t left;
} Input;

typedef struct Seg {
    uint64_t addr;
    uint32_t len;
    bool write;
} Seg;

/* What the contract says the device does with a request */
enum {
    EXPECT_UNUSED = -1,     /* used length 0, nothing written */
    EXPECT_STATUS = -2,     /* any status */
};

/* A request in flight on the requestq, by head descriptor */
typedef struct Chain {
    bool pending;
    bool checked;           /* well formed: the contract applies */
    uint8_t type;
    int expect;             /* EXPECT_* or the status */
    uint32_t wlen;          /* device-writable bytes, contiguous at waddr */
    uint64_t waddr;
} Chain;

typedef struct FuzzVq {
    uint16_t size;
    uint64_t desc, avail, used;
    uint64_t notify;        /* BAR offset of its notification */
    uint16_t next_desc;     /* requestq: next free descriptor */
    uint16_t avail_idx;
    uint16_t used_idx;
    unsigned in_flight;
} FuzzVq;

/* What a reset clears: BARs, and a bridge's bus numbers and windows */
#define SAVED_FIRST         PCI_BASE_ADDRESS_0
#define SAVED_END           (PCI_IO_BASE_UPPER16 + 4)

typedef struct SavedConfig {
    QPCIDevice *dev;
    uint32_t dword[(SAVED_END - SAVED_FIRST) / 4];
    uint16_t cmd;
} SavedConfig;

typedef struct Fuzz {
    QTestState *qts;
    QVirtioPCIDevice *vpci;
    QPCIDevice *edu[NR_EDU];
    QPCIBar edu_bar[NR_EDU];
    QPCIDevice *port;
    SavedConfig saved[2 + NR_EDU];      /* IOMMU, edus; port before its edu */
    FuzzVq vq[2];
    Chain chains[QUEUE_MAX];
    uint32_t evt_len[QUEUE_MAX];
    uint64_t features;
    uint32_t probe_size;
    uint64_t arena_next;
    /*
     * The driver side played by the rules since the last start: the
     * contract checks apply.  Raw register writes, malformed chains and
     * DMA that may hit the rings end that.
     */
    bool live;
    bool wild_phys;         /* a MAP may target rings or registers */
    bool trace;
    Object *iommu;
    Object *testdev;        /* hw/misc/iommu-testdev.c */
} Fuzz;

static Fuzz fz;

static void trace(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
static G_NORETURN void broken(const char *fmt, ...) G_GNUC_PRINTF(1, 2);

static void trace(const char *fmt, ...)
{
    va_list ap;

    if (!fz.trace) {
        return;
    }
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void broken(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "virtio-iommu-fuzz: contract broken: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

/* Input decoding: past the end everything reads as zero */

static uint8_t in_u8(Input *in)
{
    if (!in->left) {
        return 0;
    }
    in->left--;
    return *in->p++;
}

static uint16_t in_u16(Input *in)
{
    uint16_t lo = in_u8(in);

    return lo | (uint16_t)in_u8(in) << 8;
}

static uint32_t in_u32(Input *in)
{
    uint32_t lo = in_u16(in);

    return lo | (uint32_t)in_u16(in) << 16;
}

static uint64_t in_u64(Input *in)
{
    uint64_t lo = in_u32(in);

    return lo | (uint64_t)in_u32(in) << 32;
}

static uint32_t xorshift(uint32_t *state)
{
    uint32_t x = *state ? *state : 0x9e3779b9;

    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *state = x;
    return x;
}

/* Field values: mostly small and colliding, sometimes at the edges */

static uint32_t domain_of(uint8_t v, Input *in)
{
    static const uint32_t special[] = {
        MAX_DOMAIN_ID, MAX_DOMAIN_ID + 1, UINT32_MAX, 0x7fffffff,
        MAX_DOMAIN_ID - 1, 0x10000, 0x100, 0,
    };

    if (v < 0xf0) {
        return v % (MAX_DOMAINS + 4);
    }
    if (v < 0xf8) {
        return special[v & 7];
    }
    return in_u32(in);
}

static uint32_t endpoint_of(uint8_t v, Input *in)
{
    static const uint32_t ids[] = {
        EDU1, EDU2, EDU1, EDU2, EDU(2), EDU(3), PORT_EDU, EDU1,
    };
    static const uint32_t special[] = {
        SELF, NO_DEVICE, 0x10000 | EDU1, 0xffff, UINT32_MAX, PORT,
        HOST_BRIDGE, 0x200,
    };

    if (v < 0xf0) {
        return ids[v & 7];
    }
    if (v < 0xf8) {
        return special[v & 7];
    }
    return in_u32(in);
}

/* q35 gives the IOMMU 39 address bits */
static uint64_t iova_of(uint16_t v)
{
    static const uint64_t special[] = {
        0, 0xfee00000, 0xfffffffffffff000ull, 1ull << 39,
        (1ull << 39) - PAGE, 0xfef00000, 0x80000000, 0x7fffffff000ull,
    };

    switch (v >> 14) {
    case 0:
    case 1:
        return (uint64_t)(v & 0x1ff) * PAGE;
    case 2:
        return 0x100000000ull + ((uint64_t)(v & 0x3fff) << 21);
    default:
        return special[v & 7];
    }
}

static uint64_t size_of(uint8_t v)
{
    if (v < 0xc0) {
        return ((v & 0x3f) + 1) * PAGE;
    }
    return PAGE << (v & 0x1f);
}

static uint64_t phys_of(uint16_t v)
{
    uint64_t special[] = {
        0, fz.vpci->bar.addr, fz.edu_bar[0].addr, fz.edu_bar[1].addr,
        0xfee00000, RING_BASE(0), ARENA_BASE,
        1ull << 40, 0xfffffffffffff000ull, 0xb0000000, 0xfed00000,
        0xffff0000, 0x3fff000, 0xa0000, 0xfec00000, EVT_BASE,
    };

    if (v < 0xf000) {
        return DMA_BASE + (v % DMA_PAGES) * PAGE;
    }
    fz.wild_phys = true;
    return special[v & 15];
}

/*
 * Fill guest memory.  Not qtest_memset(): the fuzzer's wrapper of it
 * leaks its buffer.
 */
static void guest_fill(uint64_t addr, uint8_t val, uint64_t len)
{
    static uint8_t buf[64 * KiB];
    static int filled = -1;

    if (filled != val) {
        memset(buf, val, sizeof(buf));
        filled = val;
    }
    while (len) {
        uint64_t l = MIN(len, sizeof(buf));

        qtest_memwrite(fz.qts, addr, buf, l);
        addr += l;
        len -= l;
    }
}

/* PCI: what a system reset undoes, put back */

static void save_config(SavedConfig *c, QPCIDevice *dev)
{
    int i;

    c->dev = dev;
    for (i = 0; i < ARRAY_SIZE(c->dword); i++) {
        c->dword[i] = qpci_config_readl(dev, SAVED_FIRST + 4 * i);
    }
    c->cmd = qpci_config_readw(dev, PCI_COMMAND);
}

static void restore_config(void)
{
    int i, j;

    /* One memory topology update for all of it */
    memory_region_transaction_begin();
    for (i = 0; i < ARRAY_SIZE(fz.saved); i++) {
        SavedConfig *c = &fz.saved[i];

        for (j = 0; j < ARRAY_SIZE(c->dword); j++) {
            qpci_config_writel(c->dev, SAVED_FIRST + 4 * j, c->dword[j]);
        }
        qpci_config_writew(c->dev, PCI_COMMAND, c->cmd);
    }
    memory_region_transaction_commit();
}

/* The IOMMU's registers */

static QPCIDevice *iommu_pdev(void)
{
    return fz.vpci->pdev;
}

static void common_writew(uint32_t off, uint16_t val)
{
    qpci_io_writew(iommu_pdev(), fz.vpci->bar,
                   fz.vpci->common_cfg_offset + off, val);
}

static void common_writel(uint32_t off, uint32_t val)
{
    qpci_io_writel(iommu_pdev(), fz.vpci->bar,
                   fz.vpci->common_cfg_offset + off, val);
}

static uint16_t common_readw(uint32_t off)
{
    return qpci_io_readw(iommu_pdev(), fz.vpci->bar,
                         fz.vpci->common_cfg_offset + off);
}

static uint32_t common_readl(uint32_t off)
{
    return qpci_io_readl(iommu_pdev(), fz.vpci->bar,
                         fz.vpci->common_cfg_offset + off);
}

static void set_status(uint8_t status)
{
    qpci_io_writeb(iommu_pdev(), fz.vpci->bar,
                   fz.vpci->common_cfg_offset + COMMON(device_status),
                   status);
}

static uint8_t get_status(void)
{
    return qpci_io_readb(iommu_pdev(), fz.vpci->bar,
                         fz.vpci->common_cfg_offset + COMMON(device_status));
}

static uint64_t device_features(void)
{
    uint64_t f;

    common_writel(COMMON(device_feature_select), 0);
    f = common_readl(COMMON(device_feature));
    common_writel(COMMON(device_feature_select), 1);
    return f | (uint64_t)common_readl(COMMON(device_feature)) << 32;
}

static void driver_features(uint64_t f)
{
    common_writel(COMMON(guest_feature_select), 0);
    common_writel(COMMON(guest_feature), f);
    common_writel(COMMON(guest_feature_select), 1);
    common_writel(COMMON(guest_feature), f >> 32);
}

static void setup_queue(int q, uint16_t size)
{
    FuzzVq *vq = &fz.vq[q];
    uint16_t notify_off;

    *vq = (FuzzVq) {
        .size = size,
        .desc = RING_BASE(q),
        .avail = RING_BASE(q) + RING_AVAIL,
        .used = RING_BASE(q) + RING_USED,
    };
    guest_fill(vq->desc, 0, 0x8000);
    common_writew(COMMON(queue_select), q);
    common_writew(COMMON(queue_size), size);
    common_writel(COMMON(queue_desc_lo), vq->desc);
    common_writel(COMMON(queue_desc_hi), vq->desc >> 32);
    common_writel(COMMON(queue_avail_lo), vq->avail);
    common_writel(COMMON(queue_avail_hi), vq->avail >> 32);
    common_writel(COMMON(queue_used_lo), vq->used);
    common_writel(COMMON(queue_used_hi), vq->used >> 32);
    notify_off = common_readw(COMMON(queue_notify_off));
    vq->notify = fz.vpci->notify_cfg_offset +
                 notify_off * fz.vpci->notify_off_multiplier;
    common_writew(COMMON(queue_enable), 1);
}

static void driver_reset(void)
{
    memset(fz.chains, 0, sizeof(fz.chains));
    memset(fz.vq, 0, sizeof(fz.vq));
    fz.arena_next = ARENA_BASE;
    fz.live = false;
}

/*
 * Reset the device and bring it up: the features offered minus
 * @feat_mask (or exactly @feat_mask, raw), queues of the sizes chosen.
 */
static void do_start(uint64_t feat_mask, uint8_t sizes, uint8_t flags)
{
    static const uint16_t qsizes[] = { 256, 128, 64, 16, 4, 1, 1024, 3 };
    bool ok;

    set_status(0);
    driver_reset();
    set_status(VIRTIO_CONFIG_S_ACKNOWLEDGE);
    set_status(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
    if (flags & 1) {
        fz.features = feat_mask;
    } else {
        fz.features = device_features() & ~feat_mask;
    }
    driver_features(fz.features);
    set_status(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
               VIRTIO_CONFIG_S_FEATURES_OK);
    ok = get_status() & VIRTIO_CONFIG_S_FEATURES_OK;
    fz.probe_size = qvirtio_config_readl(&fz.vpci->vdev,
                                         CFG_OFF(probe_size));
    setup_queue(0, qsizes[sizes & 7]);
    setup_queue(1, qsizes[(sizes >> 3) & 7]);
    if (!(flags & 2)) {
        set_status(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
                   VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK);
    }
    fz.live = ok && !(flags & 2) && !(flags & 1) &&
              (fz.features & (1ull << VIRTIO_F_VERSION_1));
    trace("start features=0x%" PRIx64 " sizes=%u/%u%s", fz.features,
          fz.vq[0].size, fz.vq[1].size, fz.live ? "" : " (not live)");
}

/* Guest memory for request buffers; 0 when full */
static uint64_t arena_alloc(uint64_t len)
{
    uint64_t addr = QEMU_ALIGN_UP(fz.arena_next, 16);

    if (addr + len > ARENA_BASE + ARENA_SIZE) {
        return 0;
    }
    fz.arena_next = addr + len;
    return addr;
}

static void write_desc(uint64_t table, uint32_t i, uint64_t addr,
                       uint32_t len, uint16_t flags, uint16_t next)
{
    struct vring_desc d = {
        .addr = cpu_to_le64(addr),
        .len = cpu_to_le32(len),
        .flags = cpu_to_le16(flags),
        .next = cpu_to_le16(next),
    };

    qtest_memwrite(fz.qts, table + i * sizeof(d), &d, sizeof(d));
}

static void publish(FuzzVq *vq, uint16_t head)
{
    uint16_t le = cpu_to_le16(head);

    qtest_memwrite(fz.qts, vq->avail + 4 + 2 * (vq->avail_idx % vq->size),
                   &le, sizeof(le));
    vq->avail_idx++;
    le = cpu_to_le16(vq->avail_idx);
    qtest_memwrite(fz.qts, vq->avail + 2, &le, sizeof(le));
    vq->in_flight++;
}

/*
 * Put @segs on the requestq as one chain (or one indirect table), with
 * the defect @bogus (0: none) and make it available.  Returns false when
 * there is no room.
 */
static bool queue_chain(Seg *segs, unsigned n, bool indirect, int bogus,
                        Chain *c)
{
    FuzzVq *vq = &fz.vq[0];
    unsigned need = indirect ? 1 : n;
    uint64_t table;
    uint16_t head, base;
    unsigned i;

    if (!vq->size || !n || vq->in_flight >= vq->size ||
        vq->next_desc + need > vq->size) {
        return false;
    }
    head = vq->next_desc;
    if (indirect) {
        table = arena_alloc(n * sizeof(struct vring_desc));
        if (!table) {
            return false;
        }
        base = 0;
    } else {
        table = vq->desc;
        base = head;
    }
    for (i = 0; i < n; i++) {
        uint16_t flags = (segs[i].write ? VRING_DESC_F_WRITE : 0) |
                         (i + 1 < n ? VRING_DESC_F_NEXT : 0);
        uint16_t next = base + i + 1;

        if (i + 1 == n && bogus == 3) {
            flags |= VRING_DESC_F_NEXT;     /* loop */
            next = base;
        } else if (i + 1 == n && bogus == 4) {
            flags |= VRING_DESC_F_NEXT;     /* next past the table */
            next = (indirect ? n : vq->size) + 5;
        } else if (i == 0 && bogus == 6 && indirect) {
            flags |= VRING_DESC_F_INDIRECT; /* nested indirect */
        }
        write_desc(table, base + i, segs[i].addr, segs[i].len, flags, next);
    }
    if (indirect) {
        uint32_t len = n * sizeof(struct vring_desc);

        if (bogus == 5) {
            len = (n & 1) ? 0 : len - 3;
        }
        write_desc(vq->desc, head, table, len, VRING_DESC_F_INDIRECT, 0);
    }
    vq->next_desc += need;
    c->pending = true;
    fz.chains[head] = *c;
    publish(vq, head);
    return true;
}

static void split(Seg *segs, unsigned *n, uint64_t addr, uint32_t len,
                  uint32_t chunk, bool write)
{
    if (!chunk) {
        chunk = len;
    }
    while (len && *n < MAX_SEGS) {
        uint32_t l = MIN(len, chunk);

        segs[(*n)++] = (Seg) { addr, l, write };
        addr += l;
        len -= l;
    }
}

/* What docs/behaviour-contract.md says the device answers */
static int expected(const uint8_t *req, uint32_t rlen, uint32_t wlen)
{
    static const struct {
        uint32_t readable;
        int feature;
    } types[] = {
        [VIRTIO_IOMMU_T_ATTACH] = {
            offsetof(struct virtio_iommu_req_attach, tail), -1
        },
        [VIRTIO_IOMMU_T_DETACH] = {
            offsetof(struct virtio_iommu_req_detach, tail), -1
        },
        [VIRTIO_IOMMU_T_MAP] = {
            offsetof(struct virtio_iommu_req_map, tail),
            VIRTIO_IOMMU_F_MAP_UNMAP
        },
        [VIRTIO_IOMMU_T_UNMAP] = {
            offsetof(struct virtio_iommu_req_unmap, tail),
            VIRTIO_IOMMU_F_MAP_UNMAP
        },
        [VIRTIO_IOMMU_T_PROBE] = {
            sizeof(struct virtio_iommu_req_probe), VIRTIO_IOMMU_F_PROBE
        },
    };
    uint8_t type;

    if (wlen < 4 || wlen > VIOMMU_MAX_WRITABLE ||
        rlen < sizeof(struct virtio_iommu_req_head)) {
        return EXPECT_UNUSED;
    }
    type = req[0];
    if (type < VIRTIO_IOMMU_T_ATTACH || type > VIRTIO_IOMMU_T_PROBE) {
        return EXPECT_UNUSED;
    }
    if (types[type].feature >= 0 &&
        !(fz.features & (1ull << types[type].feature))) {
        return EXPECT_UNUSED;
    }
    if (rlen < types[type].readable) {
        return VIRTIO_IOMMU_S_IOERR;
    }
    return EXPECT_STATUS;
}

/*
 * Build one request from @req (@rlen device-readable bytes) with @wlen
 * device-writable bytes and queue it as @layout says:
 *   bits 0-3: readable and writable length adjustments (done by caller)
 *   bits 4-5: 0 one descriptor per part, 1 readable part in small
 *             chunks, 2 tail split from the writable part (or tiny
 *             chunks), 3 both in 3-byte chunks
 *   bit 6:    an indirect table
 *   bit 7:    a defect, @bogus & 7 chooses which
 */
static void send_request(const uint8_t *req, uint32_t rlen, uint32_t wlen,
                         uint8_t layout, uint8_t bogus, uint8_t chunk_seed)
{
    Seg segs[MAX_SEGS];
    unsigned n = 0;
    Chain c = {
        .checked = true,
        .type = rlen ? req[0] : 0,
        .expect = expected(req, rlen, wlen),
        .wlen = wlen,
    };
    uint64_t raddr = 0, waddr = 0;
    int defect = (layout & 0x80) ? 1 + (bogus & 7) : 0;
    uint32_t rchunk = 0, wchunk = 0;

    if (rlen) {
        raddr = arena_alloc(rlen);
        if (!raddr) {
            trace("  arena full");
            return;
        }
        qtest_memwrite(fz.qts, raddr, req, rlen);
    }
    if (wlen) {
        waddr = arena_alloc(wlen);
        if (!waddr) {
            trace("  arena full");
            return;
        }
        /* The device must write every byte when it answers */
        if (wlen <= 4096) {
            guest_fill(waddr, 0xa5, wlen);
        }
        c.waddr = waddr;
    }
    switch ((layout >> 4) & 3) {
    case 1:
        rchunk = 1 + chunk_seed % 7;
        break;
    case 2:
        wchunk = wlen > 4 && wlen <= 64 ? 1 + chunk_seed % 3 : 0;
        break;
    case 3:
        rchunk = 3;
        wchunk = wlen <= 256 ? 3 : 0;
        break;
    }
    if (defect == 3) {
        /* a writable descriptor before the readable ones */
        segs[n++] = (Seg) { waddr ? waddr : DMA_BASE, 4, true };
    }
    split(segs, &n, raddr, rlen, rchunk, false);
    if (((layout >> 4) & 3) == 2 && wlen > 4 && !wchunk) {
        /* the tail in two descriptors */
        split(segs, &n, waddr, wlen - 2, 0, true);
        split(segs, &n, waddr + wlen - 2, 2, 0, true);
    } else {
        split(segs, &n, waddr, wlen, wchunk, true);
    }
    if (n == MAX_SEGS) {
        c.checked = false;      /* truncated */
    }
    switch (defect) {
    case 1:
        segs[0].len = 0;
        break;
    case 2:
        segs[0].addr = 1ull << 40;
        break;
    case 8:
        segs[0].len = 0x80000000;
        break;
    }
    if (defect) {
        c.checked = false;
        fz.live = false;
    }
    if (!queue_chain(segs, n, layout & 0x40, defect, &c)) {
        trace("  no room on the requestq");
    }
}

/*
 * OP_REQ: u8 kind, u8 domain, u8 endpoint, u8 flags, u16 iova, u8 size,
 * u16 phys, u8 layout; then u64 start, u64 end, u64 phys if kind & 0x80;
 * u8 n and n bytes for a raw request; u8 defect if layout & 0x80.
 *
 * kind & 7: ATTACH, DETACH, MAP, UNMAP, PROBE, unknown type, raw bytes,
 * ATTACH with the bypass flag; kind & 8: reserved bytes not zero.
 */
static void do_req(Input *in)
{
    uint8_t kind = in_u8(in), dv = in_u8(in), ev = in_u8(in);
    uint8_t flags = in_u8(in);
    uint16_t iv = in_u16(in);
    uint8_t sv = in_u8(in);
    uint16_t pv = in_u16(in);
    uint8_t layout = in_u8(in);
    uint32_t domain = domain_of(dv, in), ep = endpoint_of(ev, in);
    uint64_t start = iova_of(iv), end = start + size_of(sv) - 1;
    uint64_t phys = phys_of(pv);
    uint8_t buf[256] = { 0 };
    uint32_t rlen, wlen = 4;
    uint8_t type = kind & 7, bogus = 0;

    if (kind & 0x80) {
        start = in_u64(in);
        end = in_u64(in);
        phys = in_u64(in);
        fz.wild_phys = true;
    }
    switch (type) {
    case 0:
    case 7: {
        struct virtio_iommu_req_attach *r = (void *)buf;

        r->head.type = VIRTIO_IOMMU_T_ATTACH;
        r->domain = cpu_to_le32(domain);
        r->endpoint = cpu_to_le32(ep);
        r->flags = cpu_to_le32(type == 7 ? VIRTIO_IOMMU_ATTACH_F_BYPASS
                                         : flags & 2);
        r->reserved[flags & 3] = kind & 8 ? 1 : 0;
        rlen = offsetof(struct virtio_iommu_req_attach, tail);
        trace("  ATTACH domain %u ep 0x%x%s", domain, ep,
              type == 7 ? " bypass" : "");
        break;
    }
    case 1: {
        struct virtio_iommu_req_detach *r = (void *)buf;

        r->head.type = VIRTIO_IOMMU_T_DETACH;
        r->domain = cpu_to_le32(domain);
        r->endpoint = cpu_to_le32(ep);
        r->reserved[flags & 7] = kind & 8 ? 1 : 0;
        rlen = offsetof(struct virtio_iommu_req_detach, tail);
        trace("  DETACH domain %u ep 0x%x", domain, ep);
        break;
    }
    case 2: {
        struct virtio_iommu_req_map *r = (void *)buf;

        r->head.type = VIRTIO_IOMMU_T_MAP;
        r->domain = cpu_to_le32(domain);
        r->virt_start = cpu_to_le64(start);
        r->virt_end = cpu_to_le64(end);
        r->phys_start = cpu_to_le64(phys);
        r->flags = cpu_to_le32(flags & 0x1f);
        rlen = offsetof(struct virtio_iommu_req_map, tail);
        trace("  MAP domain %u [0x%" PRIx64 ", 0x%" PRIx64 "] -> 0x%" PRIx64
              " flags 0x%x", domain, start, end, phys, flags & 0x1f);
        break;
    }
    case 3: {
        struct virtio_iommu_req_unmap *r = (void *)buf;

        if (flags & 0x80) {
            start = 0;
            end = UINT64_MAX;
        }
        r->head.type = VIRTIO_IOMMU_T_UNMAP;
        r->domain = cpu_to_le32(domain);
        r->virt_start = cpu_to_le64(start);
        r->virt_end = cpu_to_le64(end);
        r->reserved[flags & 3] = kind & 8 ? 1 : 0;
        rlen = offsetof(struct virtio_iommu_req_unmap, tail);
        trace("  UNMAP domain %u [0x%" PRIx64 ", 0x%" PRIx64 "]", domain,
              start, end);
        break;
    }
    case 4: {
        struct virtio_iommu_req_probe *r = (void *)buf;

        r->head.type = VIRTIO_IOMMU_T_PROBE;
        r->endpoint = cpu_to_le32(ep);
        r->reserved[flags & 63] = kind & 8 ? 1 : 0;
        rlen = sizeof(*r);
        wlen = fz.probe_size + 4;
        trace("  PROBE ep 0x%x", ep);
        break;
    }
    case 5:
        buf[0] = dv & 1 ? 0 : MAX(6, dv);
        rlen = 24;
        trace("  type %u", buf[0]);
        break;
    default: {
        uint8_t n = in_u8(in), i;

        for (i = 0; i < n; i++) {
            buf[i] = in_u8(in);
        }
        rlen = n;
        trace("  raw request, %u bytes", n);
        break;
    }
    }
    if (type != 6 && (kind & 0x40)) {
        buf[1] = flags;                     /* head reserved */
    }
    if (layout & 0x80) {
        bogus = in_u8(in);
    }

    switch (layout & 3) {
    case 1:
        rlen = rlen > (1u + (flags & 3)) ? rlen - 1 - (flags & 3) : 0;
        break;
    case 2:
        rlen = MIN(rlen + 8, sizeof(buf));
        break;
    case 3:
        rlen = MIN(rlen, flags & 4 ? 3u : 4u);
        break;
    }
    switch ((layout >> 2) & 3) {
    case 1:
        if (type == 4 && (flags & 0x40)) {
            wlen -= 4 + (flags & 0x30);     /* properties too short */
        } else {
            wlen += 4 * (1 + ((flags >> 4) & 3));
        }
        break;
    case 2:
        wlen = flags & 3;                   /* no room for a tail */
        break;
    case 3:
        wlen = VIOMMU_MAX_WRITABLE + (flags & 0x20 ? 4 : 0);
        break;
    }
    trace("  readable %u, writable %u, layout 0x%02x%s", rlen, wlen, layout,
          layout & 0x80 ? " defect" : "");
    if (!rlen && !wlen) {
        return;
    }
    send_request(buf, rlen, wlen, layout, bogus, flags);
}

static void notify(int q)
{
    qpci_io_writew(iommu_pdev(), fz.vpci->bar, fz.vq[q].notify, q);
}

static bool valid_status(uint8_t s)
{
    return s <= VIRTIO_IOMMU_S_NOMEM;
}

/* Check one used request against the contract */
static void check_request(uint32_t id, uint32_t len)
{
    Chain *c = &fz.chains[id];
    g_autofree uint8_t *w = NULL;
    uint8_t *tail;
    uint32_t i;

    if (!c->checked) {
        return;
    }
    if (c->expect == EXPECT_UNUSED) {
        if (len) {
            broken("request %u (type %u, %u writable bytes): used length "
                   "%u, want 0", id, c->type, c->wlen, len);
        }
        return;
    }
    if (len != c->wlen) {
        broken("request %u (type %u): used length %u, want %u", id,
               c->type, len, c->wlen);
    }
    if (c->wlen > 4096) {
        return;
    }
    w = g_malloc(c->wlen);
    qtest_memread(fz.qts, c->waddr, w, c->wlen);
    tail = w + c->wlen - 4;
    if (!valid_status(tail[0]) || tail[1] || tail[2] || tail[3]) {
        broken("request %u (type %u): tail %02x %02x %02x %02x", id,
               c->type, tail[0], tail[1], tail[2], tail[3]);
    }
    if (c->expect >= 0 && tail[0] != c->expect) {
        broken("request %u (type %u): status %u, want %u", id, c->type,
               tail[0], c->expect);
    }
    /* Only a successful PROBE has a payload; the rest is zeroes */
    for (i = c->type == VIRTIO_IOMMU_T_PROBE && !tail[0] ? c->wlen - 4 : 0;
         i < c->wlen - 4; i++) {
        if (w[i]) {
            broken("request %u (type %u, status %u): writable byte %u is "
                   "0x%02x, want 0", id, c->type, tail[0], i, w[i]);
        }
    }
    trace("  used: request %u status %u", id, tail[0]);
}

static void check_event(uint32_t id, uint32_t len)
{
    struct virtio_iommu_fault f;
    uint32_t want = fz.evt_len[id] < sizeof(f) ? 0 : sizeof(f);
    uint32_t flags, ep;

    if (len != want) {
        broken("eventq buffer of %u bytes: used length %u, want %u",
               fz.evt_len[id], len, want);
    }
    if (!len) {
        return;
    }
    qtest_memread(fz.qts, EVT_BASE + id * EVT_BUF_MAX, &f, sizeof(f));
    flags = le32_to_cpu(f.flags);
    ep = le32_to_cpu(f.endpoint);
    if (f.reason != VIRTIO_IOMMU_FAULT_R_DOMAIN &&
        f.reason != VIRTIO_IOMMU_FAULT_R_MAPPING) {
        broken("fault reason %u", f.reason);
    }
    if (!(flags & VIRTIO_IOMMU_FAULT_F_ADDRESS) ||
        (flags & ~(VIRTIO_IOMMU_FAULT_F_READ | VIRTIO_IOMMU_FAULT_F_WRITE |
                   VIRTIO_IOMMU_FAULT_F_ADDRESS))) {
        broken("fault flags 0x%x", flags);
    }
    /* the edu on pcie.0, or the one behind the port on any bus number */
    if ((ep < EDU1 || ep > EDU(3) || (ep & 7)) && (ep & 0xff)) {
        broken("fault from endpoint 0x%x, which does no DMA", ep);
    }
    if (f.reserved[0] || f.reserved[1] || f.reserved[2] ||
        f.reserved1[0] || f.reserved1[1] || f.reserved1[2] ||
        f.reserved1[3]) {
        broken("fault record with reserved bytes set");
    }
    trace("  fault: reason %u flags 0x%x ep 0x%x address 0x%" PRIx64,
          f.reason, flags, ep, le64_to_cpu(f.address));
}

/* Consume what the device used on queue @q */
static void collect(int q)
{
    FuzzVq *vq = &fz.vq[q];
    uint16_t idx;

    if (!vq->size) {
        return;
    }
    qtest_memread(fz.qts, vq->used + 2, &idx, sizeof(idx));
    idx = le16_to_cpu(idx);
    while (vq->used_idx != idx) {
        uint32_t elem[2], id, len;

        qtest_memread(fz.qts, vq->used + 4 + 8 * (vq->used_idx % vq->size),
                      elem, sizeof(elem));
        vq->used_idx++;
        id = le32_to_cpu(elem[0]);
        len = le32_to_cpu(elem[1]);
        if (fz.live && (id >= vq->size ||
                        (q == 0 && !fz.chains[id].pending))) {
            broken("queue %d: used element for descriptor %u, which is "
                   "not in flight", q, id);
        }
        if (id >= vq->size || !vq->in_flight) {
            continue;
        }
        if (q == 0) {
            if (!fz.chains[id].pending) {
                continue;
            }
            if (fz.live) {
                check_request(id, len);
            }
            fz.chains[id].pending = false;
        } else if (fz.live) {
            check_event(id, len);
        }
        vq->in_flight--;
    }
    if (q == 0 && !vq->in_flight) {
        vq->next_desc = 0;
        fz.arena_next = ARENA_BASE;
    }
}

static void check_live(void)
{
    if (fz.live && (get_status() & VIRTIO_CONFIG_S_NEEDS_RESET)) {
        broken("the device asks for a reset, though the driver played "
               "by the rules");
    }
}

static void do_kick(int q)
{
    trace("kick %s", q ? "eventq" : "requestq");
    if (!fz.vq[q].size) {
        return;
    }
    notify(q);
    flush_events(fz.qts);
    check_live();
    collect(0);
    collect(1);
    if (q == 0 && fz.live && fz.vq[0].in_flight) {
        broken("%u requests still in flight after a kick",
               fz.vq[0].in_flight);
    }
}

/* OP_EVENTS: post eventq buffers for fault reports */
static void do_events(uint8_t count, uint8_t size)
{
    FuzzVq *vq = &fz.vq[1];
    uint32_t len = size < 0xc0 ? 24 + (size % 3) * 8 : 1 + size % 23;
    unsigned i;

    trace("eventq: %u buffers of %u bytes", (count & 7) + 1, len);
    for (i = 0; i <= (count & 7) && vq->size && vq->in_flight < vq->size;
         i++) {
        uint16_t d = vq->next_desc;

        write_desc(vq->desc, d, EVT_BASE + d * EVT_BUF_MAX, len,
                   VRING_DESC_F_WRITE, 0);
        guest_fill(EVT_BASE + d * EVT_BUF_MAX, 0xa5, len);
        fz.evt_len[d] = len;
        vq->next_desc = (d + 1) % vq->size;
        publish(vq, d);
    }
    if (!(count & 0x80)) {
        do_kick(1);
    }
}

/* DMA by edu @e: @to_pci writes guest memory at @iova, else reads it */
static void edu_dma(int e, uint64_t iova, uint32_t count, bool to_pci,
                    bool irq)
{
    QPCIDevice *dev = fz.edu[e];
    QPCIBar bar = fz.edu_bar[e];

    trace("dma: edu%d %s 0x%" PRIx64 ", %u bytes", e + 1,
          to_pci ? "writes" : "reads", iova, count);
    qpci_io_writeq(dev, bar, EDU_DMA_SRC, to_pci ? EDU_BUF : iova);
    qpci_io_writeq(dev, bar, EDU_DMA_DST, to_pci ? iova : EDU_BUF);
    qpci_io_writeq(dev, bar, EDU_DMA_CNT, count);
    qpci_io_writeq(dev, bar, EDU_DMA_CMD, EDU_DMA_RUN |
                   (to_pci ? EDU_DMA_TO_PCI : 0) | (irq ? EDU_DMA_IRQ : 0));
    qtest_clock_step(fz.qts, EDU_DMA_NS);
    flush_events(fz.qts);
    if (fz.live) {
        collect(1);
    }
}

static void do_dma(Input *in)
{
    uint8_t e = in_u8(in), mode = in_u8(in);
    uint16_t iv = in_u16(in), off = in_u16(in), cnt = in_u16(in);
    uint64_t iova = iova_of(iv) + (off & 0xfff);
    bool to_pci = mode & 1;

    if (mode & 0x80) {
        iova = in_u64(in);
        if (to_pci) {
            fz.live = false;        /* may land on the rings */
        }
    }
    if (to_pci && fz.wild_phys) {
        fz.live = false;
    }
    edu_dma(e % NR_EDU, iova, (cnt % EDU_BUF_SIZE) + 1, to_pci, mode & 2);
}

/* A write of 1 << @log2_width bytes to the IOMMU's virtio-pci BAR */
static void bar_write(QPCIDevice *dev, uint64_t addr, unsigned log2_width,
                      uint64_t val)
{
    switch (log2_width) {
    case 0:
        qpci_io_writeb(dev, fz.vpci->bar, addr, val);
        break;
    case 1:
        qpci_io_writew(dev, fz.vpci->bar, addr, val);
        break;
    case 2:
        qpci_io_writel(dev, fz.vpci->bar, addr, val);
        break;
    default:
        qpci_io_writeq(dev, fz.vpci->bar, addr, val);
        break;
    }
}

/* OP_CONFIG: device config space, any offset and width */
static void do_config(uint8_t off, uint8_t width, uint64_t val)
{
    QPCIDevice *dev = iommu_pdev();
    uint64_t addr = fz.vpci->device_cfg_offset + off % 48;

    trace("config %s at %u, width %u, 0x%" PRIx64,
          width & 0x80 ? "read" : "write", off % 48, 1 << (width & 3), val);
    if (width & 0x80) {
        switch (width & 3) {
        case 0:
            qpci_io_readb(dev, fz.vpci->bar, addr);
            break;
        case 1:
            qpci_io_readw(dev, fz.vpci->bar, addr);
            break;
        case 2:
            qpci_io_readl(dev, fz.vpci->bar, addr);
            break;
        default:
            qpci_io_readq(dev, fz.vpci->bar, addr);
            break;
        }
        return;
    }
    bar_write(dev, addr, width & 3, val);
    flush_events(fz.qts);
}

/* OP_COMMON: the virtio-pci common configuration, raw */
static void do_common(uint8_t off, uint8_t width, uint32_t val)
{
    QPCIDevice *dev = iommu_pdev();
    uint64_t addr = fz.vpci->common_cfg_offset + off % 0x40;

    trace("common config write at 0x%x, width %u, 0x%x", off % 0x40,
          1 << (width % 3), val);
    fz.live = false;
    bar_write(dev, addr, width % 3, val);
    flush_events(fz.qts);
}

static uint64_t stat_get(QDict *stats, const char *name)
{
    return qdict_get_try_int(stats, name, 0);
}

static QDict *get_stats(void)
{
    QObject *o = object_property_get_qobject(fz.iommu, "stats",
                                             &error_abort);

    return qobject_to(QDict, o);
}

/* The counters never pass the limits */
static void check_limits(void)
{
    QDict *stats = get_stats();

    if (stat_get(stats, "domains") > MAX_DOMAINS ||
        stat_get(stats, "mappings") > MAX_MAPPINGS ||
        stat_get(stats, "attached-endpoints") >
        stat_get(stats, "address-spaces")) {
        broken("counters past the limits: %" PRIu64 " domains, %" PRIu64
               " mappings, %" PRIu64 " attached endpoints",
               stat_get(stats, "domains"), stat_get(stats, "mappings"),
               stat_get(stats, "attached-endpoints"));
    }
    qobject_unref(stats);
}

/*
 * OP_STORM: @count + 1 well-formed requests from a PRNG, kicked
 * whenever the ring is full and at the end.  @mix & 3 weighs the types:
 * MAP-heavy, UNMAP-heavy, ATTACH/DETACH-heavy, even.
 */
static void do_storm(uint8_t count, uint32_t seed, uint8_t mix)
{
    static const uint8_t weights[4][4] = {
        { 1, 1, 6, 2 }, { 1, 1, 3, 5 }, { 4, 3, 2, 1 }, { 2, 2, 3, 3 },
    };
    unsigned i;

    trace("storm: %u requests, seed 0x%x, mix %u", count + 1, seed, mix & 3);
    for (i = 0; i <= count; i++) {
        uint32_t r = xorshift(&seed);
        const uint8_t *w = weights[mix & 3];
        unsigned pick = r % (w[0] + w[1] + w[2] + w[3]);
        uint32_t domain = 1 + (r >> 8) % 4;
        uint32_t ep = (r >> 9) % NR_EDU < 4 ? EDU((r >> 9) % NR_EDU)
                                            : PORT_EDU;
        uint64_t start = ((r >> 11) % 64) * PAGE;
        uint64_t end = start + (1 + (r >> 17) % 4) * PAGE - 1;
        uint8_t buf[64] = { 0 };
        uint32_t rlen;
        uint64_t phys;

        r = xorshift(&seed);
        phys = DMA_BASE + (r % DMA_PAGES) * PAGE;
        if (pick < w[0]) {
            struct virtio_iommu_req_attach *a = (void *)buf;

            a->head.type = VIRTIO_IOMMU_T_ATTACH;
            a->domain = cpu_to_le32(domain);
            a->endpoint = cpu_to_le32(ep);
            rlen = offsetof(struct virtio_iommu_req_attach, tail);
        } else if (pick < w[0] + w[1]) {
            struct virtio_iommu_req_detach *d = (void *)buf;

            d->head.type = VIRTIO_IOMMU_T_DETACH;
            d->domain = cpu_to_le32(domain);
            d->endpoint = cpu_to_le32(ep);
            rlen = offsetof(struct virtio_iommu_req_detach, tail);
        } else if (pick < w[0] + w[1] + w[2]) {
            struct virtio_iommu_req_map *m = (void *)buf;

            m->head.type = VIRTIO_IOMMU_T_MAP;
            m->domain = cpu_to_le32(domain);
            m->virt_start = cpu_to_le64(start);
            m->virt_end = cpu_to_le64(end);
            m->phys_start = cpu_to_le64(phys);
            m->flags = cpu_to_le32(1 + (r >> 12) % 3);
            rlen = offsetof(struct virtio_iommu_req_map, tail);
        } else {
            struct virtio_iommu_req_unmap *u = (void *)buf;

            u->head.type = VIRTIO_IOMMU_T_UNMAP;
            u->domain = cpu_to_le32(domain);
            u->virt_start = cpu_to_le64(start);
            u->virt_end = cpu_to_le64(end);
            rlen = offsetof(struct virtio_iommu_req_unmap, tail);
        }
        if (fz.vq[0].size && (fz.vq[0].next_desc + 2 > fz.vq[0].size ||
                              fz.vq[0].in_flight >= fz.vq[0].size)) {
            do_kick(0);
        }
        send_request(buf, rlen, 4, 0, 0, 0);
    }
    do_kick(0);
    check_limits();
}

/* OP_DMA_STORM: @count + 1 DMAs by either edu in the low 256 KiB */
static void do_dma_storm(uint8_t count, uint32_t seed)
{
    unsigned i;

    for (i = 0; i <= count; i++) {
        uint32_t r = xorshift(&seed);
        bool to_pci = r & 1;

        if (to_pci && fz.wild_phys) {
            fz.live = false;
        }
        edu_dma((r >> 1) % NR_EDU,
                ((r >> 3) % 64) * PAGE + ((r >> 9) & 0xff0),
                1 + (r >> 16) % EDU_BUF_SIZE, to_pci, false);
    }
}

static void system_reset(void)
{
    QDict *stats;

    /*
     * fuzz_reset(), with one memory topology update for the reset and the
     * BARs put back instead of one per device: that update, for every
     * address space of the machine, was most of the time of an input.
     */
    memory_region_transaction_begin();
    qemu_system_reset(SHUTDOWN_CAUSE_GUEST_RESET);
    restore_config();
    memory_region_transaction_commit();
    main_loop_wait(true);
    stats = get_stats();
    if (stat_get(stats, "domains") || stat_get(stats, "mappings") ||
        stat_get(stats, "attached-endpoints")) {
        broken("after a system reset: %" PRIu64 " domains, %" PRIu64
               " mappings, %" PRIu64 " attached endpoints",
               stat_get(stats, "domains"), stat_get(stats, "mappings"),
               stat_get(stats, "attached-endpoints"));
    }
    qobject_unref(stats);
    driver_reset();
}

static void viommu_fuzz(QTestState *s, const unsigned char *data,
                        size_t size)
{
    Input in = { data, size };

    fz.wild_phys = false;
    guest_fill(DMA_BASE, 0x5a, DMA_PAGES * PAGE);
    do_start(0, 0, 0);

    while (in.left) {
        uint8_t op = in_u8(&in) % OP_COUNT;

        switch (op) {
        case OP_START: {
            uint64_t mask = in_u32(&in);
            uint8_t sizes, flags;

            mask |= (uint64_t)in_u32(&in) << 32;
            sizes = in_u8(&in);
            flags = in_u8(&in);
            do_start(mask, sizes, flags);
            break;
        }
        case OP_REQ:
            trace("request");
            do_req(&in);
            break;
        case OP_KICK:
            do_kick(in_u8(&in) & 1);
            break;
        case OP_EVENTS: {
            uint8_t count = in_u8(&in);

            do_events(count, in_u8(&in));
            break;
        }
        case OP_DMA:
            do_dma(&in);
            break;
        case OP_CONFIG: {
            uint8_t off = in_u8(&in), width = in_u8(&in);

            do_config(off, width, in_u64(&in));
            break;
        }
        case OP_STATUS: {
            uint8_t status = in_u8(&in);

            trace("status 0x%x", status);
            set_status(status);
            fz.live = false;
            flush_events(s);
            break;
        }
        case OP_COMMON: {
            uint8_t off = in_u8(&in), width = in_u8(&in);

            do_common(off, width, in_u32(&in));
            break;
        }
        case OP_CLOCK: {
            uint8_t ms = in_u8(&in);

            trace("clock +%u ms", ms + 1);
            qtest_clock_step(s, (ms + 1) * 1000000ll);
            flush_events(s);
            break;
        }
        case OP_EDU_CMD: {
            uint8_t e = in_u8(&in) % NR_EDU;
            uint16_t cmd = in_u16(&in);

            trace("edu%d PCI command 0x%x", e + 1, cmd);
            qpci_config_writew(fz.edu[e], PCI_COMMAND, cmd);
            break;
        }
        case OP_SYS_RESET:
            trace("system reset");
            system_reset();
            break;
        case OP_STORM: {
            uint8_t count = in_u8(&in);
            uint32_t seed = in_u32(&in);

            do_storm(count, seed, in_u8(&in));
            break;
        }
        case OP_DMA_STORM: {
            uint8_t count = in_u8(&in);

            trace("dma storm");
            do_dma_storm(count, in_u32(&in));
            break;
        }
        case OP_REPLAY: {
            /* Only the edus are recorded */
            g_autofree char *id = g_strdup_printf("edu%u",
                                                  in_u8(&in) % NR_EDU);

            trace("replay %s", id);
            object_property_set_str(fz.testdev, "replay", id, &error_abort);
            break;
        }
        case OP_BUS_NUMBER: {
            /* renumber while attached: the endpoint ID changes under us */
            static const uint8_t numbers[] = { 2, 0, 0xff, PORT_BUS };
            uint8_t n = numbers[in_u8(&in) & 3];

            trace("root port secondary bus %u", n);
            qpci_config_writeb(fz.port, PCI_SUBORDINATE_BUS, MAX(n, 1));
            qpci_config_writeb(fz.port, PCI_SECONDARY_BUS, n);
            break;
        }
        }
    }

    /* Whatever is still queued, then let every timer run */
    trace("end");
    if (fz.vq[0].in_flight) {
        do_kick(0);
    }
    qtest_clock_step(s, EDU_DMA_NS);
    flush_events(s);
    check_limits();
    system_reset();
}

/* Number the root port's bus and open a window for the edu behind it */
static void port_setup(QPCIBus *bus)
{
    uint64_t base = QEMU_ALIGN_UP(bus->mmio_alloc_ptr, MiB);

    fz.port = qpci_device_find(bus, PORT);
    g_assert(fz.port);
    qpci_config_writeb(fz.port, PCI_PRIMARY_BUS, 0);
    qpci_config_writeb(fz.port, PCI_SECONDARY_BUS, PORT_BUS);
    qpci_config_writeb(fz.port, PCI_SUBORDINATE_BUS, PORT_BUS);
    /* edu's BAR is 1 MiB: the next allocation lands in the window */
    bus->mmio_alloc_ptr = base;
    qpci_config_writew(fz.port, PCI_MEMORY_BASE, (base >> 16) & 0xfff0);
    qpci_config_writew(fz.port, PCI_MEMORY_LIMIT,
                       ((base + MiB - 1) >> 16) & 0xfff0);
    qpci_config_writew(fz.port, PCI_PREF_MEMORY_BASE, 0xfff0);
    qpci_config_writew(fz.port, PCI_PREF_MEMORY_LIMIT, 0);
    qpci_config_writeb(fz.port, PCI_IO_BASE, 0xf0);
    qpci_config_writeb(fz.port, PCI_IO_LIMIT, 0);
    qpci_config_writew(fz.port, PCI_COMMAND,
                       PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
}

static void viommu_pre_fuzz(QTestState *s)
{
    QViommu *v;
    QPCIBus *bus;
    int i;

    qos_init_path(s);
    v = fuzz_qos_obj;
    fz.qts = s;
    fz.vpci = v->transport;
    fz.trace = getenv("VIOMMU_FUZZ_TRACE");
    fz.iommu = object_resolve_path_type("", "virtio-iommu-device", NULL);
    g_assert(fz.iommu);
    fz.testdev = object_resolve_path("/machine/peripheral/itd", NULL);
    g_assert(fz.testdev);
    for (i = 0; i < NR_EDU; i++) {
        g_autofree char *id = g_strdup_printf("edu%d", i);

        object_property_set_str(fz.testdev, "record", id, &error_abort);
    }
    bus = fz.vpci->pdev->bus;
    save_config(&fz.saved[0], fz.vpci->pdev);
    for (i = 0; i < NR_EDU; i++) {
        if (i == 4) {
            /* the port first, also when its numbering is restored */
            port_setup(bus);
            save_config(&fz.saved[1 + i], fz.port);
        }
        /* config cycles to bus N use devfn N << 8 | devfn */
        fz.edu[i] = qpci_device_find(bus, i < 4 ? EDU(i) : PORT_EDU);
        g_assert(fz.edu[i]);
        qpci_device_enable(fz.edu[i]);
        fz.edu_bar[i] = qpci_iomap(fz.edu[i], 0, NULL);
        save_config(&fz.saved[1 + i + (i == 4)], fz.edu[i]);
        trace("edu%d: BAR at 0x%" PRIx64 ", ID 0x%08x", i + 1,
              fz.edu_bar[i].addr,
              qpci_io_readl(fz.edu[i], fz.edu_bar[i], 0));
    }
    system_reset();
}

static void *viommu_fuzz_cmdline(GString *cmd_line, void *arg)
{
    const char *pc = strstr(cmd_line->str, "-M pc ");

    /* The qos graph knows the pc machine; the device is for q35 */
    g_assert(pc);
    g_string_erase(cmd_line, pc - cmd_line->str, strlen("-M pc "));
    g_string_prepend(cmd_line, "-M q35 ");
    return arg;
}

static void register_viommu_fuzz_targets(void)
{
    fuzz_add_qos_target(&(FuzzTarget){
            .name = "virtio-iommu-fuzz",
            .description = "virtio-iommu-pci on q35: requestq chains of "
                           "any layout, eventq, config, features, resets "
                           "and DMA by two edu devices through the IOMMU",
            .pre_fuzz = viommu_pre_fuzz,
            .fuzz = viommu_fuzz,
        }, "virtio-iommu", &(QOSGraphTestOptions){
            .before = viommu_fuzz_cmdline,
            .edge.extra_device_opts = IOMMU_OPTS,
            .edge.after_cmd_line = EDU_ARGS,
        });
}

fuzz_target_init(register_viommu_fuzz_targets);
