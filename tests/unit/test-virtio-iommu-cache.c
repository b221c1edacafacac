/*
 * Unit tests of the virtio-iommu translation cache (virtio-iommu-cache.h),
 * including races of lock-free lookups against UNMAP in real threads.
 *
 * The race tests model the device's protocol exactly: translate looks the
 * cache up without a lock and, on a miss, takes the device lock, looks the
 * current mapping up and inserts it; UNMAP takes the lock, removes the
 * mapping, flushes the cache and only then completes.  A lookup that
 * starts after an UNMAP completed must never return what it removed.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "hw/virtio/virtio-iommu-cache.h"

#define PERM_R      1u
#define PERM_W      2u
#define IOVA        0x40000ULL      /* 8 KiB aligned */
#define PROBE       (IOVA + 0x10)
#define NR_READERS  2
#define ROUNDS      200000
#define MAX_ROUNDS  (100 * ROUNDS)

static VIOMMUCacheEntry entry(uint64_t iova, uint64_t size, uint64_t pa,
                              unsigned int perm)
{
    return (VIOMMUCacheEntry) {
        .iova = iova, .mask = size - 1, .pa = pa, .perm = perm,
    };
}

static void test_lookup(void)
{
    VIOMMUCache cache;
    VIOMMUCacheEntry a = entry(0x10000, 0x1000, 0x80000, PERM_R);
    VIOMMUCacheEntry b = entry(0x200000, 0x200000, 0x400000, PERM_R | PERM_W);
    VIOMMUCacheEntry hit;

    viommu_cache_init(&cache);
    g_assert_false(viommu_cache_lookup(&cache, 0, 0, &hit));
    viommu_cache_insert(&cache, &a);
    viommu_cache_insert(&cache, &b);

    /* Inside a block, at both ends, with a subset of its permissions */
    g_assert_true(viommu_cache_lookup(&cache, 0x10000, PERM_R, &hit));
    g_assert_cmphex(hit.pa, ==, 0x80000);
    g_assert_true(viommu_cache_lookup(&cache, 0x10fff, PERM_R, &hit));
    g_assert_true(viommu_cache_lookup(&cache, 0x3fffff, PERM_W, &hit));
    g_assert_cmphex(hit.iova, ==, 0x200000);
    g_assert_cmphex(hit.mask, ==, 0x1fffff);

    /* One byte outside, or a permission the block lacks: a miss */
    g_assert_false(viommu_cache_lookup(&cache, 0xffff, PERM_R, &hit));
    g_assert_false(viommu_cache_lookup(&cache, 0x11000, PERM_R, &hit));
    g_assert_false(viommu_cache_lookup(&cache, 0x400000, PERM_R, &hit));
    g_assert_false(viommu_cache_lookup(&cache, 0x10000, PERM_W, &hit));

    viommu_cache_flush(&cache);
    g_assert_false(viommu_cache_lookup(&cache, 0x10000, PERM_R, &hit));
    g_assert_false(viommu_cache_lookup(&cache, 0x200000, PERM_R, &hit));
}

/* The oldest of WAYS + 1 blocks is evicted, the others stay */
static void test_eviction(void)
{
    VIOMMUCache cache;
    VIOMMUCacheEntry e, hit;
    unsigned int i;

    viommu_cache_init(&cache);
    for (i = 0; i <= VIOMMU_CACHE_WAYS; i++) {
        e = entry(i * 0x1000ULL, 0x1000, 0x100000 + i * 0x1000ULL, PERM_R);
        viommu_cache_insert(&cache, &e);
    }
    g_assert_false(viommu_cache_lookup(&cache, 0, PERM_R, &hit));
    for (i = 1; i <= VIOMMU_CACHE_WAYS; i++) {
        g_assert_true(viommu_cache_lookup(&cache, i * 0x1000ULL, PERM_R,
                                          &hit));
        g_assert_cmphex(hit.pa, ==, 0x100000 + i * 0x1000ULL);
    }
}

/*
 * Generation g of the mapping at IOVA: its fields all derive from g, so a
 * reader that saw half of one entry and half of another notices.
 */
static VIOMMUCacheEntry generation(uint64_t g)
{
    return entry(IOVA, g & 1 ? 0x1000 : 0x2000, g << 24 | (g & 1) << 12,
                 g & 1 ? PERM_R : PERM_R | PERM_W);
}

static bool consistent(const VIOMMUCacheEntry *e)
{
    VIOMMUCacheEntry want = generation(e->pa >> 24);

    /* Field by field: the struct's padding is not part of the entry */
    return want.iova == e->iova && want.mask == e->mask &&
           want.pa == e->pa && want.perm == e->perm;
}

typedef struct Model {
    GMutex lock;                /* the device lock */
    VIOMMUCache cache;
    bool flush_on_unmap;        /* false: a broken device, for the test */
    bool mapped;                /* under lock */
    uint64_t gen;               /* generation mapped now, under lock */
    uint64_t completed;         /* last generation whose UNMAP completed */
    int running;
    int seen_hit, seen_miss;    /* some reader hit, missed: they overlap */
    uint64_t hits, misses, stale, torn;
} Model;

static gpointer reader(gpointer opaque)
{
    Model *m = opaque;
    uint64_t hits = 0, misses = 0, stale = 0, torn = 0;
    VIOMMUCacheEntry hit;

    while (__atomic_load_n(&m->running, __ATOMIC_ACQUIRE)) {
        uint64_t completed = __atomic_load_n(&m->completed, __ATOMIC_ACQUIRE);

        if (viommu_cache_lookup(&m->cache, PROBE, PERM_R, &hit)) {
            hits++;
            torn += !consistent(&hit);
            stale += (hit.pa >> 24) <= completed;
            if (hits == 1) {
                __atomic_store_n(&m->seen_hit, 1, __ATOMIC_RELEASE);
            }
            continue;
        }
        if (++misses == 1) {
            __atomic_store_n(&m->seen_miss, 1, __ATOMIC_RELEASE);
        }
        g_mutex_lock(&m->lock);
        if (m->mapped) {
            VIOMMUCacheEntry e = generation(m->gen);

            viommu_cache_insert(&m->cache, &e);
        }
        g_mutex_unlock(&m->lock);
    }
    __atomic_fetch_add(&m->hits, hits, __ATOMIC_RELAXED);
    __atomic_fetch_add(&m->misses, misses, __ATOMIC_RELAXED);
    __atomic_fetch_add(&m->stale, stale, __ATOMIC_RELAXED);
    __atomic_fetch_add(&m->torn, torn, __ATOMIC_RELAXED);
    return NULL;
}

/*
 * Have the readers both hit and missed while the writer was running?  On
 * a loaded machine they may not run at all during ROUNDS rounds.
 */
static bool readers_overlapped(Model *m)
{
    return __atomic_load_n(&m->seen_hit, __ATOMIC_ACQUIRE) &&
           __atomic_load_n(&m->seen_miss, __ATOMIC_ACQUIRE);
}

/*
 * UNMAP then MAP again with a new generation, ROUNDS times, and on until
 * the readers have run (at most MAX_ROUNDS)
 */
static void run_race(Model *m)
{
    GThread *threads[NR_READERS];
    unsigned int i, rounds;

    g_mutex_init(&m->lock);
    viommu_cache_init(&m->cache);
    m->gen = 1;
    m->mapped = true;
    m->running = 1;
    for (i = 0; i < NR_READERS; i++) {
        threads[i] = g_thread_new("reader", reader, m);
    }
    for (rounds = 0;
         rounds < MAX_ROUNDS && (rounds < ROUNDS || !readers_overlapped(m));
         rounds++) {
        uint64_t g;

        g_mutex_lock(&m->lock);
        m->mapped = false;
        if (m->flush_on_unmap) {
            viommu_cache_flush(&m->cache);
        }
        g = m->gen;
        g_mutex_unlock(&m->lock);
        /* The UNMAP request completes */
        __atomic_store_n(&m->completed, g, __ATOMIC_RELEASE);

        g_mutex_lock(&m->lock);
        m->gen = g + 1;
        m->mapped = true;
        g_mutex_unlock(&m->lock);
        if (rounds % 64 == 0) {
            g_thread_yield();
        }
    }
    __atomic_store_n(&m->running, 0, __ATOMIC_RELEASE);
    for (i = 0; i < NR_READERS; i++) {
        g_thread_join(threads[i]);
    }
    g_mutex_clear(&m->lock);
    g_test_message("%u rounds: %" PRIu64 " hits, %" PRIu64 " misses, %"
                   PRIu64 " stale, %" PRIu64 " torn", rounds, m->hits,
                   m->misses, m->stale, m->torn);
}

static void test_race_unmap(void)
{
    Model m = { .flush_on_unmap = true };

    run_race(&m);
    g_assert_cmpuint(m.stale, ==, 0);
    g_assert_cmpuint(m.torn, ==, 0);
    /* The race was real: readers hit the cache and refilled it */
    g_assert_cmpuint(m.hits, >, 0);
    g_assert_cmpuint(m.misses, >, 0);
}

/* Without the flush, the same readers do see stale translations */
static void test_race_detects_missing_flush(void)
{
    Model m = { .flush_on_unmap = false };

    run_race(&m);
    g_assert_cmpuint(m.stale, >, 0);
    g_assert_cmpuint(m.torn, ==, 0);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/virtio-iommu-cache/lookup", test_lookup);
    g_test_add_func("/virtio-iommu-cache/eviction", test_eviction);
    g_test_add_func("/virtio-iommu-cache/race-unmap", test_race_unmap);
    g_test_add_func("/virtio-iommu-cache/race-detects-missing-flush",
                    test_race_detects_missing_flush);
    return g_test_run();
}
