/*
 * QTest cases for the virtio-iommu device: DMA through the IOMMU
 *
 * Endpoints are virtio-rng-pci functions with iommu_platform=on next to the
 * IOMMU on the root bus.  The tests drive their virtqueue by hand (rings
 * and buffers at IOVAs the test maps) to check translation, permissions,
 * fault reports and the way the memory core writes used elements that
 * cross an IOMMU page boundary.  edu devices, whose DMA engine reaches any
 * IOVA, check every limit property at and one past its limit, and DMA
 * through whatever a model-checked request storm leaves mapped.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/bswap.h"
#include "qemu/module.h"
#include "qemu/units.h"
#include "qobject/qdict.h"
#include "libqos/edu.h"
#include "virtio-iommu-test.h"
#include "standard-headers/linux/pci_regs.h"

#define VIT_THEME               "virtio-iommu-dma"

/* ------------------------------------------------------------------ */
/* Endpoint DMA: a virtio-rng-pci driven by hand                       */

static void test_dma_translate(void *obj, void *data, QGuestAllocator *a)
{
    QViommu *v = obj;
    g_autoptr(Ep) ep = vit_ep_open(v, EP1_SLOT);
    uint64_t buf = guest_alloc(a, PAGE);
    uint32_t id, len;
    Faults fs;

    qviommu_post_events(v, 8, sizeof(struct virtio_iommu_fault), QVIOMMU_FILL);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 1, EP1, 0), VIRTIO_IOMMU_S_OK);
    vit_ep_start_std(ep, 1, a, RW);
    vit_ep_map(ep, 1, BUF_IOVA, buf, PAGE, RW);
    qtest_memset(v->qts, buf, MARK, PAGE);

    vit_ep_submit(ep, 2, BUF_IOVA + 0x100, 64);
    g_assert_true(vit_ep_wait_used(ep, &id, &len, QVIOMMU_TIMEOUT_US));
    CHECK_EQ(id, 2);
    CHECK_EQ(len, 64);
    /* the random bytes landed at the mapped physical address, only there */
    CHECK(vit_count_not(v->qts, buf + 0x100, 64, MARK) > 32);
    CHECK_EQ(vit_count_not(v->qts, buf, 0x100, MARK), 0);
    CHECK_EQ(vit_count_not(v->qts, buf + 0x140, PAGE - 0x140, MARK), 0);

    /* once more, after UNMAP + MAP of the buffer elsewhere */
    QVIOMMU_EXPECT_STATUS(qviommu_unmap_req(v, 1, BUF_IOVA,
                                            BUF_IOVA + PAGE - 1),
                          VIRTIO_IOMMU_S_OK);
    {
        uint64_t buf2 = guest_alloc(a, PAGE);

        qtest_memset(v->qts, buf2, MARK, PAGE);
        qtest_memset(v->qts, buf, MARK, PAGE);
        vit_ep_map(ep, 1, BUF_IOVA, buf2, PAGE, WO);
        vit_ep_submit(ep, 3, BUF_IOVA, 32);
        g_assert_true(vit_ep_wait_used(ep, &id, &len, QVIOMMU_TIMEOUT_US));
        CHECK_EQ(id, 3);
        CHECK_EQ(len, 32);
        CHECK(vit_count_not(v->qts, buf2, 32, MARK) > 16);
        CHECK_EQ(vit_count_not(v->qts, buf, PAGE, MARK), 0);
    }

    vit_collect_faults(v, &fs, QUIET_WAIT_US, QUIET_WAIT_US);
    if (fs.n) {
        qviommu_report(__func__, __LINE__, "unexpected fault reports");
        vit_print_faults(&fs);
    }

    /* after UNMAP the endpoint cannot reach the page any more */
    QVIOMMU_EXPECT_STATUS(qviommu_unmap_req(v, 1, BUF_IOVA,
                                            BUF_IOVA + PAGE - 1),
                          VIRTIO_IOMMU_S_OK);
    vit_ep_submit(ep, 4, BUF_IOVA + 0x10, 32);
    vit_collect_faults(v, &fs, FAULT_WAIT_US, QUIET_WAIT_US);
    FIND_FAULT(&fs, VIRTIO_IOMMU_FAULT_R_MAPPING, F_WRITE_ADDR, EP1,
               BUF_IOVA + 0x10, BUF_IOVA + 0x10);
}

static void test_dma_span(void *obj, void *data, QGuestAllocator *a)
{
    QViommu *v = obj;
    g_autoptr(Ep) ep = vit_ep_open(v, EP1_SLOT);
    uint64_t d1 = guest_alloc(a, PAGE);
    uint64_t gap = guest_alloc(a, PAGE);
    uint64_t d2 = guest_alloc(a, PAGE);
    uint32_t id, len;

    /* one buffer over two adjacent mappings of discontiguous pages */
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 1, EP1, 0), VIRTIO_IOMMU_S_OK);
    vit_ep_start_std(ep, 1, a, RW);
    vit_ep_map(ep, 1, BUF_IOVA, d1, PAGE, RW);
    vit_ep_map(ep, 1, BUF_IOVA + PAGE, d2, PAGE, RW);
    qtest_memset(v->qts, d1, MARK, PAGE);
    qtest_memset(v->qts, gap, MARK, PAGE);
    qtest_memset(v->qts, d2, MARK, PAGE);

    vit_ep_submit(ep, 0, BUF_IOVA + PAGE - 96, 200);
    g_assert_true(vit_ep_wait_used(ep, &id, &len, QVIOMMU_TIMEOUT_US));
    CHECK_EQ(id, 0);
    CHECK_EQ(len, 200);
    CHECK(vit_count_not(v->qts, d1 + PAGE - 96, 96, MARK) > 48);
    CHECK(vit_count_not(v->qts, d2, 104, MARK) > 52);
    CHECK_EQ(vit_count_not(v->qts, d1, PAGE - 96, MARK), 0);
    CHECK_EQ(vit_count_not(v->qts, d2 + 104, PAGE - 104, MARK), 0);
    CHECK_EQ(vit_count_not(v->qts, gap, PAGE, MARK), 0);
}

static void test_dma_bypass(void *obj, void *data, QGuestAllocator *a)
{
    QViommu *v = obj;
    g_autoptr(Ep) ep = vit_ep_open(v, EP1_SLOT);
    uint64_t buf = guest_alloc(a, PAGE);
    uint32_t id, len;

    /* unattached, config bypass = 1: identity */
    CHECK_EQ(vit_bypass_get(v), 1);
    vit_ep_start_std(ep, IDENTITY, a, RW);
    qtest_memset(v->qts, buf, MARK, PAGE);
    vit_ep_submit(ep, 1, buf, 64);
    g_assert_true(vit_ep_wait_used(ep, &id, &len, QVIOMMU_TIMEOUT_US));
    CHECK_EQ(id, 1);
    CHECK_EQ(len, 64);
    CHECK(vit_count_not(v->qts, buf, 64, MARK) > 32);
}

static void test_dma_bypass_domain(void *obj, void *data, QGuestAllocator *a)
{
    QViommu *v = obj;
    g_autoptr(Ep) ep = vit_ep_open(v, EP1_SLOT);
    uint64_t buf = guest_alloc(a, PAGE);
    uint32_t id, len;

    /* unattached endpoints are blocked, but a bypass domain is identity */
    vit_bypass_set(v, 0);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 1, EP1,
                                             VIRTIO_IOMMU_ATTACH_F_BYPASS),
                          VIRTIO_IOMMU_S_OK);
    vit_ep_start_std(ep, IDENTITY, a, RW);
    qtest_memset(v->qts, buf, MARK, PAGE);
    vit_ep_submit(ep, 1, buf, 64);
    g_assert_true(vit_ep_wait_used(ep, &id, &len, QVIOMMU_TIMEOUT_US));
    CHECK_EQ(id, 1);
    CHECK_EQ(len, 64);
    CHECK(vit_count_not(v->qts, buf, 64, MARK) > 32);
}

static void test_fault_unmapped(void *obj, void *data, QGuestAllocator *a)
{
    QViommu *v = obj;
    g_autoptr(Ep) ep = vit_ep_open(v, EP1_SLOT);
    Faults fs;

    qviommu_post_events(v, 16, 32, QVIOMMU_FILL);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 1, EP1, 0), VIRTIO_IOMMU_S_OK);
    vit_ep_start_std(ep, 1, a, RW);
    /* BUF_IOVA is not mapped */
    vit_ep_submit(ep, 0, BUF_IOVA + 0x40, 64);
    vit_collect_faults(v, &fs, FAULT_WAIT_US, QUIET_WAIT_US);
    FIND_FAULT(&fs, VIRTIO_IOMMU_FAULT_R_MAPPING, F_WRITE_ADDR, EP1,
               BUF_IOVA + 0x40, BUF_IOVA + 0x40);
}

static void test_fault_readonly(void *obj, void *data, QGuestAllocator *a)
{
    QViommu *v = obj;
    g_autoptr(Ep) ep = vit_ep_open(v, EP1_SLOT);
    uint64_t buf = guest_alloc(a, PAGE);
    Faults fs;

    qviommu_post_events(v, 16, 32, QVIOMMU_FILL);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 1, EP1, 0), VIRTIO_IOMMU_S_OK);
    vit_ep_start_std(ep, 1, a, RW);
    vit_ep_map(ep, 1, BUF_IOVA, buf, PAGE, RO);
    qtest_memset(v->qts, buf, MARK, PAGE);
    vit_ep_submit(ep, 0, BUF_IOVA + 0x80, 64);
    vit_collect_faults(v, &fs, FAULT_WAIT_US, QUIET_WAIT_US);
    FIND_FAULT(&fs, VIRTIO_IOMMU_FAULT_R_MAPPING, F_WRITE_ADDR, EP1,
               BUF_IOVA + 0x80, BUF_IOVA + 0x80);
    /* the write did not go through */
    CHECK_EQ(vit_count_not(v->qts, buf, PAGE, MARK), 0);
}

static void test_fault_writeonly(void *obj, void *data, QGuestAllocator *a)
{
    QViommu *v = obj;
    g_autoptr(Ep) ep = vit_ep_open(v, EP1_SLOT);
    uint64_t buf = guest_alloc(a, PAGE);
    Faults fs;

    /* the rings are write-only: the endpoint cannot read its avail ring */
    qviommu_post_events(v, 16, 32, QVIOMMU_FILL);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 1, EP1, 0), VIRTIO_IOMMU_S_OK);
    vit_ep_start_std(ep, 1, a, WO);
    vit_ep_map(ep, 1, BUF_IOVA, buf, PAGE, RW);
    qtest_memset(v->qts, buf, MARK, PAGE);
    vit_ep_submit(ep, 0, BUF_IOVA, 64);
    vit_collect_faults(v, &fs, FAULT_WAIT_US, QUIET_WAIT_US);
    FIND_FAULT(&fs, VIRTIO_IOMMU_FAULT_R_MAPPING, F_READ_ADDR, EP1,
               RING_IOVA, RING_IOVA + PAGE - 1);
    CHECK_EQ(vit_count_not(v->qts, buf, PAGE, MARK), 0);
}

static void test_fault_before_mapping(void *obj, void *data,
                                      QGuestAllocator *a)
{
    QViommu *v = obj;
    g_autoptr(Ep) ep = vit_ep_open(v, EP1_SLOT);
    uint64_t buf = guest_alloc(a, 2 * PAGE);
    Faults fs;

    /* the byte before a mapping is not mapped */
    qviommu_post_events(v, 16, 32, QVIOMMU_FILL);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 1, EP1, 0), VIRTIO_IOMMU_S_OK);
    vit_ep_start_std(ep, 1, a, RW);
    vit_ep_map(ep, 1, BUF_IOVA + PAGE, buf + PAGE, PAGE, RW);
    qtest_memset(v->qts, buf, MARK, 2 * PAGE);
    vit_ep_submit(ep, 0, BUF_IOVA + PAGE - 1, 2);
    vit_collect_faults(v, &fs, FAULT_WAIT_US, QUIET_WAIT_US);
    FIND_FAULT(&fs, VIRTIO_IOMMU_FAULT_R_MAPPING, F_WRITE_ADDR, EP1,
               BUF_IOVA + PAGE - 1, BUF_IOVA + PAGE - 1);
    /* nothing went to the physical byte before the mapped page */
    CHECK_EQ(vit_count_not(v->qts, buf, PAGE, MARK), 0);
}

static void test_fault_domain(void *obj, void *data, QGuestAllocator *a)
{
    QViommu *v = obj;
    g_autoptr(Ep) ep = vit_ep_open(v, EP1_SLOT);
    uint64_t ring;
    Faults fs;

    /* boot-bypass=off: an unattached endpoint is blocked */
    CHECK_EQ(vit_bypass_get(v), 0);
    qviommu_post_events(v, 16, 32, QVIOMMU_FILL);
    ring = vit_ep_start_std(ep, IDENTITY, a, RW);
    vit_ep_submit(ep, 0, ring + 0x800, 64);
    vit_collect_faults(v, &fs, FAULT_WAIT_US, QUIET_WAIT_US);
    FIND_FAULT(&fs, VIRTIO_IOMMU_FAULT_R_DOMAIN, F_READ_ADDR, EP1,
               ring, ring + PAGE - 1);
    CHECK(vit_ep_used_idx(ep) == 0);

    /* switching bypass on lets the endpoint through */
    vit_bypass_set(v, 1);
    {
        uint64_t buf = guest_alloc(a, PAGE);
        uint32_t id, len;

        qtest_memset(v->qts, buf, MARK, PAGE);
        vit_ep_close(ep);
        ep = vit_ep_open(v, EP1_SLOT);
        vit_ep_start_std(ep, IDENTITY, a, RW);
        vit_ep_submit(ep, 4, buf, 16);
        g_assert_true(vit_ep_wait_used(ep, &id, &len, QVIOMMU_TIMEOUT_US));
        CHECK_EQ(id, 4);
        CHECK_EQ(len, 16);
    }
}

static void test_fault_detached(void *obj, void *data, QGuestAllocator *a)
{
    QViommu *v = obj;
    g_autoptr(Ep) ep = vit_ep_open(v, EP1_SLOT);
    uint64_t buf = guest_alloc(a, PAGE);
    uint32_t id, len;
    Faults fs;

    /* works while attached ... */
    vit_bypass_set(v, 0);
    qviommu_post_events(v, 16, 32, QVIOMMU_FILL);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 1, EP1, 0), VIRTIO_IOMMU_S_OK);
    vit_ep_start_std(ep, 1, a, RW);
    vit_ep_map(ep, 1, BUF_IOVA, buf, PAGE, RW);
    vit_ep_submit(ep, 0, BUF_IOVA, 16);
    g_assert_true(vit_ep_wait_used(ep, &id, &len, QVIOMMU_TIMEOUT_US));

    /* ... and faults with reason DOMAIN once detached */
    QVIOMMU_EXPECT_STATUS(qviommu_detach_req(v, 1, EP1), VIRTIO_IOMMU_S_OK);
    qtest_memset(v->qts, buf, MARK, PAGE);
    vit_ep_submit(ep, 1, BUF_IOVA, 16);
    vit_collect_faults(v, &fs, FAULT_WAIT_US, QUIET_WAIT_US);
    FIND_FAULT(&fs, VIRTIO_IOMMU_FAULT_R_DOMAIN, F_READ_ADDR, EP1,
               RING_IOVA, RING_IOVA + PAGE - 1);
    CHECK_EQ(vit_count_not(v->qts, buf, PAGE, MARK), 0);
}

static void test_fault_queued(void *obj, void *data, QGuestAllocator *a)
{
    QViommu *v = obj;
    g_autoptr(Ep) ep = vit_ep_open(v, EP1_SLOT);
    Faults fs;

    /* the fault happens while the eventq has no buffer */
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 1, EP1, 0), VIRTIO_IOMMU_S_OK);
    vit_ep_start_std(ep, 1, a, RW);
    vit_ep_submit(ep, 0, BUF_IOVA, 64);
    g_usleep(QUIET_WAIT_US);
    /* an attach round trip makes sure the device had time to act */
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 2, EP2, 0), VIRTIO_IOMMU_S_OK);

    qviommu_post_events(v, 16, 32, QVIOMMU_FILL);
    vit_collect_faults(v, &fs, FAULT_WAIT_US, QUIET_WAIT_US);
    FIND_FAULT(&fs, VIRTIO_IOMMU_FAULT_R_MAPPING, F_WRITE_ADDR, EP1,
               BUF_IOVA, BUF_IOVA);
}

/*
 * Linux posts its eventq buffers without a notification and sends its
 * first requests right after: a fault that waited for a buffer goes out
 * with the next request, not only with the next fault or kick.
 */
static void test_fault_queued_quiet(void *obj, void *data,
                                    QGuestAllocator *a)
{
    QViommu *v = obj;
    g_autoptr(Ep) ep = vit_ep_open(v, EP1_SLOT);
    uint32_t size = vit_probe_size(v);
    g_autofree uint8_t *props = g_malloc(size + 4);
    Faults fs;

    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 1, EP1, 0), VIRTIO_IOMMU_S_OK);
    vit_ep_start_std(ep, 1, a, RW);
    vit_ep_submit(ep, 0, BUF_IOVA, 64);
    g_usleep(QUIET_WAIT_US);

    qviommu_post_events_quietly(v, 16, 32, QVIOMMU_FILL);
    QVIOMMU_EXPECT_STATUS(qviommu_probe_req(v, EP2, size, props),
                          VIRTIO_IOMMU_S_OK);
    vit_collect_faults(v, &fs, FAULT_WAIT_US, QUIET_WAIT_US);
    FIND_FAULT(&fs, VIRTIO_IOMMU_FAULT_R_MAPPING, F_WRITE_ADDR, EP1,
               BUF_IOVA, BUF_IOVA);
}

/*
 * DMA while no driver owns the device (boot-bypass=off): the endpoint's
 * first access faults with reason DOMAIN and the report waits for an
 * eventq buffer.  Returns the endpoint's ring address.
 */
static uint64_t fault_without_driver(QViommu *v, Ep *ep, QGuestAllocator *a)
{
    uint64_t ring;

    qviommu_stop(v);
    ring = vit_ep_start_std(ep, IDENTITY, a, RW);
    vit_ep_submit(ep, 0, ring + 0x800, 64);
    g_usleep(QUIET_WAIT_US);
    return ring;
}

/* Buffers posted before DRIVER_OK receive the waiting reports at once */
static void test_fault_queued_ready(void *obj, void *data,
                                    QGuestAllocator *a)
{
    QViommu *v = obj;
    g_autoptr(Ep) ep = vit_ep_open(v, EP1_SLOT);
    uint64_t ring = fault_without_driver(v, ep, a);
    Faults fs;

    qviommu_setup(v, qviommu_known_features(v));
    qviommu_post_events_quietly(v, 16, 32, QVIOMMU_FILL);
    qvirtio_set_driver_ok(v->vdev);
    vit_collect_faults(v, &fs, FAULT_WAIT_US, QUIET_WAIT_US);
    FIND_FAULT(&fs, VIRTIO_IOMMU_FAULT_R_DOMAIN, F_READ_ADDR, EP1,
               ring, ring + PAGE - 1);
}

/*
 * The DOMAIN fault of the endpoint's ring at @ring is not reported into
 * the buffers just posted until the driver sends a request.
 */
static void fault_held_until_request(QViommu *v, uint64_t ring)
{
    uint32_t size = vit_probe_size(v);
    g_autofree uint8_t *props = g_malloc(size + 4);
    uint8_t evt[32];
    uint32_t len;
    Faults fs;

    CHECK(!qviommu_next_event(v, evt, sizeof(evt), &len, QUIET_WAIT_US));
    QVIOMMU_EXPECT_STATUS(qviommu_probe_req(v, EP2, size, props),
                          VIRTIO_IOMMU_S_OK);
    vit_collect_faults(v, &fs, FAULT_WAIT_US, QUIET_WAIT_US);
    FIND_FAULT(&fs, VIRTIO_IOMMU_FAULT_R_DOMAIN, F_READ_ADDR, EP1,
               ring, ring + PAGE - 1);
}

/*
 * Buffers posted after DRIVER_OK without a notification stay untouched
 * until the driver's next request: Linux 6.12 posts its buffers that way
 * during its probe, and an event before the probe ends crashes it.
 */
static void test_fault_queued_late(void *obj, void *data, QGuestAllocator *a)
{
    QViommu *v = obj;
    g_autoptr(Ep) ep = vit_ep_open(v, EP1_SLOT);
    uint64_t ring = fault_without_driver(v, ep, a);

    qviommu_setup(v, qviommu_known_features(v));
    qvirtio_set_driver_ok(v->vdev);
    qviommu_post_events_quietly(v, 16, 32, QVIOMMU_FILL);
    fault_held_until_request(v, ring);
}

/*
 * A fault that happens once such buffers are there waits for the first
 * request too: the driver may still be in the middle of its probe.
 */
static void test_fault_before_request(void *obj, void *data,
                                      QGuestAllocator *a)
{
    QViommu *v = obj;
    g_autoptr(Ep) ep = vit_ep_open(v, EP1_SLOT);
    uint64_t ring;

    qviommu_start(v, qviommu_known_features(v));
    qviommu_post_events_quietly(v, 16, 32, QVIOMMU_FILL);
    ring = vit_ep_start_std(ep, IDENTITY, a, RW);
    vit_ep_submit(ep, 0, ring + 0x800, 64);
    fault_held_until_request(v, ring);
}

static void test_fault_small_buffer(void *obj, void *data,
                                    QGuestAllocator *a)
{
    QViommu *v = obj;
    g_autoptr(Ep) ep = vit_ep_open(v, EP1_SLOT);
    uint8_t buf[16];
    uint32_t len = 0xdead;
    unsigned i;

    qviommu_post_events(v, 1, 8, QVIOMMU_FILL);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 1, EP1, 0), VIRTIO_IOMMU_S_OK);
    vit_ep_start_std(ep, 1, a, RW);
    vit_ep_submit(ep, 0, BUF_IOVA, 64);
    if (!qviommu_next_event(v, buf, 8, &len, FAULT_WAIT_US)) {
        qviommu_report(__func__, __LINE__, "8-byte eventq buffer never used");
        return;
    }
    CHECK_EQ(len, 0);
    for (i = 0; i < 8; i++) {
        CHECK_EQ(buf[i], QVIOMMU_FILL);
    }
}

static void test_fault_overflow(void *obj, void *data, QGuestAllocator *a)
{
    QViommu *v = obj;
    g_autoptr(Ep) ep = vit_ep_open(v, EP1_SLOT);
    uint64_t ring;
    Faults fs;
    unsigned i;

    /* max-pending-faults=2,boot-bypass=off; no eventq buffer yet */
    ring = vit_ep_start_std(ep, IDENTITY, a, RW);
    for (i = 0; i < 8; i++) {
        vit_ep_submit(ep, i, ring + 0x800, 16);
    }
    g_usleep(QUIET_WAIT_US);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 1, EP2, 0), VIRTIO_IOMMU_S_OK);

    /* the first two were kept, the rest dropped */
    qviommu_post_events(v, 16, 32, QVIOMMU_FILL);
    vit_collect_faults(v, &fs, FAULT_WAIT_US, QUIET_WAIT_US);
    CHECK_EQ(fs.n, 2);
    FIND_FAULT(&fs, VIRTIO_IOMMU_FAULT_R_DOMAIN, F_READ_ADDR, EP1,
               ring, ring + PAGE - 1);

    /* reports flow again once there is room */
    vit_ep_submit(ep, 8, ring + 0x800, 16);
    vit_collect_faults(v, &fs, FAULT_WAIT_US, QUIET_WAIT_US);
    CHECK(fs.n >= 1);
    FIND_FAULT(&fs, VIRTIO_IOMMU_FAULT_R_DOMAIN, F_READ_ADDR, EP1,
               ring, ring + PAGE - 1);
}

/*
 * The core fix (patches/0001-*.patch): a used element that crosses an
 * IOVA page boundary must have its second half written through the
 * translation of the next IOVA page, not at the next physical address.
 */
static void test_used_elem_straddle(void *obj, void *data,
                                    QGuestAllocator *a)
{
    QViommu *v = obj;
    g_autoptr(Ep) ep = vit_ep_open(v, EP1_SLOT);
    const uint64_t x = RING_IOVA + 0x10000;     /* used ring pages */
    uint64_t ring = guest_alloc(a, PAGE);
    uint64_t pa_a = guest_alloc(a, 3 * PAGE);   /* A, then a marker page */
    uint64_t pa_b = guest_alloc(a, PAGE);
    uint64_t buf = guest_alloc(a, PAGE);
    uint32_t id, len, val;

    g_assert_cmphex(pa_b, !=, pa_a + PAGE);
    qviommu_post_events(v, 8, 32, QVIOMMU_FILL);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 1, EP1, 0), VIRTIO_IOMMU_S_OK);
    vit_ep_map(ep, 1, RING_IOVA, ring, PAGE, RW);
    vit_ep_map(ep, 1, x, pa_a, PAGE, RW);
    vit_ep_map(ep, 1, x + PAGE, pa_b, PAGE, RW);
    vit_ep_map(ep, 1, BUF_IOVA, buf, PAGE, RW);
    qtest_memset(v->qts, pa_a, 0, PAGE);
    qtest_memset(v->qts, pa_a + PAGE, MARK, 2 * PAGE);
    qtest_memset(v->qts, pa_b, 0xee, PAGE);

    /*
     * used ring at x + 4088: flags and idx end page x, element 0 is
     * x + 4092 .. x + 4099, its id in page x and its len in page x + 1.
     */
    vit_ep_start(ep, RING_SIZE, RING_IOVA, RING_IOVA + 0x100, x + PAGE - 8);
    vit_ep_submit(ep, 3, BUF_IOVA, 64);
    g_assert_true(vit_ep_wait_used(ep, &id, &len, QVIOMMU_TIMEOUT_US));

    /* the element as the guest sees it, page by page */
    CHECK_EQ(id, 3);
    CHECK_EQ(len, 64);
    qtest_memread(v->qts, pa_a + PAGE - 4, &val, 4);
    CHECK_EQ(le32_to_cpu(val), 3);
    qtest_memread(v->qts, pa_b, &val, 4);
    CHECK_EQ(le32_to_cpu(val), 64);
    /* and nothing landed in the physical page after A */
    if (!CHECK_EQ(vit_count_not(v->qts, pa_a + PAGE, 2 * PAGE, MARK), 0)) {
        qtest_memread(v->qts, pa_a + PAGE, &val, 4);
        qviommu_report(__func__, __LINE__, "the page after A starts with "
                       "0x%08x: the used element's len was written at the next "
                       "physical address instead of the next IOVA page (core "
                       "patch missing?)", le32_to_cpu(val));
    }
}

/* ------------------------------------------------------------------ */
/* edu: a PCI device whose DMA engine copies to and from any address   */

#define EDU_SLOT                9
#define EDU2_SLOT               10

/*
 * The edges of a mapping, one byte at a time so that each DMA's address
 * is the one translated (nothing cached covers it): the mapping's last
 * byte translates, the byte after it faults, and the machine's MSI
 * doorbell, which no mapping covers, is reached untranslated.
 */
#define EDGE_ENDPOINTS          ENDPOINTS EDU_ARG("09.0")

static void test_dma_edges(void *obj, void *data, QGuestAllocator *a)
{
    QViommu *v = obj;
    g_autoptr(Edu) edu = vit_edu_open(v, EDU_SLOT);
    uint64_t buf = guest_alloc(a, 2 * PAGE), src = guest_alloc(a, PAGE);
    const uint64_t iova = 0x40000000, iova_src = 0x50000000;
    Machine m;
    Faults fs;

    if (!vit_machine_info(v, data, &m)) {
        return;
    }
    qviommu_post_events(v, 16, sizeof(struct virtio_iommu_fault),
                        QVIOMMU_FILL);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 1, edu->id, 0),
                          VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, iova, iova + PAGE - 1, buf,
                                          RW), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, iova_src,
                                          iova_src + PAGE - 1, src, RO),
                          VIRTIO_IOMMU_S_OK);
    qtest_memset(v->qts, buf, 0, 2 * PAGE);
    qtest_memset(v->qts, src, MARK, PAGE);
    vit_edu_dma(edu, iova_src, 4, false);

    /* the last byte: written, no fault */
    vit_edu_dma(edu, iova + PAGE - 1, 1, true);
    CHECK_EQ(qtest_readb(v->qts, buf + PAGE - 1), MARK);
    /* the byte after: a fault, and nothing written past the page */
    vit_edu_dma(edu, iova + PAGE, 1, true);
    vit_collect_faults(v, &fs, FAULT_WAIT_US, QUIET_WAIT_US);
    FIND_FAULT(&fs, VIRTIO_IOMMU_FAULT_R_MAPPING, F_WRITE_ADDR, edu->id,
               iova + PAGE, iova + PAGE);
    CHECK_EQ(vit_count_not(v->qts, buf, PAGE - 1, 0), 0);
    CHECK_EQ(vit_count_not(v->qts, buf + PAGE, PAGE, 0), 0);

    /* an MSI write: untranslated, no fault */
    vit_edu_dma(edu, m.msi.start, 4, true);
    vit_collect_faults(v, &fs, QUIET_WAIT_US, QUIET_WAIT_US);
    if (fs.n) {
        qviommu_report(__func__, __LINE__, "an MSI write to 0x%" PRIx64
                       " faulted", m.msi.start);
        vit_print_faults(&fs);
    }
}

/* ------------------------------------------------------------------ */
/* DMA aliases: conventional PCI behind a bridge                       */

/*
 * An edu at 01.0 on the bus of a bridge at 0b.0.  Behind a PCIe-to-PCI
 * bridge (q35, virt) its DMA carries the alias (secondary bus, devfn 0),
 * behind a conventional PCI bridge (pc) the bridge's own ID.  Both the
 * edu's own ID and the alias are endpoints; the alias's domain translates,
 * and faults name the alias.
 */
#define BRIDGE_SLOT             0x0b
#define BRIDGE_BUS              1
#define ALIAS_EDU_DEVFN         QPCI_DEVFN(1, 0)
#define ALIAS_EDU               (BRIDGE_BUS << 8 | ALIAS_EDU_DEVFN)
#define ALIAS_NO_FN             (BRIDGE_BUS << 8 | QPCI_DEVFN(2, 0))
#define ALIAS_EDU_ARG           " -device edu,bus=br,addr=01.0"         \
                                ",dma_mask=0xffffffffffffffff"
#define PCIE_BRIDGE_ENDPOINTS   ENDPOINTS                               \
    " -device pcie-pci-bridge,id=br,addr=0b.0" ALIAS_EDU_ARG
#define PCI_BRIDGE_ENDPOINTS    ENDPOINTS                               \
    " -device pci-bridge,id=br,chassis_nr=1,addr=0b.0" ALIAS_EDU_ARG

/* Number the bridge's bus and open its window to the edu's 1 MiB BAR */
static Edu *alias_edu_open(QViommu *v)
{
    g_autofree QPCIDevice *bridge =
        qpci_device_find(v->transport->pdev->bus, QPCI_DEVFN(BRIDGE_SLOT, 0));

    g_assert_nonnull(bridge);
    vit_bridge_number(bridge, BRIDGE_BUS);
    vit_bridge_window(bridge, MiB);
    return vit_edu_open_id(v, ALIAS_EDU);
}

static void test_dma_alias(void *obj, void *data, QGuestAllocator *a)
{
    QViommu *v = obj;
    const TestCfg *cfg = data;
    /* q35 and virt: PCIe-to-PCI bridge; pc: the bridge's own ID */
    const uint32_t alias = vit_arch_is_x86() && !cfg->q35 ?
                           QPCI_DEVFN(BRIDGE_SLOT, 0) : BRIDGE_BUS << 8;
    g_autoptr(Edu) edu = alias_edu_open(v);
    uint32_t size = vit_probe_size(v);
    g_autofree uint8_t *props = g_malloc(size + 4);
    uint64_t src = guest_alloc(a, PAGE), dst = guest_alloc(a, PAGE);
    const uint64_t iova_src = 0x40000000, iova_dst = 0x40001000;
    const uint64_t iova_d1 = 0x50000000;
    Faults fs;

    /* Both IDs are endpoints; an empty slot behind the bridge is not */
    QVIOMMU_EXPECT_STATUS(qviommu_probe_req(v, ALIAS_EDU, size, props),
                          VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_probe_req(v, alias, size, props),
                          VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_probe_req(v, ALIAS_NO_FN, size, props),
                          VIRTIO_IOMMU_S_NOENT);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 3, ALIAS_NO_FN, 0),
                          VIRTIO_IOMMU_S_NOENT);

    /* The edu's own ID attached, the alias not: its DMA is unattached */
    vit_bypass_set(v, 0);
    qviommu_post_events(v, 16, 32, QVIOMMU_FILL);
    qtest_memset(v->qts, src, MARK, PAGE);
    qtest_memset(v->qts, dst, 0, PAGE);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 1, ALIAS_EDU, 0),
                          VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, iova_src, iova_src + PAGE - 1,
                                          src, RW), VIRTIO_IOMMU_S_OK);
    vit_edu_dma(edu, iova_src, 4, false);
    vit_collect_faults(v, &fs, FAULT_WAIT_US, QUIET_WAIT_US);
    FIND_FAULT(&fs, VIRTIO_IOMMU_FAULT_R_DOMAIN, F_READ_ADDR, alias,
               iova_src, iova_src);

    /* The alias attached to domain 2: domain 2 translates, not domain 1 */
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 2, alias, 0),
                          VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 2, iova_src, iova_src + PAGE - 1,
                                          src, RO), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 2, iova_dst, iova_dst + PAGE - 1,
                                          dst, WO), VIRTIO_IOMMU_S_OK);
    vit_edu_dma(edu, iova_src, 64, false);
    vit_edu_dma(edu, iova_dst, 64, true);
    CHECK_EQ(vit_count_not(v->qts, dst, 64, MARK), 0);
    CHECK_EQ(vit_count_not(v->qts, dst + 64, PAGE - 64, 0), 0);

    /* A mapping of domain 1 only: a fault, which names the alias */
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, iova_d1, iova_d1 + PAGE - 1,
                                          dst, RW), VIRTIO_IOMMU_S_OK);
    qviommu_post_events(v, 16, 32, QVIOMMU_FILL);
    vit_edu_dma(edu, iova_d1, 4, true);
    vit_collect_faults(v, &fs, FAULT_WAIT_US, QUIET_WAIT_US);
    FIND_FAULT(&fs, VIRTIO_IOMMU_FAULT_R_MAPPING, F_WRITE_ADDR, alias,
               iova_d1, iova_d1);

    /* Each ID leaves its own domain; without the alias, blocked again */
    QVIOMMU_EXPECT_STATUS(qviommu_detach_req(v, 1, ALIAS_EDU),
                          VIRTIO_IOMMU_S_OK);
    vit_edu_dma(edu, iova_dst, 4, true);
    CHECK_EQ(vit_count_not(v->qts, dst, 64, MARK), 0);
    QVIOMMU_EXPECT_STATUS(qviommu_detach_req(v, 2, alias), VIRTIO_IOMMU_S_OK);
    qviommu_post_events(v, 16, 32, QVIOMMU_FILL);
    vit_edu_dma(edu, iova_dst, 4, false);
    vit_collect_faults(v, &fs, FAULT_WAIT_US, QUIET_WAIT_US);
    FIND_FAULT(&fs, VIRTIO_IOMMU_FAULT_R_DOMAIN, F_READ_ADDR, alias,
               iova_dst, iova_dst);
    CHECK_STAT(v, "attached-endpoints", 0);
}

/* ------------------------------------------------------------------ */
/* Limits: exactly at each limit, and one past it                      */

/* Four endpoints: EP1-EP3 and an edu */
#define LIMIT_ENDPOINTS         ENDPOINTS3 EDU_ARG("09.0")
#define EP4                     QPCI_DEVFN(EDU_SLOT, 0)

static void test_limit_domains(void *obj, void *data, QGuestAllocator *a)
{
    QViommu *v = obj;

    /* id=viommu,max-domains=3; four endpoints */
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 1, EP1, 0), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 2, EP2,
                                             VIRTIO_IOMMU_ATTACH_F_BYPASS),
                          VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 3, EP3, 0), VIRTIO_IOMMU_S_OK);
    CHECK_STAT(v, "domains", 3);
    CHECK_STAT(v, "attached-endpoints", 3);
    CHECK_STAT(v, "attach/ok", 3);

    /* a fourth domain, translating or bypass */
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 4, EP4, 0),
                          VIRTIO_IOMMU_S_NOMEM);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 4, EP4,
                                             VIRTIO_IOMMU_ATTACH_F_BYPASS),
                          VIRTIO_IOMMU_S_NOMEM);
    CHECK_STAT(v, "attach/nomem", 2);
    CHECK_STAT(v, "domains", 3);
    CHECK_STAT(v, "attached-endpoints", 3);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 4, 0, PAGE - 1, 0, RW),
                          VIRTIO_IOMMU_S_NOENT);

    /* joining a domain that exists needs none */
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 1, EP4, 0), VIRTIO_IOMMU_S_OK);
    CHECK_STAT(v, "domains", 3);
    CHECK_STAT(v, "attached-endpoints", 4);

    /* at the limit, moving alone to a new domain frees the old one... */
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 5, EP3, 0), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 3, 0, PAGE - 1, 0, RW),
                          VIRTIO_IOMMU_S_NOENT);
    /* ... but leaving a shared one does not */
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 6, EP1, 0),
                          VIRTIO_IOMMU_S_NOMEM);
    CHECK_STAT(v, "attach/nomem", 3);
    CHECK_STAT(v, "domains", 3);

    /* one domain gone, room for one */
    QVIOMMU_EXPECT_STATUS(qviommu_detach_req(v, 2, EP2), VIRTIO_IOMMU_S_OK);
    CHECK_STAT(v, "domains", 2);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 6, EP1, 0), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 7, EP2, 0),
                          VIRTIO_IOMMU_S_NOMEM);
    CHECK_STAT(v, "domains", 3);
    CHECK_STAT(v, "attach/nomem", 4);
    CHECK_STAT(v, "attach/ok", 6);

    /* a device reset empties everything */
    qviommu_start(v, qviommu_known_features(v));
    CHECK_STAT(v, "domains", 0);
    CHECK_STAT(v, "attached-endpoints", 0);
}

static void test_limit_domain_id(void *obj, void *data, QGuestAllocator *a)
{
    QViommu *v = obj;

    /* id=viommu,max-domain-id=7 */
    CHECK_EQ(qviommu_config_readl(v, CFG_OFF(domain_range.start)), 0);
    CHECK_EQ(qviommu_config_readl(v, CFG_OFF(domain_range.end)), 7);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 7, EP1, 0), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 8, EP2, 0),
                          VIRTIO_IOMMU_S_RANGE);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 8, EP2,
                                             VIRTIO_IOMMU_ATTACH_F_BYPASS),
                          VIRTIO_IOMMU_S_RANGE);
    CHECK_STAT(v, "attach/ok", 1);
    CHECK_STAT(v, "attach/range", 2);
    CHECK_STAT(v, "domains", 1);
    CHECK_STAT(v, "attached-endpoints", 1);

    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 7, 0, PAGE - 1, 0, RW),
                          VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 8, 0, PAGE - 1, 0, RW),
                          VIRTIO_IOMMU_S_RANGE);
    QVIOMMU_EXPECT_STATUS(qviommu_unmap_req(v, 8, 0, PAGE - 1),
                          VIRTIO_IOMMU_S_RANGE);
    QVIOMMU_EXPECT_STATUS(qviommu_detach_req(v, 8, EP1), VIRTIO_IOMMU_S_RANGE);
    CHECK_STAT(v, "map/range", 1);
    CHECK_STAT(v, "unmap/range", 1);
    CHECK_STAT(v, "detach/range", 1);
    CHECK_STAT(v, "mappings", 1);

    QVIOMMU_EXPECT_STATUS(qviommu_unmap_req(v, 7, 0, PAGE - 1),
                          VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_detach_req(v, 7, EP1), VIRTIO_IOMMU_S_OK);
    CHECK_STAT(v, "domains", 0);
    CHECK_STAT(v, "mappings", 0);
}

#define HIGH                    0x100000000ull

static void test_limit_mappings(void *obj, void *data, QGuestAllocator *a)
{
    QViommu *v = obj;
    unsigned i;

    /* id=viommu,max-mappings=5, counted over all domains */
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 1, EP1, 0), VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_attach_req(v, 2, EP2, 0), VIRTIO_IOMMU_S_OK);
    for (i = 0; i < 3; i++) {
        QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, i * PAGE,
                                              i * PAGE + PAGE - 1, 0, RW),
                              VIRTIO_IOMMU_S_OK);
    }
    /* one mapping is one, however large (above the MSI windows) */
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 2, HIGH, HIGH + GiB - 1, 0, RW),
                          VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 2, HIGH + GiB,
                                          HIGH + GiB + PAGE - 1, 0, RO),
                          VIRTIO_IOMMU_S_OK);
    CHECK_STAT(v, "mappings", 5);
    CHECK_STAT(v, "map/ok", 5);

    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, 3 * PAGE, 4 * PAGE - 1, 0, RW),
                          VIRTIO_IOMMU_S_NOMEM);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 2, HIGH + 2 * GiB,
                                          HIGH + 2 * GiB + PAGE - 1, 0, RW),
                          VIRTIO_IOMMU_S_NOMEM);
    CHECK_STAT(v, "map/nomem", 2);
    CHECK_STAT(v, "mappings", 5);
    /* the overlap check comes first */
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, 0, PAGE - 1, 0, RW),
                          VIRTIO_IOMMU_S_INVAL);

    /* one UNMAP removes two: room for two */
    QVIOMMU_EXPECT_STATUS(qviommu_unmap_req(v, 2, HIGH, HIGH + 2 * GiB - 1),
                          VIRTIO_IOMMU_S_OK);
    CHECK_STAT(v, "mappings", 3);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 1, 3 * PAGE, 4 * PAGE - 1, 0, RW),
                          VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 2, 0, PAGE - 1, 0, RW),
                          VIRTIO_IOMMU_S_OK);
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 2, PAGE, 2 * PAGE - 1, 0, RW),
                          VIRTIO_IOMMU_S_NOMEM);
    CHECK_STAT(v, "mappings", 5);
    CHECK_STAT(v, "map/nomem", 3);

    /* a domain that dies takes its mappings out of the count */
    QVIOMMU_EXPECT_STATUS(qviommu_detach_req(v, 1, EP1), VIRTIO_IOMMU_S_OK);
    CHECK_STAT(v, "mappings", 1);
    for (i = 1; i < 5; i++) {
        QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 2, i * PAGE,
                                              i * PAGE + PAGE - 1, 0, RW),
                              VIRTIO_IOMMU_S_OK);
    }
    QVIOMMU_EXPECT_STATUS(qviommu_map_req(v, 2, 5 * PAGE, 6 * PAGE - 1, 0, RW),
                          VIRTIO_IOMMU_S_NOMEM);
    CHECK_STAT(v, "mappings", 5);
    CHECK_STAT(v, "map/ok", 11);
    CHECK_STAT(v, "map/nomem", 4);
}

/* Fault reports in the order the device sent them */
static void expect_faults(const char *fn, int line, QViommu *v,
                          const uint64_t *addr, unsigned n, uint32_t ep)
{
    Faults fs;
    unsigned i;

    vit_collect_faults(v, &fs, FAULT_WAIT_US, QUIET_WAIT_US);
    if (fs.n != n) {
        qviommu_report(fn, line, "expected %u fault reports, got %u", n, fs.n);
        vit_print_faults(&fs);
        return;
    }
    for (i = 0; i < n; i++) {
        if (fs.f[i].address != addr[i] || fs.f[i].endpoint != ep ||
            fs.f[i].reason != VIRTIO_IOMMU_FAULT_R_DOMAIN ||
            fs.f[i].flags != F_READ_ADDR) {
            qviommu_report(fn, line, "fault report %u: want DOMAIN read of "
                           "0x%" PRIx64 " by 0x%x", i, addr[i], ep);
            vit_print_faults(&fs);
            return;
        }
    }
}

static void test_limit_faults(void *obj, void *data, QGuestAllocator *a)
{
    QViommu *v = obj;
    g_autoptr(Edu) edu = vit_edu_open(v, EDU_SLOT);
    uint64_t addr[5];
    unsigned i;

    /*
     * id=viommu,max-pending-faults=3,boot-bypass=off: every DMA of the
     * unattached edu faults, one report per DMA; no eventq buffer yet.
     */
    for (i = 0; i < 5; i++) {
        addr[i] = 0x10000000 + i * PAGE + 8 * i;
    }
    for (i = 0; i < 3; i++) {
        vit_edu_dma(edu, addr[i], 4, false);
    }
    CHECK_STAT(v, "faults-reported", 3);
    CHECK_STAT(v, "faults-dropped", 0);
    CHECK_STAT(v, "faults-delivered", 0);
    vit_edu_dma(edu, addr[3], 4, false);
    CHECK_STAT(v, "faults-reported", 3);
    CHECK_STAT(v, "faults-dropped", 1);

    /* the three that were kept, oldest first; the fourth is lost */
    qviommu_post_events(v, 8, sizeof(struct virtio_iommu_fault), QVIOMMU_FILL);
    expect_faults(__func__, __LINE__, v, addr, 3, edu->id);
    CHECK_STAT(v, "faults-delivered", 3);

    /* with buffers posted, reports flow again */
    vit_edu_dma(edu, addr[4], 4, false);
    expect_faults(__func__, __LINE__, v, addr + 4, 1, edu->id);
    CHECK_STAT(v, "faults-reported", 4);
    CHECK_STAT(v, "faults-delivered", 4);
    CHECK_STAT(v, "faults-dropped", 1);
}

/* ------------------------------------------------------------------ */
/* Stress: a request storm while two edu devices DMA through the IOMMU */

/*
 * Three virtio-rng endpoints move between six domains while MAP and UNMAP
 * requests churn those domains, a whole ring of requests per kick, in
 * random order; the test keeps a model of the state and predicts every
 * status.  Two edu devices stay in domains 1 and 2 and copy pages between
 * IOVAs of a DMA window that the storm keeps remapping to other pages of
 * a pool: after every batch the data must have gone exactly where the
 * model says, the counters must match the model and stay within
 * max-mappings, and QEMU's memory must not grow.
 */
#define STORM_ENDPOINTS         ENDPOINTS3 EDU_ARG("09.0") EDU_ARG("0a.0")
#define STORM_MAX_MAPPINGS      160
#define STORM_OPTS              "id=" IOMMU_ID ",max-mappings=160"
#define STORM_DOMAINS           6
#define STORM_EPS               5   /* EP1-EP3 move; the two edu stay */
#define STORM_ROUNDS            32
#define STORM_BATCH             128 /* two descriptors each: a full ring */
#define STORM_SEED              0x5eed1e55
#define CHURN_IOVA              0x200000000ull
#define CHURN_PAGES             512
#define WIN_IOVA                0x300000000ull
#define WIN_PAGES               16
#define POOL_PAGES              64
#define RSS_GROWTH_MAX          (32 * MiB)

typedef struct SMap {
    uint64_t start;
    uint64_t end;
    uint64_t phys;
    uint32_t flags;
} SMap;

typedef struct Storm {
    QViommu *v;
    GRand *rand;
    GArray *maps[STORM_DOMAINS + 1];    /* SMap, by domain 1..6 */
    unsigned nr_eps[STORM_DOMAINS + 1];
    uint32_t ep_domain[STORM_EPS];      /* 0: unattached */
    unsigned nr_maps;
    uint64_t want[VIRTIO_IOMMU_T_PROBE + 1][VIRTIO_IOMMU_S_NOMEM + 1];
    uint64_t pool;                      /* guest physical */
    uint8_t *shadow;                    /* what the pool must hold */
    Edu *edu[2];
    unsigned faulting_dma;
} Storm;

static uint32_t storm_ep_id(unsigned ep)
{
    static const uint32_t ids[STORM_EPS] = {
        EP1, EP2, EP3, QPCI_DEVFN(EDU_SLOT, 0), QPCI_DEVFN(EDU2_SLOT, 0),
    };

    return ids[ep];
}

static void storm_leave(Storm *s, unsigned ep)
{
    uint32_t d = s->ep_domain[ep];

    if (!d) {
        return;
    }
    s->ep_domain[ep] = 0;
    if (!--s->nr_eps[d]) {
        /* the last endpoint takes the domain and its mappings along */
        s->nr_maps -= s->maps[d]->len;
        g_array_set_size(s->maps[d], 0);
    }
}

static uint8_t storm_attach(Storm *s, unsigned ep, uint32_t d)
{
    storm_leave(s, ep);
    s->ep_domain[ep] = d;
    s->nr_eps[d]++;
    return VIRTIO_IOMMU_S_OK;
}

static uint8_t storm_detach(Storm *s, unsigned ep, uint32_t d)
{
    if (s->ep_domain[ep] != d) {
        return VIRTIO_IOMMU_S_INVAL;
    }
    storm_leave(s, ep);
    return VIRTIO_IOMMU_S_OK;
}

static uint8_t storm_map(Storm *s, uint32_t d, const SMap *m)
{
    guint i;

    if (!s->nr_eps[d]) {
        return VIRTIO_IOMMU_S_NOENT;
    }
    for (i = 0; i < s->maps[d]->len; i++) {
        SMap *x = &g_array_index(s->maps[d], SMap, i);

        if (x->start <= m->end && m->start <= x->end) {
            return VIRTIO_IOMMU_S_INVAL;
        }
    }
    if (s->nr_maps >= STORM_MAX_MAPPINGS) {
        return VIRTIO_IOMMU_S_NOMEM;
    }
    g_array_append_val(s->maps[d], *m);
    s->nr_maps++;
    return VIRTIO_IOMMU_S_OK;
}

static uint8_t storm_unmap(Storm *s, uint32_t d, uint64_t start,
                           uint64_t end)
{
    guint i;

    if (!s->nr_eps[d]) {
        return VIRTIO_IOMMU_S_NOENT;
    }
    for (i = 0; i < s->maps[d]->len; i++) {
        SMap *x = &g_array_index(s->maps[d], SMap, i);

        if ((x->start < start && x->end >= start) ||
            (x->start <= end && x->end > end)) {
            return VIRTIO_IOMMU_S_RANGE;
        }
    }
    for (i = 0; i < s->maps[d]->len;) {
        SMap *x = &g_array_index(s->maps[d], SMap, i);

        if (x->start >= start && x->end <= end) {
            g_array_remove_index_fast(s->maps[d], i);
            s->nr_maps--;
        } else {
            i++;
        }
    }
    return VIRTIO_IOMMU_S_OK;
}

/* The mapping of @iova in domain @d, or NULL */
static SMap *storm_lookup(Storm *s, uint32_t d, uint64_t iova)
{
    guint i;

    for (i = 0; i < s->maps[d]->len; i++) {
        SMap *x = &g_array_index(s->maps[d], SMap, i);

        if (iova >= x->start && iova <= x->end) {
            return x;
        }
    }
    return NULL;
}

static uint32_t storm_rand(Storm *s, uint32_t n)
{
    return g_rand_int_range(s->rand, 0, n);
}

/* One random request, its status as the model predicts it */
static uint8_t storm_request(Storm *s, QViommuReq *b, uint32_t *len,
                             uint8_t *type)
{
    unsigned pick = storm_rand(s, 100);
    unsigned ep = storm_rand(s, 3);
    uint32_t d = 1 + storm_rand(s, STORM_DOMAINS);
    uint32_t edu_d = 1 + storm_rand(s, 2);
    SMap m;

    if (pick < 10) {
        *type = VIRTIO_IOMMU_T_ATTACH;
        *len = qviommu_enc_attach(b, d, storm_ep_id(ep), 0);
        return storm_attach(s, ep, d);
    }
    if (pick < 18) {
        if (storm_rand(s, 2) && s->ep_domain[ep]) {
            d = s->ep_domain[ep];
        }
        *type = VIRTIO_IOMMU_T_DETACH;
        *len = qviommu_enc_detach(b, d, storm_ep_id(ep));
        return storm_detach(s, ep, d);
    }
    if (pick < 50) {
        m.start = CHURN_IOVA + storm_rand(s, CHURN_PAGES) * PAGE;
        m.end = m.start + (1 + storm_rand(s, 8)) * PAGE - 1;
        m.phys = storm_rand(s, 0x10000) * PAGE;
        m.flags = RW;
        *type = VIRTIO_IOMMU_T_MAP;
        *len = qviommu_enc_map(b, d, m.start, m.end, m.phys, m.flags);
        return storm_map(s, d, &m);
    }
    if (pick < 72) {
        uint64_t start = CHURN_IOVA + storm_rand(s, CHURN_PAGES) * PAGE;
        uint64_t end = start + (1 + storm_rand(s, 16)) * PAGE - 1;

        if (pick < 22) {
            start = CHURN_IOVA;
            end = CHURN_IOVA + CHURN_PAGES * PAGE - 1;
        }
        *type = VIRTIO_IOMMU_T_UNMAP;
        *len = qviommu_enc_unmap(b, d, start, end);
        return storm_unmap(s, d, start, end);
    }
    /* the DMA windows of the two edu */
    m.start = WIN_IOVA + storm_rand(s, WIN_PAGES) * PAGE;
    m.end = m.start + PAGE - 1;
    if (pick < 86) {
        *type = VIRTIO_IOMMU_T_UNMAP;
        *len = qviommu_enc_unmap(b, edu_d, m.start, m.end);
        return storm_unmap(s, edu_d, m.start, m.end);
    }
    m.phys = s->pool + storm_rand(s, POOL_PAGES) * PAGE;
    m.flags = 1 + storm_rand(s, 3);
    *type = VIRTIO_IOMMU_T_MAP;
    *len = qviommu_enc_map(b, edu_d, m.start, m.end, m.phys, m.flags);
    return storm_map(s, edu_d, &m);
}

/* One kick with @n requests; every status as predicted */
static void storm_batch(Storm *s, unsigned n, bool setup)
{
    g_autofree QViommuReq *b = g_new0(QViommuReq, n);
    g_autofree uint8_t *out = g_malloc0(n * 4);
    g_autofree QViommuXfer *x = g_new0(QViommuXfer, n);
    g_autofree uint32_t *used = g_new0(uint32_t, n);
    g_autofree uint8_t *want = g_new0(uint8_t, n);
    g_autofree uint8_t *type = g_new0(uint8_t, n);
    unsigned i;

    memset(out, QVIOMMU_FILL, n * 4);
    for (i = 0; i < n; i++) {
        uint32_t len;

        if (setup) {
            /* each edu alone in its domain, its window on pool pages */
            unsigned ep = 3 + i / (WIN_PAGES + 1);
            unsigned k = i % (WIN_PAGES + 1);
            SMap m = {
                WIN_IOVA + (k - 1) * PAGE, WIN_IOVA + k * PAGE - 1,
                s->pool + (k - 1) * PAGE, RW,
            };

            if (!k) {
                type[i] = VIRTIO_IOMMU_T_ATTACH;
                len = qviommu_enc_attach(&b[i], ep - 2, storm_ep_id(ep), 0);
                want[i] = storm_attach(s, ep, ep - 2);
            } else {
                type[i] = VIRTIO_IOMMU_T_MAP;
                len = qviommu_enc_map(&b[i], ep - 2, m.start, m.end,
                                      m.phys, RW);
                want[i] = storm_map(s, ep - 2, &m);
            }
        } else {
            want[i] = storm_request(s, &b[i], &len, &type[i]);
        }
        s->want[type[i]][want[i]]++;
        x[i] = (QViommuXfer) {
            .in = &b[i], .in_len = len, .out = out + 4 * i, .out_len = 4,
        };
    }
    qviommu_xfer_batch(s->v, x, n, used);
    for (i = 0; i < n; i++) {
        if (!QVIOMMU_EXPECT_STATUS(qviommu_res_of(used[i], out + 4 * i, 4),
                                   want[i])) {
            qviommu_report(__func__, __LINE__, "(request %u of the batch, type "
                           "%u)", i, type[i]);
        }
    }
}

/* The counters against the model */
static void storm_check_stats(Storm *s)
{
    QDict *stats = vit_stats_get(s->v->qts);
    unsigned domains = 0, attached = 0, i, j;

    for (i = 1; i <= STORM_DOMAINS; i++) {
        domains += !!s->nr_eps[i];
    }
    for (i = 0; i < STORM_EPS; i++) {
        attached += !!s->ep_domain[i];
    }
    CHECK(vit_stat_of(stats, "mappings") <= STORM_MAX_MAPPINGS);
    CHECK_EQ(vit_stat_of(stats, "mappings"), s->nr_maps);
    CHECK_EQ(vit_stat_of(stats, "domains"), domains);
    CHECK_EQ(vit_stat_of(stats, "attached-endpoints"), attached);
    CHECK_EQ(vit_stat_of(stats, "faults-reported") +
             vit_stat_of(stats, "faults-dropped"), s->faulting_dma);
    for (i = VIRTIO_IOMMU_T_ATTACH; i <= VIRTIO_IOMMU_T_UNMAP; i++) {
        static const char *const names[] = {
            NULL, "attach", "detach", "map", "unmap",
        };
        static const char *const statuses[] = {
            "ok", "ioerr", "unsupp", "deverr", "inval", "range", "noent",
            "fault", "nomem",
        };

        for (j = 0; j <= VIRTIO_IOMMU_S_NOMEM; j++) {
            g_autofree char *name = g_strdup_printf("%s/%s", names[i],
                                                    statuses[j]);

            vit_check_eq(__func__, __LINE__, name, vit_stat_of(stats, name),
                         s->want[i][j]);
        }
    }
    qobject_unref(stats);
}

/* A window page of domain @d the edu may read (or write) */
static SMap *storm_window_page(Storm *s, uint32_t d, uint32_t need)
{
    unsigned start = storm_rand(s, WIN_PAGES), i;

    for (i = 0; i < WIN_PAGES; i++) {
        uint64_t iova = WIN_IOVA + ((start + i) % WIN_PAGES) * PAGE;
        SMap *m = storm_lookup(s, d, iova);

        if (m && (m->flags & need) == need) {
            return m;
        }
    }
    return NULL;
}

/*
 * Each edu copies a window page it may read to one it may write, through
 * whatever the storm left mapped, and writes to a page it may not write,
 * which must fault and change nothing.
 */
static void storm_dma(Storm *s)
{
    QTestState *qts = s->v->qts;
    uint8_t pattern[PAGE];
    unsigned e, i;

    for (e = 0; e < 2; e++) {
        uint32_t d = e + 1;
        SMap *src = storm_window_page(s, d, VIRTIO_IOMMU_MAP_F_READ);
        SMap *dst = storm_window_page(s, d, VIRTIO_IOMMU_MAP_F_WRITE);
        uint64_t iova;

        if (src && dst) {
            uint64_t from = src->phys - s->pool, to = dst->phys - s->pool;

            for (i = 0; i < PAGE; i++) {
                pattern[i] = storm_rand(s, 256);
            }
            qtest_memwrite(qts, src->phys, pattern, PAGE);
            memcpy(s->shadow + from, pattern, PAGE);
            vit_edu_dma(s->edu[e], src->start, PAGE, false);
            vit_edu_dma(s->edu[e], dst->start, PAGE, true);
            memcpy(s->shadow + to, pattern, PAGE);
        }

        /* a page it may not write */
        for (i = 0; i < WIN_PAGES; i++) {
            SMap *m;

            iova = WIN_IOVA + i * PAGE;
            m = storm_lookup(s, d, iova);
            if (!m || !(m->flags & VIRTIO_IOMMU_MAP_F_WRITE)) {
                vit_edu_dma(s->edu[e], iova, 4, true);
                s->faulting_dma++;
                break;
            }
        }
    }

    /* the pool holds exactly what the model says */
    {
        g_autofree uint8_t *pool = g_malloc(POOL_PAGES * PAGE);

        qtest_memread(qts, s->pool, pool, POOL_PAGES * PAGE);
        for (i = 0; i < POOL_PAGES; i++) {
            if (memcmp(pool + i * PAGE, s->shadow + i * PAGE, PAGE)) {
                qviommu_report(__func__, __LINE__, "pool page %u does not hold "
                               "what the DMA through the mappings put there",
                               i);
            }
        }
    }
}

/* A /proc/PID/status field of the QEMU under test, 0 if unreadable */
static uint64_t qemu_status_kb(QTestState *qts, const char *field)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/status",
                                            (int)qtest_pid(qts));
    g_autofree char *text = NULL;
    const char *p;

    if (!g_file_get_contents(path, &text, NULL, NULL)) {
        return 0;
    }
    p = strstr(text, field);
    return p ? g_ascii_strtoull(p + strlen(field), NULL, 10) : 0;
}

static uint64_t qemu_rss(QTestState *qts)
{
    return qemu_status_kb(qts, "VmRSS:") * KiB;
}

/*
 * AddressSanitizer reserves terabytes of shadow address space, and keeps
 * freed memory in a quarantine of up to 256 MiB: there RSS says nothing
 * about leaks (LeakSanitizer covers them).
 */
static bool qemu_sanitized(QTestState *qts)
{
    return qemu_status_kb(qts, "VmSize:") * KiB > TiB;
}

static void test_storm(void *obj, void *data, QGuestAllocator *a)
{
    QViommu *v = obj;
    Storm s = { .v = v };
    uint64_t rss_warm = 0, rss_end;
    unsigned i;

    s.rand = g_rand_new_with_seed(STORM_SEED);
    for (i = 0; i <= STORM_DOMAINS; i++) {
        s.maps[i] = g_array_new(false, false, sizeof(SMap));
    }
    s.pool = guest_alloc(a, POOL_PAGES * PAGE);
    g_assert_cmphex(s.pool & (PAGE - 1), ==, 0);
    s.shadow = g_malloc(POOL_PAGES * PAGE);
    for (i = 0; i < POOL_PAGES * PAGE; i++) {
        s.shadow[i] = i * 7 + i / PAGE;
    }
    qtest_memwrite(v->qts, s.pool, s.shadow, POOL_PAGES * PAGE);
    s.edu[0] = vit_edu_open(v, EDU_SLOT);
    s.edu[1] = vit_edu_open(v, EDU2_SLOT);
    qviommu_post_events(v, 64, sizeof(struct virtio_iommu_fault), QVIOMMU_FILL);

    storm_batch(&s, 2 * (WIN_PAGES + 1), true);
    storm_dma(&s);
    for (i = 0; i < STORM_ROUNDS && !g_test_failed(); i++) {
        storm_batch(&s, STORM_BATCH, false);
        storm_check_stats(&s);
        storm_dma(&s);
        if (i == 4) {
            rss_warm = qemu_rss(v->qts);
        }
    }
    storm_check_stats(&s);

    rss_end = qemu_rss(v->qts);
    g_test_message("storm: %u requests, QEMU RSS %" PRIu64 " KiB after "
                   "warm-up, %" PRIu64 " KiB at the end",
                   STORM_ROUNDS * STORM_BATCH, rss_warm / KiB,
                   rss_end / KiB);
    if (rss_warm && rss_end && !qemu_sanitized(v->qts)) {
        CHECK(rss_end < rss_warm + RSS_GROWTH_MAX);
    }

    vit_edu_close(s.edu[0]);
    vit_edu_close(s.edu[1]);
    for (i = 0; i <= STORM_DOMAINS; i++) {
        g_array_free(s.maps[i], true);
    }
    g_free(s.shadow);
    g_rand_free(s.rand);
}

/* ------------------------------------------------------------------ */

static void register_virtio_iommu_dma_test(void)
{
    static const TestCfg limits = { .endpoints = LIMIT_ENDPOINTS };
    static const TestCfg edges = { .endpoints = EDGE_ENDPOINTS };
    static const TestCfg alias_q35 = {
        .q35 = true,
        .endpoints = PCIE_BRIDGE_ENDPOINTS,
    };
    static const TestCfg alias_virt = { .endpoints = PCIE_BRIDGE_ENDPOINTS };
    static const TestCfg alias_pc = { .endpoints = PCI_BRIDGE_ENDPOINTS };
    static const TestCfg storm = { .endpoints = STORM_ENDPOINTS };

    vit_add_test("dma-translate", test_dma_translate, NULL, NULL);
    vit_add_test("dma-span", test_dma_span, NULL, NULL);
    vit_add_test("dma-bypass", test_dma_bypass, NULL, NULL);
    vit_add_test("dma-bypass-domain", test_dma_bypass_domain, NULL, NULL);
    vit_add_test("fault-unmapped", test_fault_unmapped, NULL, NULL);
    vit_add_test("fault-readonly", test_fault_readonly, NULL, NULL);
    vit_add_test("fault-writeonly", test_fault_writeonly, NULL, NULL);
    vit_add_test("fault-before-mapping", test_fault_before_mapping, NULL, NULL);
    vit_add_test("fault-domain", test_fault_domain, "boot-bypass=off", NULL);
    vit_add_test("fault-detached", test_fault_detached, NULL, NULL);
    vit_add_test("fault-queued", test_fault_queued, NULL, NULL);
    vit_add_test("fault-queued-quiet", test_fault_queued_quiet, NULL, NULL);
    vit_add_test("fault-queued-ready", test_fault_queued_ready,
                 "boot-bypass=off", NULL);
    vit_add_test("fault-queued-late", test_fault_queued_late,
                 "boot-bypass=off", NULL);
    vit_add_test("fault-before-request", test_fault_before_request,
                 "boot-bypass=off", NULL);
    vit_add_test("fault-small-buffer", test_fault_small_buffer, NULL, NULL);
    vit_add_test("fault-overflow", test_fault_overflow,
                 "max-pending-faults=2,boot-bypass=off", NULL);
    vit_add_test("used-elem-straddle", test_used_elem_straddle, NULL, NULL);
    vit_add_test("dma-edges", test_dma_edges, NULL, &edges);

    /* DMA aliases: a PCIe-to-PCI bridge (q35, virt), a PCI bridge (pc) */
    vit_add_test("dma-alias-pcie-bridge", test_dma_alias,
                 "id=" IOMMU_ID, vit_arch_is_x86() ? &alias_q35 : &alias_virt);
    if (vit_arch_is_x86()) {
        vit_add_test("dma-alias-pci-bridge", test_dma_alias,
                     "id=" IOMMU_ID, &alias_pc);
    }

    /* each limit property, at the limit and one past it */
    vit_add_test("limit-max-domains", test_limit_domains,
                 "id=" IOMMU_ID ",max-domains=3", &limits);
    vit_add_test("limit-max-domain-id", test_limit_domain_id,
                 "id=" IOMMU_ID ",max-domain-id=7", &limits);
    vit_add_test("limit-max-mappings", test_limit_mappings,
                 "id=" IOMMU_ID ",max-mappings=5", &limits);
    vit_add_test("limit-max-pending-faults", test_limit_faults,
                 "id=" IOMMU_ID ",max-pending-faults=3,boot-bypass=off",
                 &limits);
    vit_add_test("storm", test_storm, STORM_OPTS, &storm);
}

libqos_init(register_virtio_iommu_dma_test);
