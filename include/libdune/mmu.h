/*
 * libdune/mmu.h - page-table types, the AMD64 paging depth and the descriptor
 * structures of the libdune C API; includes mmu-x86.h (paging, control registers,
 * segments, flags).
 *
 * Names and meanings follow the original libdune's mmu.h. Every object-like macro,
 * every function-like macro (on sample arguments) and the layout of every struct
 * here are checked against the Rust side (crates/dune-x86, crates/libdune) by the
 * unit test crates/libdune-c/src/header_check.rs; a macro added here without a
 * Rust counterpart in that test fails it.
 *
 * Here: JOS's struct Trapframe and struct Trapframe_aux, which the original carried
 * but never used, are left out: Dune's trap frame is struct dune_tf (dune.h).
 */
#ifndef LIBDUNE_MMU_H
#define LIBDUNE_MMU_H

#include <stdint.h>

#define UINT64(x) ((uint64_t) x)
#define CAST64(x) ((uint64_t) x)
#define ONE       UINT64(1)

/* A paging-structure entry, and a guest-physical address. */
typedef uint64_t ptent_t;
typedef uint64_t physaddr_t;

#include "mmu-x86.h"

/* ---- AMD64 paging depth ---- */

#define NPTBITS 9 /* log2(entries per table) */
#define NPTLVLS 3 /* table depth - 1 */
#define PD_SKIP 6 /* offset of pd_lim in struct Pseudodesc */

/* ---- descriptor-table structures (SDM Vol. 3A sections 3.5.1, 7.7, 6.14.1) ---- */

/* The operand of lgdt/lidt, padded so that pd_base is 8-byte aligned: use &pd_lim. */
struct Pseudodesc {
	uint16_t pd__garbage1;
	uint16_t pd__garbage2;
	uint16_t pd__garbage3;
	uint16_t pd_lim;  /* limit */
	uint64_t pd_base; /* base address */
} __attribute__((packed));

/* The 64-bit task-state segment (104 bytes, then the I/O permission bitmap). */
struct Tss {
	char tss__ign1[4];
	uint64_t tss_rsp[3]; /* stack pointers for CPL 0, 1, 2 */
	uint64_t tss_ist[8]; /* tss_ist[0] is reserved; IST1..IST7 */
	char tss__ign2[10];
	uint16_t tss_iomb;   /* I/O map base */
	uint8_t tss_iopb[];
} __attribute__((packed));

/* A 16-byte IDT gate as two quadwords (see SETGATE in mmu-x86.h). */
struct Gatedesc {
	uint64_t gd_lo;
	uint64_t gd_hi;
};

#endif /* LIBDUNE_MMU_H */
