/*
 * libqos driver for the virtio-iommu device (virtio device ID 23)
 *
 * The driver owns the two virtqueues of the device (requestq and eventq)
 * and offers a raw transport to the tests: a request is any device-readable
 * byte string followed by any number of device-writable bytes, each split
 * into descriptors as the caller chooses, so that malformed layouts can be
 * sent as easily as well-formed ones.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef TESTS_LIBQOS_VIRTIO_IOMMU_H
#define TESTS_LIBQOS_VIRTIO_IOMMU_H

#include "qgraph.h"
#include "virtio.h"
#include "virtio-pci.h"
#include "standard-headers/linux/virtio_iommu.h"

/* Where the qos graph puts the IOMMU on a PCI bus */
#define QVIOMMU_PCI_SLOT            4
#define QVIOMMU_PCI_ADDR_STR        "04.0"

/* Virtqueue indexes */
#define QVIOMMU_REQUESTQ            0
#define QVIOMMU_EVENTQ              1

/* Wait at most this long for the device to use a buffer */
#define QVIOMMU_TIMEOUT_US          (5 * G_USEC_PER_SEC)

typedef struct QViommu QViommu;
typedef struct QViommuPCI QViommuPCI;
typedef struct QViommuXfer QViommuXfer;

struct QViommu {
    QVirtioDevice *vdev;
    QVirtioPCIDevice *transport;
    QTestState *qts;
    QGuestAllocator *alloc;
    QVirtQueue *reqq;
    QVirtQueue *evtq;
    /* Guest address of the buffer behind each eventq descriptor */
    uint64_t *evt_addr;
    uint32_t *evt_len;
    uint64_t offered;           /* device features */
    uint64_t features;          /* features the driver accepted */
    /* How long the last requestq notification took to return, in ns */
    int64_t last_kick_ns;
};

struct QViommuPCI {
    QVirtioPCIDevice pci_vdev;
    QViommu viommu;
};

/*
 * One request.  @in holds the @in_len device-readable bytes; @out holds
 * @out_len bytes that are copied into the device-writable guest buffer
 * before the request is queued and copied back once the device used it.
 * @in_chunk and @out_chunk split each part into descriptors of at most that
 * many bytes (0: one descriptor).  A part of length 0 has no descriptor.
 */
struct QViommuXfer {
    const void *in;
    uint32_t in_len;
    uint32_t in_chunk;
    void *out;
    uint32_t out_len;
    uint32_t out_chunk;
};

/* Every feature bit this driver knows, as far as the device offers it */
uint64_t qviommu_known_features(QViommu *v);

/*
 * Reset the device and bring it up again with @features accepted
 * (VIRTIO_F_VERSION_1 is always added), both virtqueues set up and
 * DRIVER_OK set.
 */
void qviommu_start(QViommu *v, uint64_t features);

/*
 * Bring a stopped device (qviommu_stop) up as qviommu_start does, without
 * resetting it again and without DRIVER_OK: the caller may post eventq
 * buffers before it sets DRIVER_OK (qvirtio_set_driver_ok(v->vdev)).
 */
void qviommu_setup(QViommu *v, uint64_t features);

/* Reset the device and free the virtqueues */
void qviommu_stop(QViommu *v);

/*
 * Drive another QEMU from now on: the destination of a migration, which
 * has the device, its virtqueues and guest memory in the state this
 * driver left them in on the source.  Every structure of the driver, and
 * of other devices on the same PCI bus, stays valid; the PCI bus itself is
 * switched to @qts as well.
 */
void qviommu_set_qts(QViommu *v, QTestState *qts);

/* Device configuration space */
uint8_t qviommu_config_readb(QViommu *v, uint64_t off);
uint32_t qviommu_config_readl(QViommu *v, uint64_t off);
uint64_t qviommu_config_readq(QViommu *v, uint64_t off);
void qviommu_config_writeb(QViommu *v, uint64_t off, uint8_t val);

/*
 * Queue one request on the requestq and wait until the device uses it.
 * Returns the used length; fails the test if the device does not complete
 * the request within QVIOMMU_TIMEOUT_US.
 */
uint32_t qviommu_xfer(QViommu *v, const QViommuXfer *x);

/*
 * Queue @n requests at once, make them available together and notify the
 * device once, as a driver batching MAPs does; wait until the device used
 * all of them.  Stores each request's used length in @used[i].
 */
void qviommu_xfer_batch(QViommu *v, const QViommuXfer *x, unsigned n,
                        uint32_t *used);

/*
 * Queue @n requests of @in_len device-readable bytes each, back to back in
 * @in, each followed by a 4-byte tail, make them available together and
 * notify the device once, as the Linux driver queues requests until it
 * syncs; store each request's status in @status (QVIOMMU_FILL for one
 * the device used without writing its tail).  Descriptors, requests
 * and ring entries go to guest memory in a few large writes, so that a
 * million requests take seconds (for benchmarks).  At most half the queue
 * size per call.  Returns how long the notification took in ns: with qtest,
 * the device's time for the whole batch.
 */
int64_t qviommu_send_many(QViommu *v, const void *in, uint32_t in_len,
                          unsigned n, uint8_t *status);

/*
 * Post @n device-writable buffers of @len bytes each on the eventq, filled
 * with @fill so that a test can tell whether the device wrote them.
 */
void qviommu_post_events(QViommu *v, unsigned n, uint32_t len, uint8_t fill);

/*
 * The same without notifying the device, as Linux fills its eventq at
 * probe: the device finds the buffers when it next looks.
 */
void qviommu_post_events_quietly(QViommu *v, unsigned n, uint32_t len,
                                 uint8_t fill);

/*
 * Wait up to @timeout_us for the next used eventq buffer.  On success
 * copies up to @size bytes of it into @buf, stores the used length in
 * @used_len and returns true.
 */
bool qviommu_next_event(QViommu *v, void *buf, size_t size,
                        uint32_t *used_len, gint64 timeout_us);

/*
 * Requests and their outcome
 *
 * The writable part of a request starts as QVIOMMU_FILL bytes, so that a
 * test can tell which of them the device wrote.
 */
#define QVIOMMU_FILL                0xa5

/* Room for any request, well formed or not */
typedef union QViommuReq {
    struct virtio_iommu_req_head head;
    struct virtio_iommu_req_attach attach;
    struct virtio_iommu_req_detach detach;
    struct virtio_iommu_req_map map;
    struct virtio_iommu_req_unmap unmap;
    uint8_t raw[256];
} QViommuReq;

/* Outcome of one request */
typedef struct QViommuRes {
    uint32_t used;              /* used length */
    uint32_t len;               /* writable length offered */
    uint8_t tail[4];            /* last four writable bytes afterwards */
    bool untouched;             /* every writable byte still QVIOMMU_FILL */
    bool zero_prefix;           /* writable bytes before the tail all 0 */
} QViommuRes;

/*
 * Encode a request in @b, every other byte of @b zero; each returns the
 * length of the request's device-readable part.
 */
uint32_t qviommu_enc_attach(QViommuReq *b, uint32_t domain, uint32_t ep,
                            uint32_t flags);
uint32_t qviommu_enc_detach(QViommuReq *b, uint32_t domain, uint32_t ep);
uint32_t qviommu_enc_map(QViommuReq *b, uint32_t domain, uint64_t virt_start,
                         uint64_t virt_end, uint64_t phys_start,
                         uint32_t flags);
uint32_t qviommu_enc_unmap(QViommuReq *b, uint32_t domain,
                           uint64_t virt_start, uint64_t virt_end);
uint32_t qviommu_enc_probe(QViommuReq *b, uint32_t ep);

/*
 * The outcome of a request whose @len writable bytes, initially
 * QVIOMMU_FILL, are now @out and of which the device used @used
 */
QViommuRes qviommu_res_of(uint32_t used, const uint8_t *out, uint32_t len);

/*
 * Send @in_len bytes of @in as the readable part and @out_len writable
 * bytes (initially QVIOMMU_FILL), split into descriptors of
 * @in_chunk/@out_chunk bytes (0: one descriptor).  @out, if given,
 * receives the writable part.
 */
QViommuRes qviommu_send_layout(QViommu *v, const void *in, uint32_t in_len,
                               uint32_t in_chunk, uint32_t out_len,
                               uint32_t out_chunk, uint8_t *out);
/* The same, each part in one descriptor */
QViommuRes qviommu_send_req(QViommu *v, const QViommuReq *b, uint32_t in_len,
                            uint32_t out_len);

/* Well-formed requests with a 4-byte writable part (the tail) */
QViommuRes qviommu_attach_req(QViommu *v, uint32_t domain, uint32_t ep,
                              uint32_t flags);
QViommuRes qviommu_detach_req(QViommu *v, uint32_t domain, uint32_t ep);
QViommuRes qviommu_map_req(QViommu *v, uint32_t domain, uint64_t virt_start,
                           uint64_t virt_end, uint64_t phys_start,
                           uint32_t flags);
QViommuRes qviommu_unmap_req(QViommu *v, uint32_t domain,
                             uint64_t virt_start, uint64_t virt_end);
/* PROBE with @props_len bytes of properties (plus the tail) into @out */
QViommuRes qviommu_probe_req(QViommu *v, uint32_t ep, uint32_t props_len,
                             uint8_t *out);

/*
 * Non-fatal checks: a failure is reported on stderr, where (@fn, @line)
 * and what, and marks the test case failed; the test goes on.
 */
void qviommu_report(const char *fn, int line, const char *fmt, ...)
    G_GNUC_PRINTF(3, 4);

/* The device answered @r with status @want, using the whole writable part */
bool qviommu_expect_status(const char *fn, int line, const char *what,
                           QViommuRes r, uint8_t want);
/* The device used nothing of @r and left its writable part alone */
bool qviommu_expect_unused(const char *fn, int line, const char *what,
                           QViommuRes r);

#define QVIOMMU_EXPECT_STATUS(call, want)                               \
    qviommu_expect_status(__func__, __LINE__, #call, (call), (want))
#define QVIOMMU_EXPECT_UNUSED(call)                                     \
    qviommu_expect_unused(__func__, __LINE__, #call, (call))

#endif
