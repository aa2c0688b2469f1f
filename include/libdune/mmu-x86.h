/*
 * libdune/mmu-x86.h - x86-64 paging, control registers, MSR numbers, debug
 * registers, flags and segment descriptors of the libdune C API.
 *
 * Names and values follow the original libdune's mmu-x86.h (itself from JOS);
 * references are to the Intel SDM. Included by mmu.h (and so by dune.h). Every
 * macro here is checked against the Rust side (crates/dune-x86) by
 * crates/libdune-c/src/header_check.rs.
 *
 * Here: PTE_COW is bit 11, not bit 9 (see below). JOS's SEG32_ASM, an assembler
 * macro nothing in Dune used, is left out.
 */
#ifndef LIBDUNE_MMU_X86_H
#define LIBDUNE_MMU_X86_H

#include "mmu.h"

/*
 * Part 1. Paging data structures and control registers
 */

/* Index of linear address la in its level-n table (0 = page table ... 3 = PML4). */
#define PDXMASK      ((1 << NPTBITS) - 1)
#define PDSHIFT(n)   (12 + NPTBITS * (n))
#define PDX(n, la)   ((((uintptr_t)(la)) >> PDSHIFT(n)) & PDXMASK)
/* Linear address covered by entry i of a level-n table (relative to the table's base). */
#define PDADDR(n, i) (((unsigned long)(i)) << PDSHIFT(n))

#define NPTENTRIES (1 << NPTBITS) /* entries per table */

/* page number field of an address */
#define PPN(la) (((uintptr_t)(la)) >> PGSHIFT)

/* page size */
#define PGSHIFT 12             /* log2(PGSIZE) */
#define PGSIZE  (1 << PGSHIFT) /* bytes mapped by a page */
#define PGMASK  (PGSIZE - 1)

/* offset in page, start of page */
#define PGOFF(la)  (((uintptr_t)(la)) & PGMASK)
#define PGADDR(la) (((uintptr_t)(la)) & ~CAST64(PGMASK))

/* big (2 MiB) pages */
#define BIG_PGSHIFT    21
#define BIG_PGSIZE     (1 << BIG_PGSHIFT)
#define BIG_PGMASK     (BIG_PGSIZE - 1)
#define BIG_PGOFF(la)  (((uintptr_t)(la)) & BIG_PGMASK)
#define BIG_PGADDR(la) (((uintptr_t)(la)) & ~CAST64(BIG_PGMASK))

/* Page table/directory entry flags (SDM Vol. 3A section 4.5). */
#define PTE_P      0x0001 /* present */
#define PTE_W      0x0002 /* writable */
#define PTE_U      0x0004 /* user (ring 3) accessible */
#define PTE_PWT    0x0008 /* write-through */
#define PTE_PCD    0x0010 /* cache disable */
#define PTE_A      0x0020 /* accessed (set by the CPU) */
#define PTE_D      0x0040 /* dirty (set by the CPU on write) */
#define PTE_PS     0x0080 /* page size: 2 MiB / 1 GiB leaf in a PD / PDPT */
#define PTE_PAT    0x0080 /* PAT bit of a 4 KiB entry */
#define PTE_G      0x0100 /* global */
#define PTE_AVAIL  0x0E00 /* bits 11:9, ignored by the CPU */
#define PTE_PAT_PS 0x1000 /* PAT bit of a 2 MiB / 1 GiB entry */
/*
 * Bits 62:52, ignored by the CPU here. Bits 62:59 would be a protection key if
 * CR4.PKE were set; the runtime leaves PKE clear in Dune mode.
 */
#define PTE_AVAIL2 UINT64(0x7FF0000000000000)
#define PTE_NX     UINT64(0x8000000000000000) /* execute disable */

/*
 * Dune's software flags.
 * Here: PTE_COW, the copy-on-write marker set by PERM_COW and honoured by
 * dune_vm_default_pgflt_handler(), is bit 11 (0x800), the runtime's choice of
 * available bit; the original used bit 9 (0x200). Use the macro, not the number.
 */
#define PTE_COW  0x0800
#define PTE_USR1 UINT64(0x4000000000000000) /* for the program's own use */
#define PTE_USR2 UINT64(0x2000000000000000) /* for the program's own use */
#define PTE_USR3 UINT64(0x1000000000000000) /* for the program's own use */

/* Physical address and flags of an entry. */
#define PTE_ADDR_MASK  0x000FFFFFFFFFF000ULL
#define PTE_FLAGS_MASK 0xFFF0000000000FFFULL
#define PTE_ADDR(pte)  ((physaddr_t)(pte) & PTE_ADDR_MASK)
#define PTE_FLAGS(pte) ((physaddr_t)(pte) & PTE_FLAGS_MASK)

/* Control register flags (SDM Vol. 3A section 2.5). */
#define CR0_PE 0x1        /* protection enable */
#define CR0_MP 0x2        /* monitor coprocessor */
#define CR0_EM 0x4        /* emulation */
#define CR0_TS 0x8        /* task switched */
#define CR0_ET 0x10       /* extension type */
#define CR0_NE 0x20       /* numeric error */
#define CR0_WP 0x10000    /* write protect */
#define CR0_AM 0x40000    /* alignment mask */
#define CR0_NW 0x20000000 /* not write-through */
#define CR0_CD 0x40000000 /* cache disable */
#define CR0_PG 0x80000000 /* paging */

#define CR3_PWT 0x8  /* page-level write-through */
#define CR3_PCD 0x10 /* page-level cache disable */

#define CR4_VME    0x1   /* V86 mode extensions */
#define CR4_PVI    0x2   /* protected-mode virtual interrupts */
#define CR4_TSD    0x4   /* time stamp disable */
#define CR4_DE     0x8   /* debugging extensions */
#define CR4_PSE    0x10  /* page size extensions */
#define CR4_PAE    0x20  /* physical address extension */
#define CR4_MCE    0x40  /* machine check enable */
#define CR4_PGE    0x80  /* page-global enable */
#define CR4_PCE    0x100 /* performance counter enable */
#define CR4_OSFXSR 0x200 /* FXSAVE/FXRSTOR support */
#define CR4_OSX    0x400 /* OS unmasked SIMD exception support */

/* MTRR registers (SDM Vol. 3A section 11.11). */
#define MTRR_CAP           0xfe                 /* MTRR capabilities (MSR) */
#define MTRR_CAP_VCNT_MASK 0xff                 /* variable-size register count */
#define MTRR_CAP_FIX       0x100                /* fixed-size register support */
#define MTRR_CAP_WC        0x400                /* write-combining support */
#define MTRR_BASE(i)       (0x200 + 2 * (i))    /* physical address base (MSR) */
#define MTRR_BASE_UC       0x00                 /* uncacheable */
#define MTRR_BASE_WC       0x01                 /* write-combining */
#define MTRR_BASE_WT       0x04                 /* write-through */
#define MTRR_BASE_WP       0x05                 /* write-protect */
#define MTRR_BASE_WB       0x06                 /* write-back */
#define MTRR_MASK(i)       (0x201 + 2 * (i))    /* physical address mask (MSR) */
#define MTRR_MASK_FULL     PGADDR((ONE << 36) - 1) /* all of a 36-bit space (JOS) */
#define MTRR_MASK_VALID    0x800

/* EFER (SDM Vol. 3A section 2.2.1). */
#define EFER       0xc0000080 /* MSR number */
#define EFER_SCE   0x1        /* system-call extension */
#define EFER_LME   0x100      /* long mode enable */
#define EFER_LMA   0x400      /* long mode active */
#define EFER_NXE   0x800      /* no-execute enable */
#define EFER_FFXSR 0x4000     /* fast FXSAVE/FXRSTOR */

/*
 * FS/GS base registers.
 * Here: in Dune mode GS base belongs to the runtime (its per-vCPU block), as in
 * the original; FS base is the thread's own.
 */
#define MSR_FS_BASE 0xc0000100
#define MSR_GS_BASE 0xc0000101

/* Debug registers (SDM Vol. 3B section 17.2). */
#define MSR_DEBUG_CTL 0x1d9    /* MSR number */
#define DEBUG_CTL_LBR (1 << 0) /* last-branch record */

#define MSR_LBR_FROM_IP 0x1db /* last branch from IP */
#define MSR_LBR_TO_IP   0x1dc /* last branch to IP */
#define MSR_LEX_FROM_IP 0x1dd /* last exception from IP */
#define MSR_LEX_TO_IP   0x1de /* last exception to IP */

#define DR7_L(n)         (ONE << ((n) * 2))     /* local breakpoint enable */
#define DR7_G(n)         (ONE << ((n) * 2 + 1)) /* global breakpoint enable */
#define DR7_LE           (ONE << 8)             /* local enable */
#define DR7_GE           (ONE << 9)             /* global enable */
#define DR7_GD           (ONE << 13)            /* general-detect enable */
#define DR7_RW_SHIFT(n)  ((n) * 4 + 16)         /* breakpoint access mode */
#define DR7_LEN_SHIFT(n) ((n) * 4 + 18)         /* breakpoint address length */

#define DR7_RW_EXEC  0x0
#define DR7_RW_WRITE 0x1
#define DR7_RW_IO    0x2
#define DR7_RW_RW    0x3

#define DR7_LEN_1 0x0
#define DR7_LEN_2 0x1
#define DR7_LEN_8 0x2
#define DR7_LEN_4 0x3

/* RFLAGS (SDM Vol. 1 section 3.4.3). */
#define FL_CF        0x00000001 /* carry */
#define FL_PF        0x00000004 /* parity */
#define FL_AF        0x00000010 /* auxiliary carry */
#define FL_ZF        0x00000040 /* zero */
#define FL_SF        0x00000080 /* sign */
#define FL_TF        0x00000100 /* trap (single step) */
#define FL_IF        0x00000200 /* interrupts enabled */
#define FL_DF        0x00000400 /* direction */
#define FL_OF        0x00000800 /* overflow */
#define FL_IOPL_MASK 0x00003000 /* I/O privilege level */
#define FL_IOPL_0    0x00000000
#define FL_IOPL_1    0x00001000
#define FL_IOPL_2    0x00002000
#define FL_IOPL_3    0x00003000
#define FL_NT        0x00004000 /* nested task */
#define FL_RF        0x00010000 /* resume */
#define FL_VM        0x00020000 /* virtual 8086 mode */
#define FL_AC        0x00040000 /* alignment check */
#define FL_VIF       0x00080000 /* virtual interrupt flag */
#define FL_VIP       0x00100000 /* virtual interrupt pending */
#define FL_ID        0x00200000 /* CPUID available */

/* Page-fault error code (SDM Vol. 3A section 4.7). */
#define FEC_P   0x1  /* protection violation (the page was present) */
#define FEC_W   0x2  /* write access */
#define FEC_U   0x4  /* access from ring 3 */
#define FEC_RSV 0x8  /* reserved bit set in an entry */
#define FEC_I   0x10 /* instruction fetch */

/*
 * Part 2. Segmentation data structures and constants (SDM Vol. 3A section 3.4.5)
 */

/* STA_ macros are segment type values */
#define STA_A (ONE << 0) /* accessed */
#define STA_W (ONE << 1) /* writable (data segments) */
#define STA_E (ONE << 2) /* expand down (data segments) */
#define STA_X (ONE << 3) /* 1 = code segment (executable) */
#define STA_R (ONE << 1) /* readable (code segments) */
#define STA_C (ONE << 2) /* conforming (code segments) */

/* SEG_ macros are segment type values shifted into place */
#define SEG_A (STA_A << 40) /* accessed */
#define SEG_W (STA_W << 40) /* writable (data segments) */
#define SEG_E (STA_E << 40) /* expand down (data segments) */
#define SEG_X (STA_X << 40) /* 1 = code segment (executable) */
#define SEG_R (STA_R << 40) /* readable (code segments) */
#define SEG_C (STA_C << 40) /* conforming (code segments) */

#define SEG_S (ONE << 44) /* 1 = code or data, 0 = system segment */

#define SEG_LDT  (UINT64(0x2) << 40) /* 64-bit local descriptor table */
#define SEG_TSSA (UINT64(0x9) << 40) /* available 64-bit TSS */
#define SEG_TSSB (UINT64(0xb) << 40) /* busy 64-bit TSS */
#define SEG_CG   (UINT64(0xc) << 40) /* 64-bit call gate */
#define SEG_IG   (UINT64(0xe) << 40) /* 64-bit interrupt gate */
#define SEG_TG   (UINT64(0xf) << 40) /* 64-bit trap gate */

#define SEG_DPL(x) (((x) & UINT64(3)) << 45) /* descriptor privilege level */
#define SEG_P      (ONE << 47)              /* present */
#define SEG_L      (ONE << 53)              /* long mode */
#define SEG_D      (ONE << 54)              /* 1 = 32-bit in legacy, 0 in long mode */
#define SEG_G      (ONE << 55)              /* granularity: 1 = scale limit by 4K */

/* Base and limit of 32-bit segments, and of the low half of 64-bit ones */
#define SEG_LIM(x)    (((x) & 0xffff) | ((x) & UINT64(0xf0000)) << 32)
#define SEG_BASELO(x) (((CAST64(x) & 0xffffff) << 16) | ((CAST64(x) & 0xff000000) << 32))
#define SEG_BASEHI(x) (CAST64(x) >> 32)

#define SEG32(type, base, lim, dpl) \
	((type) | SEG_S | SEG_P | SEG_D | SEG_G | SEG_A | SEG_DPL(dpl) | SEG_BASELO(base) | SEG_LIM((lim) >> 12))

#define SEG64(type, dpl) \
	((type) | SEG_S | SEG_P | SEG_G | SEG_L | SEG_A | SEG_DPL(dpl) | SEG_LIM(0xffffffff))

/* Target and segment selector of trap/interrupt gates */
#define SEG_SEL(x)      (((x) & 0xffff) << 16)
#define SEG_TARGETLO(x) ((CAST64(x) & 0xffff) | ((CAST64(x) & 0xffff0000) << 32))
#define SEG_TARGETHI(x) (CAST64(x) >> 32)

#define GATE32(type, sel, target, dpl) ((type) | SEG_DPL(dpl) | SEG_P | SEG_SEL(sel) | SEG_TARGETLO(target))
#define SETGATE(gate, type, sel, target, dpl)              \
	do {                                                   \
		(gate).gd_lo = GATE32(type, sel, target, dpl);     \
		(gate).gd_hi = SEG_TARGETHI(target);               \
	} while (0)

/* The FXSAVE area (SDM Vol. 1 section 10.5.1, Table 10-2): 512 bytes. */
struct Fpregs {
	uint16_t cwd;
	uint16_t swd;
	uint16_t twd;
	uint16_t fop;
	uint64_t rip;
	uint64_t rdp;
	uint32_t mxcsr;
	uint32_t mxcsr_mask;
	uint32_t st_space[32];  /* 8 registers of 16 bytes */
	uint32_t xmm_space[64]; /* 16 registers of 16 bytes */
	uint32_t padding[24];
};

#endif /* LIBDUNE_MMU_X86_H */
