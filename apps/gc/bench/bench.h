/* The harness shared by the collector benchmarks (paper §5.3, Table 6). Each program
 * builds unchanged against bdwgc's gc.h (-lgc) and against dune-gc's (-ldune_gc),
 * checks its own result, and prints one line:
 *
 *   result NAME collector=... source=... mode=... collections=N alloc_bytes=N
 *          heap_bytes=N ms=T pause_max_us=T pause_total_us=T faults=N dirty_pages=N
 *
 * Environment: GC_BENCH_INCREMENTAL=1 calls GC_enable_incremental(). The first
 * argument divides the work (1: the paper's sizes). */
#ifndef GC_BENCH_H
#define GC_BENCH_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <gc.h>

static double bench_t0, bench_pause_start, bench_pause_max, bench_pause_total;
static int bench_world_events;
static size_t bench_heap_max;

static double bench_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void bench_pause(double p)
{
	bench_pause_total += p;
	if (p > bench_pause_max)
		bench_pause_max = p;
}

/* A pause is the world stopped (bdwgc's incremental steps too), or else a whole
 * collection (dune-gc stops the world for all of it). */
static void bench_event(GC_EventType e)
{
#ifndef DUNE_GC
	if (e == GC_EVENT_PRE_STOP_WORLD) {
		bench_world_events = 1;
		bench_pause_start = bench_now();
	} else if (e == GC_EVENT_POST_START_WORLD) {
		bench_pause(bench_now() - bench_pause_start);
	}
#endif
	if (e == GC_EVENT_START) {
		if (!bench_world_events)
			bench_pause_start = bench_now();
	} else if (e == GC_EVENT_END) {
		if (!bench_world_events)
			bench_pause(bench_now() - bench_pause_start);
		size_t h = GC_get_heap_size();
		if (h > bench_heap_max)
			bench_heap_max = h;
	}
}

/* The work divisor from argv[1]. */
static long bench_begin(int argc, char **argv)
{
	GC_INIT();
	if (getenv("GC_BENCH_INCREMENTAL") && atoi(getenv("GC_BENCH_INCREMENTAL")))
		GC_enable_incremental();
	GC_set_on_collection_event(bench_event);
	long scale = argc > 1 ? atol(argv[1]) : 1;
	if (scale < 1) {
		fprintf(stderr, "%s: the work divisor must be a positive integer\n", argv[0]);
		exit(2);
	}
	bench_t0 = bench_now();
	return scale;
}

static void bench_fail(const char *name, const char *what)
{
	fprintf(stderr, "%s: wrong result: %s\n", name, what);
	exit(1);
}

static void bench_end(const char *name)
{
	double ms = bench_now() - bench_t0;
	size_t h = GC_get_heap_size();
	if (h > bench_heap_max)
		bench_heap_max = h;
#ifdef DUNE_GC
	const char *collector = "dune-gc", *source = GC_dirty_source();
	const char *mode = GC_is_incremental_mode() ? "generational" : "full";
	unsigned long faults = GC_dune_faults(), dirty = GC_dune_dirty_pages();
#else
	/* Which dirty-page mechanism bdwgc picked: soft-dirty needs no protection. */
	const char *collector = "bdwgc", *source = "none", *mode = "full";
	if (GC_is_incremental_mode()) {
		source = GC_incremental_protection_needs() == GC_PROTECTS_NONE ? "soft-dirty" : "mprotect";
		/* With parallel marking, bdwgc's incremental mode is generational only. */
		mode = GC_get_parallel() > 0 ? "generational" : "incremental";
	}
	unsigned long faults = 0, dirty = 0;
#endif
	printf("result %s collector=%s source=%s mode=%s collections=%lu alloc_bytes=%lu heap_bytes=%lu ms=%.1f pause_max_us=%.0f pause_total_us=%.0f faults=%lu dirty_pages=%lu\n",
	       name, collector, source, mode, (unsigned long)GC_get_gc_no(), (unsigned long)GC_get_total_bytes(), (unsigned long)bench_heap_max, ms,
	       bench_pause_max * 1e3, bench_pause_total * 1e3, faults, dirty);
	fflush(stdout);
}

#endif
