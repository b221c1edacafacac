/*
 * Unit tests of the virtio-iommu core: request decoding, validation,
 * domains, endpoints and the interval map, without QEMU.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/log.h"
#include "qemu/bswap.h"
#include "qapi/error.h"
#include "standard-headers/linux/virtio_iommu.h"
#include "hw/virtio/virtio-iommu-core.h"

#include "virtio-iommu-fixture.h"

/* Buffers */

static void test_buffers(Fixture *f, gconstpointer data)
{
    struct virtio_iommu_req_attach req = {
        .head.type = VIRTIO_IOMMU_T_ATTACH,
        .endpoint = cpu_to_le32(EP_A),
    };
    uint8_t type = 0x42;

    /* Writable part too small for a tail, or absurdly large */
    g_assert_cmpint(submit(f, &req, sizeof(req) - 4, 3), ==, -1);
    g_assert_cmpint(submit(f, &req, sizeof(req) - 4, 0), ==, -1);
    g_assert_cmpint(submit(f, &req, sizeof(req) - 4,
                           VIOMMU_MAX_WRITABLE + 1), ==, -1);
    /* No head */
    g_assert_cmpint(submit(f, &req, 3, 4), ==, -1);
    /* Unknown types */
    g_assert_cmpint(submit(f, &type, 1 + 3, 4), ==, -1);
    type = 0;
    g_assert_cmpint(submit(f, &type, 4, 4), ==, -1);
    /* Body too short for its type */
    g_assert_cmpint(submit(f, &req, sizeof(req) - 5, 4), ==,
                    VIRTIO_IOMMU_S_IOERR);
    g_assert_cmpint(log_lines(), ==, 7);
    g_assert_cmpuint(viommu_core_stats(f->core).nr_attached, ==, 0);
    /* Extra readable and writable bytes are fine */
    g_assert_cmpint(submit(f, &req, sizeof(req) + 16, 64), ==,
                    VIRTIO_IOMMU_S_OK);
}

static void test_features(Fixture *f, gconstpointer data)
{
    viommu_core_set_features(f->core, 0);
    g_assert_cmpint(attach(f, 1, EP_A), ==, VIRTIO_IOMMU_S_OK);
    g_assert_cmpint(map(f, 1, 0, PE(0), 0), ==, -1);
    g_assert_cmpint(unmap(f, 1, 0, PE(0)), ==, -1);
    g_assert_cmpint(probe(f, EP_A, PROBE_SIZE), ==, -1);
    g_assert_cmpint(attach_flags(f, 2, EP_B, VIRTIO_IOMMU_ATTACH_F_BYPASS),
                    ==, VIRTIO_IOMMU_S_INVAL);
    viommu_core_set_features(f->core, 1ULL << VIRTIO_IOMMU_F_MAP_UNMAP);
    g_assert_cmpint(map_flags(f, 1, 0, PE(0), 0, VIRTIO_IOMMU_MAP_F_MMIO),
                    ==, VIRTIO_IOMMU_S_INVAL);
    g_assert_cmpint(map(f, 1, 0, PE(0), 0), ==, VIRTIO_IOMMU_S_OK);
    g_assert_cmpint(log_lines(), ==, 5);
}

/* ATTACH */

static void test_attach_checks(Fixture *f, gconstpointer data)
{
    struct virtio_iommu_req_attach req = {
        .head.type = VIRTIO_IOMMU_T_ATTACH,
        .domain = cpu_to_le32(1),
        .endpoint = cpu_to_le32(EP_A),
        .reserved = { 0, 0, 1, 0 },
    };

    g_assert_cmpint(submit(f, &req, sizeof(req) - 4, 4), ==,
                    VIRTIO_IOMMU_S_INVAL);
    g_assert_cmpint(attach_flags(f, 1, EP_A, 2), ==, VIRTIO_IOMMU_S_INVAL);
    g_assert_cmpint(attach(f, 1, 0x20), ==, VIRTIO_IOMMU_S_NOENT);
    g_assert_cmpint(attach(f, 1, 0x10008), ==, VIRTIO_IOMMU_S_NOENT);
    g_assert_cmpint(attach(f, 1024, EP_A), ==, VIRTIO_IOMMU_S_RANGE);
    g_assert_cmpint(log_lines(), ==, 5);
    g_assert_cmpuint(viommu_core_stats(f->core).nr_domains, ==, 0);
    g_assert_cmpuint(g_hash_table_size(f->changed), ==, 0);

    /* Head reserved bytes are ignored */
    req.head.reserved[0] = 0xff;
    memset(req.reserved, 0, sizeof(req.reserved));
    g_assert_cmpint(submit(f, &req, sizeof(req) - 4, 4), ==,
                    VIRTIO_IOMMU_S_OK);
    g_assert_cmpint(viommu_core_endpoint_mode(f->core, EP_A), ==,
                    VIOMMU_EP_TRANSLATED);
    g_assert_true(g_hash_table_contains(f->changed,
                                        GUINT_TO_POINTER(EP_A)));
}

static void test_attach_move(Fixture *f, gconstpointer data)
{
    g_assert_cmpint(attach(f, 1, EP_A), ==, VIRTIO_IOMMU_S_OK);
    g_assert_cmpint(attach(f, 1, EP_B), ==, VIRTIO_IOMMU_S_OK);
    g_assert_cmpint(map(f, 1, P(1), PE(1), P(7)), ==, VIRTIO_IOMMU_S_OK);
    g_assert_nonnull(lookup(f, EP_B, P(1)));

    /* Moving B leaves domain 1 alive with A and its mapping */
    g_assert_cmpint(attach(f, 2, EP_B), ==, VIRTIO_IOMMU_S_OK);
    g_assert_null(lookup(f, EP_B, P(1)));
    g_assert_nonnull(lookup(f, EP_A, P(1)));
    g_assert_cmpuint(viommu_core_stats(f->core).nr_domains, ==, 2);

    /* A leaving destroys domain 1 and its mapping */
    g_assert_cmpint(attach(f, 2, EP_A), ==, VIRTIO_IOMMU_S_OK);
    g_assert_cmpuint(viommu_core_stats(f->core).nr_domains, ==, 1);
    g_assert_cmpuint(nr_mappings(f), ==, 0);
    g_assert_cmpint(map(f, 1, P(1), PE(1), P(7)), ==, VIRTIO_IOMMU_S_NOENT);
}

/* Linux re-attaches to the same domain and replays its mappings */
static void test_attach_same_domain(Fixture *f, gconstpointer data)
{
    g_assert_cmpint(attach(f, 1, EP_A), ==, VIRTIO_IOMMU_S_OK);
    g_assert_cmpint(map(f, 1, P(1), PE(1), P(7)), ==, VIRTIO_IOMMU_S_OK);
    g_assert_cmpint(attach(f, 1, EP_A), ==, VIRTIO_IOMMU_S_OK);
    g_assert_cmpuint(nr_mappings(f), ==, 0);
    g_assert_cmpint(map(f, 1, P(1), PE(1), P(7)), ==, VIRTIO_IOMMU_S_OK);

    /* With another endpoint in the domain, the mappings stay */
    g_assert_cmpint(attach(f, 1, EP_B), ==, VIRTIO_IOMMU_S_OK);
    g_assert_cmpint(attach(f, 1, EP_A), ==, VIRTIO_IOMMU_S_OK);
    g_assert_cmpuint(nr_mappings(f), ==, 1);
}

static void test_attach_bypass(Fixture *f, gconstpointer data)
{
    g_assert_cmpint(attach_flags(f, 1, EP_A, VIRTIO_IOMMU_ATTACH_F_BYPASS),
                    ==, VIRTIO_IOMMU_S_OK);
    g_assert_cmpint(viommu_core_endpoint_mode(f->core, EP_A), ==,
                    VIOMMU_EP_BYPASS);
    g_assert_cmpint(attach(f, 1, EP_B), ==, VIRTIO_IOMMU_S_INVAL);
    g_assert_cmpint(viommu_core_endpoint_mode(f->core, EP_B), ==,
                    VIOMMU_EP_BLOCKED);
    g_assert_cmpint(map(f, 1, 0, PE(0), 0), ==, VIRTIO_IOMMU_S_INVAL);
    g_assert_cmpint(unmap(f, 1, 0, PE(0)), ==, VIRTIO_IOMMU_S_INVAL);

    /* The only endpoint may turn its domain into the other kind */
    g_assert_cmpint(attach(f, 1, EP_A), ==, VIRTIO_IOMMU_S_OK);
    g_assert_cmpint(viommu_core_endpoint_mode(f->core, EP_A), ==,
                    VIOMMU_EP_TRANSLATED);

    /* A failed ATTACH leaves the endpoint where it was */
    g_assert_cmpint(attach_flags(f, 2, EP_B, VIRTIO_IOMMU_ATTACH_F_BYPASS),
                    ==, VIRTIO_IOMMU_S_OK);
    g_assert_cmpint(attach_flags(f, 1, EP_B, VIRTIO_IOMMU_ATTACH_F_BYPASS),
                    ==, VIRTIO_IOMMU_S_INVAL);
    g_assert_cmpint(viommu_core_endpoint_mode(f->core, EP_B), ==,
                    VIOMMU_EP_BYPASS);
    g_assert_cmpuint(viommu_domain_id(viommu_core_endpoint_domain(f->core,
                                                                  EP_B)),
                     ==, 2);
}

static void test_attach_resv_conflict(Fixture *f, gconstpointer data)
{
    g_assert_cmpint(attach(f, 1, EP_A), ==, VIRTIO_IOMMU_S_OK);
    g_assert_cmpint(map(f, 1, MSI_START, MSI_START + GRANULE - 1, 0), ==,
                    VIRTIO_IOMMU_S_INVAL);
    g_assert_cmpint(map(f, 1, MSI_START - GRANULE, MSI_START - 1, 0), ==,
                    VIRTIO_IOMMU_S_OK);
    g_assert_cmpint(map(f, 1, MSI_END + 1, MSI_END + GRANULE, 0), ==,
                    VIRTIO_IOMMU_S_OK);
}

static void test_attach_nomem(Fixture *f, gconstpointer data)
{
    fixture_teardown(f, NULL);
    fixture_setup_limits(f, 2, 64);

    g_assert_cmpint(attach(f, 1, EP_A), ==, VIRTIO_IOMMU_S_OK);
    g_assert_cmpint(attach(f, 2, EP_B), ==, VIRTIO_IOMMU_S_OK);
    g_assert_cmpint(attach(f, 3, EP_C), ==, VIRTIO_IOMMU_S_NOMEM);
    g_assert_cmpint(viommu_core_endpoint_mode(f->core, EP_C), ==,
                    VIOMMU_EP_BLOCKED);
    /* Moving A frees domain 1 as it creates domain 3: fits */
    g_assert_cmpint(attach(f, 3, EP_A), ==, VIRTIO_IOMMU_S_OK);
    g_assert_cmpint(attach(f, 3, EP_C), ==, VIRTIO_IOMMU_S_OK);
    g_assert_cmpuint(viommu_core_stats(f->core).nr_domains, ==, 2);
}

/* DETACH */

static void test_detach(Fixture *f, gconstpointer data)
{
    g_assert_cmpint(detach(f, 1, 0x20), ==, VIRTIO_IOMMU_S_NOENT);
    g_assert_cmpint(detach(f, 1, EP_A), ==, VIRTIO_IOMMU_S_INVAL);
    g_assert_cmpint(attach(f, 1, EP_A), ==, VIRTIO_IOMMU_S_OK);
    g_assert_cmpint(detach(f, 2, EP_A), ==, VIRTIO_IOMMU_S_INVAL);
    g_assert_cmpint(detach(f, 4096, EP_A), ==, VIRTIO_IOMMU_S_RANGE);
    g_assert_cmpint(map(f, 1, 0, PE(3), 0), ==, VIRTIO_IOMMU_S_OK);
    g_assert_cmpint(detach(f, 1, EP_A), ==, VIRTIO_IOMMU_S_OK);
    g_assert_cmpint(viommu_core_endpoint_mode(f->core, EP_A), ==,
                    VIOMMU_EP_BLOCKED);
    g_assert_cmpuint(viommu_core_stats(f->core).nr_domains, ==, 0);
    g_assert_cmpuint(nr_mappings(f), ==, 0);

    viommu_core_set_bypass(f->core, true);
    g_assert_cmpint(viommu_core_endpoint_mode(f->core, EP_A), ==,
                    VIOMMU_EP_BYPASS);
}

/* MAP */

static void test_map_checks(Fixture *f, gconstpointer data)
{
    g_assert_cmpint(map(f, 1, 0, PE(0), 0), ==, VIRTIO_IOMMU_S_NOENT);
    g_assert_cmpint(map(f, 2000, 0, PE(0), 0), ==, VIRTIO_IOMMU_S_RANGE);
    g_assert_cmpint(attach(f, 1, EP_A), ==, VIRTIO_IOMMU_S_OK);
    g_assert_cmpint(map_flags(f, 1, 0, PE(0), 0, 8), ==,
                    VIRTIO_IOMMU_S_INVAL);
    g_assert_cmpint(map(f, 1, P(2), P(1), 0), ==, VIRTIO_IOMMU_S_INVAL);
    g_assert_cmpint(map(f, 1, 0x10, PE(0), 0), ==, VIRTIO_IOMMU_S_RANGE);
    g_assert_cmpint(map(f, 1, 0, PE(0), 0x800), ==, VIRTIO_IOMMU_S_RANGE);
    g_assert_cmpint(map(f, 1, 0, 4, 0), ==, VIRTIO_IOMMU_S_RANGE);
    g_assert_cmpint(map(f, 1, 1ULL << 48, (1ULL << 48) + PE(0), 0), ==,
                    VIRTIO_IOMMU_S_RANGE);
    g_assert_cmpint(map(f, 1, 0, PE(1), UINT64_MAX - PE(0)), ==,
                    VIRTIO_IOMMU_S_RANGE);
    g_assert_cmpint(nr_mappings(f), ==, 0);

    g_assert_cmpint(map(f, 1, P(4), PE(7), P(100)), ==, VIRTIO_IOMMU_S_OK);
    g_assert_cmpint(map(f, 1, P(7), PE(8), 0), ==, VIRTIO_IOMMU_S_INVAL);
    g_assert_cmpint(map(f, 1, P(0), PE(4), 0), ==, VIRTIO_IOMMU_S_INVAL);
    g_assert_cmpint(map(f, 1, P(5), PE(5), 0), ==, VIRTIO_IOMMU_S_INVAL);
    g_assert_cmpint(map(f, 1, P(0), PE(100), 0), ==, VIRTIO_IOMMU_S_INVAL);
    g_assert_cmpint(map(f, 1, P(8), PE(8), 0), ==, VIRTIO_IOMMU_S_OK);
    g_assert_cmpint(map(f, 1, P(3), PE(3), 0), ==, VIRTIO_IOMMU_S_OK);
    g_assert_cmpint(nr_mappings(f), ==, 3);
    g_assert_cmpuint(f->added, ==, 3);
}

static void test_map_nomem(Fixture *f, gconstpointer data)
{
    int i;

    g_assert_cmpint(attach(f, 1, EP_A), ==, VIRTIO_IOMMU_S_OK);
    for (i = 0; i < 64; i++) {
        g_assert_cmpint(map(f, 1, P(i), PE(i), P(i)), ==, VIRTIO_IOMMU_S_OK);
    }
    g_assert_cmpint(map(f, 1, P(64), PE(64), 0), ==, VIRTIO_IOMMU_S_NOMEM);
    g_assert_cmpint(unmap(f, 1, P(0), PE(0)), ==, VIRTIO_IOMMU_S_OK);
    g_assert_cmpint(map(f, 1, P(64), PE(64), 0), ==, VIRTIO_IOMMU_S_OK);
}

/* The top of the address space and mapping boundaries */
static void test_lookup_edges(Fixture *f, gconstpointer data)
{
    VIOMMUCoreConfig config = {
        .granule = GRANULE,
        .input_end = UINT64_MAX,
        .domain_end = UINT32_MAX,
        .probe_size = PROBE_SIZE,
        .limits = { 4, 16 },
    };
    const VIOMMUMapping *m;

    viommu_core_free(f->core);
    f->core = viommu_core_new(&config, &fake_ops, f);
    viommu_core_set_features(f->core, ALL_FEATURES);

    g_assert_cmpint(attach(f, UINT32_MAX, EP_A), ==, VIRTIO_IOMMU_S_OK);
    g_assert_cmpint(map(f, UINT32_MAX, UINT64_MAX - PE(0), UINT64_MAX, P(9)),
                    ==, VIRTIO_IOMMU_S_OK);
    g_assert_cmpint(map(f, UINT32_MAX, P(2), PE(2), P(20)), ==,
                    VIRTIO_IOMMU_S_OK);
    g_assert_cmpint(map(f, UINT32_MAX, P(3), PE(3), P(40)), ==,
                    VIRTIO_IOMMU_S_OK);

    m = lookup(f, EP_A, UINT64_MAX);
    g_assert_nonnull(m);
    g_assert_cmphex(m->phys_start, ==, P(9));
    g_assert_null(lookup(f, EP_A, UINT64_MAX - GRANULE));
    g_assert_null(lookup(f, EP_A, P(2) - 1));
    g_assert_cmphex(lookup(f, EP_A, P(2))->phys_start, ==, P(20));
    g_assert_cmphex(lookup(f, EP_A, PE(2))->phys_start, ==, P(20));
    g_assert_cmphex(lookup(f, EP_A, P(3))->phys_start, ==, P(40));
    g_assert_null(lookup(f, EP_A, P(4)));

    g_assert_cmpint(unmap(f, UINT32_MAX, 0, UINT64_MAX), ==,
                    VIRTIO_IOMMU_S_OK);
    g_assert_cmpuint(nr_mappings(f), ==, 0);
}

/* UNMAP: the spec's seven examples, one page per unit of address */

typedef struct UnmapExample {
    const char *name;
    struct { uint64_t start, end; } maps[2];
    int nr_maps;
    uint64_t unmap_start, unmap_end;
    uint8_t status;
    int left;
} UnmapExample;

static const UnmapExample unmap_examples[] = {
    { "1", { }, 0, 0, 4, VIRTIO_IOMMU_S_OK, 0 },
    { "2", { { 0, 9 } }, 1, 0, 9, VIRTIO_IOMMU_S_OK, 0 },
    { "3", { { 0, 4 }, { 5, 9 } }, 2, 0, 9, VIRTIO_IOMMU_S_OK, 0 },
    { "4", { { 0, 9 } }, 1, 0, 4, VIRTIO_IOMMU_S_RANGE, 1 },
    { "5", { { 0, 4 }, { 5, 9 } }, 2, 0, 4, VIRTIO_IOMMU_S_OK, 1 },
    { "6", { { 0, 4 } }, 1, 0, 9, VIRTIO_IOMMU_S_OK, 0 },
    { "7", { { 0, 4 }, { 10, 14 } }, 2, 0, 14, VIRTIO_IOMMU_S_OK, 0 },
};

static void test_unmap_example(Fixture *f, gconstpointer data)
{
    const UnmapExample *ex = data;
    int i;

    g_assert_cmpint(attach(f, 1, EP_A), ==, VIRTIO_IOMMU_S_OK);
    for (i = 0; i < ex->nr_maps; i++) {
        g_assert_cmpint(map(f, 1, P(ex->maps[i].start), PE(ex->maps[i].end),
                            P(100 + ex->maps[i].start)), ==,
                        VIRTIO_IOMMU_S_OK);
    }
    g_assert_cmpint(unmap(f, 1, P(ex->unmap_start), PE(ex->unmap_end)), ==,
                    ex->status);
    g_assert_cmpuint(nr_mappings(f), ==, ex->left);
}

static void test_unmap_split_changes_nothing(Fixture *f, gconstpointer data)
{
    struct virtio_iommu_req_unmap req = {
        .head.type = VIRTIO_IOMMU_T_UNMAP,
        .domain = cpu_to_le32(1),
        .virt_start = cpu_to_le64(0),
        .virt_end = cpu_to_le64(PE(100)),
        .reserved = { 1 },
    };

    g_assert_cmpint(attach(f, 1, EP_A), ==, VIRTIO_IOMMU_S_OK);
    g_assert_cmpint(map(f, 1, P(0), PE(1), 0), ==, VIRTIO_IOMMU_S_OK);
    g_assert_cmpint(map(f, 1, P(2), PE(3), 0), ==, VIRTIO_IOMMU_S_OK);
    g_assert_cmpint(map(f, 1, P(4), PE(7), 0), ==, VIRTIO_IOMMU_S_OK);
    /* Covers the first two mappings, cuts the third: nothing goes */
    g_assert_cmpint(unmap(f, 1, P(0), PE(5)), ==, VIRTIO_IOMMU_S_RANGE);
    g_assert_cmpint(unmap(f, 1, P(1), PE(7)), ==, VIRTIO_IOMMU_S_RANGE);
    g_assert_cmpuint(nr_mappings(f), ==, 3);
    g_assert_cmpuint(f->removed, ==, 0);
    g_assert_cmpuint(f->unmapping, ==, 0);
    g_assert_cmpint(submit(f, &req, sizeof(req) - 4, 4), ==,
                    VIRTIO_IOMMU_S_INVAL);
    g_assert_cmpuint(nr_mappings(f), ==, 3);
    g_assert_cmpint(unmap(f, 1, PE(7), P(2)), ==, VIRTIO_IOMMU_S_INVAL);
    g_assert_cmpint(unmap(f, 1, 0, 1ULL << 48), ==, VIRTIO_IOMMU_S_RANGE);
    g_assert_cmpint(unmap(f, 2, 0, PE(0)), ==, VIRTIO_IOMMU_S_NOENT);
    g_assert_cmpint(unmap(f, 1, 0, PE(100)), ==, VIRTIO_IOMMU_S_OK);
    g_assert_cmpuint(f->removed, ==, 3);
    g_assert_cmpuint(f->unmapping, ==, 1);
    g_assert_cmpuint(f->removed_unannounced, ==, 0);
}

/*
 * An UNMAP that removes mappings announces its domain once, before the
 * first removal (the device flushes caches and picks the notified spaces
 * there); one that removes nothing announces nothing.
 */
static void test_unmap_announced_once(Fixture *f, gconstpointer data)
{
    uint64_t i;

    g_assert_cmpint(attach(f, 1, EP_A), ==, VIRTIO_IOMMU_S_OK);
    g_assert_cmpint(attach(f, 2, EP_B), ==, VIRTIO_IOMMU_S_OK);
    for (i = 0; i < 64; i++) {
        g_assert_cmpint(map(f, 1 + i % 2, P(i), PE(i), 0), ==,
                        VIRTIO_IOMMU_S_OK);
    }
    g_assert_cmpint(unmap(f, 1, P(64), PE(100)), ==, VIRTIO_IOMMU_S_OK);
    g_assert_cmpuint(f->unmapping, ==, 0);
    g_assert_cmpint(unmap(f, 2, P(10), PE(19)), ==, VIRTIO_IOMMU_S_OK);
    g_assert_cmpuint(f->removed, ==, 5);
    g_assert_cmpuint(f->unmapping, ==, 1);
    g_assert_cmpint(unmap(f, 1, 0, PE(100)), ==, VIRTIO_IOMMU_S_OK);
    g_assert_cmpuint(f->removed, ==, 37);
    g_assert_cmpuint(f->unmapping, ==, 2);
    g_assert_cmpuint(f->removed_unannounced, ==, 0);
    g_assert_cmpuint(nr_mappings(f), ==, 27);
}

/* PROBE */

static void test_probe(Fixture *f, gconstpointer data)
{
    struct virtio_iommu_probe_resv_mem prop;
    size_t i;

    memset(f->props, 0xaa, sizeof(f->props));
    g_assert_cmpint(probe(f, EP_A, PROBE_SIZE - 1), ==, VIRTIO_IOMMU_S_INVAL);
    g_assert_cmpint(probe(f, 0x20, PROBE_SIZE), ==, VIRTIO_IOMMU_S_NOENT);
    g_assert_cmpint(f->props[0], ==, 0xaa);

    g_assert_cmpint(probe(f, EP_A, PROBE_SIZE + 100), ==, VIRTIO_IOMMU_S_OK);
    memcpy(&prop, f->props, sizeof(prop));
    g_assert_cmpuint(le16_to_cpu(prop.head.type), ==,
                     VIRTIO_IOMMU_PROBE_T_RESV_MEM);
    g_assert_cmpuint(le16_to_cpu(prop.head.length), ==, 20);
    g_assert_cmpuint(prop.subtype, ==, VIRTIO_IOMMU_RESV_MEM_T_MSI);
    g_assert_cmphex(le64_to_cpu(prop.start), ==, MSI_START);
    g_assert_cmphex(le64_to_cpu(prop.end), ==, MSI_END);
    for (i = sizeof(prop); i < PROBE_SIZE; i++) {
        g_assert_cmpuint(f->props[i], ==, 0);
    }
}

/* Translation helpers */

static void test_block_mask(void)
{
    VIOMMUMapping m = {
        .virt_start = 0x200000, .virt_end = 0x5fffff, .phys_start = 0x400000,
    };

    /* 2 MiB aligned on both sides: 2 MiB blocks, not larger */
    g_assert_cmphex(viommu_mapping_block_mask(&m, 0x200123), ==, 0x1fffff);
    g_assert_cmphex(viommu_mapping_block_mask(&m, 0x4fffff), ==, 0x1fffff);
    /* Misaligned physical side limits the block */
    m.phys_start = 0x401000;
    g_assert_cmphex(viommu_mapping_block_mask(&m, 0x300000), ==, 0xfff);
    /* Identity over the whole space */
    m = (VIOMMUMapping) { .virt_start = 0, .virt_end = UINT64_MAX };
    g_assert_cmphex(viommu_mapping_block_mask(&m, 0x1234), ==, UINT64_MAX);
    /* The last page of the space */
    m = (VIOMMUMapping) {
        .virt_start = UINT64_MAX - 0xfff, .virt_end = UINT64_MAX,
        .phys_start = 0x1000,
    };
    g_assert_cmphex(viommu_mapping_block_mask(&m, UINT64_MAX), ==, 0xfff);
}

static void test_reset(Fixture *f, gconstpointer data)
{
    g_assert_cmpint(attach(f, 1, EP_A), ==, VIRTIO_IOMMU_S_OK);
    g_assert_cmpint(attach(f, 2, EP_B), ==, VIRTIO_IOMMU_S_OK);
    g_assert_cmpint(map(f, 1, 0, PE(0), 0), ==, VIRTIO_IOMMU_S_OK);
    g_hash_table_remove_all(f->changed);
    viommu_core_reset(f->core);
    g_assert_cmpuint(viommu_core_stats(f->core).nr_domains, ==, 0);
    g_assert_cmpuint(viommu_core_stats(f->core).nr_attached, ==, 0);
    g_assert_cmpuint(nr_mappings(f), ==, 0);
    g_assert_cmpuint(g_hash_table_size(f->changed), ==, 2);
}

/* Callbacks: a move is one detach then one attach; failures call none */
static void test_callbacks(Fixture *f, gconstpointer data)
{
    g_assert_cmpint(attach(f, 1, EP_A), ==, VIRTIO_IOMMU_S_OK);
    g_assert_cmpuint(f->attached, ==, 1);
    g_assert_cmpuint(f->detaching, ==, 0);
    g_assert_cmpint(attach(f, 2, EP_A), ==, VIRTIO_IOMMU_S_OK);
    g_assert_cmpuint(f->attached, ==, 2);
    g_assert_cmpuint(f->detaching, ==, 1);
    g_assert_cmpint(attach(f, 3, 0x20), ==, VIRTIO_IOMMU_S_NOENT);
    g_assert_cmpint(detach(f, 3, EP_A), ==, VIRTIO_IOMMU_S_INVAL);
    g_assert_cmpuint(f->attached, ==, 2);
    g_assert_cmpuint(f->detaching, ==, 1);
    g_assert_cmpint(map(f, 2, 0, PE(1), 0), ==, VIRTIO_IOMMU_S_OK);
    g_assert_cmpint(map(f, 2, 0, PE(1), 0), ==, VIRTIO_IOMMU_S_INVAL);
    g_assert_cmpuint(f->added, ==, 1);
}

/* Hot-unplug: the endpoint leaves its domain, which goes if empty */
static void test_forget_endpoint(Fixture *f, gconstpointer data)
{
    g_assert_cmpint(attach(f, 1, EP_A), ==, VIRTIO_IOMMU_S_OK);
    g_assert_cmpint(attach(f, 1, EP_B), ==, VIRTIO_IOMMU_S_OK);
    g_assert_cmpint(map(f, 1, 0, PE(0), 0), ==, VIRTIO_IOMMU_S_OK);
    viommu_core_forget_endpoint(f->core, EP_A);
    viommu_core_forget_endpoint(f->core, EP_C);
    g_assert_cmpint(viommu_core_endpoint_mode(f->core, EP_A), ==,
                    VIOMMU_EP_BLOCKED);
    g_assert_cmpuint(nr_mappings(f), ==, 1);
    viommu_core_forget_endpoint(f->core, EP_B);
    g_assert_cmpuint(viommu_core_stats(f->core).nr_domains, ==, 0);
    g_assert_cmpuint(nr_mappings(f), ==, 0);
}

/* A host IOMMU device raised the granule before the guest started */
static void test_set_granule(Fixture *f, gconstpointer data)
{
    g_assert_cmpint(attach(f, 1, EP_A), ==, VIRTIO_IOMMU_S_OK);
    viommu_core_set_granule(f->core, 0x10000);
    g_assert_cmpint(map(f, 1, 0, PE(0), 0), ==, VIRTIO_IOMMU_S_RANGE);
    g_assert_cmpint(map(f, 1, 0, 0xffff, 0x10000), ==, VIRTIO_IOMMU_S_OK);
}

static void count_domain(const VIOMMUDomain *domain, void *opaque)
{
    (*(int *)opaque)++;
}

static void count_endpoint(uint32_t ep_id, void *opaque)
{
    (*(int *)opaque)++;
}

static bool stop_after_first(const VIOMMUMapping *mapping, void *opaque)
{
    (*(int *)opaque)++;
    return true;
}

static void test_iteration(Fixture *f, gconstpointer data)
{
    int domains = 0, endpoints = 0, mappings = 0;

    g_assert_cmpint(attach(f, 1, EP_A), ==, VIRTIO_IOMMU_S_OK);
    g_assert_cmpint(attach(f, 1, EP_B), ==, VIRTIO_IOMMU_S_OK);
    g_assert_cmpint(attach(f, 2, EP_C), ==, VIRTIO_IOMMU_S_OK);
    g_assert_cmpint(map(f, 1, 0, PE(0), 0), ==, VIRTIO_IOMMU_S_OK);
    g_assert_cmpint(map(f, 1, P(1), PE(1), 0), ==, VIRTIO_IOMMU_S_OK);
    viommu_core_foreach_domain(f->core, count_domain, &domains);
    viommu_domain_foreach_endpoint(viommu_core_endpoint_domain(f->core,
                                                               EP_A),
                                   count_endpoint, &endpoints);
    viommu_domain_foreach_mapping(viommu_core_endpoint_domain(f->core, EP_A),
                                  stop_after_first, &mappings);
    g_assert_cmpint(domains, ==, 2);
    g_assert_cmpint(endpoints, ==, 2);
    g_assert_cmpint(mappings, ==, 1);
}

/* Loading saved state */

static VIOMMUMappingSet *set_of(const VIOMMUMapping *mappings, size_t n)
{
    VIOMMUMappingSet *set = viommu_mapping_set_new();
    size_t i;

    for (i = 0; i < n; i++) {
        g_assert_true(viommu_mapping_set_add(set, &mappings[i], NULL));
    }
    return set;
}

/* n one-page mappings from page @first on, every other page */
static VIOMMUMappingSet *set_of_pages(uint64_t first, unsigned n)
{
    VIOMMUMappingSet *set = viommu_mapping_set_new();
    unsigned i;

    for (i = 0; i < n; i++) {
        VIOMMUMapping m = { P(first + 2 * i), PE(first + 2 * i), P(i),
                            VIRTIO_IOMMU_MAP_F_READ };

        g_assert_true(viommu_mapping_set_add(set, &m, NULL));
    }
    return set;
}

static void test_load_order(Fixture *f, gconstpointer data)
{
    static const VIOMMUMapping refused[] = {
        { P(4), PE(4), 0, VIRTIO_IOMMU_MAP_F_READ },    /* the same */
        { P(3), PE(5), 0, VIRTIO_IOMMU_MAP_F_READ },    /* over it */
        { P(2), PE(2), 0, VIRTIO_IOMMU_MAP_F_READ },    /* below it */
        { P(6), PE(5), 0, VIRTIO_IOMMU_MAP_F_READ },    /* end < start */
    };
    VIOMMUMapping first = { P(4), PE(4), 0, VIRTIO_IOMMU_MAP_F_READ };
    VIOMMUMapping next = { P(5), PE(9), P(1), VIRTIO_IOMMU_MAP_F_WRITE };
    VIOMMUMappingSet *set = set_of(&first, 1);
    size_t i;

    for (i = 0; i < ARRAY_SIZE(refused); i++) {
        Error *err = NULL;

        g_assert_false(viommu_mapping_set_add(set, &refused[i], &err));
        g_assert_nonnull(err);
        error_free(err);
        g_assert_cmpuint(viommu_mapping_set_size(set), ==, 1);
    }
    g_assert_true(viommu_mapping_set_add(set, &next, NULL));
    g_assert_cmpuint(viommu_mapping_set_size(set), ==, 2);
    viommu_mapping_set_free(set);
}

static void test_load_mappings(Fixture *f, gconstpointer data)
{
    static const VIOMMUMapping mappings[] = {
        { P(1), PE(1), P(7), VIRTIO_IOMMU_MAP_F_READ },
        { P(2), PE(3), P(20), VIRTIO_IOMMU_MAP_F_READ |
                              VIRTIO_IOMMU_MAP_F_WRITE },
        { P(10), PE(10), MSI_START, VIRTIO_IOMMU_MAP_F_MMIO },
    };
    VIOMMUMappingSet *set = set_of(mappings, ARRAY_SIZE(mappings));
    VIOMMUMappingSet *again = set_of(mappings, 1);
    const VIOMMUMapping *m;
    Error *err = NULL;

    g_assert_cmpint(attach(f, 1, EP_A), ==, VIRTIO_IOMMU_S_OK);
    g_assert_cmpint(attach(f, 1, EP_B), ==, VIRTIO_IOMMU_S_OK);
    g_assert_true(viommu_core_load_mappings(f->core, 1, set, NULL));
    g_assert_cmpuint(viommu_mapping_set_size(set), ==, 0);
    g_assert_cmpuint(nr_mappings(f), ==, 3);
    g_assert_cmpuint(f->added, ==, 3);
    m = lookup(f, EP_B, P(3) + 8);
    g_assert_nonnull(m);
    g_assert_cmphex(m->phys_start, ==, P(20));
    g_assert_null(lookup(f, EP_A, P(4)));
    g_assert_nonnull(lookup(f, EP_A, P(10)));
    /* The loaded mappings are the domain's own: UNMAP takes them */
    g_assert_cmpint(unmap(f, 1, P(2), PE(3)), ==, VIRTIO_IOMMU_S_OK);
    g_assert_cmpuint(nr_mappings(f), ==, 2);

    /* Only into a domain without mappings */
    g_assert_false(viommu_core_load_mappings(f->core, 1, again, &err));
    g_assert_nonnull(err);
    error_free(err);
    g_assert_cmpuint(viommu_mapping_set_size(again), ==, 1);
    g_assert_cmpuint(nr_mappings(f), ==, 2);
    g_assert_cmpint(log_lines(), ==, 0);
    viommu_mapping_set_free(set);
    viommu_mapping_set_free(again);
}

/* Every mapping MAP would refuse fails the whole set, and changes nothing */
static void test_load_refused(Fixture *f, gconstpointer data)
{
    static const VIOMMUMapping bad[] = {
        { P(1), PE(1), 0, VIRTIO_IOMMU_MAP_F_READ | 0x80 },
        { P(1) + 0x800, PE(1), 0, VIRTIO_IOMMU_MAP_F_READ },
        { P(1), PE(1) - 0x800, 0, VIRTIO_IOMMU_MAP_F_READ },
        { P(1), PE(1), 0x800, VIRTIO_IOMMU_MAP_F_READ },
        { 1ULL << 48, (1ULL << 48) + GRANULE - 1, 0,
          VIRTIO_IOMMU_MAP_F_READ },
        { P(1), PE(2), UINT64_MAX - GRANULE + 1, VIRTIO_IOMMU_MAP_F_READ },
        { MSI_START, MSI_START + GRANULE - 1, 0, VIRTIO_IOMMU_MAP_F_WRITE },
    };
    VIOMMUMapping good = { P(0), PE(0), 0, VIRTIO_IOMMU_MAP_F_READ };
    size_t i;

    g_assert_cmpint(attach(f, 1, EP_A), ==, VIRTIO_IOMMU_S_OK);
    for (i = 0; i < ARRAY_SIZE(bad); i++) {
        VIOMMUMappingSet *set = set_of(&good, 1);
        Error *err = NULL;

        g_assert_true(viommu_mapping_set_add(set, &bad[i], NULL));
        g_assert_false(viommu_core_load_mappings(f->core, 1, set, &err));
        g_assert_nonnull(err);
        g_test_message("bad[%zu]: %s", i, error_get_pretty(err));
        error_free(err);
        g_assert_cmpuint(viommu_mapping_set_size(set), ==, 2);
        g_assert_cmpuint(nr_mappings(f), ==, 0);
        g_assert_null(lookup(f, EP_A, P(0)));
        viommu_mapping_set_free(set);
    }
    g_assert_cmpuint(f->added, ==, 0);
}

static void test_load_domain_checks(Fixture *f, gconstpointer data)
{
    VIOMMUMapping mmio = { P(0), PE(0), MSI_START, VIRTIO_IOMMU_MAP_F_MMIO };
    VIOMMUMappingSet *set = set_of_pages(0, 4);
    VIOMMUMappingSet *mmio_set = set_of(&mmio, 1);
    VIOMMUMappingSet *empty = viommu_mapping_set_new();
    unsigned i;

    /* No domain, a bypass domain */
    g_assert_false(viommu_core_load_mappings(f->core, 1, set, NULL));
    g_assert_cmpint(attach_flags(f, 1, EP_A, VIRTIO_IOMMU_ATTACH_F_BYPASS),
                    ==, VIRTIO_IOMMU_S_OK);
    g_assert_false(viommu_core_load_mappings(f->core, 1, set, NULL));
    /* Nothing to load is always fine */
    g_assert_true(viommu_core_load_mappings(f->core, 7, empty, NULL));

    /* MMIO only with its feature */
    g_assert_cmpint(attach(f, 2, EP_B), ==, VIRTIO_IOMMU_S_OK);
    viommu_core_set_features(f->core, ALL_FEATURES &
                             ~(1ULL << VIRTIO_IOMMU_F_MMIO));
    g_assert_false(viommu_core_load_mappings(f->core, 2, mmio_set, NULL));
    viommu_core_set_features(f->core, ALL_FEATURES);

    /* max-mappings (64) over all domains */
    for (i = 0; i < 10; i++) {
        g_assert_cmpint(map(f, 2, P(2 * i), PE(2 * i), 0), ==,
                        VIRTIO_IOMMU_S_OK);
    }
    g_assert_cmpint(attach(f, 3, EP_C), ==, VIRTIO_IOMMU_S_OK);
    viommu_mapping_set_free(set);
    set = set_of_pages(0, 55);
    g_assert_false(viommu_core_load_mappings(f->core, 3, set, NULL));
    g_assert_cmpuint(nr_mappings(f), ==, 10);
    viommu_mapping_set_free(set);
    set = set_of_pages(0, 54);
    g_assert_true(viommu_core_load_mappings(f->core, 3, set, NULL));
    g_assert_cmpuint(nr_mappings(f), ==, 64);
    g_assert_cmpint(map(f, 3, P(200), PE(200), 0), ==, VIRTIO_IOMMU_S_NOMEM);
    viommu_mapping_set_free(set);
    viommu_mapping_set_free(mmio_set);
    viommu_mapping_set_free(empty);
}

#define ADD(path, fn) \
    g_test_add("/virtio-iommu-core/" path, Fixture, NULL, fixture_setup, \
               fn, fixture_teardown)

int main(int argc, char **argv)
{
    size_t i;

    g_test_init(&argc, &argv, NULL);
    ADD("buffers", test_buffers);
    ADD("features", test_features);
    ADD("attach/checks", test_attach_checks);
    ADD("attach/move", test_attach_move);
    ADD("attach/same-domain", test_attach_same_domain);
    ADD("attach/bypass", test_attach_bypass);
    ADD("attach/resv-conflict", test_attach_resv_conflict);
    ADD("attach/nomem", test_attach_nomem);
    ADD("detach", test_detach);
    ADD("map/checks", test_map_checks);
    ADD("map/nomem", test_map_nomem);
    ADD("map/lookup-edges", test_lookup_edges);
    ADD("unmap/split-changes-nothing", test_unmap_split_changes_nothing);
    ADD("unmap/announced-once", test_unmap_announced_once);
    for (i = 0; i < ARRAY_SIZE(unmap_examples); i++) {
        g_autofree char *path =
            g_strdup_printf("/virtio-iommu-core/unmap/example-%s",
                            unmap_examples[i].name);

        g_test_add(path, Fixture, &unmap_examples[i], fixture_setup,
                   test_unmap_example, fixture_teardown);
    }
    ADD("callbacks", test_callbacks);
    ADD("forget-endpoint", test_forget_endpoint);
    ADD("set-granule", test_set_granule);
    ADD("iteration", test_iteration);
    ADD("probe", test_probe);
    ADD("reset", test_reset);
    ADD("load/order", test_load_order);
    ADD("load/mappings", test_load_mappings);
    ADD("load/refused", test_load_refused);
    ADD("load/domain-checks", test_load_domain_checks);
    g_test_add_func("/virtio-iommu-core/block-mask", test_block_mask);
    return g_test_run();
}
