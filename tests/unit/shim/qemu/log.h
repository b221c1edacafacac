/*
 * Stand-in for QEMU's qemu/log.h: the test harness decides what a log line
 * does (counts it, prints it, or drops it).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef VIOMMU_SHIM_LOG_H
#define VIOMMU_SHIM_LOG_H

#define LOG_GUEST_ERROR (1 << 11)
#define LOG_UNIMP       (1 << 10)

void viommu_shim_log(int mask, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

#define qemu_log_mask(mask, ...) viommu_shim_log(mask, __VA_ARGS__)

#endif
