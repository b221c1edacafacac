/*
 * Stand-in for QEMU's qemu/host-utils.h: bit counting.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef VIOMMU_SHIM_HOST_UTILS_H
#define VIOMMU_SHIM_HOST_UTILS_H

static inline int ctz64(uint64_t val)
{
    return val ? __builtin_ctzll(val) : 64;
}

static inline int clz64(uint64_t val)
{
    return val ? __builtin_clzll(val) : 64;
}

#endif
