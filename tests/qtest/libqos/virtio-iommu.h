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
 * Post @n device-writable buffers of @len bytes each on the eventq, filled
 * with @fill so that a test can tell whether the device wrote them.
 */
void qviommu_post_events(QViommu *v, unsigned n, uint32_t len, uint8_t fill);

/*
 * Wait up to @timeout_us for the next used eventq buffer.  On success
 * copies up to @size bytes of it into @buf, stores the used length in
 * @used_len and returns true.
 */
bool qviommu_next_event(QViommu *v, void *buf, size_t size,
                        uint32_t *used_len, gint64 timeout_us);

#endif
