/*
 * Stand-in for QEMU's qemu/osdep.h when the virtio-iommu core is built on
 * its own (unit tests, fuzzing): only what the core uses, from GLib and C.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef VIOMMU_SHIM_OSDEP_H
#define VIOMMU_SHIM_OSDEP_H

#include <assert.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <glib.h>

/* As QEMU's qemu/typedefs.h declares it; qapi/error.h defines it */
typedef struct Error Error;

#ifndef ARRAY_SIZE
#define ARRAY_SIZE(x) (sizeof(x) / sizeof((x)[0]))
#endif

#endif
