/*
 * Unit tests of the virtio-iommu translation policy: endpoint modes, what
 * a DMA access gets, the block rule, notifier blocks and the reserved
 * regions of endpoints with a host IOMMU device.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/host-utils.h"
#include "standard-headers/linux/virtio_iommu.h"
#include "virtio-iommu-fixture.h"

#define R       VIOMMU_PERM_READ
#define W       VIOMMU_PERM_WRITE
#define RW      VIOMMU_PERM_RW
#define NONE    VIOMMU_PERM_NONE
#define MIB2    0x200000ULL

static const VIOMMUDomain *domain_of(Fixture *f, uint32_t ep)
{
    return viommu_core_endpoint_domain(f->core, ep);
}

/* The mode follows bypass only while not attached */
static void test_mode(Fixture *f, gconstpointer data)
{
    g_assert_cmpint(viommu_core_domain_mode(f->core, NULL), ==,
                    VIOMMU_EP_BLOCKED);
    viommu_core_set_bypass(f->core, true);
    g_assert_cmpint(viommu_core_domain_mode(f->core, NULL), ==,
                    VIOMMU_EP_BYPASS);
    g_assert_cmpint(attach(f, 1, EP_A), ==, VIRTIO_IOMMU_S_OK);
    g_assert_cmpint(attach_flags(f, 2, EP_B, VIRTIO_IOMMU_ATTACH_F_BYPASS),
                    ==, VIRTIO_IOMMU_S_OK);
    g_assert_cmpint(viommu_core_domain_mode(f->core, domain_of(f, EP_A)), ==,
                    VIOMMU_EP_TRANSLATED);
    g_assert_cmpint(viommu_core_domain_mode(f->core, domain_of(f, EP_B)), ==,
                    VIOMMU_EP_BYPASS);
    viommu_core_set_bypass(f->core, false);
    g_assert_cmpint(viommu_core_endpoint_mode(f->core, EP_A), ==,
                    VIOMMU_EP_TRANSLATED);
    g_assert_cmpint(viommu_core_endpoint_mode(f->core, EP_B), ==,
                    VIOMMU_EP_BYPASS);
    g_assert_cmpint(viommu_core_endpoint_mode(f->core, EP_C), ==,
                    VIOMMU_EP_BLOCKED);
}

static VIOMMUTranslation tr(Fixture *f, uint32_t ep, uint64_t addr,
                            unsigned access)
{
    return viommu_core_translate(f->core, domain_of(f, ep), addr, access);
}

static void assert_fault(VIOMMUTranslation t, uint8_t reason)
{
    g_assert_true(t.fault);
    g_assert_cmpuint(t.reason, ==, reason);
    g_assert_false(t.cacheable);
}

/* Not attached: identity or nothing, one granule, never cached */
static void test_translate_unattached(Fixture *f, gconstpointer data)
{
    VIOMMUTranslation t = tr(f, EP_A, 0x12345, W);

    g_assert_cmpint(t.mode, ==, VIOMMU_EP_BLOCKED);
    g_assert_cmpuint(t.perm, ==, NONE);
    g_assert_cmphex(t.iova, ==, 0x12000);
    g_assert_cmphex(t.mask, ==, GRANULE - 1);
    assert_fault(t, VIRTIO_IOMMU_FAULT_R_DOMAIN);
    /* A lookup that is not an access reports nothing */
    g_assert_false(tr(f, EP_A, 0x12345, NONE).fault);

    viommu_core_set_bypass(f->core, true);
    t = tr(f, EP_A, 0x12345, W);
    g_assert_cmpint(t.mode, ==, VIOMMU_EP_BYPASS);
    g_assert_cmpuint(t.perm, ==, RW);
    g_assert_cmphex(t.pa, ==, 0x12000);
    g_assert_false(t.fault);
    g_assert_false(t.cacheable);
}

/* A mapping grants its own permissions over the largest block it allows */
static void test_translate_mapped(Fixture *f, gconstpointer data)
{
    VIOMMUTranslation t;

    g_assert_cmpint(attach(f, 1, EP_A), ==, VIRTIO_IOMMU_S_OK);
    g_assert_cmpint(map(f, 1, 4 * MIB2, 6 * MIB2 - 1, 8 * MIB2), ==,
                    VIRTIO_IOMMU_S_OK);
    g_assert_cmpint(map_flags(f, 1, 0x1000, 0x1fff, 0x5000,
                              VIRTIO_IOMMU_MAP_F_READ), ==,
                    VIRTIO_IOMMU_S_OK);
    g_assert_cmpint(map_flags(f, 1, 0x3000, 0x3fff, 0x6000, 0), ==,
                    VIRTIO_IOMMU_S_OK);

    t = tr(f, EP_A, 4 * MIB2 + 0x1234, W);
    g_assert_cmpint(t.mode, ==, VIOMMU_EP_TRANSLATED);
    g_assert_cmphex(t.iova, ==, 4 * MIB2);
    g_assert_cmphex(t.mask, ==, 2 * MIB2 - 1);
    g_assert_cmphex(t.pa, ==, 8 * MIB2);
    g_assert_cmpuint(t.perm, ==, RW);
    g_assert_false(t.fault);
    g_assert_true(t.cacheable);

    /* Read-only: a read is fine, a write faults and gets no write right */
    t = tr(f, EP_A, 0x1800, R);
    g_assert_cmpuint(t.perm, ==, R);
    g_assert_cmphex(t.pa, ==, 0x5000);
    g_assert_true(t.cacheable);
    t = tr(f, EP_A, 0x1800, W);
    g_assert_cmpuint(t.perm, ==, R);
    assert_fault(t, VIRTIO_IOMMU_FAULT_R_MAPPING);
    t = tr(f, EP_A, 0x1800, RW);
    assert_fault(t, VIRTIO_IOMMU_FAULT_R_MAPPING);

    /* No rights at all: never cached, faults on any access */
    t = tr(f, EP_A, 0x3000, NONE);
    g_assert_false(t.fault);
    g_assert_false(t.cacheable);
    assert_fault(tr(f, EP_A, 0x3000, R), VIRTIO_IOMMU_FAULT_R_MAPPING);

    /* Exact at the edges: the byte before and after fault */
    assert_fault(tr(f, EP_A, 4 * MIB2 - 1, R), VIRTIO_IOMMU_FAULT_R_MAPPING);
    assert_fault(tr(f, EP_A, 6 * MIB2, R), VIRTIO_IOMMU_FAULT_R_MAPPING);
    g_assert_false(tr(f, EP_A, 6 * MIB2 - 1, R).fault);
}

/* MSI doorbells stay reachable; other unmapped addresses fault */
static void test_translate_msi(Fixture *f, gconstpointer data)
{
    VIOMMUTranslation t;

    g_assert_cmpint(attach(f, 1, EP_A), ==, VIRTIO_IOMMU_S_OK);
    t = tr(f, EP_A, MSI_START + 0x40, W);
    g_assert_cmpuint(t.perm, ==, RW);
    g_assert_cmphex(t.pa, ==, MSI_START);
    g_assert_false(t.fault);
    g_assert_false(t.cacheable);
    assert_fault(tr(f, EP_A, MSI_END + 1, W), VIRTIO_IOMMU_FAULT_R_MAPPING);
    assert_fault(tr(f, EP_A, MSI_START - 1, R), VIRTIO_IOMMU_FAULT_R_MAPPING);
}

/* A bypass domain is identity whatever config bypass says */
static void test_translate_bypass_domain(Fixture *f, gconstpointer data)
{
    VIOMMUTranslation t;

    g_assert_cmpint(attach_flags(f, 1, EP_A, VIRTIO_IOMMU_ATTACH_F_BYPASS),
                    ==, VIRTIO_IOMMU_S_OK);
    t = tr(f, EP_A, 0x7000, W);
    g_assert_cmpint(t.mode, ==, VIOMMU_EP_BYPASS);
    g_assert_cmpuint(t.perm, ==, RW);
    g_assert_false(t.fault);
}

/* The block rule, against the definition checked bit by bit */
static uint64_t block_mask_ref(uint64_t iova, uint64_t start, uint64_t end,
                               unsigned max_bits)
{
    int bits;

    for (bits = MIN(max_bits, 64); bits > 0; bits--) {
        uint64_t mask = bits == 64 ? UINT64_MAX : (1ULL << bits) - 1;

        if ((iova & ~mask) >= start && (iova | mask) <= end) {
            return mask;
        }
    }
    return 0;
}

static void test_block_mask_rule(void)
{
    GRand *rand = g_rand_new_with_seed(7);
    int i;

    g_assert_cmphex(viommu_block_mask(0x1234, 0, UINT64_MAX, 64), ==,
                    UINT64_MAX);
    g_assert_cmphex(viommu_block_mask(0x1234, 0, UINT64_MAX, 12), ==, 0xfff);
    g_assert_cmphex(viommu_block_mask(0x3000, 0x3000, 0x4fff, 64), ==,
                    0xfff);
    g_assert_cmphex(viommu_block_mask(0x4000, 0x3000, 0x7fff, 64), ==,
                    0x3fff);
    g_assert_cmphex(viommu_block_mask(0x5, 0x5, 0x5, 64), ==, 0);
    g_assert_cmphex(viommu_block_mask(UINT64_MAX, UINT64_MAX - 0xfff,
                                      UINT64_MAX, 64), ==, 0xfff);
    for (i = 0; i < 100000; i++) {
        /* Ranges of all sizes at addresses with few low bits set */
        unsigned shift = g_rand_int_range(rand, 0, 64);
        uint64_t start = ((uint64_t)g_rand_int(rand) << 32 |
                          g_rand_int(rand)) >> shift << (shift / 2);
        uint64_t len = ((uint64_t)g_rand_int(rand) << 32 |
                        g_rand_int(rand)) >> g_rand_int_range(rand, 0, 64);
        uint64_t end = start + len < start ? UINT64_MAX : start + len;
        uint64_t iova = start + (len ? g_rand_int(rand) % (len + 1) : 0);
        unsigned max_bits = g_rand_int_range(rand, 0, 65);

        g_assert_cmphex(viommu_block_mask(iova, start, end, max_bits), ==,
                        block_mask_ref(iova, start, end, max_bits));
    }
    g_rand_free(rand);
}

typedef struct Blocks {
    GArray *iova;
    GArray *mask;
    GArray *pa;
} Blocks;

static void collect_block(uint64_t iova, uint64_t mask, uint64_t pa,
                          void *opaque)
{
    Blocks *b = opaque;

    g_array_append_val(b->iova, iova);
    g_array_append_val(b->mask, mask);
    g_array_append_val(b->pa, pa);
}

/* Cut [start, end] of @m: contiguous, aligned, fewest blocks */
static void check_blocks(const VIOMMUMapping *m, uint64_t start,
                         uint64_t end, guint want_blocks)
{
    Blocks b = {
        g_array_new(false, false, sizeof(uint64_t)),
        g_array_new(false, false, sizeof(uint64_t)),
        g_array_new(false, false, sizeof(uint64_t)),
    };
    uint64_t next = start;
    guint i;

    viommu_mapping_foreach_block(m, start, end, collect_block, &b);
    g_assert_cmpuint(b.iova->len, ==, want_blocks);
    for (i = 0; i < b.iova->len; i++) {
        uint64_t iova = g_array_index(b.iova, uint64_t, i);
        uint64_t mask = g_array_index(b.mask, uint64_t, i);

        g_assert_cmphex(iova, ==, next);
        g_assert_cmphex(iova & mask, ==, 0);
        g_assert_cmphex(mask & (mask + 1), ==, 0);
        g_assert_cmphex(g_array_index(b.pa, uint64_t, i), ==,
                        m->phys_start + (iova - m->virt_start));
        next = iova + mask + 1;
    }
    g_assert_cmphex(next - 1, ==, end);
    g_array_free(b.iova, true);
    g_array_free(b.mask, true);
    g_array_free(b.pa, true);
}

static void test_foreach_block(void)
{
    VIOMMUMapping m = {
        .virt_start = 0x3000, .virt_end = 0x402fff, .phys_start = 0x100000,
    };

    /* 4K 16K 32K ... 2M ... down again: 0x3000 up to 0x402fff */
    check_blocks(&m, 0x3000, 0x402fff, 11);
    check_blocks(&m, 0x200000, 0x3fffff, 1);
    check_blocks(&m, 0x3000, 0x3fff, 1);
    m = (VIOMMUMapping) { .virt_start = 0, .virt_end = UINT64_MAX };
    check_blocks(&m, 0, UINT64_MAX, 1);
    check_blocks(&m, 1, UINT64_MAX, 64);
    check_blocks(&m, UINT64_MAX - 0xfff, UINT64_MAX, 1);
}

static void check_resv(const VIOMMUResvRegion *got, size_t nr_got,
                       const VIOMMUResvRegion *want, size_t nr_want)
{
    size_t i;

    g_assert_cmpuint(nr_got, ==, nr_want);
    for (i = 0; i < nr_want; i++) {
        g_assert_cmphex(got[i].start, ==, want[i].start);
        g_assert_cmphex(got[i].end, ==, want[i].end);
        g_assert_cmpuint(got[i].subtype, ==, want[i].subtype);
    }
}

#define T_MSI   VIRTIO_IOMMU_RESV_MEM_T_MSI
#define T_RESV  VIRTIO_IOMMU_RESV_MEM_T_RESERVED
#define LAST39  ((1ULL << 39) - 1)

static void test_resv_for_host(void)
{
    static const VIOMMUResvRegion machine[] = {
        { MSI_START, MSI_END, T_MSI },
    };
    /* A typical x86 host: all but the MSI window, up to 39 bits */
    static const VIOMMURange x86[] = {
        { 0xfef00000, LAST39 }, { 0, 0xfedfffff },
    };
    /* Up to 1 GiB, twice over, and a range beyond @last */
    static const VIOMMURange low[] = {
        { 0x1000, 0x3fffffff }, { 0x2000, 0x2fff }, { 1ULL << 40, ~0ULL },
    };
    /* A hole across the MSI window */
    static const VIOMMURange split[] = {
        { 0, 0xfe000000 - 1 }, { 0xff000000, LAST39 },
    };
    VIOMMUResvRegion *r;
    size_t n;

    /* The host maps anything: the machine's regions only */
    r = viommu_resv_for_host(machine, 1, NULL, 0, LAST39, &n);
    check_resv(r, n, machine, 1);
    g_free(r);

    r = viommu_resv_for_host(machine, 1, x86, 2, LAST39, &n);
    check_resv(r, n, machine, 1);
    g_free(r);

    /* What the host cannot map, around the machine's MSI window */
    r = viommu_resv_for_host(machine, 1, low, 3, LAST39, &n);
    check_resv(r, n, (VIOMMUResvRegion[]) {
        { 0, 0xfff, T_RESV },
        { 0x40000000, MSI_START - 1, T_RESV },
        { MSI_START, MSI_END, T_MSI },
        { MSI_END + 1, LAST39, T_RESV },
    }, 4);
    g_free(r);

    /* The machine's MSI window wins inside the hole */
    r = viommu_resv_for_host(machine, 1, split, 2, LAST39, &n);
    check_resv(r, n, (VIOMMUResvRegion[]) {
        { 0xfe000000, MSI_START - 1, T_RESV },
        { MSI_START, MSI_END, T_MSI },
        { MSI_END + 1, 0xfeffffff, T_RESV },
    }, 3);
    g_free(r);

    /* Nothing usable below @last: one region beside the machine's */
    r = viommu_resv_for_host(NULL, 0, (VIOMMURange[]) {
        { 1ULL << 40, 1ULL << 41 } }, 1, LAST39, &n);
    check_resv(r, n, (VIOMMUResvRegion[]) { { 0, LAST39, T_RESV } }, 1);
    g_free(r);
}

#define ADD(path, fn) \
    g_test_add("/virtio-iommu-translate/" path, Fixture, NULL, \
               fixture_setup, fn, fixture_teardown)

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    ADD("mode", test_mode);
    ADD("unattached", test_translate_unattached);
    ADD("mapped", test_translate_mapped);
    ADD("msi", test_translate_msi);
    ADD("bypass-domain", test_translate_bypass_domain);
    g_test_add_func("/virtio-iommu-translate/block-mask",
                    test_block_mask_rule);
    g_test_add_func("/virtio-iommu-translate/foreach-block",
                    test_foreach_block);
    g_test_add_func("/virtio-iommu-translate/resv-for-host",
                    test_resv_for_host);
    return g_test_run();
}
