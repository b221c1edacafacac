/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Guest-visible interface of the virtio-iommu device (virtio device ID 23),
 * transcribed from the IOMMU device chapter of the virtio specification
 * (VIRTIO 1.2 onwards).  All multi-byte fields are little endian.
 *
 * BSD licensed so that drivers and devices alike can use it.
 */
#ifndef _LINUX_VIRTIO_IOMMU_H
#define _LINUX_VIRTIO_IOMMU_H

#include "standard-headers/linux/types.h"

/* Feature bits (spec "Feature bits") */
#define VIRTIO_IOMMU_F_INPUT_RANGE      0   /* input_range is valid */
#define VIRTIO_IOMMU_F_DOMAIN_RANGE     1   /* domain_range is valid */
#define VIRTIO_IOMMU_F_MAP_UNMAP        2   /* MAP and UNMAP requests */
#define VIRTIO_IOMMU_F_BYPASS           3   /* legacy: unattached bypass */
#define VIRTIO_IOMMU_F_PROBE            4   /* PROBE request */
#define VIRTIO_IOMMU_F_MMIO             5   /* VIRTIO_IOMMU_MAP_F_MMIO */
#define VIRTIO_IOMMU_F_BYPASS_CONFIG    6   /* config bypass, ATTACH_F_BYPASS */

/* Device configuration layout */
struct virtio_iommu_range_64 {
    uint64_t start;
    uint64_t end;
};

struct virtio_iommu_range_32 {
    uint32_t start;
    uint32_t end;
};

struct virtio_iommu_config {
    uint64_t page_size_mask;
    struct virtio_iommu_range_64 input_range;
    struct virtio_iommu_range_32 domain_range;
    uint32_t probe_size;
    uint8_t bypass;
    uint8_t reserved[3];
};

/* Request types */
#define VIRTIO_IOMMU_T_ATTACH           0x01
#define VIRTIO_IOMMU_T_DETACH           0x02
#define VIRTIO_IOMMU_T_MAP              0x03
#define VIRTIO_IOMMU_T_UNMAP            0x04
#define VIRTIO_IOMMU_T_PROBE            0x05

/* Request status */
#define VIRTIO_IOMMU_S_OK               0x00
#define VIRTIO_IOMMU_S_IOERR            0x01
#define VIRTIO_IOMMU_S_UNSUPP           0x02
#define VIRTIO_IOMMU_S_DEVERR           0x03
#define VIRTIO_IOMMU_S_INVAL            0x04
#define VIRTIO_IOMMU_S_RANGE            0x05
#define VIRTIO_IOMMU_S_NOENT            0x06
#define VIRTIO_IOMMU_S_FAULT            0x07
#define VIRTIO_IOMMU_S_NOMEM            0x08

/* Every request starts with a head (device-readable) ... */
struct virtio_iommu_req_head {
    uint8_t type;
    uint8_t reserved[3];
};

/* ... and ends with a tail (the last bytes that are device-writable). */
struct virtio_iommu_req_tail {
    uint8_t status;
    uint8_t reserved[3];
};

#define VIRTIO_IOMMU_ATTACH_F_BYPASS    (1 << 0)

struct virtio_iommu_req_attach {
    struct virtio_iommu_req_head head;
    uint32_t domain;
    uint32_t endpoint;
    uint32_t flags;
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

#define VIRTIO_IOMMU_MAP_F_READ         (1 << 0)
#define VIRTIO_IOMMU_MAP_F_WRITE        (1 << 1)
#define VIRTIO_IOMMU_MAP_F_MMIO         (1 << 2)
#define VIRTIO_IOMMU_MAP_F_MASK         (VIRTIO_IOMMU_MAP_F_READ |     \
                                         VIRTIO_IOMMU_MAP_F_WRITE |    \
                                         VIRTIO_IOMMU_MAP_F_MMIO)

struct virtio_iommu_req_map {
    struct virtio_iommu_req_head head;
    uint32_t domain;
    uint64_t virt_start;
    uint64_t virt_end;
    uint64_t phys_start;
    uint32_t flags;
    struct virtio_iommu_req_tail tail;
};

struct virtio_iommu_req_unmap {
    struct virtio_iommu_req_head head;
    uint32_t domain;
    uint64_t virt_start;
    uint64_t virt_end;
    uint8_t reserved[4];
    struct virtio_iommu_req_tail tail;
};

/*
 * PROBE: the device-readable part is the head, the endpoint and 64
 * reserved bytes; the device-writable part is probe_size bytes of
 * properties followed by the tail.
 */
struct virtio_iommu_req_probe {
    struct virtio_iommu_req_head head;
    uint32_t endpoint;
    uint8_t reserved[64];
    uint8_t properties[];
};

/* PROBE properties */
#define VIRTIO_IOMMU_PROBE_T_NONE       0
#define VIRTIO_IOMMU_PROBE_T_RESV_MEM   1
#define VIRTIO_IOMMU_PROBE_T_MASK       0xfff

struct virtio_iommu_probe_property {
    uint16_t type;      /* bits 0-11: type, bits 12-15: reserved */
    uint16_t length;    /* bytes that follow this header */
};

#define VIRTIO_IOMMU_RESV_MEM_T_RESERVED 0
#define VIRTIO_IOMMU_RESV_MEM_T_MSI      1

struct virtio_iommu_probe_resv_mem {
    struct virtio_iommu_probe_property head;
    uint8_t subtype;
    uint8_t reserved[3];
    uint64_t start;
    uint64_t end;
};

/* Fault reports, written by the device into eventq buffers */
#define VIRTIO_IOMMU_FAULT_R_UNKNOWN    0
#define VIRTIO_IOMMU_FAULT_R_DOMAIN     1
#define VIRTIO_IOMMU_FAULT_R_MAPPING    2

#define VIRTIO_IOMMU_FAULT_F_READ       (1 << 0)
#define VIRTIO_IOMMU_FAULT_F_WRITE      (1 << 1)
#define VIRTIO_IOMMU_FAULT_F_EXEC       (1 << 2)
#define VIRTIO_IOMMU_FAULT_F_ADDRESS    (1 << 8)

struct virtio_iommu_fault {
    uint8_t reason;
    uint8_t reserved[3];
    uint32_t flags;
    uint32_t endpoint;
    uint8_t reserved1[4];
    uint64_t address;
};

#endif /* _LINUX_VIRTIO_IOMMU_H */
