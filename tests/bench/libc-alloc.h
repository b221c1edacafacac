/*
 * glibc's own allocator entry points, which bench-core.c's counting
 * malloc and friends forward to.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef VIOMMU_BENCH_LIBC_ALLOC_H
#define VIOMMU_BENCH_LIBC_ALLOC_H

void *__libc_malloc(size_t size);
void *__libc_calloc(size_t n, size_t size);
void *__libc_realloc(void *p, size_t size);
void *__libc_memalign(size_t align, size_t size);
void __libc_free(void *p);

#endif
