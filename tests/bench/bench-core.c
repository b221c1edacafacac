/*
 * Microbenchmark of the virtio-iommu core and translation cache, without
 * QEMU: cost of MAP, UNMAP and lookup with 1, 1k, 100k and 1M live
 * mappings in one domain, the cached translate path, heap bytes per
 * mapping, and allocations per operation (malloc is counted here, so an
 * allocation in a lookup shows).  Prints a Markdown table.
 *
 *   tests/bench/run-core-bench.sh [SIZES...]
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/log.h"
#include "qemu/bswap.h"
#include <malloc.h>
#include <time.h>
#include "standard-headers/linux/virtio_iommu.h"
#include "hw/virtio/virtio-iommu-core.h"
#include "hw/virtio/virtio-iommu-cache.h"
#include "libc-alloc.h"

#define PAGE        0x1000ULL
#define STRIDE      0x2000ULL   /* mapping i at i * STRIDE, a hole after */
#define EP          8
#define DOMAIN      1
#define BATCH       64
#define PAIRS       100000
#define LOOKUPS     2000000

/* Every allocation of the process, GLib's included */
static uint64_t nr_allocs;

void *malloc(size_t size)
{
    nr_allocs++;
    return __libc_malloc(size);
}

void *calloc(size_t n, size_t size)
{
    nr_allocs++;
    return __libc_calloc(n, size);
}

void *realloc(void *p, size_t size)
{
    nr_allocs++;
    return __libc_realloc(p, size);
}

int posix_memalign(void **p, size_t align, size_t size)
{
    nr_allocs++;
    *p = __libc_memalign(align, size);
    return *p ? 0 : ENOMEM;
}

void free(void *p)
{
    __libc_free(p);
}

void viommu_shim_log(int mask, const char *fmt, ...)
{
}

static bool ep_exists(void *opaque, uint32_t ep_id)
{
    return ep_id == EP;
}

static size_t no_resv(void *opaque, uint32_t ep_id,
                      const VIOMMUResvRegion **regions)
{
    *regions = NULL;
    return 0;
}

static const VIOMMUCoreOps ops = {
    .endpoint_exists = ep_exists,
    .resv_regions = no_resv,
};

static double now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static uint8_t handle(VIOMMUCore *core, const void *req, size_t len)
{
    VIOMMUReply reply = viommu_core_handle(core, req, len - 4, 4, NULL);

    return reply.status;
}

static void map(VIOMMUCore *core, uint64_t iova, uint64_t pa)
{
    struct virtio_iommu_req_map req = {
        .head.type = VIRTIO_IOMMU_T_MAP,
        .domain = cpu_to_le32(DOMAIN),
        .virt_start = cpu_to_le64(iova),
        .virt_end = cpu_to_le64(iova + PAGE - 1),
        .phys_start = cpu_to_le64(pa),
        .flags = cpu_to_le32(VIRTIO_IOMMU_MAP_F_READ |
                             VIRTIO_IOMMU_MAP_F_WRITE),
    };

    if (handle(core, &req, sizeof(req)) != VIRTIO_IOMMU_S_OK) {
        fprintf(stderr, "MAP 0x%" PRIx64 " failed\n", iova);
        exit(1);
    }
}

static void unmap(VIOMMUCore *core, uint64_t iova)
{
    struct virtio_iommu_req_unmap req = {
        .head.type = VIRTIO_IOMMU_T_UNMAP,
        .domain = cpu_to_le32(DOMAIN),
        .virt_start = cpu_to_le64(iova),
        .virt_end = cpu_to_le64(iova + PAGE - 1),
    };

    if (handle(core, &req, sizeof(req)) != VIRTIO_IOMMU_S_OK) {
        fprintf(stderr, "UNMAP 0x%" PRIx64 " failed\n", iova);
        exit(1);
    }
}

static VIOMMUCore *new_core(uint64_t nr)
{
    VIOMMUCoreConfig config = {
        .granule = PAGE,
        .input_end = (1ULL << 48) - 1,
        .domain_end = 1023,
        .probe_size = 512,
        .limits.max_domains = 16,
        .limits.max_mappings = nr + BATCH + 16,
    };
    VIOMMUCore *core = viommu_core_new(&config, &ops, NULL);
    struct virtio_iommu_req_attach req = {
        .head.type = VIRTIO_IOMMU_T_ATTACH,
        .domain = cpu_to_le32(DOMAIN),
        .endpoint = cpu_to_le32(EP),
    };

    viommu_core_set_features(core, (1ULL << VIRTIO_IOMMU_F_MAP_UNMAP) |
                                   (1ULL << VIRTIO_IOMMU_F_INPUT_RANGE) |
                                   (1ULL << VIRTIO_IOMMU_F_DOMAIN_RANGE));
    if (handle(core, &req, sizeof(req)) != VIRTIO_IOMMU_S_OK) {
        fprintf(stderr, "ATTACH failed\n");
        exit(1);
    }
    return core;
}

typedef struct Result {
    uint64_t nr;
    double heap_per_mapping;    /* bytes */
    double map_ns, unmap_ns;
    double allocs_per_map;
    double lookup_random_ns, lookup_hot_ns, miss_path_ns;
    double cache_hit_ns;
    uint64_t lookup_allocs;
} Result;

/* MAP then UNMAP batches of BATCH pages into random holes */
static void bench_map_unmap(VIOMMUCore *core, Result *r)
{
    uint64_t iova[BATCH], allocs = 0;
    double map_ns = 0, unmap_ns = 0, t;
    unsigned int i, round, rounds = PAIRS / BATCH;

    for (round = 0; round < rounds; round++) {
        for (i = 0; i < BATCH; i++) {
            /* Distinct holes: one random stretch of BATCH slots */
            iova[i] = ((uint64_t)g_random_int_range(0, r->nr + 1) / BATCH *
                       BATCH + i) * STRIDE + PAGE;
        }
        allocs -= nr_allocs;
        t = now_ns();
        for (i = 0; i < BATCH; i++) {
            map(core, iova[i], 0x100000000ULL + i * PAGE);
        }
        map_ns += now_ns() - t;
        allocs += nr_allocs;
        t = now_ns();
        for (i = 0; i < BATCH; i++) {
            unmap(core, iova[i]);
        }
        unmap_ns += now_ns() - t;
    }
    r->map_ns = map_ns / (rounds * BATCH);
    r->unmap_ns = unmap_ns / (rounds * BATCH);
    r->allocs_per_map = (double)allocs / (rounds * BATCH);
}

static void bench_lookup(VIOMMUCore *core, Result *r)
{
    const VIOMMUDomain *domain = viommu_core_endpoint_domain(core, EP);
    uint64_t *iova = g_new(uint64_t, 4096), allocs, sum = 0;
    VIOMMUCache cache;
    VIOMMUCacheEntry hit;
    double t;
    unsigned int i;

    for (i = 0; i < 4096; i++) {
        iova[i] = g_random_int_range(0, r->nr) * STRIDE + (i & 0xff) * 8;
    }
    allocs = nr_allocs;

    /* Interval map, random addresses among all mappings */
    t = now_ns();
    for (i = 0; i < LOOKUPS; i++) {
        sum += viommu_core_lookup(domain, iova[i & 4095])->phys_start;
    }
    r->lookup_random_ns = (now_ns() - t) / LOOKUPS;

    /* The same address again and again */
    t = now_ns();
    for (i = 0; i < LOOKUPS; i++) {
        sum += viommu_core_lookup(domain, iova[0] + (i & 0xff8))->phys_start;
    }
    r->lookup_hot_ns = (now_ns() - t) / LOOKUPS;

    /* What translate does on a cache miss, lock aside */
    t = now_ns();
    for (i = 0; i < LOOKUPS; i++) {
        const VIOMMUDomain *d = viommu_core_endpoint_domain(core, EP);
        const VIOMMUMapping *m = viommu_core_lookup(d, iova[i & 4095]);

        sum += viommu_mapping_block_mask(m, iova[i & 4095]);
    }
    r->miss_path_ns = (now_ns() - t) / LOOKUPS;

    /* What translate does on a cache hit */
    viommu_cache_init(&cache);
    for (i = 0; i < VIOMMU_CACHE_WAYS; i++) {
        VIOMMUCacheEntry e = {
            .iova = iova[i] & ~(PAGE - 1), .mask = PAGE - 1,
            .pa = 0x100000 * i, .perm = 3,
        };

        viommu_cache_insert(&cache, &e);
    }
    t = now_ns();
    for (i = 0; i < LOOKUPS; i++) {
        if (viommu_cache_lookup(&cache, iova[i & 3], 1, &hit)) {
            sum += hit.pa;
        }
    }
    r->cache_hit_ns = (now_ns() - t) / LOOKUPS;
    r->lookup_allocs = nr_allocs - allocs;

    if (sum == 42) {
        printf("(unlikely)\n");
    }
    g_free(iova);
}

static void bench_size(uint64_t nr)
{
    Result r = { .nr = nr };
    struct mallinfo2 before, after;
    VIOMMUCore *core = new_core(nr);
    uint64_t i;

    before = mallinfo2();
    for (i = 0; i < nr; i++) {
        map(core, i * STRIDE, 0x200000000ULL + i * PAGE);
    }
    after = mallinfo2();
    r.heap_per_mapping = (double)(after.uordblks + after.hblkhd -
                                  before.uordblks - before.hblkhd) / nr;
    bench_map_unmap(core, &r);
    bench_lookup(core, &r);
    viommu_core_free(core);

    printf("| %" PRIu64 " | %.0f | %.0f | %.0f | %.1f | %.1f | %.1f | %.1f |"
           " %.1f | %" PRIu64 " |\n", r.nr, r.heap_per_mapping, r.map_ns,
           r.unmap_ns, r.allocs_per_map, r.lookup_random_ns, r.lookup_hot_ns,
           r.miss_path_ns, r.cache_hit_ns, r.lookup_allocs);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    static const uint64_t sizes[] = { 1, 1000, 100000, 1000000 };
    int i;

    g_random_set_seed(1);

    printf("| live mappings | heap bytes per mapping | MAP ns | UNMAP ns |"
           " allocations per MAP | lookup ns (random) | lookup ns (hot) |"
           " translate miss path ns | translate cache hit ns |"
           " allocations in %d lookups |\n", 4 * LOOKUPS);
    printf("|---|---|---|---|---|---|---|---|---|---|\n");
    if (argc > 1) {
        for (i = 1; i < argc; i++) {
            bench_size(g_ascii_strtoull(argv[i], NULL, 10));
        }
    } else {
        for (i = 0; i < (int)ARRAY_SIZE(sizes); i++) {
            bench_size(sizes[i]);
        }
    }
    return 0;
}
