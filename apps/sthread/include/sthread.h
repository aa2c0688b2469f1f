/*
 * Wedge sthreads on Dune: privilege-separated compartments (libsthread).
 *
 * Source-compatible with the Wedge-on-Dune sthread.h (project-dune/dune,
 * apps/wedge): the same names, argument order (smalloc(tag, size)) and types.
 * Extensions: sfree, scalloc, tag_delete, copy-on-write grants (SC_PROT_COW),
 * callgates (sc_cgate_add, cgate), sc_destroy and sthread_join_why.
 *
 * The sc_* functions return 0, or -1 with errno (EINVAL for a system call that
 * cannot be granted, ESRCH for an unknown tag); the originals returned nothing and
 * exited the process instead. A violation ends the sthread only: sthread_join
 * returns -1 with errno EFAULT (memory), ENOSYS (system call), EBADF (descriptor),
 * EPERM (callgate) or EILSEQ (other exception).
 */
#ifndef STHREAD_H
#define STHREAD_H

#include <stddef.h>
#include <sys/mman.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef int sthread_t;
typedef int tag_t;
typedef void *(*stcb_t)(void *);
/* A callgate: runs with its own policy; trusted is fixed by its creator. */
typedef void *(*cg_t)(void *trusted, void *untrusted);

/* A policy. A value type: declare it anywhere and sc_init it. */
typedef struct sc {
	unsigned long magic;
	void *policy;
	unsigned long reserved[6];
} sc_t;

/* sc_mem_add: a private copy of the tag's pages on first write. */
#define SC_PROT_COW 0x1000

struct sthread_violation {
	int kind;            /* 0 none, 1 memory, 2 exception, 3 system call, 4 descriptor, 5 pointer, 6 callgate */
	int errnum;          /* what sthread_join sets errno to */
	long nr;             /* system call, descriptor or vector */
	unsigned long addr;  /* faulting or offending address, callgate entry */
	unsigned long rip;
};

/* Counters, for tests and benchmarks. */
struct sthread_counters {
	long compartments;   /* alive: pooled or running */
	long pooled;         /* kept for reuse */
	long sthreads;       /* created, not yet joined */
	long pcids;          /* PCIDs held by the calling thread */
	long runtime_pages;  /* pages of the Dune runtime in use (tables, page allocator) */
};

extern int sthread_init(void);
extern int sthread_counters(struct sthread_counters *c);
/* 0: flush the whole TLB on every switch even where the CPU has PCIDs. */
extern void sthread_set_pcid(int enabled);
extern int sthread_create(sthread_t *st, sc_t *sc, stcb_t cb, void *arg);
extern int sthread_join(sthread_t st, void **ret);
extern int sthread_join_why(sthread_t st, void **ret, struct sthread_violation *why);

extern int sc_init(sc_t *sc);
extern int sc_mem_add(sc_t *sc, tag_t t, unsigned long prot);
extern int sc_fd_add(sc_t *sc, int fd, unsigned long prot);
extern int sc_sys_add(sc_t *sc, int sysno);
extern int sc_cgate_add(sc_t *sc, cg_t entry, sc_t *cgsc, void *trusted);
extern void sc_destroy(sc_t *sc);

extern tag_t tag_new(void);
extern int tag_delete(tag_t t);
extern void *smalloc(tag_t t, size_t len);
extern void *scalloc(tag_t t, size_t n, size_t size);
extern void sfree(void *p);

/* From inside an sthread: run a callgate its policy carries. perms must be NULL.
 * Returns the gate's value, or NULL with errno if the gate was refused or
 * violated its own policy. */
extern void *cgate(cg_t entry, sc_t *perms, void *arg);

#ifdef __cplusplus
}
#endif

#endif
