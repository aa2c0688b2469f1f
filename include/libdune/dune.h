/*
 * libdune/dune.h - the libdune C API, served by the Rust runtime on upstream KVM.
 *
 * A program written for the original libdune (Belay et al., OSDI 2012) is rebuilt
 * unchanged against this header and libdune.a or libdune.so (crates/libdune-c):
 *
 *     cc -I include prog.c -L <target>/debug -l:libdune.a -lpthread -ldl -lm
 *
 * Return values are as in libdune: 0 or -errno. Differences from the original are
 * marked "Here:" below; the ones a program can notice are:
 *   - guest-physical addresses are not virtual addresses (no PA == VA): reach a
 *     page from dune_page_alloc() through dune_pa2va() or map it with
 *     dune_vm_map_phys(); struct page is an opaque handle (no ->ref field);
 *   - PTE_COW is bit 11, not bit 9;
 *   - threads and forked children are in Dune mode already (dune_enter() there
 *     returns 0 at once);
 *   - signals are Linux signals, delivered in Dune mode (see dune_register_signal_handler).
 * Every object-like macro and the layout of every struct here are checked against
 * the Rust side by crates/libdune-c/src/header_check.rs.
 */
#ifndef LIBDUNE_DUNE_H
#define LIBDUNE_DUNE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "mmu.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef void (*sighandler_t)(int);

/* ===================================================================== entry === */

/*
 * dune_init - creates the VM of this process (once; later calls return 0).
 * @map_full: ignored. Here the guest page table always mirrors the whole address
 *            space of the process, and follows mmap/munmap/mprotect by itself.
 * Sets the global pgroot. Returns 0 or -errno (the reason is also printed on stderr,
 * e.g. when /dev/kvm is missing or guest ring 0 is emulated).
 */
extern int dune_init(bool map_full);

/*
 * dune_enter - puts the calling thread into Dune mode (guest ring 0).
 * Returns 0, also when the thread is in Dune mode already: threads created and
 * children forked in Dune mode start in Dune mode by themselves.
 */
extern int dune_enter(void);

/* dune_init_and_enter - dune_init(1) then dune_enter(). */
extern int dune_init_and_enter(void);

/* ================================================================= utilities === */

/* dune_get_ticks - the time-stamp counter (rdtsc). */
extern unsigned long dune_get_ticks(void);

/*
 * dune_printf - printf to standard output with one write(2), bypassing stdio's
 * buffer (usable in trap handlers). Output is truncated to 1023 bytes.
 */
extern int dune_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* dune_vprintf - dune_printf with a va_list (an addition to the original API). */
extern int dune_vprintf(const char *fmt, va_list ap);

/* dune_die - ends the process at once with exit status 1 (stdio is not flushed). */
extern void dune_die(void) __attribute__((noreturn));

/*
 * dune_mmap - mmap(2) from Dune mode. As in libdune the result is the raw system
 * call's: the address, or -errno cast to a pointer.
 */
extern void *dune_mmap(void *addr, size_t length, int prot, int flags, int fd, off_t offset);

/*
 * dune_signal - signal(2) for Dune mode: cb runs in Dune mode when sig arrives.
 * Returns NULL on success and SIG_ERR on failure, as libdune.
 */
extern sighandler_t dune_signal(int sig, sighandler_t cb);

/* FS base that ring-3 code (dune_jump_to_user) runs with, for the calling thread. */
extern unsigned long dune_get_user_fs(void);
extern void dune_set_user_fs(unsigned long fs_base);

#ifndef assert
#define assert(expr)                                                              \
	do {                                                                          \
		if (!(expr)) {                                                            \
			dune_printf("ASSERT(" #expr ") at %s:%d in function %s\n", __FILE__,  \
						__LINE__, __func__);                                      \
			dune_die();                                                           \
		}                                                                         \
	} while (0)
#endif

/* ====================================================================== traps === */

/* Segment selectors of the runtime's GDT (without the requested privilege level). */
#define GD_KT  0x08 /* kernel code */
#define GD_KD  0x10 /* kernel data */
#define GD_UD  0x18 /* user data */
#define GD_UT  0x20 /* user code */
#define GD_TSS 0x28 /* TSS (two entries) */

/*
 * The trap frame: the interrupted registers. A handler may change any field; the
 * interrupted code resumes from the frame (a ring-3 system call returns rax).
 * cs & 3 == 3 when the trap came from ring 3.
 */
struct dune_tf {
	/* arguments */
	uint64_t rdi;
	uint64_t rsi;
	uint64_t rdx;
	uint64_t rcx;
	uint64_t r8;
	uint64_t r9;
	uint64_t r10;
	uint64_t r11;

	/* callee-saved */
	uint64_t rbx;
	uint64_t rbp;
	uint64_t r12;
	uint64_t r13;
	uint64_t r14;
	uint64_t r15;

	/* system call number, return value */
	uint64_t rax;

	/* exception frame */
	uint32_t err;
	uint32_t pad1;
	uint64_t rip;
	uint16_t cs;
	uint16_t pad2[3];
	uint64_t rflags;
	uint64_t rsp;
	uint16_t ss;
	uint16_t pad3[3];
} __attribute__((packed));

#ifdef __cplusplus
static_assert(sizeof(struct dune_tf) == 168, "struct dune_tf is 21 quadwords");
#else
_Static_assert(sizeof(struct dune_tf) == 168, "struct dune_tf is 21 quadwords");
#endif

/*
 * System-call arguments in a frame. In a system-call handler ARG3 is rcx: the
 * runtime copies r10 (the kernel ABI's fourth argument) into rcx before the
 * handler runs and back into r10 after, as libdune did.
 */
#define ARG0(tf) ((tf)->rdi)
#define ARG1(tf) ((tf)->rsi)
#define ARG2(tf) ((tf)->rdx)
#define ARG3(tf) ((tf)->rcx)
#define ARG4(tf) ((tf)->r8)
#define ARG5(tf) ((tf)->r9)

typedef void (*dune_intr_cb)(struct dune_tf *tf);
typedef void (*dune_pgflt_cb)(uintptr_t addr, uint64_t fec, struct dune_tf *tf);
typedef void (*dune_syscall_cb)(struct dune_tf *tf);

/* Signal sig is reported as vector DUNE_SIGNAL_INTR_BASE + sig (sig <= 55). */
#define DUNE_SIGNAL_INTR_BASE 200

/*
 * dune_register_intr_handler - runs cb for every trap with vector vec (0..255), in
 * ring 0, with no exit to the host. cb == NULL removes it. Vector 14 (page fault)
 * takes precedence over the dune_register_pgflt_handler callback, as in libdune.
 * A vector DUNE_SIGNAL_INTR_BASE + sig also catches signal sig (see below).
 * Returns 0, or -EINVAL for a vector out of range or a signal that cannot be caught.
 */
extern int dune_register_intr_handler(int vec, dune_intr_cb cb);

/*
 * dune_register_signal_handler - runs cb when signal signum arrives, with a frame
 * built from the signal context (the interrupted registers); changes cb makes to
 * the general registers, rip, rflags and rsp are applied when the handler returns.
 * Here: implemented with sigaction(SA_SIGINFO | SA_RESTART) in Dune mode; equal to
 * dune_register_intr_handler(DUNE_SIGNAL_INTR_BASE + signum, cb).
 */
extern int dune_register_signal_handler(int signum, dune_intr_cb cb);

/*
 * dune_register_pgflt_handler - runs cb(address, error code, frame) for every page
 * fault. cb == NULL removes it.
 * Here: the runtime maps some memory lazily (memory mapped behind its back, the
 * growing main stack), so cb may also see faults on addresses it does not manage;
 * it should leave those alone. After cb returns, the fault counts as handled if cb
 * changed the frame or if the access is now allowed by the page table; otherwise
 * the runtime handles it (a lazy mapping, or the signal Linux would send: SIGSEGV).
 */
extern void dune_register_pgflt_handler(dune_pgflt_cb cb);

/*
 * dune_register_syscall_handler - runs cb for every system call made in ring 3
 * (dune_jump_to_user). cb may change the arguments, set rax (a result or -errno),
 * call dune_passthrough_syscall(tf), or end the session with dune_ret_from_user().
 * Without a handler (cb == NULL) ring-3 system calls go to Linux.
 */
extern void dune_register_syscall_handler(dune_syscall_cb cb);

/*
 * dune_jump_to_user - runs tf (rip, rsp, registers) in ring 3 until a handler calls
 * dune_ret_from_user(ret), and returns ret. Code and stack must be mapped with
 * PERM_U. cs, ss and the privileged bits of rflags are set by the runtime.
 * Returns -EPERM outside Dune mode.
 */
extern int dune_jump_to_user(struct dune_tf *tf);

/* dune_ret_from_user - from a handler: ends the ring-3 session, dune_jump_to_user returns ret. */
extern void dune_ret_from_user(int ret) __attribute__((noreturn));

/* dune_dump_trap_frame - prints the registers of tf on standard output. */
extern void dune_dump_trap_frame(struct dune_tf *tf);

/*
 * dune_passthrough_syscall - performs the system call described by tf in Linux
 * (number in rax, arguments ARG0..ARG5) and puts the result in tf->rax.
 */
extern void dune_passthrough_syscall(struct dune_tf *tf);

/* ====================================================================== pages === */

/*
 * Pages of the runtime's page allocator: zeroed 4 KiB guest-physical pages,
 * reference counted, mappable anywhere with dune_vm_map_phys().
 * Here: struct page is an opaque handle, one per page, stable for the life of the
 * process (dune_pa2page(dune_page2pa(pg)) == pg); guest-physical addresses are not
 * virtual addresses: dune_pa2va() gives the address at which ring 0 reaches a page.
 */
struct page;

extern struct page *dune_page_alloc(void);               /* NULL when out of memory */
extern void dune_page_free(struct page *pg);             /* frees whatever the count */
extern struct page *dune_page_get(struct page *pg);      /* adds a reference; returns pg */
extern void dune_page_put(struct page *pg);              /* drops one; freed at zero */
extern struct page *dune_pa2page(physaddr_t pa);         /* NULL if not an allocator page */
extern physaddr_t dune_page2pa(struct page *pg);         /* 0 for an invalid handle */
/* Here: whether pa is an allocated page of the allocator (libdune: in its pool). */
extern bool dune_page_isfrompool(physaddr_t pa);
/* Additions: the reference count of pg (0 when free), and the address of page pa. */
extern int dune_page_refcount(struct page *pg);
extern void *dune_pa2va(physaddr_t pa);

/* ============================================================ virtual memory === */

/* The process's own page table (its root), set by dune_init() and dune_enter(). */
extern ptent_t *pgroot;

#define PERM_NONE    0x0000 /* no access */
#define PERM_R       0x0001 /* read */
#define PERM_W       0x0002 /* write */
#define PERM_X       0x0004 /* execute */
#define PERM_U       0x0008 /* ring-3 access */
#define PERM_UC      0x0010 /* uncached */
#define PERM_COW     0x0020 /* sets PTE_COW */
#define PERM_BIG     0x0100 /* 2 MiB pages where the range allows */
#define PERM_BIG_1GB 0x0200 /* 1 GiB pages where the range allows */

#define PERM_SCODE  (PERM_R | PERM_X)
#define PERM_STEXT  (PERM_R | PERM_W)
#define PERM_SSTACK PERM_STEXT
#define PERM_UCODE  (PERM_R | PERM_U | PERM_X)
#define PERM_UTEXT  (PERM_R | PERM_U | PERM_W)
#define PERM_USTACK PERM_UTEXT

/* dune_flush_tlb - drops this CPU's translations (CR3 reload). Ring 0 only. */
extern void dune_flush_tlb(void);
/* dune_flush_tlb_one - drops the translation of one address (invlpg). Ring 0 only. */
extern void dune_flush_tlb_one(unsigned long addr);
/*
 * load_cr3 - switches this CPU to another page table (a guest-physical root address:
 * dune_va_to_pa(root) of a root from dune_vm_clone(pgroot)). System calls and faults
 * work only under tables that map what they touch.
 */
extern void load_cr3(unsigned long cr3);

#define VA_START ((void *)0)
#define VA_END   ((void *)-1)

enum {
	CREATE_NONE = 0,    /* build nothing */
	CREATE_NORMAL = 1,  /* build down to the 4 KiB entry */
	CREATE_BIG = 2,     /* build down to the 2 MiB entry */
	CREATE_BIG_1GB = 3, /* build down to the 1 GiB entry */
};

/*
 * Page-table editing. root is pgroot or a root from dune_vm_clone(). Ranges are
 * widened to whole pages. Here: edits are not visible to the kernel (a system call
 * given an address the host has no mapping for fails with EFAULT), and host-side
 * mmap/munmap/mprotect of the same range overwrite them.
 */
/* Changes the permissions of the mapped pages; without PERM_R they become not present. Flushes the TLB. */
extern int dune_vm_mprotect(ptent_t *root, void *va, size_t len, int perm);
/* Maps [va, va+len) to guest-physical [pa, pa+len), replacing what was there. */
extern int dune_vm_map_phys(ptent_t *root, void *va, size_t len, void *pa, int perm);
/* Maps [va, va+len) to fresh zeroed pages of the allocator (one reference each). */
extern int dune_vm_map_pages(ptent_t *root, void *va, size_t len, int perm);
/* Removes the mappings; allocator pages lose the reference the mapping held. Flushes the TLB. */
extern void dune_vm_unmap(ptent_t *root, void *va, size_t len);
/*
 * Finds the entry that maps va, building tables down to the level create asks for,
 * and stores its address in *pte_out (a 2 MiB or 1 GiB leaf met on the way is
 * returned as such). Returns 0, -ENOENT when a table is missing and create is
 * CREATE_NONE, -ENOMEM, or -EINVAL.
 */
extern int dune_vm_lookup(ptent_t *root, void *va, int create, ptent_t **pte_out);

/* A deep copy of the tables (leaves share pages; allocator pages gain a reference). NULL on failure. */
extern ptent_t *dune_vm_clone(ptent_t *root);
/* Frees the tables of a clone and drops the page references it held. Not pgroot. */
extern void dune_vm_free(ptent_t *root);

/*
 * dune_vm_page_walk - calls cb(arg, entry, va) for each present leaf (4 KiB, 2 MiB
 * or 1 GiB) that overlaps [start_va, end_va] (end inclusive, as libdune), in address
 * order; stops at and returns the first nonzero value cb returns. Here: entries
 * that are not present are skipped (libdune also visited nonzero ones). cb may
 * change the entry (e.g. clear PTE_D), then flush the TLB.
 */
typedef int (*page_walk_cb)(const void *arg, ptent_t *ptep, void *va);
extern int dune_vm_page_walk(ptent_t *root, void *start_va, void *end_va,
							 page_walk_cb cb, const void *arg);

/* dune_va_to_pa - guest-physical address of va in pgroot; 0 when va is not mapped. */
extern uintptr_t dune_va_to_pa(void *va);

/* ======================================================== process memory map === */

#define PROCMAP_TYPE_UNKNOWN   0x00
#define PROCMAP_TYPE_FILE      0x01
#define PROCMAP_TYPE_ANONYMOUS 0x02
#define PROCMAP_TYPE_HEAP      0x03
#define PROCMAP_TYPE_STACK     0x04
#define PROCMAP_TYPE_VSYSCALL  0x05
#define PROCMAP_TYPE_VDSO      0x06
#define PROCMAP_TYPE_VVAR      0x07

/* One line of /proc/self/maps. path is "" for anonymous memory, valid during the callback. */
struct dune_procmap_entry {
	uintptr_t begin;
	uintptr_t end;
	uint64_t offset;
	bool r; /* readable */
	bool w; /* writable */
	bool x; /* executable */
	bool p; /* private (else shared) */
	char *path;
	int type; /* PROCMAP_TYPE_* */
};

typedef void (*dune_procmap_cb)(const struct dune_procmap_entry *);

/* Calls cb for each mapping of the process, in address order. */
extern void dune_procmap_iterate(dune_procmap_cb cb);
/* Prints the mappings on standard output. */
extern void dune_procmap_dump(void);

#ifdef __cplusplus
}
#endif

#endif /* LIBDUNE_DUNE_H */
