/*
 * check.h - CHECK() for the C API tests: prints the failed condition and exits 1.
 *
 * For ordinary code only: in trap handlers record what you saw in globals and check
 * it afterwards (stdio may be locked by the interrupted code).
 */
#ifndef CAPI_CHECK_H
#define CAPI_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond) CHECKF(cond, "%s", "")

/* CHECK with a message, printf style. */
#define CHECKF(cond, fmt, ...)                                                     \
	do {                                                                           \
		if (!(cond)) {                                                             \
			fprintf(stderr, "check failed at %s:%d: %s\n" fmt "\n", __FILE__,      \
					__LINE__, #cond, __VA_ARGS__);                                 \
			exit(1);                                                               \
		}                                                                          \
	} while (0)

/* Enters Dune mode or exits 2 (the reason is on stderr). */
#define ENTER()                                                                    \
	do {                                                                           \
		int rc_ = dune_init_and_enter();                                           \
		if (rc_) {                                                                 \
			fprintf(stderr, "dune_init_and_enter failed: %d\n", rc_);              \
			exit(2);                                                               \
		}                                                                          \
	} while (0)

#endif
