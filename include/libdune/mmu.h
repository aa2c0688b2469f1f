/*
 * libdune/mmu.h - x86-64 paging constants and address macros of the libdune C API.
 *
 * Names and meanings follow the original libdune's mmu.h. Every object-like macro
 * here is checked against the Rust side (crates/dune-x86, crates/libdune) by the
 * unit test crates/libdune-c/src/header_check.rs, which compiles a C program with
 * this header and compares each value; a macro added here without a Rust
 * counterpart in that test fails it.
 */
#ifndef LIBDUNE_MMU_H
#define LIBDUNE_MMU_H

#include <stdint.h>

/* A paging-structure entry, and a guest-physical address. */
typedef uint64_t ptent_t;
typedef uint64_t physaddr_t;

/* ---- page-table geometry (4-level paging) ---- */

#define NPTBITS    9                   /* log2(entries per table) */
#define NPTLVLS    3                   /* table depth - 1 */
#define NPTENTRIES (1 << NPTBITS)      /* entries per table */
#define PDXMASK    ((1 << NPTBITS) - 1)

/* Shift of the index of level n (0 = page table ... 3 = PML4) in a linear address. */
#define PDSHIFT(n)    (12 + NPTBITS * (n))
/* Index of linear address la in its level-n table. */
#define PDX(n, la)    ((((uintptr_t)(la)) >> PDSHIFT(n)) & PDXMASK)
/* Linear address covered by entry i of a level-n table (relative to the table's base). */
#define PDADDR(n, i)  (((unsigned long)(i)) << PDSHIFT(n))

/* ---- pages ---- */

#define PGSHIFT 12                     /* log2(PGSIZE) */
#define PGSIZE  (1 << PGSHIFT)         /* bytes in a page */
#define PGMASK  (PGSIZE - 1)

#define PPN(la)    (((uintptr_t)(la)) >> PGSHIFT)       /* page number */
#define PGOFF(la)  (((uintptr_t)(la)) & PGMASK)         /* offset in the page */
#define PGADDR(la) (((uintptr_t)(la)) & ~(uint64_t)PGMASK) /* start of the page */

#define BIG_PGSHIFT 21                 /* 2 MiB pages */
#define BIG_PGSIZE  (1 << BIG_PGSHIFT)
#define BIG_PGMASK  (BIG_PGSIZE - 1)
#define BIG_PGOFF(la)  (((uintptr_t)(la)) & BIG_PGMASK)
#define BIG_PGADDR(la) (((uintptr_t)(la)) & ~(uint64_t)BIG_PGMASK)

/* ---- entry bits (Intel SDM Vol. 3A section 4.5) ---- */

#define PTE_P      0x0001           /* present */
#define PTE_W      0x0002           /* writable */
#define PTE_U      0x0004           /* user (ring 3) accessible */
#define PTE_PWT    0x0008           /* write-through */
#define PTE_PCD    0x0010           /* cache disable */
#define PTE_A      0x0020           /* accessed (set by the CPU) */
#define PTE_D      0x0040           /* dirty (set by the CPU on write) */
#define PTE_PS     0x0080           /* page size: 2 MiB / 1 GiB leaf in a PD / PDPT */
#define PTE_PAT    0x0080           /* PAT bit of a 4 KiB entry */
#define PTE_G      0x0100           /* global */
#define PTE_AVAIL  0x0E00           /* bits 11:9, ignored by the CPU */
#define PTE_PAT_PS 0x1000           /* PAT bit of a 2 MiB / 1 GiB entry */
#define PTE_NX     0x8000000000000000ULL /* execute disable */

/*
 * Copy-on-write marker set by PERM_COW. The runtime keeps it in bit 11; the
 * original libdune used bit 9 (0x200). Use the macro, not the number.
 */
#define PTE_COW    0x0800

/* Physical address and flags of an entry. */
#define PTE_ADDR_MASK  0x000FFFFFFFFFF000ULL
#define PTE_FLAGS_MASK 0xFFF0000000000FFFULL
#define PTE_ADDR(pte)  ((physaddr_t)(pte) & PTE_ADDR_MASK)
#define PTE_FLAGS(pte) ((physaddr_t)(pte) & PTE_FLAGS_MASK)

/* ---- page-fault error code (SDM Vol. 3A section 4.7) ---- */

#define FEC_P   0x1                    /* protection violation (page was present) */
#define FEC_W   0x2                    /* write access */
#define FEC_U   0x4                    /* access from ring 3 */
#define FEC_RSV 0x8                    /* reserved bit set in an entry */
#define FEC_I   0x10                   /* instruction fetch */

/* ---- RFLAGS ---- */

#define FL_CF        0x00000001        /* carry */
#define FL_PF        0x00000004        /* parity */
#define FL_AF        0x00000010        /* auxiliary carry */
#define FL_ZF        0x00000040        /* zero */
#define FL_SF        0x00000080        /* sign */
#define FL_TF        0x00000100        /* trap (single step) */
#define FL_IF        0x00000200        /* interrupts enabled */
#define FL_DF        0x00000400        /* direction */
#define FL_OF        0x00000800        /* overflow */
#define FL_IOPL_MASK 0x00003000        /* I/O privilege level */

#endif /* LIBDUNE_MMU_H */
