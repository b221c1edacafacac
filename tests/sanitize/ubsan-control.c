/*
 * Negative control for the sanitized runs: one deliberate signed overflow.
 * Built with -fsanitize=undefined and run with the suite's UBSAN_OPTIONS,
 * it must stop with a report; if it exits 0, UBSan reports in the tests
 * would go unnoticed.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <limits.h>
#include <stdio.h>

int main(int argc, char **argv)
{
    /* volatile: the compiler must not fold the overflow away */
    volatile int x = INT_MAX;

    x += argc;          /* undefined: INT_MAX + 1 */
    printf("%d\n", x);
    return 0;
}
