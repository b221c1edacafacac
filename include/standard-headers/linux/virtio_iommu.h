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

/*
 * Fields that hold one of a list of values are enumerations; bit numbers
 * and bit masks are macros.
 */

/* Request head, field type */
enum {
    VIRTIO_IOMMU_T_ATTACH = 1,
    VIRTIO_IOMMU_T_DETACH,
    VIRTIO_IOMMU_T_MAP,
    VIRTIO_IOMMU_T_UNMAP,
    VIRTIO_IOMMU_T_PROBE,
};

/* Request tail, field status */
enum {
    VIRTIO_IOMMU_S_OK,              /* success */
    VIRTIO_IOMMU_S_IOERR,           /* virtio communication */
    VIRTIO_IOMMU_S_UNSUPP,          /* unsupported request */
    VIRTIO_IOMMU_S_DEVERR,          /* internal device error */
    VIRTIO_IOMMU_S_INVAL,           /* invalid parameters */
    VIRTIO_IOMMU_S_RANGE,           /* out-of-range parameters */
    VIRTIO_IOMMU_S_NOENT,           /* entry not found */
    VIRTIO_IOMMU_S_FAULT,           /* bad address */
    VIRTIO_IOMMU_S_NOMEM,           /* insufficient resources */
};

/* ATTACH, field flags */
#define VIRTIO_IOMMU_ATTACH_F_BYPASS    (1 << 0)

/* MAP, field flags */
#define VIRTIO_IOMMU_MAP_F_READ         (1 << 0)
#define VIRTIO_IOMMU_MAP_F_WRITE        (1 << 1)
#define VIRTIO_IOMMU_MAP_F_MMIO         (1 << 2)
/* Every flag the spec defines: bits 0 to 2 */
#define VIRTIO_IOMMU_MAP_F_MASK         ((VIRTIO_IOMMU_MAP_F_MMIO << 1) - 1)

/* PROBE property header, field type (bits 0-11) */
enum {
    VIRTIO_IOMMU_PROBE_T_NONE,
    VIRTIO_IOMMU_PROBE_T_RESV_MEM,
};
#define VIRTIO_IOMMU_PROBE_T_MASK       0xfff

/* RESV_MEM property, field subtype */
enum {
    VIRTIO_IOMMU_RESV_MEM_T_RESERVED,
    VIRTIO_IOMMU_RESV_MEM_T_MSI,
};

/* Fault report, field reason */
enum {
    VIRTIO_IOMMU_FAULT_R_UNKNOWN,
    VIRTIO_IOMMU_FAULT_R_DOMAIN,
    VIRTIO_IOMMU_FAULT_R_MAPPING,
};

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

/*
 * Requests.  Each is a head (4 device-readable bytes), a body, and a tail
 * (4 device-writable bytes); the readable part of a request is its
 * structure without the tail.  Domain and endpoint are IDs; every address
 * range is inclusive.  Sizes: ATTACH and DETACH 24, MAP 40, UNMAP 32.
 */
struct virtio_iommu_req_head {
    uint8_t type, reserved[3];                  /* type: VIRTIO_IOMMU_T_* */
};

struct virtio_iommu_req_tail {
    uint8_t status, reserved[3];                /* status: VIRTIO_IOMMU_S_* */
};

struct virtio_iommu_req_attach {
    struct virtio_iommu_req_head head;
    uint32_t domain, endpoint, flags;           /* flags: ATTACH_F_* */
    uint8_t reserved[4];
    struct virtio_iommu_req_tail tail;
};

struct virtio_iommu_req_detach {
    struct virtio_iommu_req_head head;
    uint32_t domain, endpoint;
    uint8_t reserved[8];
    struct virtio_iommu_req_tail tail;
};

struct virtio_iommu_req_map {
    struct virtio_iommu_req_head head;
    uint32_t domain;
    uint64_t virt_start, virt_end, phys_start;
    uint32_t flags;                             /* MAP_F_* */
    struct virtio_iommu_req_tail tail;
};

struct virtio_iommu_req_unmap {
    struct virtio_iommu_req_head head;
    uint32_t domain;
    uint64_t virt_start, virt_end;
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
    uint8_t subtype, reserved[3];               /* subtype: RESV_MEM_T_* */
    uint64_t start, end;                        /* inclusive */
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
