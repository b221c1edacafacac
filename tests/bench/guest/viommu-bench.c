/*
 * viommu-bench: the guest side of the benchmark suite
 * (tests/bench/run-bench.sh, tests/bench/guest/test-bench.sh).  Built
 * statically into the test guest.
 *
 *   viommu-bench randread DEV SECONDS THREADS [BS]   (BS default 4096)
 *   viommu-bench seqread DEV SECONDS THREADS [BS]    (BS default 1 MiB)
 *   viommu-bench tcp-recv PORT TIMEOUT
 *   viommu-bench tcp-send ADDR PORT SECONDS [BUF]    (BUF default 128 KiB)
 *
 * randread: THREADS threads, each with its own O_DIRECT descriptor, read BS
 * bytes at random BS-aligned offsets of DEV, one read at a time per thread
 * (so THREADS reads are in flight).  seqread: each thread reads its own
 * 1/THREADS slice of DEV from start to end, BS at a time, and wraps around.
 * Both run WARMUP_SECONDS first, then count the reads completed in the
 * next SECONDS.  Buffers of 64 KiB and more sit in a transparent huge page
 * (2 MiB aligned, MADV_HUGEPAGE), as a database or QEMU itself would
 * allocate large O_DIRECT buffers: the guest then maps each read with one
 * MAP request and the device's DMA is dominated by translate on the data
 * pages, not by 4 KiB page scatter.  Smaller buffers are plain pages.
 *
 * tcp-recv accepts one connection (waiting at most TIMEOUT seconds) and
 * reads until the sender closes; the measured window starts WARMUP_SECONDS
 * after the first byte and ends at end of stream.  tcp-send connects
 * (retrying for up to 20 seconds) and sends for WARMUP_SECONDS + SECONDS.
 *
 * Every command prints one line "NAME key=value ..." on stdout and exits 0,
 * or prints "viommu-bench: ..." on stderr and exits 1.  Times come from
 * clock_gettime(CLOCK_MONOTONIC); MB are 10^6 bytes.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define WARMUP_SECONDS 1.0
#define MAX_THREADS 64

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void sleep_for(double seconds)
{
    struct timespec ts;

    ts.tv_sec = (time_t)seconds;
    ts.tv_nsec = (long)((seconds - ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
        continue;
    }
}

static void fail(const char *fmt, ...)
    __attribute__((noreturn, format(printf, 1, 2)));

static void fail(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fputs("viommu-bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static double parse_double(const char *s, const char *what)
{
    char *end;
    double v = strtod(s, &end);

    if (end == s || *end || v <= 0) {
        fail("bad %s '%s'", what, s);
    }
    return v;
}

static long parse_long(const char *s, const char *what)
{
    double v = parse_double(s, what);

    if (v != (double)(long)v || v > 1e9) {
        fail("bad %s '%s'", what, s);
    }
    return (long)v;
}

/* ---------------------------------------------------------------- disk */

struct worker {
    pthread_t tid;
    int fd;
    int seq;
    size_t bs;
    uint64_t start;         /* first byte of the region this thread reads */
    uint64_t blocks;        /* its length in blocks of bs */
    uint64_t rng;
    uint64_t ios;           /* completed reads (atomic) */
    int err;                /* errno of a failed read, or -1 if short */
    uint64_t err_off;
} __attribute__((aligned(64)));

static int stop;

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return x;
}

#define HUGE_PAGE   (2u << 20)
#define HUGE_MIN_BS (64u << 10)

/*
 * An I/O buffer of @bs bytes, in a transparent huge page if it is large.
 * *@base and *@mapped: what to munmap (0: free the buffer instead).
 */
static void *io_buffer(size_t bs, void **base, size_t *mapped)
{
    size_t len = (bs + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
    uintptr_t p;

    *mapped = 0;
    if (bs < HUGE_MIN_BS) {
        return aligned_alloc(4096, bs);
    }
    /* Room to align the buffer to the huge page size */
    *base = mmap(NULL, len + HUGE_PAGE, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (*base == MAP_FAILED) {
        return NULL;
    }
    *mapped = len + HUGE_PAGE;
    p = ((uintptr_t)*base + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1);
    madvise((void *)p, len, MADV_HUGEPAGE);
    memset((void *)p, 0, len);
    return (void *)p;
}

static void *io_thread(void *opaque)
{
    struct worker *w = opaque;
    size_t mapped;
    void *buf, *base = NULL;
    uint64_t next = 0;

    buf = io_buffer(w->bs, &base, &mapped);
    if (!buf) {
        w->err = ENOMEM;
        return NULL;
    }
    while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
        uint64_t blk;
        ssize_t r;

        if (w->seq) {
            blk = next;
            next = next + 1 == w->blocks ? 0 : next + 1;
        } else {
            blk = xorshift(&w->rng) % w->blocks;
        }
        r = pread(w->fd, buf, w->bs, w->start + blk * w->bs);
        if (r != (ssize_t)w->bs) {
            w->err = r < 0 ? errno : -1;
            w->err_off = w->start + blk * w->bs;
            break;
        }
        __atomic_store_n(&w->ios, w->ios + 1, __ATOMIC_RELAXED);
    }
    if (mapped) {
        munmap(base, mapped);
    } else {
        free(buf);
    }
    return NULL;
}

static uint64_t total_ios(struct worker *w, int n)
{
    uint64_t sum = 0;
    int i;

    for (i = 0; i < n; i++) {
        sum += __atomic_load_n(&w[i].ios, __ATOMIC_RELAXED);
    }
    return sum;
}

static uint64_t dev_size(int fd, const char *dev)
{
    struct stat st;
    uint64_t size;

    if (fstat(fd, &st) < 0) {
        fail("stat %s: %s", dev, strerror(errno));
    }
    if (S_ISREG(st.st_mode)) {
        return st.st_size;
    }
    if (ioctl(fd, BLKGETSIZE64, &size) < 0) {
        fail("BLKGETSIZE64 %s: %s", dev, strerror(errno));
    }
    return size;
}

static int cmd_disk(const char *name, int seq, int argc, char **argv)
{
    static struct worker w[MAX_THREADS];
    const char *dev;
    double seconds, t0, t1;
    uint64_t size, blocks, c0, c1;
    size_t bs;
    int threads, i;

    if (argc < 3 || argc > 4) {
        fail("usage: %s DEV SECONDS THREADS [BS]", name);
    }
    dev = argv[0];
    seconds = parse_double(argv[1], "SECONDS");
    threads = parse_long(argv[2], "THREADS");
    bs = argc > 3 ? parse_long(argv[3], "BS") : (seq ? 1 << 20 : 4096);
    if (threads > MAX_THREADS) {
        fail("at most %d threads", MAX_THREADS);
    }
    if (bs % 512) {
        fail("BS must be a multiple of 512 for O_DIRECT");
    }
    for (i = 0; i < threads; i++) {
        w[i].fd = open(dev, O_RDONLY | O_DIRECT);
        if (w[i].fd < 0) {
            fail("open %s with O_DIRECT: %s", dev, strerror(errno));
        }
    }
    size = dev_size(w[0].fd, dev);
    blocks = size / bs;
    if (blocks < (uint64_t)threads) {
        fail("%s has %" PRIu64 " bytes: too small for %d threads of %zu",
             dev, size, threads, bs);
    }
    for (i = 0; i < threads; i++) {
        w[i].seq = seq;
        w[i].bs = bs;
        w[i].rng = 0x9e3779b97f4a7c15ULL * (i + 1) ^ (uint64_t)getpid();
        if (seq) {
            w[i].start = blocks / threads * i * bs;
            w[i].blocks = blocks / threads;
        } else {
            w[i].start = 0;
            w[i].blocks = blocks;
        }
        if (pthread_create(&w[i].tid, NULL, io_thread, &w[i])) {
            fail("pthread_create failed");
        }
    }
    sleep_for(WARMUP_SECONDS);
    c0 = total_ios(w, threads);
    t0 = now();
    sleep_for(seconds);
    c1 = total_ios(w, threads);
    t1 = now();
    __atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
    for (i = 0; i < threads; i++) {
        pthread_join(w[i].tid, NULL);
    }
    for (i = 0; i < threads; i++) {
        if (w[i].err) {
            fail("%s: read of %zu bytes at %" PRIu64 " failed: %s", dev, bs,
                 w[i].err_off,
                 w[i].err < 0 ? "short read" : strerror(w[i].err));
        }
    }
    if (c1 == c0) {
        fail("%s: no read completed in %.1f seconds", dev, seconds);
    }
    printf("%s dev=%s bs=%zu threads=%d seconds=%.3f ios=%" PRIu64
           " iops=%.1f mbps=%.2f\n", name, dev, bs, threads, t1 - t0,
           c1 - c0, (c1 - c0) / (t1 - t0),
           (double)(c1 - c0) * bs / (t1 - t0) / 1e6);
    return 0;
}

/* ---------------------------------------------------------------- tcp */

static int cmd_tcp_recv(int argc, char **argv)
{
    struct sockaddr_in sa = { .sin_family = AF_INET };
    struct timeval tv = { .tv_sec = 30 };
    struct pollfd pfd;
    static char buf[256 * 1024];
    double timeout, first = 0, t0 = 0, t1;
    uint64_t bytes = 0, counted = 0;
    int one = 1, ls, s, port;
    ssize_t r;

    if (argc != 2) {
        fail("usage: tcp-recv PORT TIMEOUT");
    }
    port = parse_long(argv[0], "PORT");
    timeout = parse_double(argv[1], "TIMEOUT");
    ls = socket(AF_INET, SOCK_STREAM, 0);
    if (ls < 0) {
        fail("socket: %s", strerror(errno));
    }
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_ANY);
    if (bind(ls, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        listen(ls, 1) < 0) {
        fail("bind/listen on port %d: %s", port, strerror(errno));
    }
    pfd.fd = ls;
    pfd.events = POLLIN;
    if (poll(&pfd, 1, (int)(timeout * 1000)) != 1) {
        fail("no connection on port %d within %.0f seconds", port, timeout);
    }
    s = accept(ls, NULL, NULL);
    if (s < 0) {
        fail("accept: %s", strerror(errno));
    }
    /* A sender that goes silent must not hang the guest. */
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    for (;;) {
        r = read(s, buf, sizeof(buf));
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            fail("read after %" PRIu64 " bytes: %s", bytes, strerror(errno));
        }
        if (r == 0) {
            break;
        }
        bytes += r;
        if (!first) {
            first = now();
        } else if (!t0 && now() - first >= WARMUP_SECONDS) {
            t0 = now();
        }
        if (t0) {
            counted += r;
        }
    }
    t1 = now();
    close(s);
    close(ls);
    if (!t0 || t1 <= t0 || !counted) {
        fail("stream of %" PRIu64 " bytes ended within the warm-up", bytes);
    }
    printf("tcp-recv port=%d bytes=%" PRIu64 " total_bytes=%" PRIu64
           " seconds=%.3f mbps=%.2f\n", port, counted, bytes, t1 - t0,
           counted / (t1 - t0) / 1e6);
    return 0;
}

static int cmd_tcp_send(int argc, char **argv)
{
    struct sockaddr_in sa = { .sin_family = AF_INET };
    static char buf[1024 * 1024];
    double seconds, t0, t1, deadline;
    uint64_t bytes = 0;
    size_t len = 128 * 1024;
    int s = -1, port, i;
    ssize_t r;

    if (argc < 3 || argc > 4) {
        fail("usage: tcp-send ADDR PORT SECONDS [BUF]");
    }
    if (inet_pton(AF_INET, argv[0], &sa.sin_addr) != 1) {
        fail("bad address '%s'", argv[0]);
    }
    port = parse_long(argv[1], "PORT");
    sa.sin_port = htons(port);
    seconds = parse_double(argv[2], "SECONDS");
    if (argc > 3) {
        len = parse_long(argv[3], "BUF");
        if (len > sizeof(buf)) {
            fail("BUF is at most %zu", sizeof(buf));
        }
    }
    for (i = 0; i < (int)sizeof(buf); i++) {
        buf[i] = (char)(i * 7 + (i >> 12));
    }
    signal(SIGPIPE, SIG_IGN);
    /* The receiver may not listen yet. */
    deadline = now() + 20;
    for (;;) {
        s = socket(AF_INET, SOCK_STREAM, 0);
        if (s < 0) {
            fail("socket: %s", strerror(errno));
        }
        if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
            break;
        }
        if (now() > deadline) {
            fail("connect to %s:%d: %s", argv[0], port, strerror(errno));
        }
        close(s);
        sleep_for(0.1);
    }
    t0 = now();
    deadline = t0 + WARMUP_SECONDS + seconds;
    while (now() < deadline) {
        r = write(s, buf, len);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            fail("write after %" PRIu64 " bytes: %s", bytes, strerror(errno));
        }
        bytes += r;
    }
    shutdown(s, SHUT_WR);
    /* Wait for the receiver to close: everything sent was delivered. */
    while (read(s, buf, sizeof(buf)) > 0) {
        continue;
    }
    t1 = now();
    close(s);
    printf("tcp-send addr=%s port=%d bytes=%" PRIu64 " seconds=%.3f"
           " mbps=%.2f\n", argv[0], port, bytes, t1 - t0,
           bytes / (t1 - t0) / 1e6);
    return 0;
}

int main(int argc, char **argv)
{
    const char *cmd = argc > 1 ? argv[1] : "";

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (!strcmp(cmd, "randread")) {
        return cmd_disk(cmd, 0, argc - 2, argv + 2);
    }
    if (!strcmp(cmd, "seqread")) {
        return cmd_disk(cmd, 1, argc - 2, argv + 2);
    }
    if (!strcmp(cmd, "tcp-recv")) {
        return cmd_tcp_recv(argc - 2, argv + 2);
    }
    if (!strcmp(cmd, "tcp-send")) {
        return cmd_tcp_send(argc - 2, argv + 2);
    }
    fprintf(stderr, "usage: viommu-bench randread|seqread DEV SECONDS "
            "THREADS [BS]\n"
            "       viommu-bench tcp-recv PORT TIMEOUT\n"
            "       viommu-bench tcp-send ADDR PORT SECONDS [BUF]\n");
    return 2;
}
