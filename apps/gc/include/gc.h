/* dune-gc: the core of bdwgc's gc.h, source-compatible. A C program switches from
 * Boehm GC by changing the include path and the library (-ldune_gc).
 * The dirty-page source comes from DUNE_GC_DIRTY: none, mprotect, soft-dirty, uffd,
 * dune-fault, dune-dirty (the last two enter Dune mode unless already in it). */
#ifndef GC_H
#define GC_H
#define DUNE_GC 1

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef unsigned long GC_word;

extern void GC_init(void);
#define GC_INIT() GC_init()
extern void *GC_malloc(size_t);
extern void *GC_malloc_atomic(size_t);
extern void *GC_realloc(void *old, size_t size);
extern void GC_free(void *);
#define GC_MALLOC(sz) GC_malloc(sz)
#define GC_MALLOC_ATOMIC(sz) GC_malloc_atomic(sz)
#define GC_REALLOC(old, sz) GC_realloc(old, sz)
#define GC_FREE(p) GC_free(p)
#define GC_NEW(t) ((t *)GC_MALLOC(sizeof(t)))
#define GC_NEW_ATOMIC(t) ((t *)GC_MALLOC_ATOMIC(sizeof(t)))
extern void GC_gcollect(void);
extern void GC_enable_incremental(void);
extern int GC_is_incremental_mode(void);
extern size_t GC_get_heap_size(void);
extern size_t GC_get_free_bytes(void);
extern size_t GC_get_total_bytes(void);
extern GC_word GC_gc_no;
extern GC_word GC_get_gc_no(void);
extern void GC_add_roots(void *low, void *high_plus_1);
typedef enum { GC_EVENT_START, GC_EVENT_MARK_START, GC_EVENT_MARK_END, GC_EVENT_RECLAIM_START, GC_EVENT_RECLAIM_END, GC_EVENT_END } GC_EventType;
typedef void (*GC_on_collection_event_proc)(GC_EventType);
/* Called with GC_EVENT_START and GC_EVENT_END around each collection. */
extern void GC_set_on_collection_event(GC_on_collection_event_proc);
#define GC_PROTECTS_NONE 0
#define GC_PROTECTS_POINTER_HEAP 1
extern int GC_incremental_protection_needs(void);

/* Finalizers: fn(obj, cd) runs once after obj becomes unreachable. */
typedef void (*GC_finalization_proc)(void *obj, void *client_data);
extern void GC_register_finalizer(void *obj, GC_finalization_proc fn, void *cd, GC_finalization_proc *ofn, void **ocd);
extern void GC_register_finalizer_ignore_self(void *obj, GC_finalization_proc fn, void *cd, GC_finalization_proc *ofn, void **ocd);
extern void GC_register_finalizer_no_order(void *obj, GC_finalization_proc fn, void *cd, GC_finalization_proc *ofn, void **ocd);
extern int GC_invoke_finalizers(void);
extern size_t GC_get_unmapped_bytes(void);

/* Threads: a thread that holds pointers to collected memory must be registered.
 * With GC_THREADS defined, pthread_create does that for the new thread. */
struct GC_stack_base;
extern int GC_register_my_thread(const struct GC_stack_base *);
extern int GC_unregister_my_thread(void);
extern void GC_allow_register_threads(void);
#if defined(GC_THREADS) && !defined(GC_NO_THREAD_REDIRECTS)
#include <pthread.h>
extern int GC_pthread_create(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
extern int GC_pthread_join(pthread_t, void **);
#define pthread_create GC_pthread_create
#define pthread_join GC_pthread_join
#endif

/* Extensions. Which dirty-page source runs (see above). */
extern const char *GC_dirty_source(void);
/* Write faults the source took, and dirty pages collections rescanned. */
extern size_t GC_dune_faults(void);
extern size_t GC_dune_dirty_pages(void);

#ifdef __cplusplus
}
#endif
#endif
