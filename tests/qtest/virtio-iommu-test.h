/*
 * virtio-iommu qtests: what the test files share
 *
 * virtio-iommu-test.c            request semantics: config, guest ABI,
 *                                each request, malformed requests,
 *                                features, bypass and reset
 * virtio-iommu-dma-test.c        DMA through the IOMMU: translation,
 *                                faults, DMA aliases, limits, a request
 *                                storm
 * virtio-iommu-hotplug-test.c    endpoint hot-plug and hot-unplug
 * virtio-iommu-notify-test.c     IOMMU notifier events, host IOMMU devices
 * virtio-iommu-migration-test.c  migration, and hostile streams
 * virtio-iommu-test-utils.c      the helpers declared here
 *
 * Each test file registers its tests with vit_add_test() from a
 * libqos_init() of its own, under the qgraph interface VIT_THEME it
 * defines; qos-test runs them in link order.  The files
 * are linked into qos-test with every other qtest: whatever is not static
 * has the prefix vit_.  Requests are built, sent and checked by the libqos
 * driver (libqos/virtio-iommu.h).
 *
 * Checks that do not make the rest of a test meaningless are non-fatal:
 * each failure is reported on stderr with the request, the expected and
 * the actual result, and the test case is marked failed at the end.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef TESTS_QTEST_VIRTIO_IOMMU_TEST_H
#define TESTS_QTEST_VIRTIO_IOMMU_TEST_H

#include "libqtest.h"
#include "libqos/qgraph.h"
#include "libqos/pci.h"
#include "libqos/virtio-iommu.h"

/* ------------------------------------------------------------------ */
/* Machines and endpoints                                              */

#define PAGE                    0x1000ull

/* Endpoints: virtio-rng-pci on bus 0; endpoint ID = bus << 8 | devfn */
#define EP1_SLOT                5
#define EP2_SLOT                6
#define EP1                     QPCI_DEVFN(EP1_SLOT, 0)
#define EP2                     QPCI_DEVFN(EP2_SLOT, 0)
#define EP_NO_SLOT              QPCI_DEVFN(7, 0)    /* empty slot */
#define EP_NO_FN                QPCI_DEVFN(EP1_SLOT, 1)
#define EP_ALIAS                (0x10000 | EP1)     /* EP1 + bit 16 */
#define EP_SELF                 QPCI_DEVFN(QVIOMMU_PCI_SLOT, 0)
#define EP3_SLOT                8       /* only with ENDPOINTS3 */
#define EP3                     QPCI_DEVFN(EP3_SLOT, 0)

#define ENDPOINT_OPTS           "iommu_platform=on,disable-legacy=on"
/* Endpoint device IDs, for the test objects that refer to them */
#define EP1_ID                  "ep1"
#define EP2_ID                  "ep2"
#define EP3_ID                  "ep3"
#define ENDPOINTS                                                       \
    "-device virtio-rng-pci,id=" EP1_ID ",addr=05.0," ENDPOINT_OPTS " " \
    "-device virtio-rng-pci,id=" EP2_ID ",addr=06.0," ENDPOINT_OPTS
#define ENDPOINTS3                                                      \
    ENDPOINTS " -device virtio-rng-pci,id=" EP3_ID ",addr=08.0,"        \
    ENDPOINT_OPTS

#define IOMMU_DEVICE_ARG        "-device virtio-iommu-pci,addr="        \
                                QVIOMMU_PCI_ADDR_STR

#define RW                      (VIRTIO_IOMMU_MAP_F_READ |              \
                                 VIRTIO_IOMMU_MAP_F_WRITE)
#define RO                      VIRTIO_IOMMU_MAP_F_READ
#define WO                      VIRTIO_IOMMU_MAP_F_WRITE

/* IOVAs of the endpoint tests: inside every input range, not RAM */
#define RING_IOVA               0x100000000ull
#define BUF_IOVA                0x100100000ull
#define RING_SIZE               16

#define FAULT_WAIT_US           (2 * G_USEC_PER_SEC)
#define QUIET_WAIT_US           (200 * 1000)

#define CFG_OFF(field)          offsetof(struct virtio_iommu_config, field)
#define BIT64(n)                (1ull << (n))

/* ------------------------------------------------------------------ */
/* Test variants                                                       */

typedef struct TestCfg {
    bool q35;                   /* x86: run on q35 instead of pc */
    const char *iommu_json;     /* the IOMMU's -device as JSON */
    const char *endpoints;      /* instead of ENDPOINTS */
    bool subprocess;            /* QEMU may not survive: run in a child */
    const char *q35_args;       /* appended to the command line on q35 */
    bool hp_port;               /* hot-plug behind a PCIe root port */
    bool plain;                 /* no test device: runs on stock QEMU too */
    const char *testdev_opts;   /* options of the IOMMU test device */
    const char *x86_machine;    /* x86: this machine type instead of pc */
    const char *arm_machine;    /* arm: this machine type instead of virt */
    unsigned aw_bits;           /* what that machine type sets, if not 0 */
} TestCfg;

/* The target of the QEMU under test */
bool vit_arch_is_x86(void);
bool vit_arch_is_arm(void);

/* Replace @from, which must be in @cmd_line, by @to */
void vit_cmdline_replace(GString *cmd_line, const char *from, const char *to);

/* QOSBeforeTest of a TestCfg: the command line as the variant has it */
void *vit_before_cfg(GString *cmd_line, void *arg);

/*
 * Register virtio-iommu test @name: @dev_opts added to the IOMMU's
 * -device, the endpoints and the IOMMU test device after it, and @cfg
 * (NULL for none) for everything else.  The test consumes qgraph
 * interface @theme, "virtio-iommu-THEME", which virtio-iommu-pci produces:
 * qgraph's walk puts every test of an interface on a stack of at most 128
 * nodes at once, so each themed file has its own interface.  qos-test
 * runs the themes in the order they were first registered.
 */
void vit_add_theme_test(const char *theme, const char *name, QOSTestFunc fn,
                        const char *dev_opts, const TestCfg *cfg);

/* vit_add_theme_test() under the file's VIT_THEME */
#define vit_add_test(name, fn, dev_opts, cfg)                           \
    vit_add_theme_test(VIT_THEME, name, fn, dev_opts, cfg)

/* ------------------------------------------------------------------ */
/* What the machine gives the device                                   */

typedef struct Resv {
    uint64_t start;
    uint64_t end;
    uint8_t subtype;
} Resv;

typedef struct Machine {
    unsigned aw_bits;           /* aw-bits the machine sets */
    Resv msi;                   /* MSI doorbell the machine declares */
} Machine;

/*
 * What the machine of @v (as the @cfg variant, NULL for none, runs it)
 * gives the device; false, and the test skipped, where it is unknown
 */
bool vit_machine_info(QViommu *v, const TestCfg *cfg, Machine *m);

/* ------------------------------------------------------------------ */
/* Non-fatal checks                                                    */

/* CHECK_EQ: @got is @want, or a report naming @what */
bool vit_check_eq(const char *fn, int line, const char *what, uint64_t got,
                  uint64_t want);

#define CHECK_EQ(got, want)                                             \
    vit_check_eq(__func__, __LINE__, #got, (uint64_t)(got), (uint64_t)(want))

#define CHECK(cond)                                                     \
    ((cond) ? true :                                                    \
     (qviommu_report(__func__, __LINE__, "%s: not true", #cond), false))

/* ------------------------------------------------------------------ */
/* Requests and config                                                 */

/* Config space fields */
uint32_t vit_probe_size(QViommu *v);
uint64_t vit_input_end(QViommu *v);

/* Is [start, end] mapped in @domain?  Probed by mapping it again. */
bool vit_is_mapped(QViommu *v, uint32_t domain, uint64_t start, uint64_t end);

/* The last address of an input range of @aw_bits bits */
uint64_t vit_aw_mask(unsigned aw_bits);

/* The config bypass field, as the driver reads and writes it */
uint8_t vit_bypass_get(QViommu *v);
void vit_bypass_set(QViommu *v, uint8_t val);

/* System reset, then bring the driver up again as firmware and OS would */
void vit_system_reset_restart(QViommu *v);

/* ------------------------------------------------------------------ */
/* Statistics: qom-get <device> stats                                  */

/* Tests that read the counters give the device this ID */
#define IOMMU_ID                "viommu"

/* The device's counters: needs "id=" IOMMU_ID on the device */
QDict *vit_stats_get(QTestState *qts);

/* One counter: "mappings", or "map/nomem" for requests.map.nomem */
uint64_t vit_stat_of(QDict *stats, const char *name);

/* CHECK_STAT: counter @name of the device is @want */
bool vit_check_stat(const char *fn, int line, QTestState *qts, const char *name,
                    uint64_t want);

#define CHECK_STAT(v, name, want)                                       \
    vit_check_stat(__func__, __LINE__, (v)->qts, name, want)

/* ------------------------------------------------------------------ */
/* PROBE properties                                                    */

/*
 * CHECK_PROPS: the @size bytes of PROBE properties at @p are the @n
 * RESV_MEM properties @want, in this order, then zeroes
 */
void vit_check_props(const char *fn, int line, const uint8_t *p, uint32_t size,
                     const Resv *want, unsigned n);

#define CHECK_PROPS(p, size, want, n)                                   \
    vit_check_props(__func__, __LINE__, p, size, want, n)

/* ------------------------------------------------------------------ */
/* The IOMMU test device and IOMMU notifier events                     */

/* The IOMMU test device (hw/misc/iommu-testdev.c) of every test */
#define TESTDEV_ID              "itd"
#define TESTDEV_QOM             "/machine/peripheral/" TESTDEV_ID
#define TESTDEV_ARG             " -device iommu-testdev,id=" TESTDEV_ID

/*
 * Two iommu-test-recorder objects (hw/misc/iommu-testdev.c), n0 and n1,
 * register a notifier for MAP and UNMAP on each endpoint's IOMMU memory
 * region, as VFIO and vhost do, and log what they receive; n0 can ask for
 * a replay to itself alone.  Every event must be a naturally aligned
 * power-of-two IOVA block; a mapping is sent as the fewest such blocks.
 */
#define NOTIFY_OPTS             "id=" IOMMU_ID ",granule=4k"

/*
 * An endpoint behind a PCIe root port (q35 on x86, virt on Arm): its ID
 * holds the bus number the guest gave the port's secondary bus.
 */
#define ROOT_PORT_SLOT          9
#define EP_PORT_ID              "ep-port"
#define EP_BEHIND_PORT          0x100   /* bus 1, 00.0 */
#define ROOT_PORT                                                       \
    " -device pcie-root-port,id=rp,chassis=1,addr=09.0"                 \
    " -device virtio-rng-pci,id=" EP_PORT_ID ",bus=rp,addr=00.0,"     \
    ENDPOINT_OPTS

/* The variant with ROOT_PORT: q35 on x86, virt on Arm */
extern const TestCfg vit_cfg_root_port;

/* The root port of ROOT_PORT; g_free() it */
QPCIDevice *vit_root_port(QViommu *v);

/* No firmware runs here: number the bus behind the port as it would */
void vit_number_root_port(QViommu *v);

/* Give @bridge the secondary (and subordinate) bus number @bus_nr */
void vit_bridge_number(QPCIDevice *bridge, uint8_t bus_nr);

/*
 * Open a memory window of @size bytes (a multiple of 1 MiB) on @bridge
 * where libqos puts the next BAR, and no other window, so that the
 * functions behind it can be driven; returns the window's base.
 */
uint64_t vit_bridge_window(QPCIDevice *bridge, uint64_t size);

/*
 * Record the IOMMU notifications of every endpoint there is, with n0 and
 * n1; false if there is none
 */
bool vit_recorders_add(QTestState *qts);

/* Does this QEMU record anything? */
bool vit_recorders_exist(QTestState *qts);

/* IOMMUAccessFlags, as the log prints them */
#define PERM_RO                 1
#define PERM_WO                 2
#define PERM_RW                 3

#define BOTH                    (-1)    /* an event both notifiers get */

typedef struct Ev {
    int n;                      /* notifier 0 or 1; BOTH when expected */
    bool map;
    uint32_t ep;
    uint64_t iova;
    uint64_t mask;
    uint64_t pa;                /* meaningless for UNMAP: not compared */
    int perm;
} Ev;

/* The log of one QEMU, and how much of it the test has looked at */
typedef struct Notif {
    QTestState *qts;
    guint seen;
} Notif;

typedef struct Mapping {
    uint64_t start;
    uint64_t end;
    uint64_t pa;
    uint32_t flags;
} Mapping;

/*
 * Mappings of the notifier tests: 3 pages at a 4-page boundary (a 2-page
 * block, then a 1-page block), 2 MiB at a 2 MiB boundary (one block), one
 * page, and device registers (never sent as MAP)
 */
extern const Mapping vit_m3p;
extern const Mapping vit_m2m;
extern const Mapping vit_m1p;
extern const Mapping vit_mmio;

/* Record from now on, and look at the log from its current end */
void vit_notif_start(Notif *nt, QTestState *qts);

/* Expect one event (see Ev) in @w */
void vit_want_ev(GArray *w, int n, bool map, uint32_t ep, uint64_t iova,
                 uint64_t mask, uint64_t pa, int perm);

/* What MAPping @m tells notifier @n (BOTH) of @ep: nothing for MMIO */
void vit_want_map(GArray *w, int n, uint32_t ep, const Mapping *m);
/* What UNMAPping @m, or detaching @ep from it, tells both notifiers */
void vit_want_unmap(GArray *w, uint32_t ep, const Mapping *m);

/*
 * The events logged since the last check must be @want: for each notifier
 * and each endpoint, the expected blocks, UNMAPs and MAPs in the expected
 * order (see evs_agree() in virtio-iommu-test-utils.c; the order between
 * notifiers, between endpoints and between the blocks of one run is
 * free).  Empties @want.
 */
bool vit_check_events(const char *fn, int line, Notif *nt, GArray *want);

#define CHECK_EVENTS(nt, want)                                          \
    vit_check_events(__func__, __LINE__, nt, want)

/* MAP and UNMAP a Mapping */
QViommuRes vit_map_m(QViommu *v, uint32_t domain, const Mapping *m);
QViommuRes vit_unmap_m(QViommu *v, uint32_t domain, const Mapping *m);

/* ------------------------------------------------------------------ */
/* edu: a PCI device whose DMA engine copies to and from any address   */

#define EDU_ARG(addr)           " -device edu,addr=" addr               \
                                ",dma_mask=0xffffffffffffffff"

typedef struct Edu {
    QTestState *qts;
    QPCIDevice *dev;
    QPCIBar bar;
    uint32_t id;
} Edu;

/* The edu at requester ID @id (bus << 8 | devfn), its BAR mapped */
Edu *vit_edu_open_id(QViommu *v, uint32_t id);
Edu *vit_edu_open(QViommu *v, unsigned slot);
void vit_edu_close(Edu *e);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(Edu, vit_edu_close)

/*
 * Copy @count bytes between IOVA @iova and the edu's buffer (into guest
 * memory if @to_guest); the copy has happened when this returns.
 */
void vit_edu_dma(Edu *e, uint64_t iova, uint32_t count, bool to_guest);

/* ------------------------------------------------------------------ */
/* Endpoint DMA: a virtio-rng-pci driven by hand                       */

typedef struct EpMap {
    uint64_t iova;
    uint64_t pa;
    uint64_t size;
} EpMap;

typedef struct Ep {
    QViommu *v;
    QTestState *qts;
    QVirtioPCIDevice *dev;
    uint32_t id;
    uint64_t notify;            /* queue 0 notification, BAR offset */
    uint16_t size;
    uint64_t desc, avail, used; /* as the endpoint sees them */
    uint16_t avail_idx;
    uint16_t used_idx;
    /* How the test set up the endpoint's view, to reach the rings */
    EpMap map[16];
    unsigned nr_map;
} Ep;

/* The virtio-rng-pci at requester ID @id (bus << 8 | devfn), started */
Ep *vit_ep_open_id(QViommu *v, uint32_t id);
Ep *vit_ep_open(QViommu *v, unsigned slot);
void vit_ep_close(Ep *ep);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(Ep, vit_ep_close)

/* Record that the endpoint sees [iova, iova + size) at @pa */
void vit_ep_view(Ep *ep, uint64_t iova, uint64_t pa, uint64_t size);

/* MAP [iova, iova + size) to @pa in @domain, and record it */
void vit_ep_map(Ep *ep, uint32_t domain, uint64_t iova, uint64_t pa,
                uint64_t size, uint32_t flags);

/* Program queue 0 with rings at the given IOVAs, then DRIVER_OK */
void vit_ep_start(Ep *ep, uint16_t size, uint64_t desc, uint64_t avail,
                  uint64_t used);

/* Queue a device-writable buffer at IOVA @buf in descriptor @head */
void vit_ep_submit(Ep *ep, uint16_t head, uint64_t buf, uint32_t len);

/* The used index the device last published */
uint16_t vit_ep_used_idx(Ep *ep);

/* Wait for the next used element; false on timeout */
bool vit_ep_wait_used(Ep *ep, uint32_t *id, uint32_t *len, gint64 timeout_us);

/* How many of the @len bytes at @pa are not @fill */
uint64_t vit_count_not(QTestState *qts, uint64_t pa, size_t len, uint8_t fill);

#define IDENTITY        (-1)

/*
 * A standard setup: one page for the rings, at RING_IOVA mapped with
 * @ring_flags in @domain, or at its physical address for IDENTITY.
 */
uint64_t vit_ep_start_std(Ep *ep, int64_t domain, QGuestAllocator *a,
                          uint32_t ring_flags);

/* ------------------------------------------------------------------ */
/* Fault reports                                                       */

#define MAX_FAULTS 32

typedef struct Faults {
    struct virtio_iommu_fault f[MAX_FAULTS];
    unsigned n;
} Faults;

/* Collect fault reports until none came for @quiet_us */
void vit_collect_faults(QViommu *v, Faults *fs, gint64 first_us,
                        gint64 quiet_us);

/* Every report of @fs, on stderr */
void vit_print_faults(const Faults *fs);

/*
 * Is there a report of @reason with exactly @flags from @ep, at an
 * address in [lo, hi]?  Every report must be well formed.
 */
bool vit_find_fault(const char *fn, int line, const Faults *fs, uint8_t reason,
                    uint32_t flags, uint32_t ep, uint64_t lo, uint64_t hi);

#define FIND_FAULT(fs, reason, flags, ep, lo, hi)                       \
    vit_find_fault(__func__, __LINE__, fs, reason, flags, ep, lo, hi)

#define F_WRITE_ADDR    (VIRTIO_IOMMU_FAULT_F_WRITE |                   \
                         VIRTIO_IOMMU_FAULT_F_ADDRESS)
#define F_READ_ADDR     (VIRTIO_IOMMU_FAULT_F_READ |                    \
                         VIRTIO_IOMMU_FAULT_F_ADDRESS)

#define MARK            0x5a

/* The status of the last migration to or from @qts ("none" before any) */
char *vit_mig_status(QTestState *qts);

#endif
