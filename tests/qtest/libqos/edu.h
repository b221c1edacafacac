/*
 * Registers of QEMU's "edu" educational PCI device (docs/specs/edu.rst)
 * that the virtio-iommu tests and fuzz target drive: a DMA engine that
 * copies between guest addresses, seen through the IOMMU, and a 4 KiB
 * buffer inside the device.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef TESTS_LIBQOS_EDU_H
#define TESTS_LIBQOS_EDU_H

/* BAR 0 offsets of the DMA engine, each 64 bits wide */
#define EDU_DMA_SRC             0x80
#define EDU_DMA_DST             0x88
#define EDU_DMA_CNT             0x90
#define EDU_DMA_CMD             0x98

/* EDU_DMA_CMD bits */
#define EDU_DMA_RUN             0x1
#define EDU_DMA_TO_PCI          0x2     /* buffer to RAM, else RAM to buffer */
#define EDU_DMA_IRQ             0x4

/* The device's buffer, as the DMA engine addresses it */
#define EDU_BUF                 0x40000
#define EDU_BUF_SIZE            4096

/* The engine runs from a 100 ms virtual-clock timer: step a bit past it */
#define EDU_DMA_NS              (101 * 1000 * 1000)

#endif
