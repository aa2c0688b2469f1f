/* dune-gc: the core of bdwgc's gc.h, source-compatible (work in progress).
 * A C program switches from Boehm GC by changing the include path and the library. */
#ifndef GC_H
#define GC_H

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
/* Which dirty-page source runs ("none", "mprotect", "soft-dirty"): an extension. */
extern const char *GC_dirty_source(void);

#ifdef __cplusplus
}
#endif
#endif
