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
 * leaves no domain, mapping or attached endpoint.  A reference model
 * (domains, endpoints, mappings, reserved regions, limits, features,
 * bypass) predicts the status of every well-formed request, the PROBE
 * properties, and for every DMA the bytes that reach guest memory or the
 * edu's buffer and the fault reports, field by field.  A broken promise
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
#define MAX_PENDING_FAULTS  8
/* MSI-X opted in: its vectors are transport state the input can set */
#define IOMMU_OPTS          "max-domains=" stringify(MAX_DOMAINS) \
                            ",max-mappings=" stringify(MAX_MAPPINGS) \
                            ",max-pending-faults=" \
                            stringify(MAX_PENDING_FAULTS) \
                            ",max-domain-id=" stringify(MAX_DOMAIN_ID) \
                            ",vectors=3"
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
    /* the readable part the device reads, for the model */
    uint8_t req[sizeof(struct virtio_iommu_req_probe)];
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

/*
 * The reference model
 *
 * What the device must do, worked out from the specification and
 * docs/behaviour-contract.md alone: the domains, the endpoints attached to
 * them, their mappings, the machine's reserved regions, the limits, the
 * negotiated features and the config bypass, kept in step with the device
 * by applying every request the model expects to succeed.  From it the
 * target predicts the status of every well-formed request (and the
 * properties of a PROBE), and for every edu DMA, piece by piece as QEMU's
 * memory core issues it, either the bytes that reach guest memory or the
 * edu's buffer, or that the access is blocked and which fault report
 * (reason, endpoint, address, READ/WRITE) the eventq gets.
 *
 * The model is in step ("synced") from a system reset, and from a START
 * the contract checks apply to (fz.live); raw register writes, raw
 * features and defective chains take it out of step until then.  Guest
 * memory is tracked in three windows of plain RAM filled with a pattern
 * that differs at every address; bytes outside them, or copied from
 * outside them, are unknown and not checked.
 */

/* What q35 and the properties give the IOMMU (config space) */
#define M_INPUT_END         ((1ull << 39) - 1)  /* q35: aw-bits=39 */
#define M_PROBE_SIZE        512
#define M_BOOT_BYPASS       1
#define M_MAX_FNS           32
#define M_MAX_EPS           (2 * M_MAX_FNS)
#define M_MAX_WRITES        16

typedef struct MResv {
    uint64_t start, end;
    uint8_t subtype;
} MResv;

/* q35 declares the APIC's MSI window for every endpoint, nothing else */
static const MResv m_resv[] = {
    { 0xfee00000ull, 0xfeefffffull, VIRTIO_IOMMU_RESV_MEM_T_MSI },
};

/*
 * A PCI function behind the IOMMU.  While attached, its DMA goes by the
 * ID it was attached under, whatever its bus is numbered now (design.rst,
 * "Endpoints and address spaces").
 */
typedef struct MFn {
    uint8_t devfn;
    bool behind_port;       /* on the root port's secondary bus */
    int edu;                /* index in fz.edu, or -1 */
    bool bound;
    uint32_t bound_id;
} MFn;

typedef struct MEp {        /* an attached endpoint ID */
    bool used;
    uint32_t id;
    uint32_t domain;
} MEp;

typedef struct MDomain {
    bool used;
    uint32_t id;
    bool bypass;
    unsigned nr_eps;
} MDomain;

typedef struct MMapping {
    bool used;
    uint32_t domain;
    uint64_t start, end, phys;
    uint32_t flags;
} MMapping;

typedef struct MFault {
    uint8_t reason;
    uint32_t flags;
    uint32_t ep;
    uint64_t addr;
} MFault;

/* A window of guest RAM whose every byte the model knows */
typedef struct Tracked {
    uint64_t base, size;
    uint8_t *pattern;       /* what an input starts with */
    uint8_t *val;
    uint8_t *known;
} Tracked;

typedef struct Model {
    bool synced;
    bool lost;              /* a request did what the model cannot tell */
    bool whole;             /* synced all along since the last reset */
    bool mem_stale;         /* DMA the model did not follow happened */
    uint64_t granule;
    uint64_t features;
    bool bypass;
    bool bypass_known;
    uint8_t port_bus;
    uint16_t edu_cmd[NR_EDU];
    uint16_t saved_cmd[NR_EDU];
    MFn fn[M_MAX_FNS];
    unsigned nr_fns;
    MEp ep[M_MAX_EPS];
    MDomain dom[MAX_DOMAINS];
    MMapping map[MAX_MAPPINGS];
    unsigned nr_eps, nr_doms, nr_maps;
    /* fault reports queued in the device, oldest first */
    MFault fault[MAX_PENDING_FAULTS];
    unsigned fault_head, nr_faults;
    /*
     * The device sends reports: the driver notified a queue since
     * DRIVER_OK (START posts no eventq buffer before it).  Until then a
     * driver may still be in its probe (Linux 6.12 crashes on an event).
     */
    bool events_ready;
    uint64_t faults_reported, faults_dropped;
    uint64_t stats_reported, stats_dropped;     /* at the last reset */
    /* the edus' DMA buffers */
    uint8_t edu_buf[NR_EDU][EDU_BUF_SIZE];
    uint8_t edu_known[NR_EDU][EDU_BUF_SIZE];
    /* tracked bytes the DMA under way writes, to compare once it ran */
    struct {
        uint64_t pa;
        uint32_t len;
    } writes[M_MAX_WRITES];
    unsigned nr_writes;
    bool many_writes;
} Model;

static Model m;

static Tracked tracked[] = {
    { 0, 0xa0000 },                     /* below the VGA hole */
    { 0x100000, 0x110000 },             /* what low IOVAs reach as is */
    { DMA_BASE, DMA_PAGES * PAGE },     /* where mappings point */
};

/* A little-endian field of request structure @type in the bytes at @r */
#define REQ32(r, type, f)   ldl_le_p((r) + offsetof(struct type, f))
#define REQ64(r, type, f)   ldq_le_p((r) + offsetof(struct type, f))

/* The first unused entry of a model table (each entry starts with .used) */
#define M_FREE(table) ({                                    \
    unsigned i_ = 0;                                        \
                                                            \
    while ((table)[i_].used) {                              \
        g_assert(++i_ < ARRAY_SIZE(table));                 \
    }                                                       \
    &(table)[i_];                                           \
})

static bool has_feature(unsigned bit)
{
    return m.features & (1ull << bit);
}

static uint32_t mfn_id(const MFn *f)
{
    return f->behind_port ? (uint32_t)m.port_bus << 8 | f->devfn : f->devfn;
}

/*
 * The function endpoint @id names: the one attached under it, else the
 * unattached one whose requester ID it is now; or one attached under
 * another ID whose requester ID it is now, which @id does not govern
 * (*@governs false): attaching @id is recorded but changes nothing that
 * function's DMA gets.  Two unattached functions with one requester ID
 * (the root port's secondary bus numbered 0, like the root bus): nothing
 * says which @id names, *@ambiguous is set and the first is returned.
 */
static MFn *mfn_find(uint32_t id, bool *governs, bool *ambiguous)
{
    MFn *found = NULL, *other = NULL;
    unsigned i;

    *governs = true;
    *ambiguous = false;
    if (id > 0xffff) {
        return NULL;
    }
    for (i = 0; i < m.nr_fns; i++) {
        if (m.fn[i].bound && m.fn[i].bound_id == id) {
            return &m.fn[i];
        }
    }
    for (i = 0; i < m.nr_fns; i++) {
        if (mfn_id(&m.fn[i]) != id) {
            continue;
        }
        if (m.fn[i].bound) {
            other = other ? other : &m.fn[i];
        } else if (found) {
            *ambiguous = true;
        } else {
            found = &m.fn[i];
        }
    }
    *governs = found;
    return found ? found : other;
}

static MFn *mfn_of(uint32_t id, bool *governs)
{
    bool ambiguous;

    return mfn_find(id, governs, &ambiguous);
}

static bool m_exists(uint32_t id)
{
    bool governs;

    return mfn_of(id, &governs);
}

static MFn *mfn_of_edu(int e)
{
    unsigned i;

    for (i = 0; i < m.nr_fns; i++) {
        if (m.fn[i].edu == e) {
            return &m.fn[i];
        }
    }
    g_assert_not_reached();
}

/* The entry of a model table whose .id is @key, or NULL */
#define M_FIND(table, key) ({                               \
    typeof(&(table)[0]) found_ = NULL;                      \
    unsigned i_;                                            \
                                                            \
    for (i_ = 0; !found_ && i_ < ARRAY_SIZE(table); i_++) { \
        if ((table)[i_].used && (table)[i_].id == (key)) {  \
            found_ = &(table)[i_];                          \
        }                                                   \
    }                                                       \
    found_;                                                 \
})

static MEp *m_ep(uint32_t id)
{
    return M_FIND(m.ep, id);
}

static MDomain *m_domain(uint32_t id)
{
    return M_FIND(m.dom, id);
}

static bool m_overlap(uint64_t a0, uint64_t a1, uint64_t b0, uint64_t b1)
{
    return a0 <= b1 && b0 <= a1;
}

static bool m_hits_resv(uint64_t start, uint64_t end)
{
    unsigned i;

    for (i = 0; i < ARRAY_SIZE(m_resv); i++) {
        if (m_overlap(start, end, m_resv[i].start, m_resv[i].end)) {
            return true;
        }
    }
    return false;
}

/* The mapping of @domain that overlaps [start, end], if any */
static MMapping *m_mapping(uint32_t domain, uint64_t start, uint64_t end)
{
    unsigned i;

    for (i = 0; i < ARRAY_SIZE(m.map); i++) {
        MMapping *p = &m.map[i];

        if (p->used && p->domain == domain &&
            m_overlap(start, end, p->start, p->end)) {
            return p;
        }
    }
    return NULL;
}

static void m_unmap(MMapping *p)
{
    p->used = false;
    m.nr_maps--;
}

/* The endpoint leaves its domain; the last one out destroys it */
static void m_detach(MEp *ep)
{
    MDomain *d = m_domain(ep->domain);
    bool governs;
    MFn *f = mfn_of(ep->id, &governs);
    unsigned i;

    if (f && governs) {
        f->bound = false;
    }
    ep->used = false;
    m.nr_eps--;
    if (--d->nr_eps) {
        return;
    }
    for (i = 0; i < ARRAY_SIZE(m.map); i++) {
        if (m.map[i].used && m.map[i].domain == d->id) {
            m_unmap(&m.map[i]);
        }
    }
    d->used = false;
    m.nr_doms--;
}

static void m_attach(uint32_t id, MDomain *d)
{
    bool governs, ambiguous;
    MFn *f;

    *M_FREE(m.ep) = (MEp) { true, id, d->id };
    m.nr_eps++;
    d->nr_eps++;
    f = mfn_find(id, &governs, &ambiguous);
    m.lost |= ambiguous;
    if (f && governs) {
        f->bound = true;
        f->bound_id = id;
    }
}

/* The handlers: the contract's checks in its order; OK changes state */

static uint8_t m_req_attach(const uint8_t *r)
{
    uint32_t domain = REQ32(r, virtio_iommu_req_attach, domain);
    uint32_t id = REQ32(r, virtio_iommu_req_attach, endpoint);
    uint32_t flags = REQ32(r, virtio_iommu_req_attach, flags);
    uint32_t resv = REQ32(r, virtio_iommu_req_attach, reserved);
    bool bypass = flags & VIRTIO_IOMMU_ATTACH_F_BYPASS;
    MEp *ep;
    MDomain *old, *d;
    bool old_goes, survives;
    unsigned i;

    if (resv) {
        return VIRTIO_IOMMU_S_INVAL;
    }
    if ((flags & ~VIRTIO_IOMMU_ATTACH_F_BYPASS) ||
        (bypass && !has_feature(VIRTIO_IOMMU_F_BYPASS_CONFIG))) {
        return VIRTIO_IOMMU_S_INVAL;
    }
    if (!m_exists(id)) {
        return VIRTIO_IOMMU_S_NOENT;
    }
    if (domain > MAX_DOMAIN_ID) {
        return VIRTIO_IOMMU_S_RANGE;
    }
    ep = m_ep(id);
    old = ep ? m_domain(ep->domain) : NULL;
    old_goes = old && old->nr_eps == 1;
    d = m_domain(domain);
    survives = d && !(old_goes && old == d);
    if (survives && d->bypass != bypass) {
        return VIRTIO_IOMMU_S_INVAL;
    }
    for (i = 0; survives && i < ARRAY_SIZE(m_resv); i++) {
        if (m_mapping(domain, m_resv[i].start, m_resv[i].end)) {
            return VIRTIO_IOMMU_S_UNSUPP;
        }
    }
    if (m.nr_doms - old_goes + !survives > MAX_DOMAINS) {
        return VIRTIO_IOMMU_S_NOMEM;
    }
    if (ep) {
        m_detach(ep);
    }
    if (!survives) {
        d = M_FREE(m.dom);
        *d = (MDomain) { true, domain, bypass, 0 };
        m.nr_doms++;
    }
    m_attach(id, d);
    return VIRTIO_IOMMU_S_OK;
}

static uint8_t m_req_detach(const uint8_t *r)
{
    uint32_t domain = REQ32(r, virtio_iommu_req_detach, domain);
    uint32_t id = REQ32(r, virtio_iommu_req_detach, endpoint);
    MEp *ep;

    if (!m_exists(id)) {
        return VIRTIO_IOMMU_S_NOENT;
    }
    if (domain > MAX_DOMAIN_ID) {
        return VIRTIO_IOMMU_S_RANGE;
    }
    ep = m_ep(id);
    if (!ep || ep->domain != domain) {
        return VIRTIO_IOMMU_S_INVAL;
    }
    m_detach(ep);
    return VIRTIO_IOMMU_S_OK;
}

/* MAP and UNMAP: the domain they name, or the status that refuses it */
static MDomain *m_map_domain(uint32_t domain, uint8_t *status)
{
    MDomain *d;

    if (domain > MAX_DOMAIN_ID) {
        *status = VIRTIO_IOMMU_S_RANGE;
        return NULL;
    }
    d = m_domain(domain);
    if (!d) {
        *status = VIRTIO_IOMMU_S_NOENT;
        return NULL;
    }
    if (d->bypass) {
        *status = VIRTIO_IOMMU_S_INVAL;
        return NULL;
    }
    return d;
}

static uint8_t m_req_map(const uint8_t *r)
{
    uint32_t domain = REQ32(r, virtio_iommu_req_map, domain);
    uint64_t start = REQ64(r, virtio_iommu_req_map, virt_start);
    uint64_t end = REQ64(r, virtio_iommu_req_map, virt_end);
    uint64_t phys = REQ64(r, virtio_iommu_req_map, phys_start);
    uint32_t flags = REQ32(r, virtio_iommu_req_map, flags);
    uint8_t status;

    if ((flags & ~VIRTIO_IOMMU_MAP_F_MASK) ||
        ((flags & VIRTIO_IOMMU_MAP_F_MMIO) &&
         !has_feature(VIRTIO_IOMMU_F_MMIO))) {
        return VIRTIO_IOMMU_S_INVAL;
    }
    if (!m_map_domain(domain, &status)) {
        return status;
    }
    if (end < start) {
        return VIRTIO_IOMMU_S_INVAL;
    }
    if ((start | phys | (end + 1)) & (m.granule - 1)) {
        return VIRTIO_IOMMU_S_RANGE;
    }
    if (end > M_INPUT_END || phys + (end - start) < phys) {
        return VIRTIO_IOMMU_S_RANGE;
    }
    /* every endpoint of the domain has the machine's reserved regions */
    if (m_mapping(domain, start, end) || m_hits_resv(start, end)) {
        return VIRTIO_IOMMU_S_INVAL;
    }
    if (m.nr_maps >= MAX_MAPPINGS) {
        return VIRTIO_IOMMU_S_NOMEM;
    }
    *M_FREE(m.map) = (MMapping) { true, domain, start, end, phys, flags };
    m.nr_maps++;
    return VIRTIO_IOMMU_S_OK;
}

static uint8_t m_req_unmap(const uint8_t *r)
{
    uint32_t domain = REQ32(r, virtio_iommu_req_unmap, domain);
    uint64_t start = REQ64(r, virtio_iommu_req_unmap, virt_start);
    uint64_t end = REQ64(r, virtio_iommu_req_unmap, virt_end);
    uint32_t resv = REQ32(r, virtio_iommu_req_unmap, reserved);
    uint8_t status;
    MMapping *p;
    unsigned i;

    if (resv) {
        return VIRTIO_IOMMU_S_INVAL;
    }
    if (!m_map_domain(domain, &status)) {
        return status;
    }
    if (end < start) {
        return VIRTIO_IOMMU_S_INVAL;
    }
    if (end > M_INPUT_END) {
        return VIRTIO_IOMMU_S_RANGE;
    }
    for (i = 0; i < ARRAY_SIZE(m.map); i++) {
        p = &m.map[i];
        if (p->used && p->domain == domain &&
            m_overlap(start, end, p->start, p->end) &&
            (p->start < start || p->end > end)) {
            return VIRTIO_IOMMU_S_RANGE;        /* would split it */
        }
    }
    while ((p = m_mapping(domain, start, end))) {
        m_unmap(p);
    }
    return VIRTIO_IOMMU_S_OK;
}

/* PROBE: the properties go to @props (M_PROBE_SIZE bytes) */
static uint8_t m_req_probe(const uint8_t *r, uint32_t wlen, uint8_t *props)
{
    uint32_t id = REQ32(r, virtio_iommu_req_probe, endpoint);
    unsigned i;

    if (wlen - sizeof(struct virtio_iommu_req_tail) < M_PROBE_SIZE) {
        return VIRTIO_IOMMU_S_INVAL;
    }
    if (!m_exists(id)) {
        return VIRTIO_IOMMU_S_NOENT;
    }
    memset(props, 0, M_PROBE_SIZE);
    for (i = 0; i < ARRAY_SIZE(m_resv); i++) {
        struct virtio_iommu_probe_resv_mem p = {
            .head.type = cpu_to_le16(VIRTIO_IOMMU_PROBE_T_RESV_MEM),
            .head.length = cpu_to_le16(sizeof(p) - sizeof(p.head)),
            .subtype = m_resv[i].subtype,
            .start = cpu_to_le64(m_resv[i].start),
            .end = cpu_to_le64(m_resv[i].end),
        };

        memcpy(props + i * sizeof(p), &p, sizeof(p));
    }
    return VIRTIO_IOMMU_S_OK;
}

/*
 * The status of a well-formed request (readable part complete, tail
 * present, type known and negotiated); applied to the model if OK.
 */
static uint8_t model_request(const Chain *c, uint8_t *props)
{
    switch (c->req[0]) {
    case VIRTIO_IOMMU_T_ATTACH:
        return m_req_attach(c->req);
    case VIRTIO_IOMMU_T_DETACH:
        return m_req_detach(c->req);
    case VIRTIO_IOMMU_T_MAP:
        return m_req_map(c->req);
    case VIRTIO_IOMMU_T_UNMAP:
        return m_req_unmap(c->req);
    default:
        return m_req_probe(c->req, c->wlen, props);
    }
}

/* Tracked guest memory */

static Tracked *tracked_at(uint64_t pa)
{
    unsigned i;

    for (i = 0; i < ARRAY_SIZE(tracked); i++) {
        if (pa >= tracked[i].base && pa - tracked[i].base < tracked[i].size) {
            return &tracked[i];
        }
    }
    return NULL;
}

/* Fill the tracked windows with their pattern: every byte known */
static void tracked_fill(void)
{
    unsigned i;

    for (i = 0; i < ARRAY_SIZE(tracked); i++) {
        Tracked *t = &tracked[i];

        qtest_memwrite(fz.qts, t->base, t->pattern, t->size);
        memcpy(t->val, t->pattern, t->size);
        memset(t->known, 1, t->size);
    }
    m.mem_stale = false;
}

/* Learn the tracked windows again after DMA the model did not follow */
static void tracked_reload(void)
{
    unsigned i;

    for (i = 0; i < ARRAY_SIZE(tracked); i++) {
        Tracked *t = &tracked[i];

        qtest_memread(fz.qts, t->base, t->val, t->size);
        memset(t->known, 1, t->size);
    }
    m.mem_stale = false;
}

/* Guest memory at [pa, pa + len) holds what the model knows is there */
static void tracked_check(uint64_t pa, uint64_t len, const char *what)
{
    static uint8_t buf[64 * KiB];

    while (len) {
        Tracked *t = tracked_at(pa);
        uint64_t off = pa - t->base;
        uint64_t l = MIN(MIN(len, sizeof(buf)), t->size - off);
        uint64_t i;

        qtest_memread(fz.qts, pa, buf, l);
        if (memcmp(buf, t->val + off, l)) {
            for (i = 0; i < l; i++) {
                if (t->known[off + i] && buf[i] != t->val[off + i]) {
                    broken("%s: guest memory at 0x%" PRIx64 " is 0x%02x, "
                           "want 0x%02x", what, pa + i, buf[i],
                           t->val[off + i]);
                }
            }
        }
        pa += l;
        len -= l;
    }
}

static void tracked_check_all(const char *what)
{
    unsigned i;

    if (m.mem_stale) {
        return;
    }
    for (i = 0; i < ARRAY_SIZE(tracked); i++) {
        tracked_check(tracked[i].base, tracked[i].size, what);
    }
}

/* DMA */

/* One step of a DMA at @addr: where it goes, or why it is blocked */
typedef struct MStep {
    bool ok;
    uint64_t pa;
    uint64_t run;           /* bytes from @addr that go on to pa onwards */
    uint8_t reason;         /* else: blocked, reported with this reason */
    uint32_t ep;
} MStep;

static MStep m_translate(const MFn *f, uint64_t addr, bool write)
{
    MStep s = { .ep = f->bound ? f->bound_id : mfn_id(f) };
    const MDomain *d = NULL;
    const MMapping *p;
    unsigned perm = write ? VIRTIO_IOMMU_MAP_F_WRITE : VIRTIO_IOMMU_MAP_F_READ;
    unsigned i;

    if (f->bound) {
        d = m_domain(m_ep(f->bound_id)->domain);
    }
    if (!d || d->bypass) {
        /* unattached in bypass, or a bypass domain: identity */
        if (d || m.bypass) {
            s.ok = true;
            s.pa = addr;
            s.run = UINT64_MAX - addr;
            return s;
        }
        s.reason = VIRTIO_IOMMU_FAULT_R_DOMAIN;
        return s;
    }
    p = m_mapping(d->id, addr, addr);
    if (p && (p->flags & perm)) {
        s.ok = true;
        s.pa = p->phys + (addr - p->start);
        s.run = p->end - addr + 1;
        return s;
    }
    for (i = 0; !p && i < ARRAY_SIZE(m_resv); i++) {
        if (addr >= m_resv[i].start && addr <= m_resv[i].end &&
            m_resv[i].subtype == VIRTIO_IOMMU_RESV_MEM_T_MSI) {
            s.ok = true;            /* MSI doorbells reach the APIC */
            s.pa = addr;
            s.run = m_resv[i].end - addr + 1;
            return s;
        }
    }
    s.reason = VIRTIO_IOMMU_FAULT_R_MAPPING;
    return s;
}

/* Queue a fault report; false when the queue is full and it is dropped */
static bool m_fault(const MStep *s, uint64_t addr, bool write)
{
    if (m.nr_faults == MAX_PENDING_FAULTS) {
        m.faults_dropped++;
        return false;
    }
    m.faults_reported++;
    m.fault[(m.fault_head + m.nr_faults++) % MAX_PENDING_FAULTS] = (MFault) {
        .reason = s->reason,
        .flags = VIRTIO_IOMMU_FAULT_F_ADDRESS |
                 (write ? VIRTIO_IOMMU_FAULT_F_WRITE :
                          VIRTIO_IOMMU_FAULT_F_READ),
        .ep = s->ep,
        .addr = addr,
    };
    return true;
}

/* @n bytes between edu @e's buffer at @off and guest memory at @pa */
static void m_copy(int e, uint32_t off, uint64_t pa, uint32_t n,
                   bool to_pci)
{
    uint64_t last = pa + n - 1;
    unsigned i;

    if (!to_pci) {
        memset(m.edu_known[e] + off, 0, n);
    }
    for (i = 0; i < ARRAY_SIZE(tracked); i++) {
        Tracked *t = &tracked[i];
        uint64_t lo = MAX(pa, t->base);
        uint64_t hi = MIN(last, t->base + t->size - 1);

        if (lo > hi) {
            continue;
        }
        if (to_pci) {
            memcpy(t->val + (lo - t->base), m.edu_buf[e] + off + (lo - pa),
                   hi - lo + 1);
            memcpy(t->known + (lo - t->base),
                   m.edu_known[e] + off + (lo - pa), hi - lo + 1);
            if (m.nr_writes < M_MAX_WRITES) {
                m.writes[m.nr_writes].pa = lo;
                m.writes[m.nr_writes++].len = hi - lo + 1;
            } else {
                m.many_writes = true;
            }
        } else {
            memcpy(m.edu_buf[e] + off + (lo - pa), t->val + (lo - t->base),
                   hi - lo + 1);
            memcpy(m.edu_known[e] + off + (lo - pa),
                   t->known + (lo - t->base), hi - lo + 1);
        }
    }
}

/*
 * What edu @e's DMA of @count bytes at @iova must do.  QEMU's memory core
 * translates where the access starts and goes on as far as the answer
 * reaches; a blocked access goes in pieces of at most 4 bytes, aligned on
 * the IOVA, each translated (and reported) again; a blocked read returns
 * zeroes.  Returns the number of fault reports queued (not dropped), or
 * -1 when the model cannot follow (the access reaches the end of the
 * IOVA space).
 */
static int model_dma(int e, uint64_t iova, uint32_t count, bool to_pci)
{
    const MFn *f = mfn_of_edu(e);
    uint64_t addr = iova;
    uint32_t off = 0;
    int faults = 0;

    m.nr_writes = 0;
    m.many_writes = false;
    if (!(m.edu_cmd[e] & PCI_COMMAND_MEMORY)) {
        return 0;                       /* its registers are unreachable */
    }
    if (!(m.edu_cmd[e] & PCI_COMMAND_MASTER)) {
        if (!to_pci) {
            memset(m.edu_known[e], 0, count);
        }
        return 0;                       /* the access goes nowhere */
    }
    if (iova + count - 1 < iova || iova + count - 1 == UINT64_MAX) {
        return -1;
    }
    while (off < count) {
        MStep s = m_translate(f, addr, to_pci);
        uint32_t n = count - off;

        if (s.ok) {
            n = MIN(n, s.run);
            m_copy(e, off, s.pa, n, to_pci);
        } else {
            n = MIN(n, 4);
            if (addr & (n - 1)) {
                n = addr & -addr;
            }
            n = pow2floor(n);
            faults += m_fault(&s, addr, to_pci);
            if (!to_pci) {
                memset(m.edu_buf[e] + off, 0, n);
                memset(m.edu_known[e] + off, 1, n);
            }
        }
        addr += n;
        off += n;
    }
    return faults;
}

/* After the DMA ran: guest memory holds what the model wrote */
static void model_dma_check(int e, uint64_t iova)
{
    g_autofree char *what = g_strdup_printf("edu%d wrote at IOVA 0x%" PRIx64,
                                            e + 1, iova);
    unsigned i;

    if (m.many_writes) {
        tracked_check_all(what);
        return;
    }
    for (i = 0; i < m.nr_writes; i++) {
        tracked_check(m.writes[i].pa, m.writes[i].len, what);
    }
}

/* A fault report came out of the eventq: the oldest the model queued */
static void model_fault_delivered(const struct virtio_iommu_fault *f)
{
    uint32_t flags = le32_to_cpu(f->flags), ep = le32_to_cpu(f->endpoint);
    uint64_t addr = le64_to_cpu(f->address);
    MFault *x = &m.fault[m.fault_head];

    if (!m.nr_faults) {
        broken("fault report reason %u, flags 0x%x, endpoint 0x%x, address "
               "0x%" PRIx64 ": the model expects none", f->reason, flags,
               ep, addr);
    }
    if (f->reason != x->reason || flags != x->flags || ep != x->ep ||
        addr != x->addr) {
        broken("fault report reason %u, flags 0x%x, endpoint 0x%x, address "
               "0x%" PRIx64 "; want reason %u, flags 0x%x, endpoint 0x%x, "
               "address 0x%" PRIx64, f->reason, flags, ep, addr, x->reason,
               x->flags, x->ep, x->addr);
    }
    m.fault_head = (m.fault_head + 1) % MAX_PENDING_FAULTS;
    m.nr_faults--;
}

/* Resets */

/* A device reset: nothing attached, no fault queued; bypass stays */
static void model_device_reset(void)
{
    unsigned i;

    for (i = 0; i < m.nr_fns; i++) {
        m.fn[i].bound = false;
    }
    memset(m.ep, 0, sizeof(m.ep));
    memset(m.dom, 0, sizeof(m.dom));
    memset(m.map, 0, sizeof(m.map));
    m.nr_eps = m.nr_doms = m.nr_maps = 0;
    m.fault_head = m.nr_faults = 0;
    m.events_ready = false;
}

/* Out of step with the device until the next reset */
static void model_unsync(void)
{
    fz.live = false;
    m.synced = false;
    m.whole = false;
    m.mem_stale = true;
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
 * A START the contract applies to: the device was reset, the features
 * are known.  Config bypass is as it was before the reset.
 */
static void model_start(void)
{
    uint8_t bypass = qvirtio_config_readb(&fz.vpci->vdev, CFG_OFF(bypass));

    model_device_reset();
    m.features = fz.features;
    if (m.bypass_known && bypass != m.bypass) {
        broken("config bypass is %u after a device reset, want %u", bypass,
               m.bypass);
    }
    m.bypass = bypass;
    m.bypass_known = true;
    if (m.mem_stale) {
        tracked_reload();
    }
    m.synced = true;
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
    if (fz.live) {
        model_start();
    } else {
        model_unsync();
    }
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
    unsigned i;

    memcpy(c.req, req, MIN(rlen, sizeof(c.req)));
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
        /* Perhaps cut short: the request is what the chain holds */
        rlen = wlen = 0;
        for (i = 0; i < n; i++) {
            *(segs[i].write ? &wlen : &rlen) += segs[i].len;
        }
        c.expect = expected(req, rlen, wlen);
        c.wlen = wlen;
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
        model_unsync();
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
    m.events_ready = true;
}

static bool valid_status(uint8_t s)
{
    return s <= VIRTIO_IOMMU_S_NOMEM;
}

/* The request's fields, for messages */
static char *describe(const Chain *c)
{
    const uint8_t *r = c->req;

    switch (c->type) {
    case VIRTIO_IOMMU_T_ATTACH:
        return g_strdup_printf("ATTACH domain %u endpoint 0x%x flags 0x%x",
                               REQ32(r, virtio_iommu_req_attach, domain),
                               REQ32(r, virtio_iommu_req_attach, endpoint),
                               REQ32(r, virtio_iommu_req_attach, flags));
    case VIRTIO_IOMMU_T_DETACH:
        return g_strdup_printf("DETACH domain %u endpoint 0x%x",
                               REQ32(r, virtio_iommu_req_detach, domain),
                               REQ32(r, virtio_iommu_req_detach, endpoint));
    case VIRTIO_IOMMU_T_MAP:
        return g_strdup_printf("MAP domain %u [0x%" PRIx64 ", 0x%" PRIx64
                               "] -> 0x%" PRIx64 " flags 0x%x",
                               REQ32(r, virtio_iommu_req_map, domain),
                               REQ64(r, virtio_iommu_req_map, virt_start),
                               REQ64(r, virtio_iommu_req_map, virt_end),
                               REQ64(r, virtio_iommu_req_map, phys_start),
                               REQ32(r, virtio_iommu_req_map, flags));
    case VIRTIO_IOMMU_T_UNMAP:
        return g_strdup_printf("UNMAP domain %u [0x%" PRIx64 ", 0x%" PRIx64
                               "]", REQ32(r, virtio_iommu_req_unmap, domain),
                               REQ64(r, virtio_iommu_req_unmap, virt_start),
                               REQ64(r, virtio_iommu_req_unmap, virt_end));
    case VIRTIO_IOMMU_T_PROBE:
        return g_strdup_printf("PROBE endpoint 0x%x",
                               REQ32(r, virtio_iommu_req_probe, endpoint));
    }
    return g_strdup_printf("type %u", c->type);
}

/*
 * Check one used request against the contract and, for a well-formed
 * one, against the model's status (and PROBE properties)
 */
static void check_request(uint32_t id, uint32_t len)
{
    Chain *c = &fz.chains[id];
    g_autofree uint8_t *w = NULL;
    g_autofree char *what = NULL;
    uint8_t props[M_PROBE_SIZE];
    uint32_t i, body, from = 0;
    uint8_t *tail;
    uint8_t want;

    if (!c->checked) {
        return;
    }
    what = describe(c);
    if (c->expect == EXPECT_UNUSED) {
        if (len) {
            broken("request %u (%s, %u writable bytes): used length "
                   "%u, want 0", id, what, c->wlen, len);
        }
        return;
    }
    if (len != c->wlen) {
        broken("request %u (%s): used length %u, want %u", id, what, len,
               c->wlen);
    }
    /* Large writable parts: the tail only */
    body = c->wlen <= 4096 ? c->wlen - 4 : 0;
    w = g_malloc(body + 4);
    qtest_memread(fz.qts, c->waddr + c->wlen - 4 - body, w, body + 4);
    tail = w + body;
    if (!valid_status(tail[0]) || tail[1] || tail[2] || tail[3]) {
        broken("request %u (%s): tail %02x %02x %02x %02x", id, what,
               tail[0], tail[1], tail[2], tail[3]);
    }
    want = c->expect >= 0 ? c->expect : model_request(c, props);
    trace("  used: request %u (%s) status %u, model %u", id, what,
          tail[0], want);
    if (tail[0] != want) {
        broken("request %u (%s): status %u, want %u", id, what, tail[0],
               want);
    }
    if (m.lost) {
        trace("  the model cannot tell which function that attached");
        m.lost = false;
        model_unsync();
    }
    /* Only a successful PROBE has a payload; the rest is zeroes */
    if (c->type == VIRTIO_IOMMU_T_PROBE && want == VIRTIO_IOMMU_S_OK &&
        body) {
        for (i = 0; i < M_PROBE_SIZE; i++) {
            if (w[i] != props[i]) {
                broken("request %u (%s): property byte %u is 0x%02x, want "
                       "0x%02x", id, what, i, w[i], props[i]);
            }
        }
        from = M_PROBE_SIZE;
    }
    for (i = from; i < body; i++) {
        if (w[i]) {
            broken("request %u (%s, status %u): writable byte %u is "
                   "0x%02x, want 0", id, what, tail[0], i, w[i]);
        }
    }
}

static void check_event(uint32_t id, uint32_t len)
{
    struct virtio_iommu_fault f;
    uint32_t want = fz.evt_len[id] < sizeof(f) ? 0 : sizeof(f);
    uint32_t flags, ep;

    if (fz.live && !m.events_ready) {
        broken("eventq buffer used before the driver notified a queue "
               "since DRIVER_OK");
    }
    if (len != want) {
        broken("eventq buffer of %u bytes: used length %u, want %u",
               fz.evt_len[id], len, want);
    }
    if (!len) {
        /* taken for a fault report, and too small for it */
        if (!m.nr_faults) {
            broken("eventq buffer of %u bytes used while no fault report "
                   "is pending", fz.evt_len[id]);
        }
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
    model_fault_delivered(&f);
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

/*
 * Fault reports the model expects never wait while buffers are posted,
 * once the device may send them
 */
static void check_faults_delivered(void)
{
    if (fz.live && m.events_ready && m.nr_faults && fz.vq[1].in_flight) {
        broken("%u fault reports pending, %u eventq buffers posted",
               m.nr_faults, fz.vq[1].in_flight);
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
    if (q == 1) {
        check_faults_delivered();
    }
}

/* Post up to @n eventq buffers of @len bytes */
static void post_events(unsigned n, uint32_t len)
{
    FuzzVq *vq = &fz.vq[1];
    unsigned i;

    for (i = 0; i < n && vq->size && vq->in_flight < vq->size; i++) {
        uint16_t d = vq->next_desc;

        write_desc(vq->desc, d, EVT_BASE + d * EVT_BUF_MAX, len,
                   VRING_DESC_F_WRITE, 0);
        guest_fill(EVT_BASE + d * EVT_BUF_MAX, 0xa5, len);
        fz.evt_len[d] = len;
        vq->next_desc = (d + 1) % vq->size;
        publish(vq, d);
    }
}

/* OP_EVENTS: post eventq buffers for fault reports */
static void do_events(uint8_t count, uint8_t size)
{
    uint32_t len = size < 0xc0 ? 24 + (size % 3) * 8 : 1 + size % 23;

    trace("eventq: %u buffers of %u bytes", (count & 7) + 1, len);
    post_events((count & 7) + 1, len);
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
    int faults = 0;

    trace("dma: edu%d %s 0x%" PRIx64 ", %u bytes", e + 1,
          to_pci ? "writes" : "reads", iova, count);
    if (m.synced) {
        /* the model's fault queue is the device's */
        if (fz.live) {
            collect(1);
        }
        faults = model_dma(e, iova, count, to_pci);
        if (faults < 0) {
            trace("  the model cannot follow this DMA");
            model_unsync();
        }
    }
    if (!m.synced && !to_pci) {
        memset(m.edu_known[e], 0, count);
    }
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
    if (m.synced) {
        model_dma_check(e, iova);
        if (faults > 0) {
            check_faults_delivered();
        }
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
            model_unsync();         /* may land on the rings */
        }
    }
    if (to_pci && fz.wild_phys) {
        model_unsync();
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

/*
 * A write of @size bytes at @off of the device config: whatever way the
 * write is split, the byte of bypass is written once, and takes effect
 * with F_BYPASS_CONFIG negotiated and a value of 0 or 1
 */
static void model_config_write(unsigned off, unsigned size, uint64_t val)
{
    unsigned at = CFG_OFF(bypass);
    uint8_t v, now;

    if (at < off || at >= off + size) {
        return;
    }
    v = val >> (8 * (at - off));
    if (!m.synced) {
        m.bypass_known = false;
        return;
    }
    if (has_feature(VIRTIO_IOMMU_F_BYPASS_CONFIG) && v <= 1) {
        m.bypass = v;
    }
    now = qvirtio_config_readb(&fz.vpci->vdev, at);
    if (m.bypass_known && now != m.bypass) {
        broken("config bypass is %u after a write of %u, want %u", now, v,
               m.bypass);
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
    model_config_write(off % 48, 1 << (width & 3), val);
}

/* OP_COMMON: the virtio-pci common configuration, raw */
static void do_common(uint8_t off, uint8_t width, uint32_t val)
{
    QPCIDevice *dev = iommu_pdev();
    uint64_t addr = fz.vpci->common_cfg_offset + off % 0x40;

    trace("common config write at 0x%x, width %u, 0x%x", off % 0x40,
          1 << (width % 3), val);
    model_unsync();
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

/*
 * The counters never pass the limits, and count what the model holds:
 * domains, mappings, attached endpoint IDs, fault reports queued and
 * dropped
 */
static void check_limits(void)
{
    QDict *stats = get_stats();
    uint64_t domains = stat_get(stats, "domains");
    uint64_t mappings = stat_get(stats, "mappings");
    uint64_t eps = stat_get(stats, "attached-endpoints");
    uint64_t reported = stat_get(stats, "faults-reported") -
                        m.stats_reported;
    uint64_t dropped = stat_get(stats, "faults-dropped") - m.stats_dropped;

    if (domains > MAX_DOMAINS || mappings > MAX_MAPPINGS) {
        broken("counters past the limits: %" PRIu64 " domains, %" PRIu64
               " mappings", domains, mappings);
    }
    if (m.synced && (domains != m.nr_doms || mappings != m.nr_maps ||
                     eps != m.nr_eps)) {
        broken("%" PRIu64 " domains, %" PRIu64 " mappings, %" PRIu64
               " attached endpoints; the model has %u, %u, %u", domains,
               mappings, eps, m.nr_doms, m.nr_maps, m.nr_eps);
    }
    if (m.whole && (reported != m.faults_reported ||
                    dropped != m.faults_dropped)) {
        broken("%" PRIu64 " fault reports queued, %" PRIu64 " dropped; the "
               "model has %" PRIu64 ", %" PRIu64, reported, dropped,
               m.faults_reported, m.faults_dropped);
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
            model_unsync();
        }
        edu_dma((r >> 1) % NR_EDU,
                ((r >> 3) % 64) * PAGE + ((r >> 9) & 0xff0),
                1 + (r >> 16) % EDU_BUF_SIZE, to_pci, false);
    }
}

/* A system reset: a device reset, bypass back to boot-bypass */
static void model_system_reset(QDict *stats)
{
    model_device_reset();
    m.features = 0;
    m.bypass = M_BOOT_BYPASS;
    m.bypass_known = true;
    m.port_bus = PORT_BUS;
    memcpy(m.edu_cmd, m.saved_cmd, sizeof(m.edu_cmd));
    m.stats_reported = stat_get(stats, "faults-reported");
    m.stats_dropped = stat_get(stats, "faults-dropped");
    m.faults_reported = m.faults_dropped = 0;
    if (m.mem_stale) {
        tracked_reload();
    }
    m.synced = true;
    m.whole = true;
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
    model_system_reset(stats);
    qobject_unref(stats);
    driver_reset();
}

static void viommu_fuzz(QTestState *s, const unsigned char *data,
                        size_t size)
{
    Input in = { data, size };
    int e;

    fz.wild_phys = false;
    tracked_fill();
    do_start(0, 0, 0);
    /* Every edu's buffer known: a page of the pattern, read in bypass */
    for (e = 0; e < NR_EDU; e++) {
        edu_dma(e, tracked[1].base + e * EDU_BUF_SIZE, EDU_BUF_SIZE, false,
                false);
    }

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
            model_unsync();
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
            /* config cycles reach the fifth only while its bus is 1 */
            if (e < 4 || m.port_bus == PORT_BUS) {
                m.edu_cmd[e] = cmd;
            }
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
            m.port_bus = n;
            break;
        }
        }
    }

    /*
     * Whatever is still queued, then let every timer run; the fault
     * reports still pending go to eventq buffers (one more than the model
     * expects), and guest memory must hold what the model says
     */
    trace("end");
    if (fz.vq[0].in_flight) {
        do_kick(0);
    }
    qtest_clock_step(s, EDU_DMA_NS);
    flush_events(s);
    if (fz.live) {
        post_events(m.nr_faults + 1, sizeof(struct virtio_iommu_fault));
        do_kick(1);
    }
    tracked_check_all("at the end of the input");
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

/*
 * The model's machine: the PCI functions behind the IOMMU as firmware
 * finds them (every one on pcie.0 but the IOMMU's own, and those behind
 * the root port), what the edus' command registers are restored to, the
 * pattern of guest memory, and the config space the contract gives the
 * properties
 */
static void model_init(QPCIBus *bus)
{
    QPCIDevice probe = { .bus = bus };
    unsigned b, devfn, i;
    uint64_t a;
    int e;

    m.port_bus = PORT_BUS;
    for (b = 0; b < 2; b++) {
        for (devfn = 0; devfn < 256; devfn++) {
            MFn *f = &m.fn[m.nr_fns];

            probe.devfn = (b ? PORT_BUS << 8 : 0) | devfn;
            if ((!b && devfn == SELF) ||
                qpci_config_readw(&probe, PCI_VENDOR_ID) == 0xffff) {
                continue;
            }
            g_assert(m.nr_fns++ < M_MAX_FNS);
            *f = (MFn) { .devfn = devfn, .behind_port = b, .edu = -1 };
            for (e = 0; e < NR_EDU; e++) {
                if (fz.edu[e]->devfn == probe.devfn) {
                    f->edu = e;
                    m.saved_cmd[e] = fz.saved[1 + e + (e == 4)].cmd;
                }
            }
            trace("endpoint 0x%04x%s", mfn_id(f),
                  f->edu >= 0 ? " (edu)" : "");
        }
    }
    for (i = 0; i < ARRAY_SIZE(tracked); i++) {
        Tracked *t = &tracked[i];

        t->pattern = g_malloc(t->size);
        t->val = g_malloc(t->size);
        t->known = g_malloc(t->size);
        for (a = t->base; a < t->base + t->size; a++) {
            t->pattern[a - t->base] = (a * 0x9e3779b1u >> 24) ^ (a >> 12);
        }
    }
    m.granule = qemu_real_host_page_size();
    if (qvirtio_config_readq(&fz.vpci->vdev, CFG_OFF(page_size_mask)) !=
        -m.granule ||
        qvirtio_config_readq(&fz.vpci->vdev, CFG_OFF(input_range.start)) ||
        qvirtio_config_readq(&fz.vpci->vdev, CFG_OFF(input_range.end)) !=
        M_INPUT_END ||
        qvirtio_config_readl(&fz.vpci->vdev, CFG_OFF(domain_range.start)) ||
        qvirtio_config_readl(&fz.vpci->vdev, CFG_OFF(domain_range.end)) !=
        MAX_DOMAIN_ID ||
        qvirtio_config_readl(&fz.vpci->vdev, CFG_OFF(probe_size)) !=
        M_PROBE_SIZE) {
        broken("config space: not what the contract gives the properties");
    }
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
    model_init(bus);
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
