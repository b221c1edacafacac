/*
 * viommu-vfio: drive QEMU's edu PCI device from guest userspace through
 * VFIO (vfio-pci, type1 IOMMU, legacy container/group API), so that a test
 * chooses the IOVAs, the permissions and the unmaps itself.  Built
 * statically into the test guest's initramfs (tests/guest/build-guest.sh).
 *
 *   viommu-vfio edu-faults BDF
 *       Translated DMA both ways, a write to a read-only mapping and a read
 *       and a write at an unmapped IOVA.  One line per check:
 *           RESULT <name> PASS|FAIL <detail>
 *       and, for the shell to match the guest's fault log:
 *           INFO endpoint <decimal ID> <BDF> group <N>
 *           FAULT <name> <R|W> <endpoint> <IOVA>   (each fault provoked)
 *       Exit status 0 when every check passed, 1 when one failed, 2 when
 *       the device could not be set up.
 *
 *   viommu-vfio maploop BDF SECONDS [SIZE]
 *       VFIO_IOMMU_MAP_DMA + VFIO_IOMMU_UNMAP_DMA of one SIZE-byte buffer
 *       (default 4096) in a loop for SECONDS; each pair is one MAP and one
 *       UNMAP request to virtio-iommu.  Prints
 *           maploop pairs=N seconds=S pairs_per_sec=R
 *
 *   viommu-vfio edu-sysfs BDF OFFSET
 *       No VFIO and no driver, for a test that runs before the guest has
 *       an IOMMU driver: enables the edu through sysfs, turns bus mastering
 *       on in its config space, maps BAR0 (resource0), then copies 4 bytes
 *       at OFFSET (hex, a multiple of 4 below 0xf00) of a locked RAM page
 *       into edu's buffer at OFFSET, and those 4 bytes of the buffer to
 *       OFFSET of a second locked page, by physical address
 *       (/proc/self/pagemap: run as root, and give the edu
 *       dma_mask=0xffffffffffffffff).  Prints
 *           INFO endpoint <decimal ID> <BDF> ...
 *           PATTERN <hex>          (the read page's bytes, for edu-buffer)
 *           FAULT read R <endpoint> <address>
 *           FAULT write W <endpoint> <address>
 *           RESULT write moved|blocked|partial <detail>
 *       moved: the second page now holds the first page's bytes (both
 *       transfers went through); blocked: it is unchanged.  Then it puts
 *       the command register back and disables the device if it enabled
 *       it.  Exit status 0 with a RESULT write line, 2 on a setup failure.
 *
 *   viommu-vfio edu-buffer BDF OFFSET HEX
 *       edu's buffer is not on its BAR, so whether the first copy of
 *       edu-sysfs moved data shows only in a later DMA: this reads the
 *       buffer out through VFIO (the whole buffer to a mapped page, after
 *       a sentinel loaded at 0xf00 shows that the readout itself works)
 *       and compares its bytes at OFFSET with HEX:
 *           RESULT read moved|blocked|partial <detail>
 *       moved: they are HEX; blocked: no byte of HEX is there.  Exit
 *       status 0 with a RESULT read line, 1 when the readout failed, 2 on
 *       a setup failure.
 *
 * The edu device (hw/misc/edu.c): BAR0 registers 0x00 identification
 * (0x010000ed), 0x04 liveness (reads back the inverse), DMA source 0x80,
 * destination 0x88, count 0x90, command 0x98 (bit 0 start/busy, bit 1
 * direction: 1 = from its 4 KiB buffer at 0x40000 to RAM).  A transfer
 * runs 100 ms of virtual time after the command is written.  The device
 * masks DMA addresses to 28 bits by default (property dma_mask), so every
 * IOVA here is below 256 MiB.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <linux/vfio.h>

#define PAGE 4096u

#define EDU_ID          0x00
#define EDU_LIVENESS    0x04
#define EDU_DMA_SRC     0x80
#define EDU_DMA_DST     0x88
#define EDU_DMA_CNT     0x90
#define EDU_DMA_CMD     0x98
#define EDU_CMD_RUN     0x1
#define EDU_CMD_TO_RAM  0x2
#define EDU_BUF         0x40000u
#define EDU_BUF_SIZE    4096u

/* IOVAs of edu-faults, all inside edu's 28-bit DMA mask. */
#define IOVA_A  0x1000000ull    /* read-write source */
#define IOVA_B  0x1100000ull    /* read-only */
#define IOVA_C  0x1200000ull    /* read-write destination */
#define IOVA_X  0x1300000ull    /* mapped once, then unmapped */

/*
 * Bytes moved by a transfer that must fault.  A 4-byte access is one
 * translation, hence one fault report: the guest driver rate-limits its
 * fault messages (10 per 5 s), a whole page would hide the next ones.
 */
#define FAULT_LEN 4u

/* One edu transfer: 100 ms of virtual time; allow for a slow TCG host. */
#define DMA_TIMEOUT_MS 10000

/* edu-buffer: what it loads into edu's buffer to check its own readout */
#define SENTINEL_OFF 0xf00u
#define SENTINEL_LEN 0x100u

/* PCI command register: memory decoding and bus mastering */
#define PCI_CMD_MEM_MASTER 0x6

/* An edu device, driven through VFIO, or through sysfs when @bar is set */
struct vfio_edu {
    char bdf[64];
    unsigned endpoint;
    int group_no;
    int container;
    int group;
    int device;
    uint64_t bar_off;
    uint64_t bar_size;
    uint64_t cfg_off;
    volatile uint32_t *bar;     /* BAR0 mapped from sysfs (edu-sysfs) */
};

static int nfail;

static void result(const char *name, int pass, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void result(const char *name, int pass, const char *fmt, ...)
{
    va_list ap;

    printf("RESULT %s %s ", name, pass ? "PASS" : "FAIL");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
    if (!pass) {
        nfail++;
    }
}

static void on_alarm(int sig)
{
    static const char msg[] =
        "RESULT watchdog FAIL viommu-vfio did not finish in time\n";

    (void)sig;
    if (write(STDOUT_FILENO, msg, sizeof(msg) - 1) < 0) {
        _exit(3);
    }
    _exit(3);
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * "DDDD:BB:DD.F" or "BB:DD.F" into the full sysfs name and the endpoint
 * ID (PCI requester ID, bus << 8 | device << 3 | function).
 */
static int parse_bdf(struct vfio_edu *e, const char *arg)
{
    unsigned dom = 0, bus, dev, fn;
    char tail;

    if (sscanf(arg, "%x:%x:%x.%x%c", &dom, &bus, &dev, &fn, &tail) != 4) {
        dom = 0;
        if (sscanf(arg, "%x:%x.%x%c", &bus, &dev, &fn, &tail) != 3) {
            return -1;
        }
    }
    if (dom > 0xffff || bus > 0xff || dev > 0x1f || fn > 7) {
        return -1;
    }
    snprintf(e->bdf, sizeof(e->bdf), "%04x:%02x:%02x.%x", dom, bus, dev, fn);
    e->endpoint = bus << 8 | dev << 3 | fn;
    return 0;
}

static int setup_fail(const char *what)
{
    result("setup", 0, "%s: %s", what, strerror(errno));
    return -1;
}

static int region_info(struct vfio_edu *e, unsigned index,
                       uint64_t *off, uint64_t *size)
{
    struct vfio_region_info ri = { .argsz = sizeof(ri), .index = index };

    if (ioctl(e->device, VFIO_DEVICE_GET_REGION_INFO, &ri) < 0) {
        return -1;
    }
    *off = ri.offset;
    *size = ri.size;
    return 0;
}

/* Print the usable IOVA ranges; fail if [lo, hi] is not inside one. */
static int check_iova_ranges(struct vfio_edu *e, uint64_t lo, uint64_t hi,
                             int verbose)
{
    struct vfio_iommu_type1_info *info;
    struct vfio_info_cap_header *hdr;
    struct vfio_iommu_type1_info_cap_iova_range *cap;
    uint32_t sz = sizeof(*info), off, i;
    int inside = 0, have_ranges = 0;

    /* Ask again with the size the kernel wants for the capabilities */
    for (;;) {
        info = calloc(1, sz);
        if (!info) {
            return setup_fail("calloc");
        }
        info->argsz = sz;
        if (ioctl(e->container, VFIO_IOMMU_GET_INFO, info) < 0) {
            free(info);
            return setup_fail("VFIO_IOMMU_GET_INFO");
        }
        if (info->argsz <= sz) {
            break;
        }
        sz = info->argsz;
        free(info);
    }
    if (verbose) {
        printf("INFO iova-pgsizes 0x%llx\n",
               (unsigned long long)info->iova_pgsizes);
    }
    off = (info->flags & VFIO_IOMMU_INFO_CAPS) ? info->cap_offset : 0;
    while (off && off + sizeof(*hdr) <= sz) {
        hdr = (struct vfio_info_cap_header *)((char *)info + off);
        if (hdr->id == VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE) {
            cap = (struct vfio_iommu_type1_info_cap_iova_range *)hdr;
            have_ranges = 1;
            for (i = 0; i < cap->nr_iovas; i++) {
                if (verbose) {
                    printf("INFO iova-range 0x%llx-0x%llx\n",
                           (unsigned long long)cap->iova_ranges[i].start,
                           (unsigned long long)cap->iova_ranges[i].end);
                }
                if (cap->iova_ranges[i].start <= lo &&
                    hi <= cap->iova_ranges[i].end) {
                    inside = 1;
                }
            }
        }
        off = hdr->next;
    }
    free(info);
    if (have_ranges && !inside) {
        errno = ERANGE;
        return setup_fail("test IOVAs not inside one usable IOVA range");
    }
    return 0;
}

/* Container, group, type1 IOMMU, device fd, BAR0; bus mastering on. */
static int vfio_open(struct vfio_edu *e, const char *arg, int need_device)
{
    char path[PATH_MAX], link[PATH_MAX], *slash;
    struct vfio_group_status status = { .argsz = sizeof(status) };
    int type = VFIO_TYPE1v2_IOMMU;
    uint64_t size;
    uint16_t cmd;
    ssize_t n;

    if (parse_bdf(e, arg) < 0) {
        errno = EINVAL;
        return setup_fail("bad PCI address (want DDDD:BB:DD.F)");
    }
    snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/iommu_group",
             e->bdf);
    n = readlink(path, link, sizeof(link) - 1);
    if (n < 0) {
        return setup_fail("no iommu_group link (device not behind an IOMMU)");
    }
    link[n] = 0;
    slash = strrchr(link, '/');
    if (sscanf(slash ? slash + 1 : link, "%d", &e->group_no) != 1) {
        errno = EINVAL;
        return setup_fail("cannot parse the iommu_group link");
    }

    e->container = open("/dev/vfio/vfio", O_RDWR);
    if (e->container < 0) {
        return setup_fail("open /dev/vfio/vfio");
    }
    if (ioctl(e->container, VFIO_GET_API_VERSION) != VFIO_API_VERSION) {
        errno = EPROTO;
        return setup_fail("VFIO_GET_API_VERSION");
    }
    if (ioctl(e->container, VFIO_CHECK_EXTENSION, type) <= 0) {
        errno = ENOTSUP;
        return setup_fail("VFIO_CHECK_EXTENSION TYPE1v2");
    }
    snprintf(path, sizeof(path), "/dev/vfio/%d", e->group_no);
    e->group = open(path, O_RDWR);
    if (e->group < 0) {
        return setup_fail(path);
    }
    if (ioctl(e->group, VFIO_GROUP_GET_STATUS, &status) < 0) {
        return setup_fail("VFIO_GROUP_GET_STATUS");
    }
    if (!(status.flags & VFIO_GROUP_FLAGS_VIABLE)) {
        errno = EBUSY;
        return setup_fail("group not viable (a device in it has a driver)");
    }
    if (ioctl(e->group, VFIO_GROUP_SET_CONTAINER, &e->container) < 0) {
        return setup_fail("VFIO_GROUP_SET_CONTAINER");
    }
    if (ioctl(e->container, VFIO_SET_IOMMU, type) < 0) {
        return setup_fail("VFIO_SET_IOMMU TYPE1v2 (allow_unsafe_interrupts?)");
    }
    if (!need_device) {
        return 0;
    }
    e->device = ioctl(e->group, VFIO_GROUP_GET_DEVICE_FD, e->bdf);
    if (e->device < 0) {
        return setup_fail("VFIO_GROUP_GET_DEVICE_FD");
    }
    if (region_info(e, VFIO_PCI_BAR0_REGION_INDEX,
                    &e->bar_off, &e->bar_size) < 0) {
        return setup_fail("VFIO_DEVICE_GET_REGION_INFO BAR0");
    }
    if (e->bar_size < EDU_BUF + EDU_BUF_SIZE) {
        errno = EINVAL;
        return setup_fail("BAR0 too small for an edu device");
    }
    if (region_info(e, VFIO_PCI_CONFIG_REGION_INDEX, &e->cfg_off, &size) < 0) {
        return setup_fail("VFIO_DEVICE_GET_REGION_INFO config");
    }
    /* Memory decoding and bus mastering: no DMA at all without them. */
    if (pread(e->device, &cmd, 2, e->cfg_off + 4) != 2) {
        return setup_fail("read PCI command register");
    }
    cmd |= PCI_CMD_MEM_MASTER;
    if (pwrite(e->device, &cmd, 2, e->cfg_off + 4) != 2) {
        return setup_fail("write PCI command register");
    }
    return 0;
}

static uint32_t edu_rd(struct vfio_edu *e, unsigned reg)
{
    uint32_t v = ~0u;

    if (e->bar) {
        return e->bar[reg / 4];
    }
    if (pread(e->device, &v, 4, e->bar_off + reg) != 4) {
        return ~0u;
    }
    return v;
}

static int edu_wr(struct vfio_edu *e, unsigned reg, uint32_t v)
{
    if (e->bar) {
        e->bar[reg / 4] = v;
        return 0;
    }
    return pwrite(e->device, &v, 4, e->bar_off + reg) == 4 ? 0 : -1;
}

/* Wait until no transfer runs; -1 after DMA_TIMEOUT_MS. */
static int edu_idle(struct vfio_edu *e)
{
    double end = now_s() + DMA_TIMEOUT_MS / 1000.0;
    struct timespec ms = { 0, 1000000 };

    while (edu_rd(e, EDU_DMA_CMD) & EDU_CMD_RUN) {
        if (now_s() > end) {
            return -1;
        }
        nanosleep(&ms, NULL);
    }
    return 0;
}

/*
 * One transfer of @cnt bytes between IOVA @iova and offset @off of edu's
 * buffer: to_ram = 0 reads RAM into the buffer, 1 writes the buffer to
 * RAM.  Returns 0 when the device finished, -1 on timeout or error.
 */
static int edu_dma_at(struct vfio_edu *e, uint64_t iova, uint32_t off,
                      uint32_t cnt, int to_ram)
{
    uint32_t cmd = EDU_CMD_RUN | (to_ram ? EDU_CMD_TO_RAM : 0);
    uint32_t buf = EDU_BUF + off;

    if (edu_idle(e) < 0) {
        return -1;
    }
    if (edu_wr(e, EDU_DMA_SRC, to_ram ? buf : (uint32_t)iova) < 0 ||
        edu_wr(e, EDU_DMA_DST, to_ram ? (uint32_t)iova : buf) < 0 ||
        edu_wr(e, EDU_DMA_CNT, cnt) < 0 ||
        edu_wr(e, EDU_DMA_CMD, cmd) < 0) {
        return -1;
    }
    return edu_idle(e);
}

/* The same at the start of the buffer */
static int edu_dma(struct vfio_edu *e, uint64_t iova, uint32_t cnt,
                   int to_ram)
{
    return edu_dma_at(e, iova, 0, cnt, to_ram);
}

/* Is BAR0 an edu device that answers?  0 if so. */
static int edu_identify(struct vfio_edu *e)
{
    uint32_t id = edu_rd(e, EDU_ID);

    edu_wr(e, EDU_LIVENESS, 0x12345678);
    if ((id & 0xff) != 0xed || edu_rd(e, EDU_LIVENESS) != ~0x12345678u) {
        errno = ENODEV;
        result("setup", 0, "%s is no edu device (id 0x%08x)", e->bdf, id);
        return -1;
    }
    printf("INFO device-id 0x%08x bar0-size 0x%llx\n", id,
           (unsigned long long)e->bar_size);
    return 0;
}

static int dma_map(struct vfio_edu *e, void *buf, uint64_t iova,
                   uint64_t size, uint32_t flags)
{
    struct vfio_iommu_type1_dma_map m = {
        .argsz = sizeof(m),
        .flags = flags,
        .vaddr = (uintptr_t)buf,
        .iova = iova,
        .size = size,
    };

    return ioctl(e->container, VFIO_IOMMU_MAP_DMA, &m);
}

static int dma_unmap(struct vfio_edu *e, uint64_t iova, uint64_t size)
{
    struct vfio_iommu_type1_dma_unmap u = {
        .argsz = sizeof(u),
        .iova = iova,
        .size = size,
    };

    if (ioctl(e->container, VFIO_IOMMU_UNMAP_DMA, &u) < 0) {
        return -1;
    }
    if (u.size != size) {
        errno = EFAULT;
        return -1;
    }
    return 0;
}

static void *page_buf(void)
{
    void *p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

    return p == MAP_FAILED ? NULL : p;
}

/* Deterministic bytes, different for each seed; never 0x00 or 0xff. */
static void fill(uint8_t *p, size_t len, uint32_t seed)
{
    uint32_t x = seed * 2654435761u + 1;
    size_t i;

    for (i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = 1 + x % 254;
    }
}

/* Index of the first differing byte, or -1. */
static long first_diff(const uint8_t *a, const uint8_t *b, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++) {
        if (a[i] != b[i]) {
            return i;
        }
    }
    return -1;
}

static const char *describe(const uint8_t *got, const uint8_t *want,
                            size_t len)
{
    static char s[96];
    long d = first_diff(got, want, len);

    if (d < 0) {
        return "identical";
    }
    snprintf(s, sizeof(s), "first difference at byte %ld: 0x%02x, want 0x%02x",
             d, got[d], want[d]);
    return s;
}

/* A copy RAM -> edu -> RAM of one page; 0 when both transfers finished. */
static int copy_through_edu(struct vfio_edu *e, uint64_t from, uint64_t to)
{
    if (edu_dma(e, from, EDU_BUF_SIZE, 0) < 0 ||
        edu_dma(e, to, EDU_BUF_SIZE, 1) < 0) {
        return -1;
    }
    return 0;
}

static int cmd_edu_faults(const char *bdf)
{
    struct vfio_edu e = { .container = -1, .group = -1, .device = -1 };
    uint8_t *a, *b, *c, *d;
    uint8_t p[PAGE], q[PAGE], s[PAGE];
    uint32_t rw = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;
    struct sigaction sa = { .sa_handler = on_alarm };
    long diff;

    sigaction(SIGALRM, &sa, NULL);
    alarm(120);
    if (vfio_open(&e, bdf, 1) < 0) {
        return 2;
    }
    printf("INFO endpoint %u %s group %d\n", e.endpoint, e.bdf, e.group_no);
    if (check_iova_ranges(&e, IOVA_A, IOVA_X + PAGE - 1, 1) < 0 ||
        edu_identify(&e) < 0) {
        return 2;
    }

    a = page_buf();
    b = page_buf();
    c = page_buf();
    d = page_buf();
    if (!a || !b || !c || !d) {
        return setup_fail("mmap");
    }
    fill(p, PAGE, 1);
    fill(q, PAGE, 2);
    fill(s, PAGE, 3);
    memcpy(a, p, PAGE);
    memcpy(b, q, PAGE);
    memset(c, 0, PAGE);
    memcpy(d, s, PAGE);

    /* X is mapped to D, then unmapped: a stale translation would show. */
    if (dma_map(&e, a, IOVA_A, PAGE, rw) < 0 ||
        dma_map(&e, b, IOVA_B, PAGE, VFIO_DMA_MAP_FLAG_READ) < 0 ||
        dma_map(&e, c, IOVA_C, PAGE, rw) < 0 ||
        dma_map(&e, d, IOVA_X, PAGE, rw) < 0) {
        return setup_fail("VFIO_IOMMU_MAP_DMA");
    }
    if (copy_through_edu(&e, IOVA_X, IOVA_C) < 0 || memcmp(c, s, PAGE)) {
        result("vfio-map", 0, "DMA through IOVA 0x%llx before its unmap: %s",
               IOVA_X, describe(c, s, PAGE));
        return 1;
    }
    if (dma_unmap(&e, IOVA_X, PAGE) < 0) {
        return setup_fail("VFIO_IOMMU_UNMAP_DMA");
    }
    printf("INFO map A 0x%llx rw, B 0x%llx ro, C 0x%llx rw, "
           "X 0x%llx unmapped (after one DMA through it)\n",
           IOVA_A, IOVA_B, IOVA_C, IOVA_X);
    result("vfio-map", 1, "A 0x%llx rw, B 0x%llx ro, C 0x%llx rw mapped, "
           "X 0x%llx mapped, used and unmapped", IOVA_A, IOVA_B, IOVA_C,
           IOVA_X);

    /* Translated DMA both ways. */
    memset(c, 0, PAGE);
    if (copy_through_edu(&e, IOVA_A, IOVA_C) < 0) {
        result("dma-copy", 0, "edu transfer did not finish");
    } else {
        diff = first_diff(c, p, PAGE);
        result("dma-copy", diff < 0, "%u bytes 0x%llx -> edu -> 0x%llx: %s",
               PAGE, IOVA_A, IOVA_C, describe(c, p, PAGE));
    }

    /* The device may read a read-only mapping. */
    memset(c, 0, PAGE);
    if (copy_through_edu(&e, IOVA_B, IOVA_C) < 0) {
        result("readonly-read", 0, "edu transfer did not finish");
    } else {
        result("readonly-read", !memcmp(c, q, PAGE),
               "%u bytes 0x%llx (ro) -> edu -> 0x%llx: %s", PAGE, IOVA_B,
               IOVA_C, describe(c, q, PAGE));
    }

    /* Buffer = P again, then a write into the read-only mapping. */
    if (edu_dma(&e, IOVA_A, EDU_BUF_SIZE, 0) < 0 ||
        edu_dma(&e, IOVA_B, FAULT_LEN, 1) < 0) {
        result("readonly-write-blocked", 0, "edu transfer did not finish");
    } else {
        printf("FAULT readonly W %u 0x%llx\n", e.endpoint, IOVA_B);
        result("readonly-write-blocked", !memcmp(b, q, PAGE),
               "edu -> 0x%llx (ro), %u bytes: buffer B %s", IOVA_B,
               FAULT_LEN, memcmp(b, q, PAGE) ? "CHANGED" : "unchanged");
    }

    /* A write to the unmapped IOVA must not reach D. */
    if (edu_dma(&e, IOVA_X, FAULT_LEN, 1) < 0) {
        result("unmapped-write-blocked", 0, "edu transfer did not finish");
    } else {
        printf("FAULT unmapped-write W %u 0x%llx\n", e.endpoint, IOVA_X);
        result("unmapped-write-blocked", !memcmp(d, s, PAGE),
               "edu -> 0x%llx (unmapped), %u bytes: old buffer D %s",
               IOVA_X, FAULT_LEN, memcmp(d, s, PAGE) ? "CHANGED" : "unchanged");
    }

    /*
     * A read from the unmapped IOVA must not bring D's bytes into the
     * buffer (which holds P); the rest of the buffer stays P.
     */
    memset(c, 0, PAGE);
    if (edu_dma(&e, IOVA_X, FAULT_LEN, 0) < 0 ||
        edu_dma(&e, IOVA_C, EDU_BUF_SIZE, 1) < 0) {
        result("unmapped-read-blocked", 0, "edu transfer did not finish");
    } else {
        int leaked = !memcmp(c, s, FAULT_LEN);
        int rest = !memcmp(c + FAULT_LEN, p + FAULT_LEN, PAGE - FAULT_LEN);

        printf("FAULT unmapped-read R %u 0x%llx\n", e.endpoint, IOVA_X);
        result("unmapped-read-blocked", !leaked && rest,
               "0x%llx (unmapped) -> edu, %u bytes: %s; got %02x%02x%02x%02x"
               ", rest of the edu buffer %s", IOVA_X, FAULT_LEN,
               leaked ? "old buffer D's bytes came through" :
               "no bytes of old buffer D", c[0], c[1], c[2], c[3],
               rest ? "intact" : "CHANGED");
    }

    /* Faults leave the device and the domain working. */
    memset(c, 0, PAGE);
    if (copy_through_edu(&e, IOVA_A, IOVA_C) < 0) {
        result("dma-after-faults", 0, "edu transfer did not finish");
    } else {
        result("dma-after-faults", !memcmp(c, p, PAGE),
               "%u bytes 0x%llx -> edu -> 0x%llx: %s", PAGE, IOVA_A, IOVA_C,
               describe(c, p, PAGE));
    }

    if (dma_unmap(&e, IOVA_A, PAGE) < 0 || dma_unmap(&e, IOVA_B, PAGE) < 0 ||
        dma_unmap(&e, IOVA_C, PAGE) < 0) {
        result("vfio-unmap", 0, "VFIO_IOMMU_UNMAP_DMA: %s", strerror(errno));
    } else {
        result("vfio-unmap", 1, "A, B and C unmapped");
    }
    alarm(0);
    return nfail ? 1 : 0;
}

static int cmd_maploop(const char *bdf, const char *secs, const char *sz)
{
    struct vfio_edu e = { .container = -1, .group = -1, .device = -1 };
    uint32_t rw = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;
    unsigned long size = PAGE;
    unsigned long long pairs = 0;
    double seconds, start, end, t;
    void *buf;
    char tail;

    if (sscanf(secs, "%lf%c", &seconds, &tail) != 1 || seconds <= 0) {
        fprintf(stderr, "maploop: bad SECONDS '%s'\n", secs);
        return 2;
    }
    if (sz && (sscanf(sz, "%lu%c", &size, &tail) != 1 || !size ||
               size % PAGE)) {
        fprintf(stderr, "maploop: SIZE must be a multiple of %u\n", PAGE);
        return 2;
    }
    if (vfio_open(&e, bdf, 0) < 0 ||
        check_iova_ranges(&e, IOVA_A, IOVA_A + size - 1, 0) < 0) {
        return 2;
    }
    buf = mmap(NULL, size, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (buf == MAP_FAILED) {
        perror("maploop: mmap");
        return 2;
    }
    start = now_s();
    end = start + seconds;
    do {
        if (dma_map(&e, buf, IOVA_A, size, rw) < 0) {
            fprintf(stderr, "maploop: VFIO_IOMMU_MAP_DMA after %llu pairs: "
                    "%s\n", pairs, strerror(errno));
            return 1;
        }
        if (dma_unmap(&e, IOVA_A, size) < 0) {
            fprintf(stderr, "maploop: VFIO_IOMMU_UNMAP_DMA after %llu pairs: "
                    "%s\n", pairs, strerror(errno));
            return 1;
        }
        pairs++;
        t = now_s();
    } while (t < end);
    printf("maploop pairs=%llu seconds=%.3f pairs_per_sec=%.1f\n", pairs,
           t - start, pairs / (t - start));
    return 0;
}

/*
 * What a transfer of @len bytes from @src left at @got: "moved" when @got
 * holds @src; "blocked" when it still holds @old (its bytes before the
 * transfer) or, with @old unknown (NULL), when no byte of @src is there;
 * "partial" otherwise.
 */
static const char *verdict(const uint8_t *got, const uint8_t *src,
                           const uint8_t *old, size_t len)
{
    size_t i;

    if (!memcmp(got, src, len)) {
        return "moved";
    }
    if (old) {
        return memcmp(got, old, len) ? "partial" : "blocked";
    }
    for (i = 0; i < len; i++) {
        if (got[i] == src[i]) {
            return "partial";
        }
    }
    return "blocked";
}

/* @len bytes as hex digits into @out (2 * @len + 1 bytes) */
static char *hex(char *out, const uint8_t *p, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++) {
        sprintf(out + 2 * i, "%02x", p[i]);
    }
    out[2 * len] = 0;
    return out;
}

/*
 * A byte offset into edu's buffer (and into a RAM page) for a FAULT_LEN
 * transfer, in hex, below the sentinel of edu-buffer.
 */
static int parse_offset(const char *arg, uint32_t *off)
{
    unsigned long v;
    char tail;

    if (sscanf(arg, "%lx%c", &v, &tail) != 1 || v % 4 ||
        v + FAULT_LEN > SENTINEL_OFF) {
        errno = EINVAL;
        return setup_fail("OFFSET must be a multiple of 4 below 0xf00");
    }
    *off = v;
    return 0;
}

/* Physical address of @p, in a locked page, from /proc/self/pagemap */
static int phys_addr(const void *p, uint64_t *pa)
{
    uint64_t ent, pfn, va = (uintptr_t)p;
    int fd = open("/proc/self/pagemap", O_RDONLY);
    ssize_t n;

    if (fd < 0) {
        return -1;
    }
    n = pread(fd, &ent, sizeof(ent), va / PAGE * sizeof(ent));
    close(fd);
    pfn = ent & ((1ull << 55) - 1);
    if (n != sizeof(ent) || !(ent >> 63) || !pfn) {
        errno = EPERM;
        return -1;
    }
    *pa = pfn * PAGE + va % PAGE;
    return 0;
}

/* Write @val to /sys/bus/pci/devices/BDF/@name */
static int sysfs_write(const struct vfio_edu *e, const char *name,
                       const char *val)
{
    char path[PATH_MAX];
    ssize_t n;
    int fd;

    snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/%s", e->bdf, name);
    fd = open(path, O_WRONLY);
    if (fd < 0) {
        return -1;
    }
    n = write(fd, val, strlen(val));
    close(fd);
    return n == (ssize_t)strlen(val) ? 0 : -1;
}

/* Enable the edu through sysfs, bus mastering on, BAR0 into e->bar */
static int sysfs_open(struct vfio_edu *e, int *enabled, int *cfg,
                      uint16_t *cmd0)
{
    char path[PATH_MAX], was = '0';
    struct stat st;
    uint16_t cmd;
    void *bar;
    int fd;

    snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/enable", e->bdf);
    fd = open(path, O_RDONLY);
    if (fd < 0 || read(fd, &was, 1) != 1) {
        return setup_fail(path);
    }
    close(fd);
    *enabled = was == '0';
    if (*enabled && sysfs_write(e, "enable", "1") < 0) {
        return setup_fail("write 1 to enable");
    }
    snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/config", e->bdf);
    *cfg = open(path, O_RDWR);
    if (*cfg < 0 || pread(*cfg, cmd0, 2, 4) != 2) {
        return setup_fail("read PCI command register");
    }
    cmd = *cmd0 | PCI_CMD_MEM_MASTER;
    if (pwrite(*cfg, &cmd, 2, 4) != 2 || pread(*cfg, &cmd, 2, 4) != 2) {
        return setup_fail("write PCI command register");
    }
    if ((cmd & PCI_CMD_MEM_MASTER) != PCI_CMD_MEM_MASTER) {
        errno = EIO;
        return setup_fail("memory decoding and bus mastering do not stick");
    }
    snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/resource0", e->bdf);
    fd = open(path, O_RDWR | O_SYNC);
    if (fd < 0 || fstat(fd, &st) < 0) {
        return setup_fail(path);
    }
    e->bar_size = st.st_size;
    if (e->bar_size < EDU_BUF + EDU_BUF_SIZE) {
        errno = EINVAL;
        return setup_fail("BAR0 too small for an edu device");
    }
    bar = mmap(NULL, e->bar_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (bar == MAP_FAILED) {
        return setup_fail("mmap resource0");
    }
    e->bar = bar;
    return 0;
}

static int cmd_edu_sysfs(const char *bdf, const char *offarg)
{
    struct vfio_edu e = { .container = -1, .group = -1, .device = -1 };
    struct sigaction sa = { .sa_handler = on_alarm };
    uint8_t *rd, *wr, old[FAULT_LEN];
    char h1[2 * FAULT_LEN + 1], h2[2 * FAULT_LEN + 1];
    uint64_t rd_pa, wr_pa, pa;
    int enabled, cfg, moved_page;
    const char *v;
    uint16_t cmd0;
    uint32_t off;
    size_t i;

    sigaction(SIGALRM, &sa, NULL);
    alarm(60);
    if (parse_bdf(&e, bdf) < 0) {
        errno = EINVAL;
        return setup_fail("bad PCI address (want DDDD:BB:DD.F)");
    }
    if (parse_offset(offarg, &off) < 0 ||
        sysfs_open(&e, &enabled, &cfg, &cmd0) < 0 || edu_identify(&e) < 0) {
        return 2;
    }
    printf("INFO endpoint %u %s (no driver, %s through sysfs)\n",
           e.endpoint, e.bdf, enabled ? "enabled" : "already enabled");

    /* The read page's bytes, never 0; the write page's, each different */
    rd = page_buf();
    wr = page_buf();
    if (!rd || !wr || mlock(rd, PAGE) < 0 || mlock(wr, PAGE) < 0) {
        return setup_fail("mmap and mlock");
    }
    fill(rd, PAGE, 5);
    for (i = 0; i < PAGE; i++) {
        wr[i] = ~rd[i];
    }
    memcpy(old, wr + off, FAULT_LEN);
    if (phys_addr(rd + off, &rd_pa) < 0 || phys_addr(wr + off, &wr_pa) < 0) {
        return setup_fail("physical address from /proc/self/pagemap");
    }
    if (rd_pa >> 32 || wr_pa >> 32) {
        errno = ERANGE;
        return setup_fail("RAM page above 4 GiB");
    }
    printf("INFO read at 0x%llx, write at 0x%llx, edu buffer 0x%x, "
           "%u bytes\n", (unsigned long long)rd_pa,
           (unsigned long long)wr_pa, EDU_BUF + off, FAULT_LEN);
    printf("PATTERN %s\n", hex(h1, rd + off, FAULT_LEN));
    printf("FAULT read R %u 0x%llx\n", e.endpoint,
           (unsigned long long)rd_pa);
    printf("FAULT write W %u 0x%llx\n", e.endpoint,
           (unsigned long long)wr_pa);
    fflush(stdout);

    if (edu_dma_at(&e, rd_pa, off, FAULT_LEN, 0) < 0 ||
        edu_dma_at(&e, wr_pa, off, FAULT_LEN, 1) < 0) {
        errno = ETIMEDOUT;
        return setup_fail("edu transfer did not finish");
    }
    moved_page = phys_addr(rd + off, &pa) < 0 || pa != rd_pa ||
                 phys_addr(wr + off, &pa) < 0 || pa != wr_pa;
    if (moved_page) {
        errno = EAGAIN;
        return setup_fail("a RAM page moved during the transfers");
    }
    v = verdict(wr + off, rd + off, old, FAULT_LEN);
    printf("RESULT write %s 0x%llx -> edu 0x%x -> 0x%llx, %u bytes each: "
           "the write page %s (%s, was %s)\n", v,
           (unsigned long long)rd_pa, EDU_BUF + off,
           (unsigned long long)wr_pa, FAULT_LEN,
           !strcmp(v, "moved") ? "holds the read page's bytes" :
           !strcmp(v, "blocked") ? "is unchanged" : "changed",
           hex(h1, wr + off, FAULT_LEN), hex(h2, old, FAULT_LEN));

    /* Back as it was: bus mastering off, disabled if it was */
    if (pwrite(cfg, &cmd0, 2, 4) != 2 ||
        (enabled && sysfs_write(&e, "enable", "0") < 0)) {
        printf("INFO could not restore the command register or disable "
               "%s: %s\n", e.bdf, strerror(errno));
    }
    alarm(0);
    return 0;
}

static int cmd_edu_buffer(const char *bdf, const char *offarg,
                          const char *pattern)
{
    struct vfio_edu e = { .container = -1, .group = -1, .device = -1 };
    struct sigaction sa = { .sa_handler = on_alarm };
    uint32_t off, rw = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;
    uint8_t src[FAULT_LEN], *a, *c;
    char h1[2 * FAULT_LEN + 1], h2[2 * FAULT_LEN + 1];
    size_t i;

    sigaction(SIGALRM, &sa, NULL);
    alarm(60);
    for (i = 0; i < FAULT_LEN; i++) {
        if (strlen(pattern) != 2 * FAULT_LEN ||
            sscanf(pattern + 2 * i, "%2hhx", &src[i]) != 1) {
            errno = EINVAL;
            return setup_fail("HEX must be 8 hex digits");
        }
    }
    if (parse_offset(offarg, &off) < 0 || vfio_open(&e, bdf, 1) < 0 ||
        check_iova_ranges(&e, IOVA_A, IOVA_C + PAGE - 1, 0) < 0 ||
        edu_identify(&e) < 0) {
        return 2;
    }
    a = page_buf();
    c = page_buf();
    if (!a || !c) {
        return setup_fail("mmap");
    }
    fill(a, PAGE, 6);
    if (dma_map(&e, a, IOVA_A, PAGE, VFIO_DMA_MAP_FLAG_READ) < 0 ||
        dma_map(&e, c, IOVA_C, PAGE, rw) < 0) {
        return setup_fail("VFIO_IOMMU_MAP_DMA");
    }
    /* The sentinel into the buffer, then the whole buffer out */
    if (edu_dma_at(&e, IOVA_A + SENTINEL_OFF, SENTINEL_OFF, SENTINEL_LEN,
                   0) < 0 ||
        edu_dma(&e, IOVA_C, EDU_BUF_SIZE, 1) < 0) {
        errno = ETIMEDOUT;
        return setup_fail("edu transfer did not finish");
    }
    if (memcmp(c + SENTINEL_OFF, a + SENTINEL_OFF, SENTINEL_LEN)) {
        result("read", 0, "the readout does not work: the sentinel at edu "
               "0x%x came back as %s", EDU_BUF + SENTINEL_OFF,
               describe(c + SENTINEL_OFF, a + SENTINEL_OFF, SENTINEL_LEN));
        return 1;
    }
    printf("RESULT read %s edu buffer 0x%x, %u bytes (read out through "
           "VFIO, sentinel intact): %s, the read page's bytes %s\n",
           verdict(c + off, src, NULL, FAULT_LEN), EDU_BUF + off, FAULT_LEN,
           hex(h1, c + off, FAULT_LEN), hex(h2, src, FAULT_LEN));
    if (dma_unmap(&e, IOVA_A, PAGE) < 0 || dma_unmap(&e, IOVA_C, PAGE) < 0) {
        return setup_fail("VFIO_IOMMU_UNMAP_DMA");
    }
    alarm(0);
    return 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: viommu-vfio edu-faults BDF\n"
            "       viommu-vfio maploop BDF SECONDS [SIZE]\n"
            "       viommu-vfio edu-sysfs BDF OFFSET\n"
            "       viommu-vfio edu-buffer BDF OFFSET HEX\n");
}

int main(int argc, char **argv)
{
    int rc;

    if (argc == 3 && !strcmp(argv[1], "edu-faults")) {
        rc = cmd_edu_faults(argv[2]);
    } else if ((argc == 4 || argc == 5) && !strcmp(argv[1], "maploop")) {
        rc = cmd_maploop(argv[2], argv[3], argc == 5 ? argv[4] : NULL);
    } else if (argc == 4 && !strcmp(argv[1], "edu-sysfs")) {
        rc = cmd_edu_sysfs(argv[2], argv[3]);
    } else if (argc == 5 && !strcmp(argv[1], "edu-buffer")) {
        rc = cmd_edu_buffer(argv[2], argv[3], argv[4]);
    } else {
        usage();
        rc = 2;
    }
    /* setup_fail() returns -1: a setup failure */
    return rc < 0 ? 2 : rc;
}
