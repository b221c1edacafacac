/*
 * QTest cases for the virtio-iommu device: what its consumers hear
 *
 * The IOMMU test device (hw/misc/iommu-testdev.c) records what two IOMMU
 * notifiers on each endpoint receive, as VFIO or vhost would; the notify-*
 * tests check those MAP and UNMAP events.  It also plays the host IOMMU
 * devices of the host-iommu-* tests.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/module.h"
#include "qemu/units.h"
#include "qobject/qdict.h"
#include "virtio-iommu-test.h"

#define VIT_THEME               "virtio-iommu-notify"

/* ------------------------------------------------------------------ */
/* IOMMU notifier events                                               */

/* Replay the mappings of endpoint @ep_id to its n0 alone */
static void replay(QViommu *v, const char *ep_id)
{
    qtest_qmp_assert_success(v->qts, "{ 'execute': 'qom-set', 'arguments': "
                             "{ 'path': %s, 'property': 'replay', "
                             "'value': %s } }", TESTDEV_QOM, ep_id);
}

static void test_notify_map(void *obj, void *data, QGuestAllocator *a)
{
    QViommu *v = obj;
    g_autoptr(GArray) w = g_array_new(false, true, sizeof(Ev));
    Notif nt;

    vit_notif_start(&nt, v->qts);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 1, EP1, 0), VIRTIO_IOMMU_S_OK);
    /* the domain is empty: nothing to tell */
    CHECK_EVENTS(&nt, w);

    QVIOMMU_EXPECT_STATUS(vit_map_m(v, 1, &vit_m3p), VIRTIO_IOMMU_S_OK);
    vit_want_ev(w, BOTH, true, EP1, 0x100000, 0x1fff, 0x200000, PERM_RW);
    vit_want_ev(w, BOTH, true, EP1, 0x102000, 0xfff, 0x202000, PERM_RW);
    CHECK_EVENTS(&nt, w);

    QVIOMMU_EXPECT_STATUS(vit_map_m(v, 1, &vit_m2m), VIRTIO_IOMMU_S_OK);
    vit_want_ev(w, BOTH, true, EP1, 0x400000, 0x1fffff, 0x40000000, PERM_RO);
    CHECK_EVENTS(&nt, w);

    /* 7 pages from an odd page: 1, 2 and 4 pages; write-only */
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, 0x601000, 0x607fff,
                                          0x10001000, WO),
                          VIRTIO_IOMMU_S_OK);
    vit_want_ev(w, BOTH, true, EP1, 0x601000, 0xfff, 0x10001000, PERM_WO);
    vit_want_ev(w, BOTH, true, EP1, 0x602000, 0x1fff, 0x10002000, PERM_WO);
    vit_want_ev(w, BOTH, true, EP1, 0x604000, 0x3fff, 0x10004000, PERM_WO);
    CHECK_EVENTS(&nt, w);

    /* 6 pages from a 2-page boundary: 2 then 4 pages */
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, 0xa02000, 0xa07fff,
                                          0x20000000, RW),
                          VIRTIO_IOMMU_S_OK);
    vit_want_ev(w, BOTH, true, EP1, 0xa02000, 0x1fff, 0x20000000, PERM_RW);
    vit_want_ev(w, BOTH, true, EP1, 0xa04000, 0x3fff, 0x20002000, PERM_RW);
    CHECK_EVENTS(&nt, w);

    /* blocks follow the IOVA; the physical address needs no alignment */
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, 0x800000, 0x9fffff,
                                          0x30001000, RW),
                          VIRTIO_IOMMU_S_OK);
    vit_want_ev(w, BOTH, true, EP1, 0x800000, 0x1fffff, 0x30001000, PERM_RW);
    CHECK_EVENTS(&nt, w);

    /* IOVA 0 is aligned to everything */
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, 0, 0x2fff, 0x50000000, RO),
                          VIRTIO_IOMMU_S_OK);
    vit_want_ev(w, BOTH, true, EP1, 0, 0x1fff, 0x50000000, PERM_RO);
    vit_want_ev(w, BOTH, true, EP1, 0x2000, 0xfff, 0x50002000, PERM_RO);
    CHECK_EVENTS(&nt, w);

    /* an endpoint that is not attached hears nothing */
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 2, EP2, 0), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(vit_map_m(v, 2, &vit_m1p), VIRTIO_IOMMU_S_OK);
    vit_want_map(w, BOTH, EP2, &vit_m1p);
    CHECK_EVENTS(&nt, w);
}

static void test_notify_map_large(void *obj, void *data, QGuestAllocator *a)
{
    QViommu *v = obj;
    g_autoptr(GArray) w = g_array_new(false, true, sizeof(Ev));
    uint64_t end = vit_input_end(v);
    Mapping top = { BIT64(32), end, 0, RW };
    Notif nt;
    int k;

    vit_notif_start(&nt, v->qts);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 1, EP1, 0), VIRTIO_IOMMU_S_OK);

    /* from 4 GiB to the end of the input range: one block per bit */
    QVIOMMU_EXPECT_STATUS(vit_map_m(v, 1, &top), VIRTIO_IOMMU_S_OK);
    for (k = 32; k < 64 && BIT64(k) - 1 < end; k++) {
        vit_want_ev(w, BOTH, true, EP1, BIT64(k), BIT64(k) - 1,
                    BIT64(k) - BIT64(32), PERM_RW);
    }
    CHECK_EVENTS(&nt, w);

    QVIOMMU_EXPECT_STATUS(qviommu_unmap_req(v, 1, 0, end), VIRTIO_IOMMU_S_OK);
    for (k = 32; k < 64 && BIT64(k) - 1 < end; k++) {
        vit_want_ev(w, BOTH, false, EP1, BIT64(k), BIT64(k) - 1, 0, 0);
    }
    CHECK_EVENTS(&nt, w);

    /* the last page of the input range */
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, end - PAGE + 1, end,
                                          0x1000, RW),
                          VIRTIO_IOMMU_S_OK);
    vit_want_ev(w, BOTH, true, EP1, end - PAGE + 1, PAGE - 1, 0x1000, PERM_RW);
    CHECK_EVENTS(&nt, w);
}

static void test_notify_unmap(void *obj, void *data, QGuestAllocator *a)
{
    QViommu *v = obj;
    g_autoptr(GArray) w = g_array_new(false, true, sizeof(Ev));
    Notif nt;

    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 1, EP1, 0), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(vit_map_m(v, 1, &vit_m3p), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(vit_map_m(v, 1, &vit_m1p), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(vit_map_m(v, 1, &vit_m2m), VIRTIO_IOMMU_S_OK);
    vit_notif_start(&nt, v->qts);

    /* nothing in the range, or a range that would split a mapping */
    QVIOMMU_EXPECT_STATUS(qviommu_unmap_req(v, 1, 0, 0xfffff),
                          VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_unmap_req(v, 1, 0x101000, 0x103fff),
                          VIRTIO_IOMMU_S_RANGE);
    QVIOMMU_EXPECT_STATUS(qviommu_unmap_req(v, 1, 0x400000, 0x400fff),
                          VIRTIO_IOMMU_S_RANGE);
    CHECK_EVENTS(&nt, w);

    /* two adjacent mappings, each in its own blocks */
    QVIOMMU_EXPECT_STATUS(qviommu_unmap_req(v, 1, 0x100000, 0x103fff),
                          VIRTIO_IOMMU_S_OK);
    vit_want_ev(w, BOTH, false, EP1, 0x100000, 0x1fff, 0, 0);
    vit_want_ev(w, BOTH, false, EP1, 0x102000, 0xfff, 0, 0);
    vit_want_ev(w, BOTH, false, EP1, 0x103000, 0xfff, 0, 0);
    CHECK_EVENTS(&nt, w);

    /* already gone */
    QVIOMMU_EXPECT_STATUS(vit_unmap_m(v, 1, &vit_m3p), VIRTIO_IOMMU_S_OK);
    CHECK_EVENTS(&nt, w);

    /* the whole input range */
    QVIOMMU_EXPECT_STATUS(qviommu_unmap_req(v, 1, 0, vit_input_end(v)),
                          VIRTIO_IOMMU_S_OK);
    vit_want_ev(w, BOTH, false, EP1, 0x400000, 0x1fffff, 0, 0);
    CHECK_EVENTS(&nt, w);
}

static void test_notify_attach(void *obj, void *data, QGuestAllocator *a)
{
    QViommu *v = obj;
    g_autoptr(GArray) w = g_array_new(false, true, sizeof(Ev));
    Notif nt;

    vit_notif_start(&nt, v->qts);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 1, EP2, 0), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(vit_map_m(v, 1, &vit_m3p), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(vit_map_m(v, 1, &vit_m2m), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(vit_map_m(v, 1, &vit_mmio), VIRTIO_IOMMU_S_OK);
    vit_want_map(w, BOTH, EP2, &vit_m3p);
    vit_want_map(w, BOTH, EP2, &vit_m2m);
    CHECK_EVENTS(&nt, w);

    /* EP1 joins: it gets every mapping of the domain, EP2 nothing */
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 1, EP1, 0), VIRTIO_IOMMU_S_OK);
    vit_want_map(w, BOTH, EP1, &vit_m3p);
    vit_want_map(w, BOTH, EP1, &vit_m2m);
    CHECK_EVENTS(&nt, w);

    /* a new mapping goes to both endpoints */
    QVIOMMU_EXPECT_STATUS(vit_map_m(v, 1, &vit_m1p), VIRTIO_IOMMU_S_OK);
    vit_want_map(w, BOTH, EP1, &vit_m1p);
    vit_want_map(w, BOTH, EP2, &vit_m1p);
    CHECK_EVENTS(&nt, w);

    /* EP1 leaves: everything unmapped for it, the MMIO mapping too */
    QVIOMMU_EXPECT_STATUS(qviommu_detach_req(v, 1, EP1), VIRTIO_IOMMU_S_OK);
    vit_want_unmap(w, EP1, &vit_m3p);
    vit_want_unmap(w, EP1, &vit_m1p);
    vit_want_unmap(w, EP1, &vit_m2m);
    vit_want_unmap(w, EP1, &vit_mmio);
    CHECK_EVENTS(&nt, w);

    /* EP2 leaves last, destroying the domain: each UNMAP once */
    QVIOMMU_EXPECT_STATUS(qviommu_detach_req(v, 1, EP2), VIRTIO_IOMMU_S_OK);
    vit_want_unmap(w, EP2, &vit_m3p);
    vit_want_unmap(w, EP2, &vit_m1p);
    vit_want_unmap(w, EP2, &vit_m2m);
    vit_want_unmap(w, EP2, &vit_mmio);
    CHECK_EVENTS(&nt, w);
}

static void test_notify_move(void *obj, void *data, QGuestAllocator *a)
{
    QViommu *v = obj;
    g_autoptr(GArray) w = g_array_new(false, true, sizeof(Ev));
    Notif nt;

    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 1, EP1, 0), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(vit_map_m(v, 1, &vit_m3p), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 2, EP2, 0), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(vit_map_m(v, 2, &vit_m1p), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(vit_map_m(v, 2, &vit_m2m), VIRTIO_IOMMU_S_OK);
    vit_notif_start(&nt, v->qts);

    /* EP1 moves to domain 2: the old mappings go, then the new come */
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 2, EP1, 0), VIRTIO_IOMMU_S_OK);
    vit_want_unmap(w, EP1, &vit_m3p);
    vit_want_map(w, BOTH, EP1, &vit_m1p);
    vit_want_map(w, BOTH, EP1, &vit_m2m);
    CHECK_EVENTS(&nt, w);

    /* re-attaching to a domain that survives: out, then in again */
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 2, EP2, 0), VIRTIO_IOMMU_S_OK);
    vit_want_unmap(w, EP2, &vit_m1p);
    vit_want_unmap(w, EP2, &vit_m2m);
    vit_want_map(w, BOTH, EP2, &vit_m1p);
    vit_want_map(w, BOTH, EP2, &vit_m2m);
    CHECK_EVENTS(&nt, w);

    /* EP1 moves to a new, empty domain */
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 3, EP1, 0), VIRTIO_IOMMU_S_OK);
    vit_want_unmap(w, EP1, &vit_m1p);
    vit_want_unmap(w, EP1, &vit_m2m);
    CHECK_EVENTS(&nt, w);

    /* re-attaching to the domain it alone is in empties the domain */
    QVIOMMU_EXPECT_STATUS(vit_map_m(v, 3, &vit_m3p), VIRTIO_IOMMU_S_OK);
    vit_want_map(w, BOTH, EP1, &vit_m3p);
    CHECK_EVENTS(&nt, w);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 3, EP1, 0), VIRTIO_IOMMU_S_OK);
    vit_want_unmap(w, EP1, &vit_m3p);
    CHECK_EVENTS(&nt, w);
    CHECK(!vit_is_mapped(v, 3, vit_m3p.start, vit_m3p.end));
    vit_want_map(w, BOTH, EP1, &(Mapping) { vit_m3p.start, vit_m3p.end,
                                            vit_m3p.start, RW });
    vit_want_unmap(w, EP1, &vit_m3p);
    CHECK_EVENTS(&nt, w);
}

static void test_notify_mmio(void *obj, void *data, QGuestAllocator *a)
{
    QViommu *v = obj;
    g_autoptr(GArray) w = g_array_new(false, true, sizeof(Ev));
    const Mapping mmio_ro = { 0x800000, 0x800fff, 0xfe100000,
                              RO | VIRTIO_IOMMU_MAP_F_MMIO };
    Notif nt;

    vit_notif_start(&nt, v->qts);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 1, EP1, 0), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(vit_map_m(v, 1, &vit_mmio), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(vit_map_m(v, 1, &mmio_ro), VIRTIO_IOMMU_S_OK);
    CHECK_EVENTS(&nt, w);

    /* a normal mapping right before it is sent */
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, 0x6ff000, 0x6fffff, 0x1000, RW),
                          VIRTIO_IOMMU_S_OK);
    vit_want_ev(w, BOTH, true, EP1, 0x6ff000, 0xfff, 0x1000, PERM_RW);
    CHECK_EVENTS(&nt, w);

    /* not replayed, and not sent to an endpoint that joins */
    replay(v, EP1_ID);
    vit_want_ev(w, 0, true, EP1, 0x6ff000, 0xfff, 0x1000, PERM_RW);
    CHECK_EVENTS(&nt, w);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 1, EP2, 0), VIRTIO_IOMMU_S_OK);
    vit_want_ev(w, BOTH, true, EP2, 0x6ff000, 0xfff, 0x1000, PERM_RW);
    CHECK_EVENTS(&nt, w);

    /* but unmapped like any mapping */
    QVIOMMU_EXPECT_STATUS(qviommu_unmap_req(v, 1, 0x6ff000, 0x701fff),
                          VIRTIO_IOMMU_S_OK);
    vit_want_ev(w, BOTH, false, EP1, 0x6ff000, 0xfff, 0, 0);
    vit_want_unmap(w, EP1, &vit_mmio);
    vit_want_ev(w, BOTH, false, EP2, 0x6ff000, 0xfff, 0, 0);
    vit_want_unmap(w, EP2, &vit_mmio);
    CHECK_EVENTS(&nt, w);
    QVIOMMU_EXPECT_STATUS(qviommu_detach_req(v, 1, EP2), VIRTIO_IOMMU_S_OK);
    vit_want_unmap(w, EP2, &mmio_ro);
    CHECK_EVENTS(&nt, w);
}

static void test_notify_reset(void *obj, void *data, QGuestAllocator *a)
{
    QViommu *v = obj;
    g_autoptr(GArray) w = g_array_new(false, true, sizeof(Ev));
    Notif nt;

    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 1, EP1, 0), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(vit_map_m(v, 1, &vit_m3p), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(vit_map_m(v, 1, &vit_mmio), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 2, EP2,
                                             VIRTIO_IOMMU_ATTACH_F_BYPASS),
                          VIRTIO_IOMMU_S_OK);
    vit_notif_start(&nt, v->qts);

    /* device reset: every endpoint detached */
    qviommu_start(v, qviommu_known_features(v));
    vit_want_unmap(w, EP1, &vit_m3p);
    vit_want_unmap(w, EP1, &vit_mmio);
    CHECK_EVENTS(&nt, w);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 1, EP1, 0), VIRTIO_IOMMU_S_OK);
    CHECK_EVENTS(&nt, w);

    /* system reset, with the driver still running */
    QVIOMMU_EXPECT_STATUS(vit_map_m(v, 1, &vit_m2m), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 1, EP2, 0), VIRTIO_IOMMU_S_OK);
    vit_want_map(w, BOTH, EP1, &vit_m2m);
    vit_want_map(w, BOTH, EP2, &vit_m2m);
    CHECK_EVENTS(&nt, w);
    qtest_system_reset(v->qts);
    vit_want_unmap(w, EP1, &vit_m2m);
    vit_want_unmap(w, EP2, &vit_m2m);
    CHECK_EVENTS(&nt, w);

    qvirtio_pci_device_disable(v->transport);
    qvirtio_pci_device_enable(v->transport);
    qviommu_start(v, qviommu_known_features(v));
    CHECK_EVENTS(&nt, w);
}

static void test_notify_reset_port(void *obj, void *data,
                                   QGuestAllocator *a)
{
    QViommu *v = obj;
    g_autoptr(GArray) w = g_array_new(false, true, sizeof(Ev));
    Notif nt;

    vit_number_root_port(v);
    vit_notif_start(&nt, v->qts);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 1, EP_BEHIND_PORT, 0),
                          VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 1, EP1, 0), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(vit_map_m(v, 1, &vit_m3p), VIRTIO_IOMMU_S_OK);
    vit_want_map(w, BOTH, EP_BEHIND_PORT, &vit_m3p);
    vit_want_map(w, BOTH, EP1, &vit_m3p);
    CHECK_EVENTS(&nt, w);

    /* device reset */
    qviommu_start(v, qviommu_known_features(v));
    vit_want_unmap(w, EP_BEHIND_PORT, &vit_m3p);
    vit_want_unmap(w, EP1, &vit_m3p);
    CHECK_EVENTS(&nt, w);

    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 1, EP_BEHIND_PORT, 0),
                          VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 2, EP1, 0), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(vit_map_m(v, 1, &vit_m1p), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(vit_map_m(v, 2, &vit_m2m), VIRTIO_IOMMU_S_OK);
    vit_want_map(w, BOTH, EP_BEHIND_PORT, &vit_m1p);
    vit_want_map(w, BOTH, EP1, &vit_m2m);
    CHECK_EVENTS(&nt, w);

    /*
     * System reset: it also clears the port's bus number; the endpoint's
     * notifiers must still hear that everything is gone, as EP1's do.
     */
    qtest_system_reset(v->qts);
    vit_want_unmap(w, EP_BEHIND_PORT, &vit_m1p);
    vit_want_unmap(w, EP1, &vit_m2m);
    CHECK_EVENTS(&nt, w);

    qvirtio_pci_device_disable(v->transport);
    qvirtio_pci_device_enable(v->transport);
    qviommu_start(v, qviommu_known_features(v));
    CHECK_EVENTS(&nt, w);
}

static void test_notify_bypass(void *obj, void *data, QGuestAllocator *a)
{
    QViommu *v = obj;
    g_autoptr(GArray) w = g_array_new(false, true, sizeof(Ev));
    Notif nt;

    vit_notif_start(&nt, v->qts);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 3, EP1,
                                             VIRTIO_IOMMU_ATTACH_F_BYPASS),
                          VIRTIO_IOMMU_S_OK);
    vit_bypass_set(v, 0);
    vit_bypass_set(v, 1);
    QVIOMMU_EXPECT_STATUS(vit_map_m(v, 3, &vit_m1p), VIRTIO_IOMMU_S_INVAL);
    replay(v, EP1_ID);
    CHECK_EVENTS(&nt, w);

    /* from a translating domain to the bypass domain: unmapped */
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 1, EP2, 0), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(vit_map_m(v, 1, &vit_m3p), VIRTIO_IOMMU_S_OK);
    vit_want_map(w, BOTH, EP2, &vit_m3p);
    CHECK_EVENTS(&nt, w);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 3, EP2,
                                             VIRTIO_IOMMU_ATTACH_F_BYPASS),
                          VIRTIO_IOMMU_S_OK);
    vit_want_unmap(w, EP2, &vit_m3p);
    CHECK_EVENTS(&nt, w);
    replay(v, EP2_ID);
    CHECK_EVENTS(&nt, w);

    /* from the bypass domain to a translating one: mapped */
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 4, EP1, 0), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(vit_map_m(v, 4, &vit_m2m), VIRTIO_IOMMU_S_OK);
    vit_want_map(w, BOTH, EP1, &vit_m2m);
    CHECK_EVENTS(&nt, w);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 4, EP2, 0), VIRTIO_IOMMU_S_OK);
    vit_want_map(w, BOTH, EP2, &vit_m2m);
    CHECK_EVENTS(&nt, w);

    /* back again */
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 5, EP1,
                                             VIRTIO_IOMMU_ATTACH_F_BYPASS),
                          VIRTIO_IOMMU_S_OK);
    vit_want_unmap(w, EP1, &vit_m2m);
    CHECK_EVENTS(&nt, w);
    QVIOMMU_EXPECT_STATUS(qviommu_detach_req(v, 5, EP1), VIRTIO_IOMMU_S_OK);
    CHECK_EVENTS(&nt, w);
}

static void test_notify_replay(void *obj, void *data, QGuestAllocator *a)
{
    QViommu *v = obj;
    g_autoptr(GArray) w = g_array_new(false, true, sizeof(Ev));
    QDict *rsp;
    Notif nt;

    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 1, EP1, 0), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(vit_map_m(v, 1, &vit_m3p), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(vit_map_m(v, 1, &vit_m1p), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(vit_map_m(v, 1, &vit_m2m), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(vit_map_m(v, 1, &vit_mmio), VIRTIO_IOMMU_S_OK);
    vit_notif_start(&nt, v->qts);

    /* n0 alone gets every mapping once, MMIO excepted */
    replay(v, EP1_ID);
    vit_want_map(w, 0, EP1, &vit_m3p);
    vit_want_map(w, 0, EP1, &vit_m1p);
    vit_want_map(w, 0, EP1, &vit_m2m);
    CHECK_EVENTS(&nt, w);
    /* and again on the next replay */
    replay(v, EP1_ID);
    vit_want_map(w, 0, EP1, &vit_m3p);
    vit_want_map(w, 0, EP1, &vit_m1p);
    vit_want_map(w, 0, EP1, &vit_m2m);
    CHECK_EVENTS(&nt, w);

    /* unattached, or bypassing: nothing to replay */
    replay(v, EP2_ID);
    CHECK_EVENTS(&nt, w);
    vit_bypass_set(v, 0);
    replay(v, EP2_ID);
    CHECK_EVENTS(&nt, w);

    /* after the replay, requests notify both as before */
    QVIOMMU_EXPECT_STATUS(vit_unmap_m(v, 1, &vit_m1p), VIRTIO_IOMMU_S_OK);
    vit_want_unmap(w, EP1, &vit_m1p);
    CHECK_EVENTS(&nt, w);
    replay(v, EP1_ID);
    vit_want_map(w, 0, EP1, &vit_m3p);
    vit_want_map(w, 0, EP1, &vit_m2m);
    CHECK_EVENTS(&nt, w);

    /* no such endpoint: no notifier, and nothing to replay */
    rsp = qtest_qmp(v->qts, "{ 'execute': 'qom-set', 'arguments': "
                    "{ 'path': %s, 'property': 'replay', "
                    "'value': 'no-such-device' } }", TESTDEV_QOM);
    CHECK(qdict_haskey(rsp, "error"));
    qobject_unref(rsp);
    CHECK_EVENTS(&nt, w);
}

static void test_notify_failed(void *obj, void *data, QGuestAllocator *a)
{
    QViommu *v = obj;
    g_autoptr(GArray) w = g_array_new(false, true, sizeof(Ev));
    QViommuReq b;
    uint32_t len;
    Notif nt;

    /* max-mappings=2,max-domains=1 */
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 1, EP1, 0), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 1, EP2, 0), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(vit_map_m(v, 1, &vit_m3p), VIRTIO_IOMMU_S_OK);
    vit_notif_start(&nt, v->qts);

    /* MAP */
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, 0x101000, 0x101fff, 0, RW),
                          VIRTIO_IOMMU_S_INVAL);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, 0x200800, 0x201fff, 0, RW),
                          VIRTIO_IOMMU_S_RANGE);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, 0x202000, 0x201fff, 0, RW),
                          VIRTIO_IOMMU_S_INVAL);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, 0x200000, 0x200fff, 0,
                                          RW | 0x100),
                          VIRTIO_IOMMU_S_INVAL);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 3, 0x200000, 0x200fff, 0, RW),
                          VIRTIO_IOMMU_S_NOENT);
    QVIOMMU_EXPECT_STATUS(vit_map_m(v, 1, &vit_m1p), VIRTIO_IOMMU_S_OK);
    vit_want_map(w, BOTH, EP1, &vit_m1p);
    vit_want_map(w, BOTH, EP2, &vit_m1p);
    CHECK_EVENTS(&nt, w);
    QVIOMMU_EXPECT_STATUS(vit_map_m(v, 1, &vit_m2m), VIRTIO_IOMMU_S_NOMEM);
    len = qviommu_enc_map(&b, 1, vit_m2m.start, vit_m2m.end, vit_m2m.pa,
                          vit_m2m.flags);
    QVIOMMU_EXPECT_STATUS(qviommu_send_req(v, &b, len - 1, 4),
                          VIRTIO_IOMMU_S_IOERR);
    CHECK_EVENTS(&nt, w);

    /* UNMAP */
    QVIOMMU_EXPECT_STATUS(qviommu_unmap_req(v, 1, 0x100000, 0x100fff),
                          VIRTIO_IOMMU_S_RANGE);
    QVIOMMU_EXPECT_STATUS(qviommu_unmap_req(v, 1, 0x101000, 0x103fff),
                          VIRTIO_IOMMU_S_RANGE);
    len = qviommu_enc_unmap(&b, 1, vit_m1p.start, vit_m1p.end);
    b.unmap.reserved[0] = 1;
    QVIOMMU_EXPECT_STATUS(qviommu_send_req(v, &b, len, 4),
                          VIRTIO_IOMMU_S_INVAL);
    QVIOMMU_EXPECT_STATUS(qviommu_unmap_req(v, 1, vit_m1p.end, vit_m1p.start),
                          VIRTIO_IOMMU_S_INVAL);
    QVIOMMU_EXPECT_STATUS(qviommu_unmap_req(v, 2, 0, vit_input_end(v)),
                          VIRTIO_IOMMU_S_NOENT);
    CHECK_EVENTS(&nt, w);

    /* ATTACH and DETACH: a failing ATTACH does not detach */
    len = qviommu_enc_attach(&b, 3, EP1, 0);
    b.attach.reserved[0] = 1;
    QVIOMMU_EXPECT_STATUS(qviommu_send_req(v, &b, len, 4),
                          VIRTIO_IOMMU_S_INVAL);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 3, EP1, 0x2),
                          VIRTIO_IOMMU_S_INVAL);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 1, EP1,
                                             VIRTIO_IOMMU_ATTACH_F_BYPASS),
                          VIRTIO_IOMMU_S_INVAL);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 3, EP1, 0),
                          VIRTIO_IOMMU_S_NOMEM);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 3, EP2,
                                             VIRTIO_IOMMU_ATTACH_F_BYPASS),
                          VIRTIO_IOMMU_S_NOMEM);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 1, EP_NO_SLOT, 0),
                          VIRTIO_IOMMU_S_NOENT);
    QVIOMMU_EXPECT_STATUS(qviommu_detach_req(v, 2, EP1), VIRTIO_IOMMU_S_INVAL);
    QVIOMMU_EXPECT_STATUS(qviommu_detach_req(v, 1, EP_NO_SLOT),
                          VIRTIO_IOMMU_S_NOENT);
    len = qviommu_enc_detach(&b, 1, EP1);
    QVIOMMU_EXPECT_STATUS(qviommu_send_req(v, &b, len - 1, 4),
                          VIRTIO_IOMMU_S_IOERR);
    /* unknown request type, no room for a status */
    len = qviommu_enc_unmap(&b, 1, 0, vit_input_end(v));
    b.head.type = 0x42;
    QVIOMMU_EXPECT_UNUSED(qviommu_send_req(v, &b, len, 4));
    len = qviommu_enc_unmap(&b, 1, 0, vit_input_end(v));
    QVIOMMU_EXPECT_UNUSED(qviommu_send_req(v, &b, len, 3));
    CHECK_EVENTS(&nt, w);

    /* and everything is still there */
    replay(v, EP1_ID);
    vit_want_map(w, 0, EP1, &vit_m3p);
    vit_want_map(w, 0, EP1, &vit_m1p);
    CHECK_EVENTS(&nt, w);
}

/* ------------------------------------------------------------------ */
/* Host IOMMU devices                                                  */

/*
 * The test device's host-iommu=<id>:<mask>[:<start>-<end>...] gives the
 * IOMMU a fake host IOMMU device (what VFIO gives it) for endpoint <id>:
 * it maps only pages of <mask>, and only the usable IOVA ranges listed.
 * On the command line it is given before machine init, as a cold-plugged
 * VFIO device's is; through qom-set at once, and a refusal is the QMP
 * error.  host-iommu-unplug=<id> takes it back.
 */
#define HOST_EP_STR             EP1_ID
#define HOST_MASK_2M            0xffffffffffe00000ull
#define HOST_MASK_2M_STR        "0xffffffffffe00000"
/* 4 KiB, 2 MiB and 1 GiB pages */
#define HOST_MASK_4K_STR        "0x40201000"
#define HOST_USABLE                                                     \
    "0x200000-0x7ffffff:0x10000000-0xfebfffff:0x100000000-0x3fffffffff"
#define HOST_COLD_OPTS          "id=" IOMMU_ID
#define HOST_COLD_TESTDEV       ",host-iommu=" HOST_EP_STR ":"          \
                                HOST_MASK_2M_STR ":" HOST_USABLE

/*
 * The ranges of HOST_USABLE.  The holes between them hold the MSI window
 * of every machine: pc and q35 at 0xfee00000, virt at 0x08020000 (GICv2m)
 * or 0x08090000 (ITS).
 */
static const Resv host_usable[] = {
    { 0x200000, 0x7ffffff },
    { 0x10000000, 0xfebfffff },
    { 0x100000000ull, 0x3fffffffffull },
};

#define MAX_RESV                64

static void resv_push(Resv *out, unsigned *n, uint64_t start, uint64_t end,
                      uint8_t subtype)
{
    g_assert_cmpuint(*n, <, MAX_RESV);
    out[(*n)++] = (Resv) { start, end, subtype };
}

/* Add [start, end] as RESERVED, cut around the MSI window @msi */
static void resv_push_cut(Resv *out, unsigned *n, uint64_t start,
                          uint64_t end, const Resv *msi)
{
    if (msi->end < start || msi->start > end) {
        resv_push(out, n, start, end, VIRTIO_IOMMU_RESV_MEM_T_RESERVED);
        return;
    }
    if (start < msi->start) {
        resv_push(out, n, start, msi->start - 1,
                  VIRTIO_IOMMU_RESV_MEM_T_RESERVED);
    }
    if (msi->end < end) {
        resv_push(out, n, msi->end + 1, end,
                  VIRTIO_IOMMU_RESV_MEM_T_RESERVED);
    }
}

static int resv_cmp(const void *a, const void *b)
{
    const Resv *x = a, *y = b;

    return x->start < y->start ? -1 : x->start > y->start;
}

/*
 * What PROBE must list for an endpoint whose host IOMMU maps only @usable
 * (sorted, disjoint): RESERVED regions for the rest of the input range,
 * cut around the machine's MSI window, which stays MSI; in address order.
 */
static unsigned host_resv_want(const Machine *m, const Resv *usable,
                               unsigned nr_usable, Resv *out)
{
    uint64_t last = vit_aw_mask(m->aw_bits);
    uint64_t next = 0;
    bool covered = false;       /* usable up to the end of the space */
    unsigned i, n = 0;

    for (i = 0; i < nr_usable; i++) {
        g_assert_cmphex(usable[i].start, >=, next);
        if (usable[i].start > next) {
            resv_push_cut(out, &n, next, usable[i].start - 1, &m->msi);
        }
        if (usable[i].end >= last) {
            covered = true;
            break;
        }
        next = usable[i].end + 1;
    }
    if (!covered) {
        resv_push_cut(out, &n, next, last, &m->msi);
    }
    resv_push(out, &n, m->msi.start, m->msi.end, m->msi.subtype);
    qsort(out, n, sizeof(*out), resv_cmp);
    return n;
}

/* PROBE @ep and compare its properties with @want */
static void check_probe(const char *fn, int line, QViommu *v, uint32_t ep,
                        const Resv *want, unsigned n)
{
    uint32_t size = vit_probe_size(v);
    g_autofree uint8_t *out = g_malloc(size + 4);
    QViommuRes r = qviommu_probe_req(v, ep, size, out);

    if (qviommu_expect_status(fn, line, "PROBE", r, VIRTIO_IOMMU_S_OK)) {
        vit_check_props(fn, line, out, size, want, n);
    }
}

#define CHECK_PROBE(v, ep, want, n)                                     \
    check_probe(__func__, __LINE__, v, ep, want, n)

/* The error of a QMP command's response, NULL if it succeeded */
static char *qmp_error(QDict *rsp)
{
    char *err = NULL;

    g_assert_nonnull(rsp);
    if (qdict_haskey(rsp, "error")) {
        err = g_strdup(qdict_get_str(qdict_get_qdict(rsp, "error"), "desc"));
    } else {
        g_assert_true(qdict_haskey(rsp, "return"));
    }
    qobject_unref(rsp);
    return err;
}

static char *host_plug(QViommu *v, const char *spec)
{
    return qmp_error(qtest_qmp(v->qts, "{ 'execute': 'qom-set', "
                               "'arguments': { 'path': %s, 'property': "
                               "'host-iommu', 'value': %s } }",
                               TESTDEV_QOM, spec));
}

static char *host_unplug(QViommu *v, const char *id)
{
    return qmp_error(qtest_qmp(v->qts, "{ 'execute': 'qom-set', "
                               "'arguments': { 'path': %s, 'property': "
                               "'host-iommu-unplug', 'value': %s } }",
                               TESTDEV_QOM, id));
}

/* A qom-set that must fail; its error must contain @what if given */
static void expect_refused(const char *fn, int line, const char *call,
                           char *err, const char *what)
{
    if (!err) {
        qviommu_report(fn, line, "%s: expected a QMP error, got success", call);
    } else if (what && !strstr(err, what)) {
        qviommu_report(fn, line, "%s: expected a QMP error mentioning '%s', "
                       "got '%s'", call, what, err);
    }
    g_free(err);
}

static void expect_accepted(const char *fn, int line, const char *call,
                            char *err)
{
    if (err) {
        qviommu_report(fn, line, "%s: expected success, got QMP error '%s'",
                       call, err);
    }
    g_free(err);
}

#define EXPECT_REFUSED(call, what)                                      \
    expect_refused(__func__, __LINE__, #call, (call), (what))
#define EXPECT_ACCEPTED(call)                                           \
    expect_accepted(__func__, __LINE__, #call, (call))

static uint64_t page_size_mask(QViommu *v)
{
    return qviommu_config_readq(v, CFG_OFF(page_size_mask));
}

#define M2                      (2 * MiB)

/* A 2 MiB page at @iova */
static QViommuRes map_2m(QViommu *v, uint32_t domain, uint64_t iova)
{
    return qviommu_map_req(v, domain, iova, iova + M2 - 1, 0x40000000, RW);
}

/*
 * Cold-plugged host IOMMU device on EP1 that maps 2 MiB pages only, and
 * HOST_USABLE.
 */
static void test_host_iommu_cold(void *obj, void *data, QGuestAllocator *a)
{
    QViommu *v = obj;
    const TestCfg *cfg = data;
    Resv want[MAX_RESV];
    uint64_t last;
    unsigned n;
    Machine m;

    if (!vit_machine_info(v, cfg, &m)) {
        return;
    }
    last = vit_aw_mask(m.aw_bits);

    /* page sizes both can map: the granule is 2 MiB */
    CHECK_EQ(page_size_mask(v), HOST_MASK_2M);

    /* what the host cannot map is reserved, for EP1 only */
    n = host_resv_want(&m, host_usable, ARRAY_SIZE(host_usable), want);
    CHECK_PROBE(v, EP1, want, n);
    CHECK_PROBE(v, EP2, &m.msi, 1);

    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 1, EP1, 0), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, 0x200000, 0x200fff, 0, RW),
                          VIRTIO_IOMMU_S_RANGE);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, 0x200000, 0x3fffff, 0x1000, RW),
                          VIRTIO_IOMMU_S_RANGE);
    QVIOMMU_EXPECT_STATUS(map_2m(v, 1, 0x200000), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, 0x400000, 0x7fffff,
                                          0x40000000, RW),
                          VIRTIO_IOMMU_S_OK);

    /* the host-reserved ranges, and across their edges */
    QVIOMMU_EXPECT_STATUS(map_2m(v, 1, 0), VIRTIO_IOMMU_S_INVAL);
    QVIOMMU_EXPECT_STATUS(map_2m(v, 1, 0x8000000), VIRTIO_IOMMU_S_INVAL);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, 0x7e00000, 0x81fffff, 0, RW),
                          VIRTIO_IOMMU_S_INVAL);
    QVIOMMU_EXPECT_STATUS(map_2m(v, 1, 0xfe00000), VIRTIO_IOMMU_S_INVAL);
    QVIOMMU_EXPECT_STATUS(map_2m(v, 1, 0xfec00000), VIRTIO_IOMMU_S_INVAL);
    QVIOMMU_EXPECT_STATUS(map_2m(v, 1, 0xff000000), VIRTIO_IOMMU_S_INVAL);
    QVIOMMU_EXPECT_STATUS(map_2m(v, 1, 0xffe00000), VIRTIO_IOMMU_S_INVAL);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, 0xfea00000, 0xfedfffff, 0, RW),
                          VIRTIO_IOMMU_S_INVAL);
    QVIOMMU_EXPECT_STATUS(map_2m(v, 1, 0x4000000000ull), VIRTIO_IOMMU_S_INVAL);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, 0x3fffe00000ull,
                                          0x40001fffffull, 0, RW),
                          VIRTIO_IOMMU_S_INVAL);
    QVIOMMU_EXPECT_STATUS(map_2m(v, 1, last - M2 + 1), VIRTIO_IOMMU_S_INVAL);
    /* next to them is usable */
    QVIOMMU_EXPECT_STATUS(map_2m(v, 1, 0x7e00000), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(map_2m(v, 1, 0x10000000), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(map_2m(v, 1, 0xfea00000), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(map_2m(v, 1, 0x100000000ull), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(map_2m(v, 1, 0x3fffe00000ull), VIRTIO_IOMMU_S_OK);

    /* EP2 has no host IOMMU: its domain may map there */
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 2, EP2, 0), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(map_2m(v, 2, 0), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(map_2m(v, 2, 0x4000000000ull), VIRTIO_IOMMU_S_OK);
    /* so EP1 cannot join that domain, and stays where it was */
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 2, EP1, 0),
                          VIRTIO_IOMMU_S_UNSUPP);
    QVIOMMU_EXPECT_STATUS(qviommu_detach_req(v, 2, EP1), VIRTIO_IOMMU_S_INVAL);
    CHECK(vit_is_mapped(v, 1, 0x200000, 0x3fffff));
    CHECK(vit_is_mapped(v, 2, 0, M2 - 1));
    QVIOMMU_EXPECT_STATUS(qviommu_unmap_req(v, 2, 0, M2 - 1),
                          VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 2, EP1, 0),
                          VIRTIO_IOMMU_S_UNSUPP);
    /* once the domain maps only what EP1's host can map, it can */
    QVIOMMU_EXPECT_STATUS(qviommu_unmap_req(v, 2, 0x4000000000ull,
                                            0x40001fffffull),
                          VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(map_2m(v, 2, 0x200000), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 2, EP1, 0), VIRTIO_IOMMU_S_OK);
    /* domain 1 lost its only endpoint */
    QVIOMMU_EXPECT_STATUS(map_2m(v, 1, 0xa00000), VIRTIO_IOMMU_S_NOENT);
    /* with EP1 in it, domain 2 cannot map EP1's reserved ranges */
    QVIOMMU_EXPECT_STATUS(map_2m(v, 2, 0), VIRTIO_IOMMU_S_INVAL);
    QVIOMMU_EXPECT_STATUS(map_2m(v, 2, 0x8000000), VIRTIO_IOMMU_S_INVAL);
    QVIOMMU_EXPECT_STATUS(qviommu_detach_req(v, 2, EP1), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(map_2m(v, 2, 0), VIRTIO_IOMMU_S_OK);

    /* device and system resets leave the host IOMMU device in place */
    qviommu_start(v, qviommu_known_features(v));
    CHECK_EQ(page_size_mask(v), HOST_MASK_2M);
    CHECK_PROBE(v, EP1, want, n);
    CHECK_PROBE(v, EP2, &m.msi, 1);
    vit_system_reset_restart(v);
    CHECK_EQ(page_size_mask(v), HOST_MASK_2M);
    CHECK_PROBE(v, EP1, want, n);
    CHECK_PROBE(v, EP2, &m.msi, 1);
}

/* A host IOMMU device plugged at run time, with granule=4k */
static void test_host_iommu_hotplug(void *obj, void *data,
                                    QGuestAllocator *a)
{
    QViommu *v = obj;
    uint64_t mask = page_size_mask(v);
    uint32_t cap = vit_probe_size(v) /
                   sizeof(struct virtio_iommu_probe_resv_mem);
    g_autoptr(GString) many = g_string_new(HOST_EP_STR ":0x1000");
    Resv want[MAX_RESV];
    unsigned n, i;
    Machine m;

    /* what this test plugs outlives a system reset: next test, new QEMU */
    qos_invalidate_command_line();
    if (!vit_machine_info(v, NULL, &m)) {
        return;
    }
    CHECK_EQ(mask, ~(PAGE - 1));
    n = host_resv_want(&m, host_usable, ARRAY_SIZE(host_usable), want);

    /*
     * The guest may have read page_size_mask: a host that needs pages
     * larger than the granule is refused, and nothing changes.
     */
    EXPECT_REFUSED(host_plug(v, HOST_EP_STR ":" HOST_MASK_2M_STR ":"
                             HOST_USABLE), "granule");
    CHECK_EQ(page_size_mask(v), mask);
    CHECK_PROBE(v, EP1, &m.msi, 1);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 1, EP1, 0), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, 0, PAGE - 1, 0, RW),
                          VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_unmap_req(v, 1, 0, PAGE - 1),
                          VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_detach_req(v, 1, EP1), VIRTIO_IOMMU_S_OK);

    /* one that maps 4 KiB pages is taken; the mask stays as it was */
    EXPECT_ACCEPTED(host_plug(v, HOST_EP_STR ":" HOST_MASK_4K_STR ":"
                              HOST_USABLE));
    CHECK_EQ(page_size_mask(v), mask);
    CHECK_PROBE(v, EP1, want, n);
    CHECK_PROBE(v, EP2, &m.msi, 1);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 1, EP1, 0), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, 0, PAGE - 1, 0, RW),
                          VIRTIO_IOMMU_S_INVAL);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, 0x1ff000, 0x200fff, 0, RW),
                          VIRTIO_IOMMU_S_INVAL);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, 0x200000, 0x200fff, 0, RW),
                          VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, 0xfebff000, 0xfebfffff, 0, RW),
                          VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, 0xfec00000, 0xfec00fff, 0, RW),
                          VIRTIO_IOMMU_S_INVAL);

    /* one host IOMMU device per endpoint */
    EXPECT_REFUSED(host_plug(v, HOST_EP_STR ":0x1000"), NULL);
    CHECK_PROBE(v, EP1, want, n);
    /* no PCI function there, or the IOMMU itself */
    EXPECT_REFUSED(host_plug(v, "no-such-device:0x1000"), NULL);
    EXPECT_REFUSED(host_plug(v, IOMMU_ID ":0x1000"), "itself");
    /* malformed */
    EXPECT_REFUSED(host_plug(v, EP2_ID), NULL);
    EXPECT_REFUSED(host_plug(v, EP2_ID ":0x1000:0x2000-0x1000"), NULL);
    EXPECT_REFUSED(host_unplug(v, EP2_ID), NULL);
    CHECK_PROBE(v, EP2, &m.msi, 1);

    /* unplugged: the endpoint is back to the machine's regions */
    EXPECT_ACCEPTED(host_unplug(v, EP1_ID));
    CHECK_PROBE(v, EP1, &m.msi, 1);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, 0, PAGE - 1, 0, RW),
                          VIRTIO_IOMMU_S_OK);
    EXPECT_REFUSED(host_unplug(v, EP1_ID), NULL);
    CHECK_EQ(page_size_mask(v), mask);

    /* more reserved regions than PROBE can hold: refused */
    for (i = 0; i <= cap; i++) {
        g_string_append_printf(many, ":0x%" PRIx64 "-0x%" PRIx64,
                               (2 * i + 1) * 16 * MiB,
                               (2 * i + 2) * 16 * MiB - 1);
    }
    EXPECT_REFUSED(host_plug(v, many->str), NULL);
    CHECK_PROBE(v, EP1, &m.msi, 1);

    /* and a plug after all that works on either endpoint */
    EXPECT_ACCEPTED(host_plug(v, EP2_ID ":" HOST_MASK_4K_STR ":"
                              HOST_USABLE));
    CHECK_PROBE(v, EP2, want, n);
    CHECK_PROBE(v, EP1, &m.msi, 1);
    EXPECT_ACCEPTED(host_unplug(v, EP2_ID));
    CHECK_PROBE(v, EP2, &m.msi, 1);

    /*
     * Holes that overlap the MSI window in part: one ends in it, one
     * starts in it.  The window stays whole, the holes lose the overlap.
     */
    {
        uint64_t q = (m.msi.end - m.msi.start + 1) / 4;
        Resv usable[] = {
            { 0, m.msi.start - 0x10001 },
            { m.msi.start + q, m.msi.start + 2 * q - 1 },
            { m.msi.end + 0x10001, BIT64(40) - 1 },
        };
        g_autofree char *spec =
            g_strdup_printf(EP2_ID ":0x1000:0x%" PRIx64 "-0x%" PRIx64
                            ":0x%" PRIx64 "-0x%" PRIx64 ":0x%" PRIx64
                            "-0x%" PRIx64, usable[0].start, usable[0].end,
                            usable[1].start, usable[1].end,
                            usable[2].start, usable[2].end);

        n = host_resv_want(&m, usable, ARRAY_SIZE(usable), want);
        CHECK_EQ(n, 4);
        EXPECT_ACCEPTED(host_plug(v, spec));
        CHECK_PROBE(v, EP2, want, n);
        EXPECT_ACCEPTED(host_unplug(v, EP2_ID));
    }

}

/* ------------------------------------------------------------------ */

static void register_virtio_iommu_notify_test(void)
{
    static const TestCfg host_cold = { .testdev_opts = HOST_COLD_TESTDEV };
    static const TestCfg host_cold_q35 = {
        .q35 = true,
        .testdev_opts = HOST_COLD_TESTDEV,
    };

    vit_add_test("notify-map", test_notify_map, NOTIFY_OPTS, NULL);
    vit_add_test("notify-map-large", test_notify_map_large, NOTIFY_OPTS, NULL);
    vit_add_test("notify-unmap", test_notify_unmap, NOTIFY_OPTS, NULL);
    vit_add_test("notify-attach", test_notify_attach, NOTIFY_OPTS, NULL);
    vit_add_test("notify-move", test_notify_move, NOTIFY_OPTS, NULL);
    vit_add_test("notify-mmio", test_notify_mmio, NOTIFY_OPTS, NULL);
    vit_add_test("notify-reset", test_notify_reset, NOTIFY_OPTS, NULL);
    vit_add_test("notify-reset-port", test_notify_reset_port, NOTIFY_OPTS,
                 &vit_cfg_root_port);
    vit_add_test("notify-bypass", test_notify_bypass, NOTIFY_OPTS, NULL);
    vit_add_test("notify-replay", test_notify_replay, NOTIFY_OPTS, NULL);
    vit_add_test("notify-failed", test_notify_failed,
                 NOTIFY_OPTS ",max-mappings=2,max-domains=1", NULL);

    vit_add_test("host-iommu-cold", test_host_iommu_cold, HOST_COLD_OPTS,
                 &host_cold);
    if (vit_arch_is_x86()) {
        vit_add_test("host-iommu-cold-q35", test_host_iommu_cold,
                     HOST_COLD_OPTS, &host_cold_q35);
    }
    vit_add_test("host-iommu-hotplug", test_host_iommu_hotplug,
                 "id=" IOMMU_ID ",granule=4k", NULL);
}

libqos_init(register_virtio_iommu_notify_test);
