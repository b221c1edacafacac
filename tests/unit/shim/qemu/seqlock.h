/*
 * Stand-in for QEMU's qemu/seqlock.h in the standalone unit build: the
 * same algorithm (an even/odd sequence counter with release/acquire
 * fences, as qemu/atomic.h defines smp_wmb and smp_rmb), on GCC builtins.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef VIOMMU_SHIM_SEQLOCK_H
#define VIOMMU_SHIM_SEQLOCK_H

typedef struct QemuSeqLock {
    unsigned sequence;
} QemuSeqLock;

static inline void seqlock_init(QemuSeqLock *sl)
{
    sl->sequence = 0;
}

static inline void seqlock_write_begin(QemuSeqLock *sl)
{
    __atomic_store_n(&sl->sequence, sl->sequence + 1, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE);
}

static inline void seqlock_write_end(QemuSeqLock *sl)
{
    __atomic_thread_fence(__ATOMIC_RELEASE);
    __atomic_store_n(&sl->sequence, sl->sequence + 1, __ATOMIC_RELAXED);
}

static inline unsigned seqlock_read_begin(const QemuSeqLock *sl)
{
    unsigned ret = __atomic_load_n(&sl->sequence, __ATOMIC_RELAXED);

    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    return ret & ~1;
}

static inline int seqlock_read_retry(const QemuSeqLock *sl, unsigned start)
{
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    return __atomic_load_n(&sl->sequence, __ATOMIC_RELAXED) != start;
}

#endif
