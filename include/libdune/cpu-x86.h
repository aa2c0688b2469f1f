/*
 * libdune/cpu-x86.h - x86 CPU features of the libdune C API: MSR access, the IDT
 * gate layout, trap numbers and the time-stamp counter.
 *
 * Names and meanings follow the original libdune's cpu-x86.h. Not included by
 * dune.h (as in the original): include it after dune.h. Every macro, function-like
 * macro and struct layout here is checked against the Rust side (crates/dune-x86)
 * by crates/libdune-c/src/header_check.rs.
 *
 * Here: rdmsr and wrmsr run in ring 0, so rdmsrl() and wrmsrl() work in Dune mode
 * only (outside it they fault: SIGSEGV). KVM handles the MSRs it emulates (the FS
 * and GS bases, MSR_KERNEL_GS_BASE, the x2APIC, EFER, the TSC, ...); an MSR it does
 * not know raises #GP, which without a handler ends the process with SIGSEGV.
 * MSR_GS_BASE holds the runtime's per-vCPU block and MSR_LSTAR its system-call
 * entry: read them freely, but writing them breaks Dune mode, as in the original.
 */
#ifndef LIBDUNE_CPU_X86_H
#define LIBDUNE_CPU_X86_H

#include <stdint.h>

#include "mmu.h"

static inline void native_write_msr(unsigned int msr, unsigned low, unsigned high)
{
	__asm__ volatile("wrmsr" : : "c"(msr), "a"(low), "d"(high) : "memory");
}

typedef uint64_t u64;

/* Pieces of the rdmsr asm statement in native_read_msr(). */
#define DECLARE_ARGS(val, low, high) unsigned low, high
#define EAX_EDX_VAL(val, low, high)  ((low) | ((u64)(high) << 32))
#define EAX_EDX_ARGS(val, low, high) "a"(low), "d"(high)
#define EAX_EDX_RET(val, low, high)  "=a"(low), "=d"(high)

static inline unsigned long long native_read_msr(unsigned int msr)
{
	DECLARE_ARGS(val, low, high);

	__asm__ volatile("rdmsr" : EAX_EDX_RET(val, low, high) : "c"(msr));
	return EAX_EDX_VAL(val, low, high);
}

/* wrmsrl(msr, val) writes a 64-bit MSR; rdmsrl(msr, val) reads one into val. */
#define wrmsrl(msr, val) native_write_msr((msr), (uint32_t)((uint64_t)(val)), (uint32_t)((uint64_t)(val) >> 32))
#define rdmsrl(msr, val) ((val) = native_read_msr((msr)))

/* MSR numbers (also MSR_FS_BASE and MSR_GS_BASE, from mmu-x86.h). */
#define MSR_KERNEL_GS_BASE 0xc0000102 /* swapgs's other GS base */
#define MSR_LSTAR          0xc0000082 /* long-mode SYSCALL target */

/* The operand of lgdt/lidt (10 bytes). */
struct tptr {
	uint16_t limit;
	uint64_t base;
} __attribute__((packed));

#define IDTD_P              (1 << 7)
#define IDTD_CPL3           (3 << 5)
#define IDTD_TRAP_GATE      0xF
#define IDTD_INTERRUPT_GATE 0xE

#define IDT_ENTRIES 256

/* One 64-bit IDT gate (SDM Vol. 3A section 6.14.1, Figure 6-8). */
struct idtd {
	uint16_t low;
	uint16_t selector;
	uint8_t ist;
	uint8_t type;
	uint16_t middle;
	uint32_t high;
	uint32_t zero;
} __attribute__((packed)) __attribute__((aligned));

/* x86 trap numbers (the vectors of dune_register_intr_handler) */
#define T_DIVIDE  0  /* divide error */
#define T_DEBUG   1  /* debug exception */
#define T_NMI     2  /* non-maskable interrupt */
#define T_BRKPT   3  /* breakpoint */
#define T_OFLOW   4  /* overflow */
#define T_BOUND   5  /* bounds check */
#define T_ILLOP   6  /* illegal opcode */
#define T_DEVICE  7  /* device not available */
#define T_DBLFLT  8  /* double fault */
#define T_TSS     10 /* invalid task switch segment */
#define T_SEGNP   11 /* segment not present */
#define T_STACK   12 /* stack exception */
#define T_GPFLT   13 /* general protection fault */
#define T_PGFLT   14 /* page fault */
#define T_FPERR   16 /* floating point error */
#define T_ALIGN   17 /* alignment check */
#define T_MCHK    18 /* machine check */
#define T_SIMDERR 19 /* SIMD floating point error */

/*
 * T_SYSCALL - the original's spare "system call" vector. Unused, as in the
 * original: ring-3 system calls arrive through SYSCALL at the callback of
 * dune_register_syscall_handler().
 */
#define T_SYSCALL 48

/*
 * rdtscll - the time-stamp counter (rdtsc), as unsigned long: what the original's
 * benchmarks (bench/bench.h) call it.
 * Here: a function-like macro, so it coexists with a program's own rdtscll()
 * function provided that function comes first, as bench/bench.h does in the
 * original's bench/posted_ipi.c; a program that defines rdtscll as a macro keeps its own.
 */
#ifndef rdtscll
#define rdtscll() ((unsigned long)__builtin_ia32_rdtsc())
#endif

#endif /* LIBDUNE_CPU_X86_H */
