/*
 * Unit tests of the virtio-iommu core: a core with fake endpoints and
 * request builders, shared by the test programs.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/log.h"
#include "qemu/bswap.h"
#include "standard-headers/linux/virtio_iommu.h"
#include "virtio-iommu-fixture.h"
#ifndef VIOMMU_SHIM_LOG_H
#include "qapi/error.h"
#endif

/*
 * Counting the core's log lines.  Built on its own (tests/unit/shim), the
 * core logs through viommu_shim_log(); built in QEMU's tree, through
 * QEMU's log, which goes to a file whose lines are counted.
 */
#ifdef VIOMMU_SHIM_LOG_H

static unsigned int shim_lines;

void viommu_shim_log(int mask, const char *fmt, ...)
{
    shim_lines++;
    if (g_test_verbose()) {
        va_list ap;

        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
    }
}

static void log_restart(void)
{
    shim_lines = 0;
}

unsigned int log_lines(void)
{
    return shim_lines;
}

#else

static char *log_path;

static void log_restart(void)
{
    if (!log_path) {
        int fd = g_file_open_tmp("test-virtio-iommu-XXXXXX", &log_path,
                                 NULL);

        g_assert_cmpint(fd, >=, 0);
        close(fd);
    }
    qemu_set_log_filename_flags(NULL, 0, &error_abort);
    g_assert_true(g_file_set_contents(log_path, "", 0, NULL));
    qemu_set_log_filename_flags(log_path, LOG_GUEST_ERROR, &error_abort);
}

unsigned int log_lines(void)
{
    g_autofree char *text = NULL;
    unsigned int n = 0;
    char *p;

    g_assert_true(g_file_get_contents(log_path, &text, NULL, NULL));
    for (p = text; (p = strchr(p, '\n')); p++) {
        n++;
    }
    return n;
}

#endif

static const VIOMMUResvRegion resv[] = {
    { .start = MSI_START, .end = MSI_END,
      .subtype = VIRTIO_IOMMU_RESV_MEM_T_MSI },
};

static bool fake_exists(void *opaque, uint32_t ep_id)
{
    return ep_id == EP_A || ep_id == EP_B || ep_id == EP_C;
}

static size_t fake_resv(void *opaque, uint32_t ep_id,
                        const VIOMMUResvRegion **regions)
{
    *regions = resv;
    return ARRAY_SIZE(resv);
}

static void fake_detaching(void *opaque, uint32_t ep_id,
                           const VIOMMUDomain *domain)
{
    Fixture *f = opaque;

    g_hash_table_add(f->changed, GUINT_TO_POINTER(ep_id));
    f->detaching++;
}

static void fake_attached(void *opaque, uint32_t ep_id,
                          const VIOMMUDomain *domain)
{
    Fixture *f = opaque;

    g_hash_table_add(f->changed, GUINT_TO_POINTER(ep_id));
    f->attached++;
}

static void fake_added(void *opaque, const VIOMMUDomain *domain,
                       const VIOMMUMapping *mapping)
{
    ((Fixture *)opaque)->added++;
}

static void fake_removed(void *opaque, const VIOMMUDomain *domain,
                         const VIOMMUMapping *mapping)
{
    Fixture *f = opaque;

    f->removed++;
    f->removed_unannounced += domain != f->unmapping_domain;
}

static void fake_unmapping(void *opaque, const VIOMMUDomain *domain)
{
    Fixture *f = opaque;

    f->unmapping++;
    f->unmapping_domain = domain;
}

const VIOMMUCoreOps fake_ops = {
    .endpoint_exists = fake_exists,
    .resv_regions = fake_resv,
    .endpoint_detaching = fake_detaching,
    .endpoint_attached = fake_attached,
    .mapping_added = fake_added,
    .mapping_removed = fake_removed,
    .domain_unmapping = fake_unmapping,
};

void fixture_setup_limits(Fixture *f, uint32_t max_domains,
                          uint64_t max_mappings)
{
    VIOMMUCoreConfig config = {
        .granule = GRANULE,
        .input_start = 0,
        .input_end = (1ULL << 48) - 1,
        .domain_start = 0,
        .domain_end = 1023,
        .probe_size = PROBE_SIZE,
        .limits.max_domains = max_domains,
        .limits.max_mappings = max_mappings,
        .msi_resv = resv,
        .nr_msi_resv = ARRAY_SIZE(resv),
    };

    f->core = viommu_core_new(&config, &fake_ops, f);
    f->changed = g_hash_table_new(g_direct_hash, g_direct_equal);
    viommu_core_set_features(f->core, ALL_FEATURES);
    viommu_core_set_bypass(f->core, false);
    log_restart();
}

void fixture_setup(Fixture *f, gconstpointer data)
{
    fixture_setup_limits(f, 16, 64);
}

void fixture_teardown(Fixture *f, gconstpointer data)
{
    viommu_core_free(f->core);
    g_hash_table_destroy(f->changed);
}

/* Request builders: return the status, or -1 for "no status written" */

int submit(Fixture *f, const void *req, size_t in_len, size_t out_len)
{
    VIOMMUReply reply;

    /* An announcement holds for its own request only */
    f->unmapping_domain = NULL;
    reply = viommu_core_handle(f->core, req, in_len, out_len, f->props);
    return reply.has_status ? reply.status : -1;
}

int attach_flags(Fixture *f, uint32_t domain, uint32_t ep,
                 uint32_t flags)
{
    struct virtio_iommu_req_attach req = {
        .head.type = VIRTIO_IOMMU_T_ATTACH,
        .domain = cpu_to_le32(domain),
        .endpoint = cpu_to_le32(ep),
        .flags = cpu_to_le32(flags),
    };

    return submit(f, &req, sizeof(req) - 4, 4);
}

int attach(Fixture *f, uint32_t domain, uint32_t ep)
{
    return attach_flags(f, domain, ep, 0);
}

int detach(Fixture *f, uint32_t domain, uint32_t ep)
{
    struct virtio_iommu_req_detach req = {
        .head.type = VIRTIO_IOMMU_T_DETACH,
        .domain = cpu_to_le32(domain),
        .endpoint = cpu_to_le32(ep),
    };

    return submit(f, &req, sizeof(req) - 4, 4);
}

int map_flags(Fixture *f, uint32_t domain, uint64_t start,
              uint64_t end, uint64_t phys, uint32_t flags)
{
    struct virtio_iommu_req_map req = {
        .head.type = VIRTIO_IOMMU_T_MAP,
        .domain = cpu_to_le32(domain),
        .virt_start = cpu_to_le64(start),
        .virt_end = cpu_to_le64(end),
        .phys_start = cpu_to_le64(phys),
        .flags = cpu_to_le32(flags),
    };

    return submit(f, &req, sizeof(req) - 4, 4);
}

int map(Fixture *f, uint32_t domain, uint64_t start, uint64_t end,
        uint64_t phys)
{
    return map_flags(f, domain, start, end, phys,
                     VIRTIO_IOMMU_MAP_F_READ | VIRTIO_IOMMU_MAP_F_WRITE);
}

int unmap(Fixture *f, uint32_t domain, uint64_t start, uint64_t end)
{
    struct virtio_iommu_req_unmap req = {
        .head.type = VIRTIO_IOMMU_T_UNMAP,
        .domain = cpu_to_le32(domain),
        .virt_start = cpu_to_le64(start),
        .virt_end = cpu_to_le64(end),
    };

    return submit(f, &req, sizeof(req) - 4, 4);
}

int probe(Fixture *f, uint32_t ep, size_t props_len)
{
    struct virtio_iommu_req_probe req = {
        .head.type = VIRTIO_IOMMU_T_PROBE,
        .endpoint = cpu_to_le32(ep),
    };

    return submit(f, &req, sizeof(req), props_len + 4);
}

const VIOMMUMapping *lookup(Fixture *f, uint32_t ep, uint64_t iova)
{
    const VIOMMUDomain *domain = viommu_core_endpoint_domain(f->core, ep);

    return domain ? viommu_core_lookup(domain, iova) : NULL;
}

uint64_t nr_mappings(Fixture *f)
{
    return viommu_core_stats(f->core).nr_mappings;
}
