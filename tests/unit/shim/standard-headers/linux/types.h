/* Stand-in for QEMU's standard-headers/linux/types.h: types come from C. */
