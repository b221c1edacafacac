/*
 * Unit tests of the virtio-iommu core: a core with fake endpoints and
 * request builders, shared by the test programs.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef TESTS_UNIT_VIRTIO_IOMMU_FIXTURE_H
#define TESTS_UNIT_VIRTIO_IOMMU_FIXTURE_H

#include "hw/virtio/virtio-iommu-core.h"

#define GRANULE     0x1000ULL
#define PROBE_SIZE  512
#define EP_A        0x08
#define EP_B        0x10
#define EP_C        0x18
#define MSI_START   0xfee00000ULL
#define MSI_END     0xfeefffffULL

/* The fake endpoints' callbacks, for a core of a test's own */
extern const VIOMMUCoreOps fake_ops;

/* Lines the core logged since the fixture was set up */
unsigned int log_lines(void);

typedef struct Fixture {
    VIOMMUCore *core;
    GHashTable *changed;        /* endpoint IDs reported as changed */
    uint64_t added;
    uint64_t removed;
    /* UNMAPs announced by domain_unmapping, and the domain of the last */
    unsigned int unmapping;
    const VIOMMUDomain *unmapping_domain;
    /* Removals of a domain its request did not announce first */
    uint64_t removed_unannounced;
    unsigned int attached;
    unsigned int detaching;
    uint8_t props[PROBE_SIZE];
} Fixture;

#define ALL_FEATURES ((1ULL << VIRTIO_IOMMU_F_INPUT_RANGE) |      \
                      (1ULL << VIRTIO_IOMMU_F_DOMAIN_RANGE) |     \
                      (1ULL << VIRTIO_IOMMU_F_MAP_UNMAP) |        \
                      (1ULL << VIRTIO_IOMMU_F_PROBE) |            \
                      (1ULL << VIRTIO_IOMMU_F_MMIO) |             \
                      (1ULL << VIRTIO_IOMMU_F_BYPASS_CONFIG))

/* Page-scaled addresses for the spec's UNMAP examples */
#define P(n) ((uint64_t)(n) * GRANULE)
#define PE(n) (P((n) + 1) - 1)

/*
 * A core with endpoints EP_A, EP_B and EP_C, the MSI region, all features
 * and bypass off; the request builders return the status, or -1 for "no
 * status written".
 */
void fixture_setup_limits(Fixture *f, uint32_t max_domains,
                          uint64_t max_mappings);
void fixture_setup(Fixture *f, gconstpointer data);
void fixture_teardown(Fixture *f, gconstpointer data);
int submit(Fixture *f, const void *req, size_t in_len, size_t out_len);
int attach_flags(Fixture *f, uint32_t domain, uint32_t ep, uint32_t flags);
int attach(Fixture *f, uint32_t domain, uint32_t ep);
int detach(Fixture *f, uint32_t domain, uint32_t ep);
int map_flags(Fixture *f, uint32_t domain, uint64_t start, uint64_t end,
              uint64_t phys, uint32_t flags);
int map(Fixture *f, uint32_t domain, uint64_t start, uint64_t end,
        uint64_t phys);
int unmap(Fixture *f, uint32_t domain, uint64_t start, uint64_t end);
int probe(Fixture *f, uint32_t ep, size_t props_len);
const VIOMMUMapping *lookup(Fixture *f, uint32_t ep, uint64_t iova);
uint64_t nr_mappings(Fixture *f);

#endif
