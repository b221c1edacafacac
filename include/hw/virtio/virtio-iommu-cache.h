/*
 * virtio-iommu: lock-free translation cache of one address space
 *
 * translate() is called for every DMA access of every endpoint, from vCPU
 * threads, the main loop and iothreads.  The last few blocks it returned
 * are kept here so that a repeated access takes no lock at all.
 *
 * Readers take no lock: the entries sit behind a sequence lock and a
 * reader retries if a writer ran meanwhile.  Writers (insert, flush) hold
 * the device lock, the same lock under which mappings change.  Anything
 * that takes a translation away (UNMAP, DETACH, a re-ATTACH, reset)
 * flushes the cache of every address space concerned under that lock,
 * before the request completes, so no translation outlives the request
 * that removed it; a translation is only inserted under the lock, after
 * it was looked up in the current mappings.  MAP never flushes: it only
 * adds translations.
 *
 * Only QEMU's seqlock API is used, so the unit tests can race readers
 * against UNMAP in plain threads (tests/unit/test-virtio-iommu-cache.c).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_VIRTIO_VIRTIO_IOMMU_CACHE_H
#define HW_VIRTIO_VIRTIO_IOMMU_CACHE_H

#include "qemu/seqlock.h"

#define VIOMMU_CACHE_WAYS 4

/* perm bits: those of the memory API (IOMMU_RO = 1, IOMMU_WO = 2) */
typedef struct VIOMMUCacheEntry {
    uint64_t iova;              /* naturally aligned block start */
    uint64_t mask;              /* block size - 1 */
    uint64_t pa;
    unsigned int perm;          /* 0: empty way */
} VIOMMUCacheEntry;

typedef struct VIOMMUCache {
    QemuSeqLock seq;
    unsigned int next;          /* round-robin victim, writers only */
    bool used;                  /* anything cached, writers only */
    VIOMMUCacheEntry entries[VIOMMU_CACHE_WAYS];
} VIOMMUCache;

static inline void viommu_cache_init(VIOMMUCache *cache)
{
    memset(cache, 0, sizeof(*cache));
    seqlock_init(&cache->seq);
}

/*
 * The cached block holding @addr with every permission in @access, copied
 * to @hit.  Lock-free.
 */
static inline bool viommu_cache_lookup(VIOMMUCache *cache, uint64_t addr,
                                       unsigned int access,
                                       VIOMMUCacheEntry *hit)
{
    unsigned int start, i;
    bool found;

    do {
        start = seqlock_read_begin(&cache->seq);
        found = false;
        for (i = 0; i < VIOMMU_CACHE_WAYS; i++) {
            VIOMMUCacheEntry e = cache->entries[i];

            if (e.perm && (addr & ~e.mask) == e.iova &&
                (access & e.perm) == access) {
                *hit = e;
                found = true;
                break;
            }
        }
    } while (seqlock_read_retry(&cache->seq, start));
    return found;
}

/* Writers: with the device lock held */
static inline void viommu_cache_insert(VIOMMUCache *cache,
                                       const VIOMMUCacheEntry *entry)
{
    seqlock_write_begin(&cache->seq);
    cache->entries[cache->next] = *entry;
    seqlock_write_end(&cache->seq);
    cache->next = (cache->next + 1) % VIOMMU_CACHE_WAYS;
    cache->used = true;
}

static inline void viommu_cache_flush(VIOMMUCache *cache)
{
    if (!cache->used) {
        return;
    }
    seqlock_write_begin(&cache->seq);
    memset(cache->entries, 0, sizeof(cache->entries));
    seqlock_write_end(&cache->seq);
    cache->used = false;
}

#endif
