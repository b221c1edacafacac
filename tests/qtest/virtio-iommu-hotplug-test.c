/*
 * QTest cases for the virtio-iommu device: hot-plug and hot-unplug
 *
 * Endpoints are hot-plugged, attached, unplugged and plugged again at the
 * same address, where the new function must start unattached: nothing of
 * the old endpoint survives.  The guest's part of each unplug is done by
 * hand, since no firmware or guest runs: ACPI's eject register, or a PCIe
 * root port's slot power.  Behind a bridge, the function's own ID and its
 * DMA alias come and go as the function's presence says.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/units.h"
#include "qobject/qdict.h"
#include "virtio-iommu-test.h"
#include "standard-headers/linux/pci_regs.h"

#define VIT_THEME               "virtio-iommu-hotplug"

/* ------------------------------------------------------------------ */
/* A virtio-rng-pci on the root bus or behind a PCIe root port         */

/*
 * A virtio-rng-pci is hot-plugged, attached, unplugged, and a new one is
 * plugged at the same address: it must start unattached.  On pc it sits
 * on the root bus and is unplugged through ACPI (the guest's part: write
 * the eject register).  Behind a PCIe root port (q35, virt) it is
 * unplugged natively: device_del presses the attention button, and the
 * guest's part is to power the slot off; plugging into a powered-off slot
 * needs the slot powered on again.
 */
#define HP_ID                   "hp"
#define HP_SLOT                 10
#define HP_ADDR_STR             "0a.0"
#define EP_HP_PC                QPCI_DEVFN(HP_SLOT, 0)
#define HP_PORT                 ENDPOINTS                               \
    " -device pcie-root-port,id=rp,chassis=1,addr=09.0"
/* q35: the root port's hot-plug is native, not ACPI */
#define HP_PORT_Q35_ARGS                                                \
    "-global ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off"

typedef struct Hotplug {
    QViommu *v;
    bool port;
    uint32_t ep;                /* endpoint ID of the hot-plugged function */
} Hotplug;

/* The guest powers the root port's slot on or off */
static void port_slot_power(QViommu *v, bool on)
{
    g_autofree QPCIDevice *port = vit_root_port(v);
    uint8_t exp = qpci_find_capability(port, PCI_CAP_ID_EXP, 0);
    uint16_t ctl;

    g_assert_cmpuint(exp, !=, 0);
    ctl = qpci_config_readw(port, exp + PCI_EXP_SLTCTL);
    ctl &= ~(PCI_EXP_SLTCTL_PIC | PCI_EXP_SLTCTL_PCC);
    ctl |= on ? PCI_EXP_SLTCTL_PWR_IND_ON | PCI_EXP_SLTCTL_PWR_ON
              : PCI_EXP_SLTCTL_PWR_IND_OFF | PCI_EXP_SLTCTL_PWR_OFF;
    qpci_config_writew(port, exp + PCI_EXP_SLTCTL, ctl);
}

/* No firmware runs: open the port's window to the device behind it */
static void port_window(QViommu *v)
{
    g_autofree QPCIDevice *port = vit_root_port(v);

    vit_bridge_window(port, MiB);
}

static void hp_init(Hotplug *hp, QViommu *v, bool port)
{
    *hp = (Hotplug) {
        .v = v,
        .port = port,
        .ep = port ? EP_BEHIND_PORT : EP_HP_PC,
    };
    if (port) {
        vit_number_root_port(v);
    }
}

static void hp_plug(Hotplug *hp)
{
    QTestState *qts = hp->v->qts;

    if (hp->port) {
        qtest_qmp_device_add(qts, "virtio-rng-pci", HP_ID,
                             "{ 'bus': 'rp', 'addr': '00.0', "
                             "'iommu_platform': true, "
                             "'disable-legacy': 'on' }");
        port_slot_power(hp->v, true);
    } else {
        qtest_qmp_device_add(qts, "virtio-rng-pci", HP_ID,
                             "{ 'addr': %s, 'iommu_platform': true, "
                             "'disable-legacy': 'on' }", HP_ADDR_STR);
    }
}

static void wait_deleted(QTestState *qts, const char *id)
{
    for (;;) {
        QDict *rsp = qtest_qmp_eventwait_ref(qts, "DEVICE_DELETED");
        QDict *data = qdict_get_qdict(rsp, "data");
        bool found = data && qdict_haskey(data, "device") &&
                     !strcmp(qdict_get_str(data, "device"), id);

        qobject_unref(rsp);
        if (found) {
            return;
        }
    }
}

static void hp_unplug(Hotplug *hp)
{
    QTestState *qts = hp->v->qts;

    if (hp->port) {
        qtest_qmp_device_del_send(qts, HP_ID);
        port_slot_power(hp->v, false);
        wait_deleted(qts, HP_ID);
    } else {
        qpci_unplug_acpi_device_test(qts, HP_ID, HP_SLOT);
    }
}

static Ep *hp_open(Hotplug *hp)
{
    if (hp->port) {
        port_window(hp->v);
    }
    return vit_ep_open_id(hp->v, hp->ep);
}

/* Start one DMA of @ep: rings at IOVA @ring (= their PA), 64 bytes to @buf */
static void hp_dma_start(Ep *ep, uint64_t ring, uint64_t buf)
{
    vit_ep_view(ep, ring, ring, PAGE);
    vit_ep_start(ep, RING_SIZE, ring, ring + 0x100, ring + 0x200);
    vit_ep_submit(ep, 0, buf, 64);
}

/* Wait for that DMA; false if the device did not complete it */
static bool hp_dma_wait(Ep *ep)
{
    uint32_t id, len;

    if (!vit_ep_wait_used(ep, &id, &len, QVIOMMU_TIMEOUT_US)) {
        return false;
    }
    CHECK_EQ(id, 0);
    CHECK_EQ(len, 64);
    return true;
}

/* Pages of a hot-unplug test */
typedef struct HpPages {
    uint64_t ring;
    uint64_t buf;
    uint64_t decoy;
} HpPages;

/*
 * In @domain, the rings at their own address and @buf at @decoy: DMA
 * through the domain lands in @decoy, DMA in bypass in @buf.
 */
static void hp_map(QViommu *v, uint32_t domain, const HpPages *p)
{
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, domain, p->ring,
                                          p->ring + PAGE - 1, p->ring, RW),
                          VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, domain, p->buf, p->buf + PAGE - 1,
                                          p->decoy, RW),
                          VIRTIO_IOMMU_S_OK);
}

/* The endpoint's DMA goes through its domain */
static void hp_check_translated(Hotplug *hp, const HpPages *p)
{
    QTestState *qts = hp->v->qts;
    g_autoptr(Ep) ep = hp_open(hp);

    qtest_memset(qts, p->buf, MARK, PAGE);
    qtest_memset(qts, p->decoy, MARK, PAGE);
    hp_dma_start(ep, p->ring, p->buf);
    if (!hp_dma_wait(ep)) {
        qviommu_report(__func__, __LINE__, "endpoint 0x%x: DMA through its "
                       "domain not completed", hp->ep);
        return;
    }
    CHECK(vit_count_not(qts, p->decoy, 64, MARK) > 32);
    CHECK_EQ(vit_count_not(qts, p->buf, PAGE, MARK), 0);
}

/*
 * The endpoint is attached to no domain: with config bypass 1 its DMA is
 * identity, with 0 it faults with reason DOMAIN.
 */
static void hp_check_unattached(Hotplug *hp, const HpPages *p)
{
    QViommu *v = hp->v;
    g_autoptr(Ep) ep = hp_open(hp);
    bool bypass = vit_bypass_get(v);
    Faults fs;

    qviommu_post_events(v, 8, 32, QVIOMMU_FILL);
    qtest_memset(v->qts, p->buf, MARK, PAGE);
    qtest_memset(v->qts, p->decoy, MARK, PAGE);
    hp_dma_start(ep, p->ring, p->buf);
    if (bypass) {
        if (!hp_dma_wait(ep)) {
            qviommu_report(__func__, __LINE__, "endpoint 0x%x: DMA in bypass "
                           "not completed", hp->ep);
        }
        vit_collect_faults(v, &fs, QUIET_WAIT_US, QUIET_WAIT_US);
        CHECK(vit_count_not(v->qts, p->buf, 64, MARK) > 32);
        if (fs.n) {
            qviommu_report(__func__, __LINE__, "unexpected fault reports");
            vit_print_faults(&fs);
        }
    } else {
        vit_collect_faults(v, &fs, FAULT_WAIT_US, QUIET_WAIT_US);
        CHECK_EQ(vit_ep_used_idx(ep), 0);
        FIND_FAULT(&fs, VIRTIO_IOMMU_FAULT_R_DOMAIN, F_READ_ADDR, hp->ep,
                   p->ring, p->ring + PAGE - 1);
        CHECK_EQ(vit_count_not(v->qts, p->buf, PAGE, MARK), 0);
    }
    /* nothing of the old domain applies */
    if (!CHECK_EQ(vit_count_not(v->qts, p->decoy, PAGE, MARK), 0)) {
        qviommu_report(__func__, __LINE__, "endpoint 0x%x: the new device's "
                       "DMA went through the old device's domain", hp->ep);
    }
}

static void test_unplug_replug(void *obj, void *data, QGuestAllocator *a)
{
    QViommu *v = obj;
    const TestCfg *cfg = data;
    HpPages p = {
        .ring = guest_alloc(a, PAGE),
        .buf = guest_alloc(a, PAGE),
        .decoy = guest_alloc(a, PAGE),
    };
    Hotplug hp;

    /* the machine will have a device its command line does not */
    qos_invalidate_command_line();
    hp_init(&hp, v, cfg->hp_port);

    /*
     * 1. Alone in domain 5.  Each check that the new device is unattached
     * comes before any request about it, which could detach it.
     */
    hp_plug(&hp);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 5, hp.ep, 0),
                          VIRTIO_IOMMU_S_OK);
    hp_map(v, 5, &p);
    hp_check_translated(&hp, &p);
    hp_unplug(&hp);
    /* no endpoint there any more, and its domain went with it */
    QVIOMMU_EXPECT_STATUS(qviommu_probe_req(v, hp.ep, vit_probe_size(v), NULL),
                          VIRTIO_IOMMU_S_NOENT);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 5, 0, PAGE - 1, 0, RW),
                          VIRTIO_IOMMU_S_NOENT);

    hp_plug(&hp);
    hp_check_unattached(&hp, &p);
    QVIOMMU_EXPECT_STATUS(qviommu_detach_req(v, 5, hp.ep),
                          VIRTIO_IOMMU_S_INVAL);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 5, 0, PAGE - 1, 0, RW),
                          VIRTIO_IOMMU_S_NOENT);

    /* 2. In domain 6 with EP2, which keeps the domain alive */
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 6, hp.ep, 0),
                          VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 6, EP2, 0), VIRTIO_IOMMU_S_OK);
    hp_map(v, 6, &p);
    hp_check_translated(&hp, &p);
    hp_unplug(&hp);
    CHECK(vit_is_mapped(v, 6, p.buf, p.buf + PAGE - 1));

    hp_plug(&hp);
    hp_check_unattached(&hp, &p);
    QVIOMMU_EXPECT_STATUS(qviommu_detach_req(v, 6, hp.ep),
                          VIRTIO_IOMMU_S_INVAL);

    /* the new device joins the domain like any endpoint */
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 6, hp.ep, 0),
                          VIRTIO_IOMMU_S_OK);
    hp_check_translated(&hp, &p);

    /* 3. Unplugged while attached: requests about it fail with NOENT */
    hp_unplug(&hp);
    QVIOMMU_EXPECT_STATUS(qviommu_detach_req(v, 6, hp.ep),
                          VIRTIO_IOMMU_S_NOENT);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 6, hp.ep, 0),
                          VIRTIO_IOMMU_S_NOENT);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 7, hp.ep, 0),
                          VIRTIO_IOMMU_S_NOENT);
    QVIOMMU_EXPECT_STATUS(qviommu_probe_req(v, hp.ep, vit_probe_size(v), NULL),
                          VIRTIO_IOMMU_S_NOENT);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 7, 0, PAGE - 1, 0, RW),
                          VIRTIO_IOMMU_S_NOENT);
    /* domain 6 has EP2 alone; it goes when EP2 leaves */
    CHECK(vit_is_mapped(v, 6, p.buf, p.buf + PAGE - 1));
    QVIOMMU_EXPECT_STATUS(qviommu_detach_req(v, 6, EP2), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 6, 0, PAGE - 1, 0, RW),
                          VIRTIO_IOMMU_S_NOENT);
}


/* ------------------------------------------------------------------ */
/* An edu behind a bridge: its own ID and its DMA alias                */

/*
 * An edu is hot-plugged at 01.0 behind a bridge at 0b.0 whose bus is
 * numbered 1: behind q35's PCIe-to-PCI bridge its DMA carries the alias
 * 0x100 (bus 1, devfn 0), behind pc's PCI bridge the bridge's own ID
 * 0x58.  The firmware's ACPI hot-plug covers the bridge's bus: the guest
 * selects that bus by its "bsel" number, then writes the slot's eject bit.
 * With a second edu at 02.0 that stays, or on pc where the alias is the
 * bridge itself, the alias outlives the unplugged function; otherwise it
 * goes with it.
 */
#define HPB_BRIDGE_SLOT         0x0b
#define HPB_BUS                 1
#define HPB_ID                  "hp-edu"
#define HPB_SLOT                1
#define HPB_EDU                 (HPB_BUS << 8 | QPCI_DEVFN(HPB_SLOT, 0))
#define HPB_STAYS               (HPB_BUS << 8 | QPCI_DEVFN(2, 0))
#define HPB_PCIE_BRIDGE                                                 \
    ENDPOINTS " -device pcie-pci-bridge,id=br,addr=0b.0"
#define HPB_PCI_BRIDGE                                                  \
    ENDPOINTS " -device pci-bridge,id=br,chassis_nr=1,addr=0b.0"
#define HPB_STAYS_ARG                                                   \
    " -device edu,bus=br,addr=02.0,dma_mask=0xffffffffffffffff"

/* The ACPI PCI hot-plug registers: q35's ICH9, pc's PIIX4 */
#define PCIHP_ICH9              0x0cc0
#define PCIHP_PIIX4             0xae00
#define PCIHP_EJ                0x08
#define PCIHP_SEL               0x10

typedef struct HpBridge {
    QViommu *v;
    QPCIDevice *bridge;
    uint64_t window;            /* the bridge's 2 MiB memory window */
    uint16_t pcihp;             /* I/O base of the hot-plug registers */
    uint32_t bsel;              /* the bridge bus's hot-plug selector */
    uint32_t alias;             /* the ID the edu's DMA carries */
    bool alias_stays;           /* the alias outlives the edu */
    uint64_t src, dst, ident;   /* guest pages */
} HpBridge;

static const uint64_t hpb_iova_src = 0x40000000;

static uint32_t hpb_bsel(QTestState *qts)
{
    QDict *rsp = qtest_qmp(qts, "{ 'execute': 'qom-get', 'arguments': "
                           "{ 'path': '/machine/peripheral/br/br', "
                           "'property': 'acpi-pcihp-bsel' } }");
    uint32_t bsel;

    g_assert_true(qdict_haskey(rsp, "return"));
    bsel = qdict_get_int(rsp, "return");
    qobject_unref(rsp);
    return bsel;
}

static void hpb_init(HpBridge *hb, QViommu *v, bool q35, QGuestAllocator *a)
{
    QPCIBus *bus = v->transport->pdev->bus;
    g_autofree QPCIDevice *stays = NULL;

    *hb = (HpBridge) {
        .v = v,
        .bridge = qpci_device_find(bus, QPCI_DEVFN(HPB_BRIDGE_SLOT, 0)),
        .pcihp = q35 ? PCIHP_ICH9 : PCIHP_PIIX4,
        .bsel = hpb_bsel(v->qts),
        .alias = q35 ? HPB_BUS << 8 : QPCI_DEVFN(HPB_BRIDGE_SLOT, 0),
        .src = guest_alloc(a, PAGE),
        .dst = guest_alloc(a, PAGE),
        .ident = guest_alloc(a, PAGE),
    };
    g_assert_nonnull(hb->bridge);
    vit_bridge_number(hb->bridge, HPB_BUS);
    hb->window = vit_bridge_window(hb->bridge, 2 * MiB);
    /* the hot-plugged edu's BAR at the base, the other's above it */
    bus->mmio_alloc_ptr = hb->window + MiB;
    stays = qpci_device_find(bus, HPB_STAYS);
    hb->alias_stays = !q35 || stays;
    qtest_memset(v->qts, hb->src, MARK, PAGE);
}

static void hpb_plug(HpBridge *hb)
{
    qtest_qmp_device_add(hb->v->qts, "edu", HPB_ID,
                         "{ 'bus': 'br', 'addr': '01.0', "
                         "'dma_mask': 18446744073709551615 }");
}

/* device_del, then the guest's part: select the bus, eject the slot */
static void hpb_unplug(HpBridge *hb)
{
    QTestState *qts = hb->v->qts;

    qtest_qmp_device_del_send(qts, HPB_ID);
    qtest_outl(qts, hb->pcihp + PCIHP_SEL, hb->bsel);
    qtest_outl(qts, hb->pcihp + PCIHP_EJ, 1u << HPB_SLOT);
    wait_deleted(qts, HPB_ID);
}

static Edu *hpb_edu_open(HpBridge *hb, uint32_t id)
{
    QPCIBus *bus = hb->v->transport->pdev->bus;
    uint64_t next = bus->mmio_alloc_ptr;
    Edu *e;

    bus->mmio_alloc_ptr = hb->window + (id == HPB_EDU ? 0 : MiB);
    e = vit_edu_open_id(hb->v, id);
    bus->mmio_alloc_ptr = next;
    return e;
}

/*
 * Domain @domain maps hpb_iova_src to src (read-only) and IOVA ident (a
 * guest-physical address) to dst (write-only): DMA through it lands in
 * dst, DMA in bypass in ident.
 */
static void hpb_map(HpBridge *hb, uint32_t domain)
{
    QViommu *v = hb->v;

    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, domain, hpb_iova_src,
                                          hpb_iova_src + PAGE - 1, hb->src,
                                          RO), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, domain, hb->ident,
                                          hb->ident + PAGE - 1, hb->dst, WO),
                          VIRTIO_IOMMU_S_OK);
}

/* The edu at @id copies src to dst through the alias's domain */
static void hpb_check_translated(HpBridge *hb, uint32_t id)
{
    QTestState *qts = hb->v->qts;
    g_autoptr(Edu) edu = hpb_edu_open(hb, id);

    qtest_memset(qts, hb->dst, 0, PAGE);
    qtest_memset(qts, hb->ident, 0, PAGE);
    vit_edu_dma(edu, hpb_iova_src, 64, false);
    vit_edu_dma(edu, hb->ident, 64, true);
    if (!CHECK_EQ(vit_count_not(qts, hb->dst, 64, MARK), 0)) {
        qviommu_report(__func__, __LINE__, "edu 0x%x: DMA not translated by "
                       "the domain of alias 0x%x", id, hb->alias);
    }
    CHECK_EQ(vit_count_not(qts, hb->ident, PAGE, 0), 0);
}

/*
 * The alias is attached to nothing: in bypass the edu's DMA is identity;
 * with config bypass 0 it faults with reason DOMAIN, naming the alias.
 */
static void hpb_check_unattached(HpBridge *hb)
{
    QViommu *v = hb->v;
    g_autoptr(Edu) edu = hpb_edu_open(hb, HPB_EDU);
    Faults fs;

    qtest_memset(v->qts, hb->dst, 0, PAGE);
    qtest_memset(v->qts, hb->ident, 0, PAGE);
    vit_bypass_set(v, 1);
    vit_edu_dma(edu, hb->src, 64, false);
    vit_edu_dma(edu, hb->ident, 64, true);
    CHECK_EQ(vit_count_not(v->qts, hb->ident, 64, MARK), 0);
    if (!CHECK_EQ(vit_count_not(v->qts, hb->dst, PAGE, 0), 0)) {
        qviommu_report(__func__, __LINE__, "the new edu's DMA went through "
                       "the old edu's domain");
    }

    vit_bypass_set(v, 0);
    qviommu_post_events(v, 16, sizeof(struct virtio_iommu_fault),
                        QVIOMMU_FILL);
    vit_edu_dma(edu, hb->ident + 0x100, 4, true);
    vit_collect_faults(v, &fs, FAULT_WAIT_US, QUIET_WAIT_US);
    FIND_FAULT(&fs, VIRTIO_IOMMU_FAULT_R_DOMAIN, F_WRITE_ADDR, hb->alias,
               hb->ident + 0x100, hb->ident + 0x100);
    CHECK_EQ(vit_count_not(v->qts, hb->ident + 0x100, 4, 0), 0);
    vit_bypass_set(v, 1);
}

static void test_unplug_replug_bridge(void *obj, void *data,
                                      QGuestAllocator *a)
{
    QViommu *v = obj;
    const TestCfg *cfg = data;
    uint32_t size = vit_probe_size(v);
    HpBridge hb;

    /* the machine will have a device its command line does not */
    qos_invalidate_command_line();
    hpb_init(&hb, v, cfg->q35, a);

    /* Before the plug the slot is no endpoint; the alias, if it stays, is */
    QVIOMMU_EXPECT_STATUS(qviommu_probe_req(v, HPB_EDU, size, NULL),
                          VIRTIO_IOMMU_S_NOENT);
    QVIOMMU_EXPECT_STATUS(qviommu_probe_req(v, hb.alias, size, NULL),
                          hb.alias_stays ? VIRTIO_IOMMU_S_OK :
                          VIRTIO_IOMMU_S_NOENT);

    /* 1. Both IDs attached to domain 5, as Linux does */
    hpb_plug(&hb);
    QVIOMMU_EXPECT_STATUS(qviommu_probe_req(v, HPB_EDU, size, NULL),
                          VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 5, HPB_EDU, 0),
                          VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 5, hb.alias, 0),
                          VIRTIO_IOMMU_S_OK);
    hpb_map(&hb, 5);
    hpb_check_translated(&hb, HPB_EDU);
    CHECK_STAT(v, "attached-endpoints", 2);

    /* 2. Unplugged: its own ID is gone; the alias as the bus says */
    hpb_unplug(&hb);
    QVIOMMU_EXPECT_STATUS(qviommu_probe_req(v, HPB_EDU, size, NULL),
                          VIRTIO_IOMMU_S_NOENT);
    QVIOMMU_EXPECT_STATUS(qviommu_detach_req(v, 5, HPB_EDU),
                          VIRTIO_IOMMU_S_NOENT);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 5, HPB_EDU, 0),
                          VIRTIO_IOMMU_S_NOENT);
    if (hb.alias_stays) {
        /* still attached: the domain and what the other functions do */
        CHECK_STAT(v, "attached-endpoints", 1);
        CHECK(vit_is_mapped(v, 5, hb.ident, hb.ident + PAGE - 1));
        if (cfg->q35) {
            hpb_check_translated(&hb, HPB_STAYS);
        }
    } else {
        /* no function behind the bridge: the alias went, and its domain */
        QVIOMMU_EXPECT_STATUS(qviommu_probe_req(v, hb.alias, size, NULL),
                              VIRTIO_IOMMU_S_NOENT);
        QVIOMMU_EXPECT_STATUS(qviommu_detach_req(v, 5, hb.alias),
                              VIRTIO_IOMMU_S_NOENT);
        QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 5, 0, PAGE - 1, 0, RW),
                              VIRTIO_IOMMU_S_NOENT);
        CHECK_STAT(v, "attached-endpoints", 0);
    }

    /* 3. A new edu at the same address: its own ID starts unattached */
    hpb_plug(&hb);
    QVIOMMU_EXPECT_STATUS(qviommu_detach_req(v, 5, HPB_EDU),
                          VIRTIO_IOMMU_S_INVAL);
    if (hb.alias_stays) {
        /* the alias decides, and it is still in domain 5 */
        hpb_check_translated(&hb, HPB_EDU);
        QVIOMMU_EXPECT_STATUS(qviommu_detach_req(v, 5, hb.alias),
                              VIRTIO_IOMMU_S_OK);
    }
    hpb_check_unattached(&hb);

    /* and the new function joins a domain like any endpoint */
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 6, hb.alias, 0),
                          VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 6, HPB_EDU, 0),
                          VIRTIO_IOMMU_S_OK);
    hpb_map(&hb, 6);
    hpb_check_translated(&hb, HPB_EDU);
    hpb_unplug(&hb);
    QVIOMMU_EXPECT_STATUS(qviommu_probe_req(v, HPB_EDU, size, NULL),
                          VIRTIO_IOMMU_S_NOENT);
    g_free(hb.bridge);
}

/* ------------------------------------------------------------------ */

static void register_virtio_iommu_hotplug_test(void)
{
    static const TestCfg hp_pc = { 0 };
    static const TestCfg hp_port = {
        .q35 = true,
        .endpoints = HP_PORT,
        .q35_args = HP_PORT_Q35_ARGS,
        .hp_port = true,
    };
    static const TestCfg hp_pcie_bridge = {
        .q35 = true,
        .endpoints = HPB_PCIE_BRIDGE,
    };
    static const TestCfg hp_pcie_bridge_stays = {
        .q35 = true,
        .endpoints = HPB_PCIE_BRIDGE HPB_STAYS_ARG,
    };
    static const TestCfg hp_pci_bridge = { .endpoints = HPB_PCI_BRIDGE };

    /* pc: ACPI hot-plug on the root bus; q35 and virt: a PCIe root port */
    if (vit_arch_is_x86()) {
        vit_add_test("unplug-replug", test_unplug_replug, NULL, &hp_pc);
        vit_add_test("unplug-replug-nobypass", test_unplug_replug,
                     "boot-bypass=off", &hp_pc);
    }
    vit_add_test("unplug-replug-port", test_unplug_replug, NULL, &hp_port);
    vit_add_test("unplug-replug-port-nobypass", test_unplug_replug,
                 "boot-bypass=off", &hp_port);

    /* x86: ACPI hot-plug behind a bridge, the alias kept or not */
    if (vit_arch_is_x86()) {
        vit_add_test("unplug-replug-pcie-bridge", test_unplug_replug_bridge,
                     "id=" IOMMU_ID, &hp_pcie_bridge);
        vit_add_test("unplug-replug-pcie-bridge-shared",
                     test_unplug_replug_bridge, "id=" IOMMU_ID,
                     &hp_pcie_bridge_stays);
        vit_add_test("unplug-replug-pci-bridge", test_unplug_replug_bridge,
                     "id=" IOMMU_ID, &hp_pci_bridge);
    }
}

libqos_init(register_virtio_iommu_hotplug_test);
