/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Guest-visible interface of the virtio-iommu device (virtio device ID 23),
 * transcribed from the IOMMU device chapter of the virtio specification
 * (VIRTIO 1.2 onwards).  All multi-byte fields are little endian.
 *
 * The constants come first, grouped by the field they go in; then the
 * layouts, in the order a driver meets them: configuration, requests,
 * PROBE properties, fault reports.
 *
 * BSD licensed so that drivers and devices alike can use it.
 */
#ifndef _LINUX_VIRTIO_IOMMU_H
#define _LINUX_VIRTIO_IOMMU_H

#include "standard-headers/linux/types.h"

/* Feature bits, as bit numbers */
#define VIRTIO_IOMMU_F_INPUT_RANGE      0   /* config input_range valid */
#define VIRTIO_IOMMU_F_DOMAIN_RANGE     1   /* config domain_range valid */
#define VIRTIO_IOMMU_F_MAP_UNMAP        2   /* MAP and UNMAP requests */
#define VIRTIO_IOMMU_F_BYPASS           3   /* legacy: unattached bypass */
#define VIRTIO_IOMMU_F_PROBE            4   /* PROBE request */
#define VIRTIO_IOMMU_F_MMIO             5   /* VIRTIO_IOMMU_MAP_F_MMIO */
#define VIRTIO_IOMMU_F_BYPASS_CONFIG    6   /* config bypass, ATTACH_F_BYPASS */

/* Request head, field type */
#define VIRTIO_IOMMU_T_ATTACH           0x01
#define VIRTIO_IOMMU_T_DETACH           0x02
#define VIRTIO_IOMMU_T_MAP              0x03
#define VIRTIO_IOMMU_T_UNMAP            0x04
#define VIRTIO_IOMMU_T_PROBE            0x05

/* Request tail, field status */
#define VIRTIO_IOMMU_S_OK               0x00    /* success */
#define VIRTIO_IOMMU_S_IOERR            0x01    /* virtio communication */
#define VIRTIO_IOMMU_S_UNSUPP           0x02    /* unsupported request */
#define VIRTIO_IOMMU_S_DEVERR           0x03    /* internal device error */
#define VIRTIO_IOMMU_S_INVAL            0x04    /* invalid parameters */
#define VIRTIO_IOMMU_S_RANGE            0x05    /* out-of-range parameters */
#define VIRTIO_IOMMU_S_NOENT            0x06    /* entry not found */
#define VIRTIO_IOMMU_S_FAULT            0x07    /* bad address */
#define VIRTIO_IOMMU_S_NOMEM            0x08    /* insufficient resources */

/* ATTACH, field flags */
#define VIRTIO_IOMMU_ATTACH_F_BYPASS    (1 << 0)

/* MAP, field flags */
#define VIRTIO_IOMMU_MAP_F_READ         (1 << 0)
#define VIRTIO_IOMMU_MAP_F_WRITE        (1 << 1)
#define VIRTIO_IOMMU_MAP_F_MMIO         (1 << 2)
#define VIRTIO_IOMMU_MAP_F_MASK         (VIRTIO_IOMMU_MAP_F_READ |     \
                                         VIRTIO_IOMMU_MAP_F_WRITE |    \
                                         VIRTIO_IOMMU_MAP_F_MMIO)

/* PROBE property header, field type (bits 0-11) */
#define VIRTIO_IOMMU_PROBE_T_NONE       0
#define VIRTIO_IOMMU_PROBE_T_RESV_MEM   1
#define VIRTIO_IOMMU_PROBE_T_MASK       0xfff

/* RESV_MEM property, field subtype */
#define VIRTIO_IOMMU_RESV_MEM_T_RESERVED 0
#define VIRTIO_IOMMU_RESV_MEM_T_MSI      1

/* Fault report, field reason */
#define VIRTIO_IOMMU_FAULT_R_UNKNOWN    0
#define VIRTIO_IOMMU_FAULT_R_DOMAIN     1
#define VIRTIO_IOMMU_FAULT_R_MAPPING    2

/* Fault report, field flags */
#define VIRTIO_IOMMU_FAULT_F_READ       (1 << 0)
#define VIRTIO_IOMMU_FAULT_F_WRITE      (1 << 1)
#define VIRTIO_IOMMU_FAULT_F_EXEC       (1 << 2)
#define VIRTIO_IOMMU_FAULT_F_ADDRESS    (1 << 8)

/*
 * Configuration space, 40 bytes.  Both ranges are inclusive: the input
 * addresses a mapping may use, the domain IDs a request may name.
 */
struct virtio_iommu_config {
    uint64_t page_size_mask;                    /* mappable page sizes */
    struct {
        uint64_t start, end;
    } input_range;                              /* F_INPUT_RANGE */
    struct {
        uint32_t start, end;
    } domain_range;                             /* F_DOMAIN_RANGE */
    uint32_t probe_size;                        /* F_PROBE */
    uint8_t bypass;                             /* F_BYPASS_CONFIG, 0/1 */
    uint8_t reserved[3];
};

/* First 4 device-readable bytes of every request */
struct virtio_iommu_req_head {
    uint8_t type;                               /* VIRTIO_IOMMU_T_* */
    uint8_t reserved[3];
};

/* Last 4 device-writable bytes of every request */
struct virtio_iommu_req_tail {
    uint8_t status;                             /* VIRTIO_IOMMU_S_* */
    uint8_t reserved[3];
};

/*
 * The request layouts: head, device-readable body, tail.  The readable
 * part of a request is its structure without the tail.
 */
struct virtio_iommu_req_attach {
    struct virtio_iommu_req_head head;
    uint32_t domain;
    uint32_t endpoint;
    uint32_t flags;                             /* ATTACH_F_* */
    uint8_t reserved[4];
    struct virtio_iommu_req_tail tail;
};

struct virtio_iommu_req_detach {
    struct virtio_iommu_req_head head;
    uint32_t domain;
    uint32_t endpoint;
    uint8_t reserved[8];
    struct virtio_iommu_req_tail tail;
};

struct virtio_iommu_req_map {
    struct virtio_iommu_req_head head;
    uint32_t domain;
    uint64_t virt_start;
    uint64_t virt_end;                          /* inclusive */
    uint64_t phys_start;
    uint32_t flags;                             /* MAP_F_* */
    struct virtio_iommu_req_tail tail;
};

struct virtio_iommu_req_unmap {
    struct virtio_iommu_req_head head;
    uint32_t domain;
    uint64_t virt_start;
    uint64_t virt_end;                          /* inclusive */
    uint8_t reserved[4];
    struct virtio_iommu_req_tail tail;
};

/*
 * PROBE: the readable part is head, endpoint and 64 reserved bytes; the
 * writable part is probe_size bytes of properties, then the tail.
 */
struct virtio_iommu_req_probe {
    struct virtio_iommu_req_head head;
    uint32_t endpoint;
    uint8_t reserved[64];
    uint8_t properties[];
};

/* Every property starts with this; length counts the bytes after it */
struct virtio_iommu_probe_property {
    uint16_t type;                              /* PROBE_T_*, bits 12-15 0 */
    uint16_t length;
};

struct virtio_iommu_probe_resv_mem {
    struct virtio_iommu_probe_property head;    /* PROBE_T_RESV_MEM */
    uint8_t subtype;                            /* RESV_MEM_T_* */
    uint8_t reserved[3];
    uint64_t start;
    uint64_t end;                               /* inclusive */
};

/* Written by the device into an eventq buffer */
struct virtio_iommu_fault {
    uint8_t reason;                             /* FAULT_R_* */
    uint8_t reserved[3];
    uint32_t flags;                             /* FAULT_F_* */
    uint32_t endpoint;
    uint8_t reserved1[4];
    uint64_t address;                           /* with FAULT_F_ADDRESS */
};

#endif /* _LINUX_VIRTIO_IOMMU_H */
