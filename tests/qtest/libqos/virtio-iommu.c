/*
 * libqos driver for the virtio-iommu device (virtio device ID 23)
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/bswap.h"
#include "qemu/module.h"
#include "../libqtest.h"
#include "qgraph.h"
#include "virtio-iommu.h"
#include "standard-headers/linux/virtio_config.h"
#include "standard-headers/linux/virtio_ids.h"
#include "standard-headers/linux/virtio_iommu.h"
#include "standard-headers/linux/virtio_ring.h"

#define QVIOMMU_KNOWN_FEATURES                      \
    ((1ull << VIRTIO_IOMMU_F_INPUT_RANGE) |         \
     (1ull << VIRTIO_IOMMU_F_DOMAIN_RANGE) |        \
     (1ull << VIRTIO_IOMMU_F_MAP_UNMAP) |           \
     (1ull << VIRTIO_IOMMU_F_BYPASS) |              \
     (1ull << VIRTIO_IOMMU_F_PROBE) |               \
     (1ull << VIRTIO_IOMMU_F_MMIO) |                \
     (1ull << VIRTIO_IOMMU_F_BYPASS_CONFIG))

uint64_t qviommu_known_features(QViommu *v)
{
    return qvirtio_get_features(v->vdev) & QVIOMMU_KNOWN_FEATURES;
}

static void qviommu_free_queues(QViommu *v)
{
    uint32_t i;

    if (v->evtq) {
        for (i = 0; i < v->evtq->size; i++) {
            if (v->evt_addr[i]) {
                guest_free(v->alloc, v->evt_addr[i]);
            }
        }
        g_free(v->evt_addr);
        g_free(v->evt_len);
        v->evt_addr = NULL;
        v->evt_len = NULL;
        qvirtqueue_cleanup(v->vdev->bus, v->evtq, v->alloc);
        v->evtq = NULL;
    }
    if (v->reqq) {
        qvirtqueue_cleanup(v->vdev->bus, v->reqq, v->alloc);
        v->reqq = NULL;
    }
}

void qviommu_stop(QViommu *v)
{
    /* Reset first: the device must not touch the rings being freed */
    qvirtio_reset(v->vdev);
    qviommu_free_queues(v);
    v->features = 0;
}

void qviommu_setup(QViommu *v, uint64_t features)
{
    g_assert(!v->reqq && !v->evtq);
    qvirtio_set_acknowledge(v->vdev);
    qvirtio_set_driver(v->vdev);

    v->offered = qvirtio_get_features(v->vdev);
    features |= 1ull << VIRTIO_F_VERSION_1;
    g_assert_cmphex(features & ~v->offered, ==, 0);
    qvirtio_set_features(v->vdev, features);
    v->features = features;

    v->reqq = qvirtqueue_setup(v->vdev, v->alloc, QVIOMMU_REQUESTQ);
    v->evtq = qvirtqueue_setup(v->vdev, v->alloc, QVIOMMU_EVENTQ);
    v->evt_addr = g_new0(uint64_t, v->evtq->size);
    v->evt_len = g_new0(uint32_t, v->evtq->size);
}

void qviommu_start(QViommu *v, uint64_t features)
{
    qviommu_stop(v);
    qviommu_setup(v, features);
    qvirtio_set_driver_ok(v->vdev);
}

void qviommu_set_qts(QViommu *v, QTestState *qts)
{
    v->qts = qts;
    v->transport->pdev->bus->qts = qts;
}

uint8_t qviommu_config_readb(QViommu *v, uint64_t off)
{
    return qvirtio_config_readb(v->vdev, off);
}

uint32_t qviommu_config_readl(QViommu *v, uint64_t off)
{
    return qvirtio_config_readl(v->vdev, off);
}

uint64_t qviommu_config_readq(QViommu *v, uint64_t off)
{
    return qvirtio_config_readq(v->vdev, off);
}

void qviommu_config_writeb(QViommu *v, uint64_t off, uint8_t val)
{
    QVirtioPCIDevice *t = v->transport;

    qpci_io_writeb(t->pdev, t->bar, t->device_cfg_offset + off, val);
}

static uint16_t qviommu_used_idx(QViommu *v, QVirtQueue *vq)
{
    uint16_t idx;

    qtest_memread(v->qts, vq->used + offsetof(struct vring_used, idx),
                  &idx, sizeof(idx));
    return le16_to_cpu(idx);
}

/*
 * Wait until the device published a used element past vq->last_used_idx,
 * consume it and return its descriptor index and length.
 */
static bool qviommu_wait_used(QViommu *v, QVirtQueue *vq, uint32_t *id,
                              uint32_t *len, gint64 timeout_us)
{
    gint64 deadline = g_get_monotonic_time() + timeout_us;
    struct vring_used_elem elem;
    uint64_t addr;

    while (qviommu_used_idx(v, vq) == vq->last_used_idx) {
        if (g_get_monotonic_time() > deadline) {
            return false;
        }
        g_usleep(50);
    }

    addr = vq->used + offsetof(struct vring_used, ring) +
           (vq->last_used_idx % vq->size) * sizeof(elem);
    qtest_memread(v->qts, addr, &elem, sizeof(elem));
    vq->last_used_idx++;
    *id = le32_to_cpu(elem.id);
    *len = le32_to_cpu(elem.len);
    return true;
}

static uint32_t qviommu_add_part(QViommu *v, uint64_t addr, uint32_t len,
                                 uint32_t chunk, bool write, bool more)
{
    uint32_t head = v->reqq->free_head;

    if (!chunk) {
        chunk = len;
    }
    while (len) {
        uint32_t l = MIN(len, chunk);

        len -= l;
        qvirtqueue_add(v->qts, v->reqq, addr, l, write, len || more);
        addr += l;
    }
    return head;
}

static uint32_t qviommu_nr_desc(uint32_t len, uint32_t chunk)
{
    return chunk ? DIV_ROUND_UP(len, chunk) : !!len;
}

/* Guest copies of one request's buffers while it is in flight */
typedef struct QViommuSlot {
    uint32_t head;
    uint64_t in_addr;
    uint64_t out_addr;
} QViommuSlot;

/* Build the descriptor chain of @x at the next free descriptors */
static void qviommu_queue_one(QViommu *v, const QViommuXfer *x,
                              QViommuSlot *slot)
{
    g_assert(x->in_len || x->out_len);
    g_assert_cmpuint(v->reqq->free_head +
                     qviommu_nr_desc(x->in_len, x->in_chunk) +
                     qviommu_nr_desc(x->out_len, x->out_chunk), <=,
                     v->reqq->size);

    slot->head = v->reqq->free_head;
    slot->in_addr = 0;
    slot->out_addr = 0;
    if (x->in_len) {
        slot->in_addr = guest_alloc(v->alloc, x->in_len);
        qtest_memwrite(v->qts, slot->in_addr, x->in, x->in_len);
        qviommu_add_part(v, slot->in_addr, x->in_len, x->in_chunk, false,
                         x->out_len);
    }
    if (x->out_len) {
        slot->out_addr = guest_alloc(v->alloc, x->out_len);
        qtest_memwrite(v->qts, slot->out_addr, x->out, x->out_len);
        qviommu_add_part(v, slot->out_addr, x->out_len, x->out_chunk, true,
                         false);
    }
}

/* Copy the writable part back and free the guest buffers */
static void qviommu_finish_one(QViommu *v, const QViommuXfer *x,
                               QViommuSlot *slot)
{
    if (x->out_len) {
        qtest_memread(v->qts, slot->out_addr, x->out, x->out_len);
        guest_free(v->alloc, slot->out_addr);
    }
    if (x->in_len) {
        guest_free(v->alloc, slot->in_addr);
    }
}

uint32_t qviommu_xfer(QViommu *v, const QViommuXfer *x)
{
    uint32_t used;

    qviommu_xfer_batch(v, x, 1, &used);
    return used;
}

static int64_t monotonic_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/*
 * Copy @n entries of @size bytes between @buf and the ring at @ring of
 * @vq's size, from entry @idx on, wrapping
 */
static void qviommu_ring_copy(QViommu *v, QVirtQueue *vq, uint64_t ring,
                              uint16_t idx, void *buf, size_t size,
                              unsigned n, bool write)
{
    unsigned at = idx % vq->size, first = MIN(n, vq->size - at);
    unsigned part;

    for (part = 0; part < 2; part++) {
        uint64_t addr = part ? ring : ring + at * size;
        uint8_t *p = (uint8_t *)buf + (part ? first * size : 0);
        size_t len = (part ? n - first : first) * size;

        if (!len) {
            continue;
        }
        if (write) {
            qtest_bufwrite(v->qts, addr, p, len);
        } else {
            qtest_bufread(v->qts, addr, p, len);
        }
    }
}

/* Put the chains at @heads in @vq's available ring, without notifying */
static void qviommu_make_available(QViommu *v, QVirtQueue *vq,
                                   const uint16_t *heads, unsigned n)
{
    uint64_t idx_addr = vq->avail + offsetof(struct vring_avail, idx);
    g_autofree uint16_t *le = g_new(uint16_t, n);
    uint16_t idx;
    unsigned i;

    for (i = 0; i < n; i++) {
        le[i] = cpu_to_le16(heads[i]);
    }
    qtest_memread(v->qts, idx_addr, &idx, sizeof(idx));
    idx = le16_to_cpu(idx);
    qviommu_ring_copy(v, vq, vq->avail + offsetof(struct vring_avail, ring),
                      idx, le, sizeof(*le), n, true);
    idx = cpu_to_le16(idx + n);
    qtest_memwrite(v->qts, idx_addr, &idx, sizeof(idx));
}

void qviommu_xfer_batch(QViommu *v, const QViommuXfer *x, unsigned n,
                        uint32_t *used)
{
    QVirtQueue *vq = v->reqq;
    g_autofree QViommuSlot *slot = g_new0(QViommuSlot, n);
    g_autofree bool *done = g_new0(bool, n);
    g_autofree uint16_t *heads = g_new(uint16_t, n);
    int64_t kick_start;
    unsigned i, j;

    /* Requests are synchronous: every descriptor is free again */
    qvirtqueue_reset_pool(vq);
    for (i = 0; i < n; i++) {
        qviommu_queue_one(v, &x[i], &slot[i]);
    }

    /* Publish all the chains, then notify once */
    for (i = 0; i < n; i++) {
        heads[i] = slot[i].head;
    }
    qviommu_make_available(v, vq, heads, n);
    /*
     * The device handles its requestq in the notifying thread: with qtest
     * the write returns once every request of the batch is done.
     */
    kick_start = monotonic_ns();
    v->vdev->bus->virtqueue_kick(v->vdev, vq);
    v->last_kick_ns = monotonic_ns() - kick_start;

    for (i = 0; i < n; i++) {
        uint32_t id, len;
        bool ok = qviommu_wait_used(v, vq, &id, &len, QVIOMMU_TIMEOUT_US);

        g_assert_true(ok);
        for (j = 0; j < n; j++) {
            if (!done[j] && slot[j].head == id) {
                break;
            }
        }
        g_assert_cmpuint(j, <, n);
        done[j] = true;
        used[j] = len;
    }
    for (i = 0; i < n; i++) {
        qviommu_finish_one(v, &x[i], &slot[i]);
    }
}

int64_t qviommu_send_many(QViommu *v, const void *in, uint32_t in_len,
                          unsigned n, uint8_t *status)
{
    QVirtQueue *vq = v->reqq;
    g_autofree struct vring_desc *desc = g_new0(struct vring_desc, 2 * n);
    g_autofree uint16_t *heads = g_new(uint16_t, n);
    g_autofree struct vring_used_elem *elems =
        g_new(struct vring_used_elem, n);
    g_autofree uint8_t *tails = g_malloc(4 * n);
    uint64_t reqs, outs;
    int64_t kick_ns;
    unsigned i;

    g_assert_cmpuint(n, >, 0);
    g_assert_cmpuint(2 * n, <=, vq->size);
    reqs = guest_alloc(v->alloc, (uint64_t)in_len * n);
    outs = guest_alloc(v->alloc, 4 * n);
    qtest_bufwrite(v->qts, reqs, in, (size_t)in_len * n);
    qtest_memset(v->qts, outs, QVIOMMU_FILL, 4 * n);
    for (i = 0; i < n; i++) {
        desc[2 * i] = (struct vring_desc) {
            .addr = cpu_to_le64(reqs + (uint64_t)i * in_len),
            .len = cpu_to_le32(in_len),
            .flags = cpu_to_le16(VRING_DESC_F_NEXT),
            .next = cpu_to_le16(2 * i + 1),
        };
        desc[2 * i + 1] = (struct vring_desc) {
            .addr = cpu_to_le64(outs + 4 * i),
            .len = cpu_to_le32(4),
            .flags = cpu_to_le16(VRING_DESC_F_WRITE),
        };
        heads[i] = 2 * i;
    }
    qtest_bufwrite(v->qts, vq->desc, desc, 2 * n * sizeof(*desc));
    qviommu_make_available(v, vq, heads, n);

    kick_ns = monotonic_ns();
    v->vdev->bus->virtqueue_kick(v->vdev, vq);
    kick_ns = monotonic_ns() - kick_ns;
    v->last_kick_ns = kick_ns;

    /* Done when the write returned; a device that defers gets some time */
    for (i = 0; qviommu_used_idx(v, vq) != (uint16_t)(vq->last_used_idx + n);
         i++) {
        g_assert_cmpuint(i, <, QVIOMMU_TIMEOUT_US / 50);
        g_usleep(50);
    }
    qviommu_ring_copy(v, vq, vq->used + offsetof(struct vring_used, ring),
                      vq->last_used_idx, elems, sizeof(*elems), n, false);
    vq->last_used_idx += n;
    qtest_bufread(v->qts, outs, tails, 4 * n);
    for (i = 0; i < n; i++) {
        uint32_t id = le32_to_cpu(elems[i].id);
        unsigned req = id / 2;

        g_assert_cmpuint(id, <, 2 * n);
        g_assert_cmpuint(id % 2, ==, 0);
        status[req] = le32_to_cpu(elems[i].len) == 4 ? tails[4 * req]
                                                     : QVIOMMU_FILL;
    }
    qvirtqueue_reset_pool(vq);
    guest_free(v->alloc, outs);
    guest_free(v->alloc, reqs);
    return kick_ns;
}

static void qviommu_add_events(QViommu *v, unsigned n, uint32_t len,
                               uint8_t fill, bool notify)
{
    QVirtQueue *vq = v->evtq;
    unsigned i;

    g_assert_cmpuint(vq->free_head + n, <=, vq->size);
    for (i = 0; i < n; i++) {
        uint64_t addr = guest_alloc(v->alloc, len);
        uint16_t head;

        qtest_memset(v->qts, addr, fill, len);
        head = qvirtqueue_add(v->qts, vq, addr, len, true, false);
        v->evt_addr[head] = addr;
        v->evt_len[head] = len;
        if (notify) {
            qvirtqueue_kick(v->qts, v->vdev, vq, head);
        } else {
            qviommu_make_available(v, vq, &head, 1);
        }
    }
}

void qviommu_post_events(QViommu *v, unsigned n, uint32_t len, uint8_t fill)
{
    qviommu_add_events(v, n, len, fill, true);
}

void qviommu_post_events_quietly(QViommu *v, unsigned n, uint32_t len,
                                 uint8_t fill)
{
    qviommu_add_events(v, n, len, fill, false);
}

bool qviommu_next_event(QViommu *v, void *buf, size_t size,
                        uint32_t *used_len, gint64 timeout_us)
{
    uint32_t id, len;

    if (!qviommu_wait_used(v, v->evtq, &id, &len, timeout_us)) {
        return false;
    }
    g_assert_cmpuint(id, <, v->evtq->size);
    g_assert_cmphex(v->evt_addr[id], !=, 0);
    qtest_memread(v->qts, v->evt_addr[id], buf,
                  MIN(size, v->evt_len[id]));
    *used_len = len;
    return true;
}

/* Requests and their outcome */

#define ATTACH_IN_LEN   offsetof(struct virtio_iommu_req_attach, tail)
#define DETACH_IN_LEN   offsetof(struct virtio_iommu_req_detach, tail)
#define MAP_IN_LEN      offsetof(struct virtio_iommu_req_map, tail)
#define UNMAP_IN_LEN    offsetof(struct virtio_iommu_req_unmap, tail)
#define PROBE_IN_LEN    sizeof(struct virtio_iommu_req_probe)

uint32_t qviommu_enc_attach(QViommuReq *b, uint32_t domain, uint32_t ep,
                            uint32_t flags)
{
    memset(b, 0, sizeof(*b));
    b->attach.head.type = VIRTIO_IOMMU_T_ATTACH;
    b->attach.domain = cpu_to_le32(domain);
    b->attach.endpoint = cpu_to_le32(ep);
    b->attach.flags = cpu_to_le32(flags);
    return ATTACH_IN_LEN;
}

uint32_t qviommu_enc_detach(QViommuReq *b, uint32_t domain, uint32_t ep)
{
    memset(b, 0, sizeof(*b));
    b->detach.head.type = VIRTIO_IOMMU_T_DETACH;
    b->detach.domain = cpu_to_le32(domain);
    b->detach.endpoint = cpu_to_le32(ep);
    return DETACH_IN_LEN;
}

uint32_t qviommu_enc_map(QViommuReq *b, uint32_t domain, uint64_t virt_start,
                         uint64_t virt_end, uint64_t phys_start,
                         uint32_t flags)
{
    memset(b, 0, sizeof(*b));
    b->map.head.type = VIRTIO_IOMMU_T_MAP;
    b->map.domain = cpu_to_le32(domain);
    b->map.virt_start = cpu_to_le64(virt_start);
    b->map.virt_end = cpu_to_le64(virt_end);
    b->map.phys_start = cpu_to_le64(phys_start);
    b->map.flags = cpu_to_le32(flags);
    return MAP_IN_LEN;
}

uint32_t qviommu_enc_unmap(QViommuReq *b, uint32_t domain,
                           uint64_t virt_start, uint64_t virt_end)
{
    memset(b, 0, sizeof(*b));
    b->unmap.head.type = VIRTIO_IOMMU_T_UNMAP;
    b->unmap.domain = cpu_to_le32(domain);
    b->unmap.virt_start = cpu_to_le64(virt_start);
    b->unmap.virt_end = cpu_to_le64(virt_end);
    return UNMAP_IN_LEN;
}

uint32_t qviommu_enc_probe(QViommuReq *b, uint32_t ep)
{
    uint32_t le_ep = cpu_to_le32(ep);

    memset(b, 0, sizeof(*b));
    b->head.type = VIRTIO_IOMMU_T_PROBE;
    memcpy(b->raw + offsetof(struct virtio_iommu_req_probe, endpoint),
           &le_ep, sizeof(le_ep));
    return PROBE_IN_LEN;
}

QViommuRes qviommu_res_of(uint32_t used, const uint8_t *out, uint32_t len)
{
    QViommuRes r = {
        .used = used, .len = len, .untouched = true, .zero_prefix = true,
    };
    uint32_t i;

    for (i = 0; i < len; i++) {
        r.untouched &= out[i] == QVIOMMU_FILL;
        if (i + 4 < len) {
            r.zero_prefix &= out[i] == 0;
        }
    }
    if (len >= 4) {
        memcpy(r.tail, out + len - 4, 4);
    }
    return r;
}

QViommuRes qviommu_send_layout(QViommu *v, const void *in, uint32_t in_len,
                               uint32_t in_chunk, uint32_t out_len,
                               uint32_t out_chunk, uint8_t *out)
{
    g_autofree uint8_t *buf = g_malloc(MAX(out_len, 1));
    QViommuXfer x = {
        .in = in, .in_len = in_len, .in_chunk = in_chunk,
        .out = buf, .out_len = out_len, .out_chunk = out_chunk,
    };
    uint32_t used;

    memset(buf, QVIOMMU_FILL, out_len);
    used = qviommu_xfer(v, &x);
    if (out) {
        memcpy(out, buf, out_len);
    }
    return qviommu_res_of(used, buf, out_len);
}

QViommuRes qviommu_send_req(QViommu *v, const QViommuReq *b, uint32_t in_len,
                            uint32_t out_len)
{
    return qviommu_send_layout(v, b, in_len, 0, out_len, 0, NULL);
}

QViommuRes qviommu_attach_req(QViommu *v, uint32_t domain, uint32_t ep,
                              uint32_t flags)
{
    QViommuReq b;

    return qviommu_send_req(v, &b, qviommu_enc_attach(&b, domain, ep, flags),
                            4);
}

QViommuRes qviommu_detach_req(QViommu *v, uint32_t domain, uint32_t ep)
{
    QViommuReq b;

    return qviommu_send_req(v, &b, qviommu_enc_detach(&b, domain, ep), 4);
}

QViommuRes qviommu_map_req(QViommu *v, uint32_t domain, uint64_t virt_start,
                           uint64_t virt_end, uint64_t phys_start,
                           uint32_t flags)
{
    QViommuReq b;
    uint32_t len = qviommu_enc_map(&b, domain, virt_start, virt_end,
                                   phys_start, flags);

    return qviommu_send_req(v, &b, len, 4);
}

QViommuRes qviommu_unmap_req(QViommu *v, uint32_t domain,
                             uint64_t virt_start, uint64_t virt_end)
{
    QViommuReq b;
    uint32_t len = qviommu_enc_unmap(&b, domain, virt_start, virt_end);

    return qviommu_send_req(v, &b, len, 4);
}

QViommuRes qviommu_probe_req(QViommu *v, uint32_t ep, uint32_t props_len,
                             uint8_t *out)
{
    QViommuReq b;

    return qviommu_send_layout(v, &b, qviommu_enc_probe(&b, ep), 0,
                               props_len + 4, 0, out);
}

void qviommu_report(const char *fn, int line, const char *fmt, ...)
{
    va_list ap;
    g_autofree char *msg = NULL;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    fprintf(stderr, "FAIL %s:%d: %s\n", fn, line, msg);
    g_test_fail();
}

static const char *qviommu_status_name(uint8_t s)
{
    static const char *const names[] = {
        "OK", "IOERR", "UNSUPP", "DEVERR", "INVAL", "RANGE", "NOENT",
        "FAULT", "NOMEM",
    };

    return s < ARRAY_SIZE(names) ? names[s] : "?";
}

bool qviommu_expect_status(const char *fn, int line, const char *what,
                           QViommuRes r, uint8_t want)
{
    if (r.used == r.len && r.len >= 4 && r.tail[0] == want &&
        !r.tail[1] && !r.tail[2] && !r.tail[3]) {
        return true;
    }
    if (!r.used) {
        qviommu_report(fn, line, "%s: expected S_%s, got used length 0 "
                       "(no status)", what, qviommu_status_name(want));
    } else {
        qviommu_report(fn, line, "%s: expected S_%s (used length %u), got "
                       "S_%s (status %u, used length %u, tail reserved "
                       "%02x %02x %02x)", what, qviommu_status_name(want),
                       r.len, qviommu_status_name(r.tail[0]), r.tail[0],
                       r.used, r.tail[1], r.tail[2], r.tail[3]);
    }
    return false;
}

bool qviommu_expect_unused(const char *fn, int line, const char *what,
                           QViommuRes r)
{
    if (!r.used && r.untouched) {
        return true;
    }
    qviommu_report(fn, line, "%s: expected used length 0 and buffer "
                   "untouched, got used length %u, buffer %s (tail status "
                   "%u)", what, r.used, r.untouched ? "untouched" : "written",
                   r.tail[0]);
    return false;
}

/* qgraph node "virtio-iommu-pci" */

static void *qviommu_pci_get_driver(void *object, const char *interface)
{
    QViommuPCI *d = object;

    /* The tests' themes are interfaces of their own: see vit_add_test() */
    if (!g_strcmp0(interface, "virtio-iommu") ||
        g_str_has_prefix(interface, "virtio-iommu-")) {
        return &d->viommu;
    }
    if (!g_strcmp0(interface, "virtio")) {
        return &d->pci_vdev.vdev;
    }
    if (!g_strcmp0(interface, "pci-device")) {
        return d->pci_vdev.pdev;
    }
    fprintf(stderr, "%s not present in virtio-iommu-pci\n", interface);
    g_assert_not_reached();
}

static void qviommu_pci_start_hw(QOSGraphObject *obj)
{
    QViommuPCI *d = (QViommuPCI *)obj;

    qvirtio_pci_start_hw(obj);
    qviommu_start(&d->viommu, qviommu_known_features(&d->viommu));
}

static void qviommu_pci_destructor(QOSGraphObject *obj)
{
    QViommuPCI *d = (QViommuPCI *)obj;

    qviommu_stop(&d->viommu);
    qvirtio_pci_destructor(obj);
}

static void *qviommu_pci_create(void *pci_bus, QGuestAllocator *alloc,
                                void *addr)
{
    QViommuPCI *d = g_new0(QViommuPCI, 1);
    QOSGraphObject *obj = &d->pci_vdev.obj;

    virtio_pci_init(&d->pci_vdev, pci_bus, addr);
    g_assert_cmpuint(d->pci_vdev.vdev.device_type, ==, VIRTIO_ID_IOMMU);
    d->viommu = (QViommu) {
        .vdev = &d->pci_vdev.vdev,
        .transport = &d->pci_vdev,
        .qts = d->pci_vdev.pdev->bus->qts,
        .alloc = alloc,
    };
    /* virtio_pci_init() set the rest (free) */
    obj->destructor = qviommu_pci_destructor;
    obj->start_hw = qviommu_pci_start_hw;
    obj->get_driver = qviommu_pci_get_driver;
    return obj;
}

/* The interfaces a test can ask the graph for, as qviommu_pci_get_driver */
static const char *const qviommu_pci_interfaces[] = {
    "pci-device", "virtio", "virtio-iommu",
};

static void qviommu_register_nodes(void)
{
    QOSGraphEdgeOptions on_bus = {
        .extra_device_opts = "addr=" QVIOMMU_PCI_ADDR_STR,
    };
    QPCIAddress at = { .devfn = QPCI_DEVFN(QVIOMMU_PCI_SLOT, 0) };
    size_t i;

    qos_node_create_driver("virtio-iommu-pci", qviommu_pci_create);
    add_qpci_address(&on_bus, &at);
    qos_node_consumes("virtio-iommu-pci", "pci-bus", &on_bus);
    for (i = 0; i < ARRAY_SIZE(qviommu_pci_interfaces); i++) {
        qos_node_produces("virtio-iommu-pci", qviommu_pci_interfaces[i]);
    }
}

libqos_init(qviommu_register_nodes);
