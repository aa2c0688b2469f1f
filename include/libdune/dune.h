/*
 * libdune/dune.h - the libdune C API, served by the Rust runtime on upstream KVM.
 *
 * A program written for the original libdune (Belay et al., OSDI 2012) is rebuilt
 * unchanged against this header and libdune.a or libdune.so (crates/libdune-c):
 *
 *     cc $(pkg-config --cflags libdune) prog.c $(pkg-config --libs libdune)
 *
 * after scripts/install --prefix DIR (with PKG_CONFIG_PATH=DIR/lib/pkgconfig), or
 * from the build tree:
 *
 *     cc -I include prog.c -L <target>/debug -l:libdune.a -lpthread -ldl -lm
 *
 * Return values are as in libdune: 0 or -errno. Differences from the original are
 * marked "Here:" below; the ones a program can notice are:
 *   - guest-physical addresses are not virtual addresses (no PA == VA): reach a
 *     page from dune_page_alloc() through dune_pa2va() or map it with
 *     dune_vm_map_phys(); struct page is an opaque handle (no ->ref field);
 *   - PTE_COW is bit 11, not bit 9; the GD_* selectors have the runtime's values;
 *   - threads and forked children are in Dune mode already (dune_enter() there
 *     returns 0 at once);
 *   - signals are Linux signals, delivered in Dune mode (see dune_register_signal_handler);
 *   - phys_limit, mmap_base and stack_base keep their meaning for the address space
 *     but no longer describe guest-physical addresses (see there).
 * Names of the original that are not here, because their meaning was the original's
 * memory layout, which this runtime does not have: PAGEBASE, MAX_PAGES, pages,
 * num_pages and struct page's fields (pages are opaque handles here),
 * dune_mmap_addr_to_pa and dune_stack_addr_to_pa, kern/dune.h's GPA_STACK_SIZE and
 * GPA_MAP_SIZE (guest-physical addresses are allocated, not computed: use
 * dune_va_to_pa). PERM_USR3 is 0x4000 here (the original's 0x3000 was PERM_USR1 |
 * PERM_USR2, so PERM_USR1 set all three bits there).
 * Every macro, exported name and struct layout here (and in mmu.h, mmu-x86.h,
 * cpu-x86.h, local.h) is checked against the Rust side by
 * crates/libdune-c/src/header_check.rs.
 */
#ifndef LIBDUNE_DUNE_H
#define LIBDUNE_DUNE_H

#include <elf.h>
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

/*
 * dune_enter_ex - IX's libdune: dune_enter() with a block the caller provides for
 * the per-CPU area. Here: the runtime keeps its own per-vCPU area (the ring-0 GS
 * base is the runtime's), so percpu is not used; returns as dune_enter().
 */
extern int dune_enter_ex(void *percpu);

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

/*
 * dune_get_user_fs, dune_set_user_fs - the FS base ring-3 code (dune_jump_to_user)
 * runs with, for the calling thread: the thread's own FS base until set, as in the
 * original (so ring-3 code shares the thread's TLS unless given its own). In Dune
 * mode only: outside it get returns 0 and set does nothing.
 */
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

/*
 * Segment selectors of the runtime's GDT (without the requested privilege level).
 * Here: the values differ from the original's (0x10, 0x18, 0x28, 0x30, 0x38, 0x40;
 * 9 entries, laid out like Linux's): the runtime's GDT has no 32-bit segments, and
 * puts user data below user code so that SYSRET's selectors follow from one STAR
 * field. A frame's cs and ss use these (with RPL 3 in ring 3).
 */
#define GD_KT          0x08 /* kernel code */
#define GD_KD          0x10 /* kernel data */
#define GD_UD          0x18 /* user data */
#define GD_UT          0x20 /* user code */
#define GD_TSS         0x28 /* TSS (two entries) */
#define GD_TSS2        0x30 /* the TSS descriptor's upper half */
#define NR_GDT_ENTRIES 7

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

/*
 * dune_pop_trap_frame - resumes the ring-0 context tf describes: loads every
 * register of the frame and continues at tf->rip on tf->rsp (iretq), abandoning
 * the caller's context. From a trap handler it leaves the trap for good: the
 * frames and saved FPU state of the traps being handled are dropped (as
 * dune_ret_from_user does), so tf should be an ordinary context, not a handler's.
 * FPU and SSE registers are not part of struct dune_tf and keep their values.
 * Here: tf must be a ring-0 frame of this runtime (cs == GD_KT, ss == GD_KD or 0;
 * ring 3 is entered with dune_jump_to_user); interrupts stay enabled in the resumed
 * context (the runtime's TLB shootdown needs them) and only the arithmetic and
 * direction flags of tf->rflags are used. It returns only when it refuses tf
 * (outside Dune mode, tf NULL, other selectors), with errno set to EPERM or EINVAL;
 * the original had no such check and faulted instead.
 */
extern void dune_pop_trap_frame(struct dune_tf *tf);

/*
 * dune_dump_trap_frame - prints the registers of tf on standard output, then the
 * twelve quadwords at tf->rsp and the code bytes around tf->rip (stopping at the
 * first unmapped address), as the original. Usable in trap handlers.
 */
extern void dune_dump_trap_frame(struct dune_tf *tf);

/*
 * dune_passthrough_syscall - performs the system call described by tf in Linux
 * (number in rax, arguments ARG0..ARG5) and puts the result in tf->rax.
 */
extern void dune_passthrough_syscall(struct dune_tf *tf);

/* ===================================================================== x2APIC === */

/*
 * Inter-processor interrupts between the threads of a process in Dune mode, over
 * the local APIC of each vCPU (KVM's in-kernel APIC in x2APIC mode: sending and
 * acknowledging cause no exit to user space). Each thread in Dune mode has its own
 * vCPU and APIC ID. An interrupt sent to a thread runs the handler registered for
 * its vector (dune_register_intr_handler) on that thread, in ring 0, as soon as the
 * thread runs guest code with interrupts enabled. The handler must call
 * dune_apic_eoi(): until then the APIC holds back interrupts of the same or a lower
 * priority class (vector / 16), which for vectors 0xf0 and up includes the
 * runtime's TLB shootdown (vector 0xf1).
 * Here: vectors 32-240 and 242-254 are free; 241 (0xf1) is the runtime's TLB
 * shootdown and 255 (0xff) the spurious vector. In the original the kernel module posted these
 * interrupts to the target vCPU; here KVM's APIC delivers them. All of these work
 * in Dune mode only.
 */

/* dune_apic_id - the calling thread's x2APIC ID ((uint32_t)-1 outside Dune mode). */
extern uint32_t dune_apic_id(void);
/*
 * dune_apic_id_for_cpu - the x2APIC ID recorded for host CPU cpu by
 * dune_apic_init_rt_entry() (libdune/local.h), or (uint32_t)-1 if none was;
 * sets *error (when error is not NULL) and returns 0 if cpu is not a CPU number.
 */
extern uint32_t dune_apic_id_for_cpu(uint32_t cpu, bool *error);
/*
 * dune_apic_send_ipi - sends vector to the vCPU whose x2APIC ID is
 * destination_apic_id (fixed delivery, physical destination; vector 2 is sent as an
 * NMI). Here: vectors 0-31 other than 2 are exception vectors and are not sent.
 */
extern void dune_apic_send_ipi(uint8_t vector, uint32_t destination_apic_id);
/* dune_apic_eoi - signals the end of the interrupt being handled. */
extern void dune_apic_eoi(void);

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
/*
 * dune_page_stats - prints "DUNE Page Allocator: Alloc A, Free F, Total T" on
 * stdout. Here: Total is all of the runtime's memory, which grows on demand and
 * which page tables and per-vCPU areas share with the allocator's pages.
 */
extern void dune_page_stats(void);

/* ============================================================ virtual memory === */

/* The process's own page table (its root), set by dune_init() and dune_enter(). */
extern ptent_t *pgroot;

/*
 * The address-space layout, set by dune_init() (and dune_enter()); 0 before.
 *
 * phys_limit - one past the highest guest-physical address: 1 << the guest's
 *   MAXPHYADDR. Here: guest-physical addresses are allocated by the runtime below
 *   it, not computed from virtual addresses; in the original the top 64 GiB below
 *   phys_limit were windows onto mmap_base and stack_base.
 *
 * mmap_base - the base (1 GiB aligned) of a window of free address space below
 *   the kernel's mmap area, for a program's own MAP_FIXED mappings (the original's
 *   sandbox puts an application's heap and mappings in [mmap_base, mmap_base +
 *   8 GiB)). [mmap_base, mmap_base + 64 GiB) is free at dune_init() and ends below
 *   the lowest mapping of the kernel's mmap area (or of anything above the heap).
 *   Nothing is reserved: the kernel's top-down allocator, once the gaps above are
 *   full, places new mappings from the window's top down, so its first 8 GiB stay
 *   free until the process maps about 56 GiB more. The original's window was the
 *   63 GiB below the kernel's mmap base, likewise unreserved.
 *
 * stack_base - the base (1 GiB aligned) of the 1 GiB window holding the main
 *   thread's stack: the kernel's start_stack rounded up to 1 GiB, minus 1 GiB, as
 *   in the original.
 */
extern uintptr_t phys_limit;
extern uintptr_t mmap_base;
extern uintptr_t stack_base;

#define PERM_NONE    0x0000 /* no access */
#define PERM_R       0x0001 /* read */
#define PERM_W       0x0002 /* write */
#define PERM_X       0x0004 /* execute */
#define PERM_U       0x0008 /* ring-3 access */
#define PERM_UC      0x0010 /* uncached */
#define PERM_COW     0x0020 /* sets PTE_COW */
#define PERM_BIG     0x0100 /* 2 MiB pages where the range allows */
#define PERM_BIG_1GB 0x0200 /* 1 GiB pages where the range allows */
#define PERM_USR1    0x1000 /* sets PTE_USR1 (for the program's own use) */
#define PERM_USR2    0x2000 /* sets PTE_USR2 */
#define PERM_USR3    0x4000 /* sets PTE_USR3 (here: not 0x3000, see the top) */

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
 * CR3_NOFLUSH - or'ed into load_cr3's argument with a PCID in bits 11:0: keep the
 * translations the TLB holds for that PCID (the original's wedge and sthreads switch
 * tables this way).
 */
#define CR3_NOFLUSH (1UL << 63)

/*
 * __invpcid - INVPCID of type mode (0: one address of a PCID, 1: one PCID, 2: every
 * PCID with global entries, 3: every PCID but global entries) with PCID 1 and addr,
 * as in the original. Ring 0 only, and only where the CPU offers INVPCID
 * (CPUID.(EAX=7,ECX=0):EBX bit 10); elsewhere it raises #UD. Types 0 and 1 name
 * PCID 1, which the runtime does not use unless the program does (load_cr3).
 */
static inline void __invpcid(int mode, unsigned long addr)
{
	struct {
		unsigned long pcid, addr;
	} operand = { 1, addr };
	__asm__ volatile("invpcid (%%rax), %%rcx" ::"a"(&operand), "c"((unsigned long)mode) : "cc", "memory");
}

/*
 * load_cr3 - switches this CPU to another page table: cr3 is a root from
 * dune_vm_clone(pgroot) (or pgroot), given by its address, as in the original, or
 * by its guest-physical address (dune_va_to_pa(root)), optionally with a PCID in
 * bits 11:0 and CR3_NOFLUSH. System calls and faults work only under tables that
 * map what they touch. Ignored outside Dune mode.
 * Here: where the CPU (and KVM) offer no PCID, as in the QEMU test lane, the PCID
 * and CR3_NOFLUSH are dropped and every switch flushes the TLB: correct, only slower.
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
 * Maps the page holding va to allocator page pg with perm (which needs PERM_R; no
 * PERM_BIG), replacing what was there; the mapping holds a reference to pg, which
 * dune_vm_unmap drops. 0, -EINVAL (pg not an allocated page) or -ENOMEM.
 * The page an entry maps back: dune_vm_lookup_page, NULL unless va has a present
 * 4 KiB entry of an allocator page. (The original declared both, defined neither.)
 */
extern int dune_vm_insert_page(ptent_t *root, void *va, struct page *pg, int perm);
extern struct page *dune_vm_lookup_page(ptent_t *root, void *va);
/*
 * Finds the entry that maps va, building tables down to the level create asks for,
 * and stores its address in *pte_out (a 2 MiB or 1 GiB leaf met on the way is
 * returned as such). Returns 0, -ENOENT when a table is missing and create is
 * CREATE_NONE, -ENOMEM, or -EINVAL.
 */
extern int dune_vm_lookup(ptent_t *root, void *va, int create, ptent_t **pte_out);

/*
 * A deep copy of the tables (leaves share pages; allocator pages gain a reference). NULL on failure.
 * Here: the process's table maps 2 MiB-aligned stretches of the process's mappings with
 * 2 MiB pages; the copy maps all of the process's memory with 4 KiB pages, as libdune's
 * tables did (dune_init(1) mapped it page by page), so a page walk of the copy visits
 * one entry per 4 KiB page (Wedge's sthread.c counts pages that way). Runtime memory
 * and the program's own PERM_BIG mappings keep their sizes.
 */
extern ptent_t *dune_vm_clone(ptent_t *root);
/* Frees the tables of a clone and drops the page references it held. Not pgroot. */
extern void dune_vm_free(ptent_t *root);

/*
 * dune_vm_default_pgflt_handler - resolves a copy-on-write fault: for a write
 * (fec & FEC_W) to a present 4 KiB page whose entry has PTE_COW (PERM_COW), in the
 * page table the CPU is using, the entry becomes writable without PTE_COW; if the
 * page is an allocator page with other references, a copy replaces it first (and
 * the old page loses the entry's reference). Does nothing for any other fault.
 * Call it from a page-fault handler, or register it (cast to dune_pgflt_cb); after
 * it the access is allowed, so the fault counts as handled.
 * Here: the copy is a guest-only mapping like any made with dune_vm_map_phys: system
 * calls given that address still see the host's page. 2 MiB and 1 GiB COW entries
 * are left alone (the original asserted on them).
 */
extern void dune_vm_default_pgflt_handler(uintptr_t addr, uint64_t fec);

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

/* ============================================================== ELF helpers === */

/*
 * An ELF64 x86-64 image, from a file (dune_elf_open) or from memory
 * (dune_elf_open_mem). hdr is the ELF header; phdr and shdr (with shdrstr, the
 * section names) are read on first iteration; priv is the program's.
 * Every function returns 0 or -errno; a malformed image gets an error, never a
 * crash: anything that points outside the image is -EINVAL (-EIO for a short read
 * or a truncated header, as the original).
 * Here: table sizes and section names are bounded by the image, not by the
 * original's 40 program headers, 100 sections and 40-byte names; the original
 * printed on errors, this does not.
 */
struct dune_elf {
	int fd;             /* the file, or -1 */
	unsigned char *mem; /* the image in memory, or NULL */
	int len;            /* its length */
	Elf64_Ehdr hdr;
	Elf64_Phdr *phdr;
	Elf64_Shdr *shdr;
	char *shdrstr;
	void *priv;
};

typedef int (*dune_elf_phcb)(struct dune_elf *elf, Elf64_Phdr *phdr);
typedef int (*dune_elf_shcb)(struct dune_elf *elf, const char *sname, int snum, Elf64_Shdr *shdr);

/* Opens the file at path and checks its header (-errno of open(2) if it cannot be opened). */
extern int dune_elf_open(struct dune_elf *elf, const char *path);
/* Reads the image in [mem, mem + len) (not copied: it must outlive elf). */
extern int dune_elf_open_mem(struct dune_elf *elf, void *mem, int len);
/* Frees the tables and closes the file; harmless after a failed open or a second close. */
extern int dune_elf_close(struct dune_elf *elf);
/* Prints the section and program headers on standard output. */
extern int dune_elf_dump(struct dune_elf *elf);
/* Calls cb for each section, in order; stops at and returns the first nonzero value. */
extern int dune_elf_iter_sh(struct dune_elf *elf, dune_elf_shcb cb);
/* Calls cb for each program header, in order; stops at and returns the first nonzero value. */
extern int dune_elf_iter_ph(struct dune_elf *elf, dune_elf_phcb cb);
/*
 * dune_elf_load_ph - maps the PT_LOAD segment phdr at its address plus off (with
 * MAP_FIXED, replacing what was there), with the segment's permissions: file
 * contents for p_filesz bytes, zeros up to p_memsz. From a file the pages are a
 * private file mapping, as the original; from memory they are anonymous pages
 * filled from the image (the original required a file).
 */
extern int dune_elf_load_ph(struct dune_elf *elf, Elf64_Phdr *phdr, off_t off);

#ifdef __cplusplus
}
#endif

#endif /* LIBDUNE_DUNE_H */
