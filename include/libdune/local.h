/*
 * libdune/local.h - what programs used of the original libdune's internal header:
 * the stringizing macros and dune_apic_init_rt_entry() (the original's
 * test/posted_ipi.c and bench/posted_ipi.c include it for that). Include it after
 * dune.h.
 *
 * Here: the rest of the original's local.h has no counterpart. Its entry routines
 * (__dune_enter, __dune_ret, __dune_go_linux, ...) talked to the original's kernel
 * module; dune_page_init, dune_setup_apic and dune_apic_free are done by dune_init()
 * itself.
 * Checked by crates/libdune-c/src/header_check.rs with the other headers.
 */
#ifndef LIBDUNE_LOCAL_H
#define LIBDUNE_LOCAL_H

/* __str(x) - x, macro-expanded, as a string literal. */
#define __str_t(...) #__VA_ARGS__
#define __str(...)   __str_t(__VA_ARGS__)

#ifdef __cplusplus
extern "C" {
#endif

/*
 * dune_apic_init_rt_entry - records the calling thread's x2APIC ID as the one of
 * the host CPU it runs on (sched_getcpu()), for dune_apic_id_for_cpu(). Call it in
 * Dune mode from a thread pinned to its CPU, as the original's posted_ipi tests do.
 * Does nothing outside Dune mode.
 */
extern void dune_apic_init_rt_entry(void);

/* arch_prctl(2), which the C library exports but does not declare (as the original). */
extern int arch_prctl(int code, unsigned long *addr);

#ifdef __cplusplus
}
#endif

#endif /* LIBDUNE_LOCAL_H */
