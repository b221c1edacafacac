/*
 * Stand-in for QEMU's qapi/error.h: an Error is its message, enough for
 * what the core reports when it refuses saved state.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef VIOMMU_SHIM_ERROR_H
#define VIOMMU_SHIM_ERROR_H

struct Error {
    char *msg;
};

static inline G_GNUC_PRINTF(2, 3)
void error_setg(Error **errp, const char *fmt, ...)
{
    va_list ap;

    if (!errp) {
        return;
    }
    g_assert(!*errp);
    *errp = g_new0(Error, 1);
    va_start(ap, fmt);
    (*errp)->msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
}

static inline G_GNUC_PRINTF(2, 3)
void error_prepend(Error **errp, const char *fmt, ...)
{
    g_autofree char *prefix = NULL;
    char *msg;
    va_list ap;

    if (!errp || !*errp) {
        return;
    }
    va_start(ap, fmt);
    prefix = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    msg = g_strconcat(prefix, (*errp)->msg, NULL);
    g_free((*errp)->msg);
    (*errp)->msg = msg;
}

static inline const char *error_get_pretty(const Error *err)
{
    return err->msg;
}

static inline void error_free(Error *err)
{
    if (err) {
        g_free(err->msg);
        g_free(err);
    }
}

#endif
