//! The C headers and the Rust side cannot drift: this test compiles a C program with
//! `include/libdune/{dune,mmu,mmu-x86,cpu-x86,local}.h` that prints every constant
//! macro, the value of each function-like macro on sample arguments, and the size and
//! field offsets of each struct, then compares all of it with the Rust values. It
//! also checks that every macro defined in the headers is covered here (the few that
//! are statements or asm fragments are compiled here and run by the C tests), and
//! that the functions and
//! variables the header declares are exactly the ones this crate exports.

use std::collections::{BTreeMap, BTreeSet};
use std::mem::offset_of;
use std::path::{Path, PathBuf};
use std::process::Command;

use dune_x86::exception::{self as exc, PageFaultError as Fec};
use dune_x86::gdt::{self, DescriptorTablePointer, PrivilegeLevel::*};
use dune_x86::idt::{GateType, IdtEntry};
use dune_x86::msr::{self, mtrr};
use dune_x86::paging::{self as pg, PageSize};
use dune_x86::regs::{cr0, cr3, cr4, dr7, efer, rflags};
use dune_x86::tss;
use libdune::trap::TrapFrame;
use libdune::vm as v;

use crate::abi::{self, procmap_type as ty, Fpregs, ProcmapEntry};
use crate::elf::DuneElf;

/// The headers, in the order a program includes them.
const HEADERS: [&str; 5] = ["dune.h", "mmu.h", "mmu-x86.h", "cpu-x86.h", "local.h"];

/// Macros that are not values (statements, declarations, asm operand fragments) or
/// that read the CPU in ring 0: compiled in the probe, and each used by a C test
/// under `tests/c/` that runs in Dune mode (checked below).
const EXERCISED_IN_C_TESTS: [&str; 6] = ["assert", "DECLARE_ARGS", "EAX_EDX_ARGS", "EAX_EDX_RET", "rdmsrl", "wrmsrl"];

/// A 64-bit IDT gate as two quadwords, from the Rust side.
fn gate(handler: u64, sel: u16, kind: GateType, dpl: dune_x86::gdt::PrivilegeLevel) -> [u64; 2] {
    IdtEntry::new(handler, sel, kind, dpl, None).to_words()
}

/// The type/attribute byte of a gate.
fn gate_attr(kind: GateType, dpl: dune_x86::gdt::PrivilegeLevel) -> u64 {
    (gate(0, 0, kind, dpl)[0] >> 40) & 0xff
}

fn include_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../include")
}

/// Object-like macros (and enumerators) with the value the Rust side gives them.
fn constants() -> Vec<(&'static str, u64)> {
    let size2m = PageSize::Size2M.bytes();
    vec![
        ("NPTBITS", 9),
        ("NPTLVLS", 3),
        ("NPTENTRIES", pg::ENTRIES_PER_TABLE as u64),
        ("PDXMASK", pg::ENTRIES_PER_TABLE as u64 - 1),
        ("PGSHIFT", pg::PAGE_SIZE.trailing_zeros() as u64),
        ("PGSIZE", pg::PAGE_SIZE),
        ("PGMASK", pg::PAGE_SIZE - 1),
        ("BIG_PGSHIFT", size2m.trailing_zeros() as u64),
        ("BIG_PGSIZE", size2m),
        ("BIG_PGMASK", size2m - 1),
        ("PTE_P", pg::PTE_P),
        ("PTE_W", pg::PTE_W),
        ("PTE_U", pg::PTE_U),
        ("PTE_PWT", pg::PTE_PWT),
        ("PTE_PCD", pg::PTE_PCD),
        ("PTE_A", pg::PTE_A),
        ("PTE_D", pg::PTE_D),
        ("PTE_PS", pg::PTE_PS),
        ("PTE_PAT", pg::PTE_PAT_4K),
        ("PTE_G", pg::PTE_G),
        ("PTE_AVAIL", pg::PTE_AVL_MASK & 0xfff),
        ("PTE_PAT_PS", pg::PTE_PAT_HUGE),
        ("PTE_NX", pg::PTE_NX),
        ("PTE_COW", v::PTE_COW),
        ("PTE_ADDR_MASK", pg::ADDR_MASK),
        ("PTE_FLAGS_MASK", !pg::ADDR_MASK),
        ("FEC_P", Fec::P),
        ("FEC_W", Fec::W),
        ("FEC_U", Fec::U),
        ("FEC_RSV", Fec::RSVD),
        ("FEC_I", Fec::ID),
        ("FL_CF", rflags::CF),
        ("FL_PF", rflags::PF),
        ("FL_AF", rflags::AF),
        ("FL_ZF", rflags::ZF),
        ("FL_SF", rflags::SF),
        ("FL_TF", rflags::TF),
        ("FL_IF", rflags::IF),
        ("FL_DF", rflags::DF),
        ("FL_OF", rflags::OF),
        ("FL_IOPL_MASK", rflags::IOPL),
        ("GD_KT", gdt::KERNEL_CS as u64),
        ("GD_KD", gdt::KERNEL_DS as u64),
        ("GD_UD", (gdt::USER_DS & !3) as u64),
        ("GD_UT", (gdt::USER_CS & !3) as u64),
        ("GD_TSS", gdt::TSS_SELECTOR as u64),
        ("GD_TSS2", ((gdt::GDT_TSS + 1) << 3) as u64),
        ("NR_GDT_ENTRIES", gdt::GDT_ENTRIES as u64),
        ("CR3_NOFLUSH", cr3::NOFLUSH),
        ("DUNE_SIGNAL_INTR_BASE", abi::DUNE_SIGNAL_INTR_BASE as u64),
        ("PERM_NONE", abi::PERM_NONE),
        ("PERM_R", v::PERM_R),
        ("PERM_W", v::PERM_W),
        ("PERM_X", v::PERM_X),
        ("PERM_U", v::PERM_U),
        ("PERM_UC", v::PERM_UC),
        ("PERM_COW", v::PERM_COW),
        ("PERM_BIG", v::PERM_BIG),
        ("PERM_BIG_1GB", v::PERM_BIG_1GB),
        ("PERM_USR1", v::PERM_USR1),
        ("PERM_USR2", v::PERM_USR2),
        ("PERM_USR3", v::PERM_USR3),
        ("PERM_SCODE", v::PERM_R | v::PERM_X),
        ("PERM_STEXT", v::PERM_R | v::PERM_W),
        ("PERM_SSTACK", v::PERM_R | v::PERM_W),
        ("PERM_UCODE", v::PERM_R | v::PERM_U | v::PERM_X),
        ("PERM_UTEXT", v::PERM_R | v::PERM_U | v::PERM_W),
        ("PERM_USTACK", v::PERM_R | v::PERM_U | v::PERM_W),
        ("VA_START", 0),
        ("VA_END", u64::MAX),
        ("CREATE_NONE", abi::CREATE_NONE as u64),
        ("CREATE_NORMAL", abi::CREATE_NORMAL as u64),
        ("CREATE_BIG", abi::CREATE_BIG as u64),
        ("CREATE_BIG_1GB", abi::CREATE_BIG_1GB as u64),
        ("PROCMAP_TYPE_UNKNOWN", ty::UNKNOWN as u64),
        ("PROCMAP_TYPE_FILE", ty::FILE as u64),
        ("PROCMAP_TYPE_ANONYMOUS", ty::ANONYMOUS as u64),
        ("PROCMAP_TYPE_HEAP", ty::HEAP as u64),
        ("PROCMAP_TYPE_STACK", ty::STACK as u64),
        ("PROCMAP_TYPE_VSYSCALL", ty::VSYSCALL as u64),
        ("PROCMAP_TYPE_VDSO", ty::VDSO as u64),
        ("PROCMAP_TYPE_VVAR", ty::VVAR as u64),
    ]
    .into_iter()
    .chain(mmu_x86_constants())
    .chain(cpu_x86_constants())
    .collect()
}

/// The object-like macros of mmu.h and mmu-x86.h beyond the paging ones above.
fn mmu_x86_constants() -> Vec<(&'static str, u64)> {
    let ty40 = |t: u64| t << 40;
    vec![
        ("ONE", 1),
        ("PD_SKIP", (2 * size_of::<u64>() - size_of::<DescriptorTablePointer>()) as u64),
        ("PTE_AVAIL2", (pg::PTE_AVL_MASK & !0xfff) | pg::PTE_PK_MASK),
        ("PTE_USR1", abi::PTE_USR1),
        ("PTE_USR2", abi::PTE_USR2),
        ("PTE_USR3", abi::PTE_USR3),
        ("CR0_PE", cr0::PE),
        ("CR0_MP", cr0::MP),
        ("CR0_EM", cr0::EM),
        ("CR0_TS", cr0::TS),
        ("CR0_ET", cr0::ET),
        ("CR0_NE", cr0::NE),
        ("CR0_WP", cr0::WP),
        ("CR0_AM", cr0::AM),
        ("CR0_NW", cr0::NW),
        ("CR0_CD", cr0::CD),
        ("CR0_PG", cr0::PG),
        ("CR3_PWT", cr3::PWT),
        ("CR3_PCD", cr3::PCD),
        ("CR4_VME", cr4::VME),
        ("CR4_PVI", cr4::PVI),
        ("CR4_TSD", cr4::TSD),
        ("CR4_DE", cr4::DE),
        ("CR4_PSE", cr4::PSE),
        ("CR4_PAE", cr4::PAE),
        ("CR4_MCE", cr4::MCE),
        ("CR4_PGE", cr4::PGE),
        ("CR4_PCE", cr4::PCE),
        ("CR4_OSFXSR", cr4::OSFXSR),
        ("CR4_OSX", cr4::OSXMMEXCPT),
        ("MTRR_CAP", msr::MTRRCAP as u64),
        ("MTRR_CAP_VCNT_MASK", mtrr::CAP_VCNT_MASK),
        ("MTRR_CAP_FIX", mtrr::CAP_FIX),
        ("MTRR_CAP_WC", mtrr::CAP_WC),
        ("MTRR_BASE_UC", mtrr::TYPE_UC),
        ("MTRR_BASE_WC", mtrr::TYPE_WC),
        ("MTRR_BASE_WT", mtrr::TYPE_WT),
        ("MTRR_BASE_WP", mtrr::TYPE_WP),
        ("MTRR_BASE_WB", mtrr::TYPE_WB),
        ("MTRR_MASK_FULL", ((1u64 << 36) - 1) & !(pg::PAGE_SIZE - 1)),
        ("MTRR_MASK_VALID", mtrr::PHYSMASK_VALID),
        ("EFER", msr::EFER as u64),
        ("EFER_SCE", efer::SCE),
        ("EFER_LME", efer::LME),
        ("EFER_LMA", efer::LMA),
        ("EFER_NXE", efer::NXE),
        ("EFER_FFXSR", efer::FFXSR),
        ("MSR_FS_BASE", msr::FS_BASE as u64),
        ("MSR_GS_BASE", msr::GS_BASE as u64),
        ("MSR_DEBUG_CTL", msr::DEBUGCTL as u64),
        ("DEBUG_CTL_LBR", msr::DEBUGCTL_LBR),
        ("MSR_LBR_FROM_IP", msr::LASTBRANCH_FROM_IP as u64),
        ("MSR_LBR_TO_IP", msr::LASTBRANCH_TO_IP as u64),
        ("MSR_LEX_FROM_IP", msr::LASTINT_FROM_IP as u64),
        ("MSR_LEX_TO_IP", msr::LASTINT_TO_IP as u64),
        ("DR7_LE", dr7::LE),
        ("DR7_GE", dr7::GE),
        ("DR7_GD", dr7::GD),
        ("DR7_RW_EXEC", dr7::RW_EXEC),
        ("DR7_RW_WRITE", dr7::RW_WRITE),
        ("DR7_RW_IO", dr7::RW_IO),
        ("DR7_RW_RW", dr7::RW_RW),
        ("DR7_LEN_1", dr7::LEN_1),
        ("DR7_LEN_2", dr7::LEN_2),
        ("DR7_LEN_8", dr7::LEN_8),
        ("DR7_LEN_4", dr7::LEN_4),
        ("FL_IOPL_0", 0),
        ("FL_IOPL_1", 1 << rflags::IOPL_SHIFT),
        ("FL_IOPL_2", 2 << rflags::IOPL_SHIFT),
        ("FL_IOPL_3", 3 << rflags::IOPL_SHIFT),
        ("FL_NT", rflags::NT),
        ("FL_RF", rflags::RF),
        ("FL_VM", rflags::VM),
        ("FL_AC", rflags::AC),
        ("FL_VIF", rflags::VIF),
        ("FL_VIP", rflags::VIP),
        ("FL_ID", rflags::ID),
        ("STA_A", gdt::DESC_ACCESSED >> 40),
        ("STA_W", gdt::DESC_RW >> 40),
        ("STA_E", gdt::DESC_DC >> 40),
        ("STA_X", gdt::DESC_CODE >> 40),
        ("STA_R", gdt::DESC_RW >> 40),
        ("STA_C", gdt::DESC_DC >> 40),
        ("SEG_A", gdt::DESC_ACCESSED),
        ("SEG_W", gdt::DESC_RW),
        ("SEG_E", gdt::DESC_DC),
        ("SEG_X", gdt::DESC_CODE),
        ("SEG_R", gdt::DESC_RW),
        ("SEG_C", gdt::DESC_DC),
        ("SEG_S", gdt::DESC_S),
        ("SEG_LDT", ty40(gdt::TYPE_LDT)),
        ("SEG_TSSA", ty40(gdt::TYPE_TSS64_AVAILABLE)),
        ("SEG_TSSB", ty40(gdt::TYPE_TSS64_BUSY)),
        ("SEG_CG", ty40(gdt::TYPE_CALL_GATE64)),
        ("SEG_IG", ty40(GateType::Interrupt as u64)),
        ("SEG_TG", ty40(GateType::Trap as u64)),
        ("SEG_P", gdt::DESC_P),
        ("SEG_L", gdt::DESC_L),
        ("SEG_D", gdt::DESC_DB),
        ("SEG_G", gdt::DESC_G),
    ]
}

/// The object-like macros of cpu-x86.h.
fn cpu_x86_constants() -> Vec<(&'static str, u64)> {
    vec![
        ("MSR_KERNEL_GS_BASE", msr::KERNEL_GS_BASE as u64),
        ("MSR_LSTAR", msr::LSTAR as u64),
        ("IDTD_P", gate_attr(GateType::Interrupt, Ring0) & !0x7f),
        ("IDTD_CPL3", gate_attr(GateType::Interrupt, Ring3) - gate_attr(GateType::Interrupt, Ring0)),
        ("IDTD_TRAP_GATE", GateType::Trap as u64),
        ("IDTD_INTERRUPT_GATE", GateType::Interrupt as u64),
        ("IDT_ENTRIES", dune_x86::idt::IDT_ENTRIES as u64),
        ("T_DIVIDE", exc::DE as u64),
        ("T_DEBUG", exc::DB as u64),
        ("T_NMI", exc::NMI as u64),
        ("T_BRKPT", exc::BP as u64),
        ("T_OFLOW", exc::OF as u64),
        ("T_BOUND", exc::BR as u64),
        ("T_ILLOP", exc::UD as u64),
        ("T_DEVICE", exc::NM as u64),
        ("T_DBLFLT", exc::DF as u64),
        ("T_TSS", exc::TS as u64),
        ("T_SEGNP", exc::NP as u64),
        ("T_STACK", exc::SS as u64),
        ("T_GPFLT", exc::GP as u64),
        ("T_PGFLT", exc::PF as u64),
        ("T_FPERR", exc::MF as u64),
        ("T_ALIGN", exc::AC as u64),
        ("T_MCHK", exc::MC as u64),
        ("T_SIMDERR", exc::XM as u64),
        ("T_SYSCALL", abi::T_SYSCALL),
    ]
}

/// Function-like macros: a C expression using them, and its value computed in Rust.
fn expressions() -> Vec<(&'static str, &'static str, u64)> {
    let la: u64 = 0x7f12_3456_7abc;
    let pte: u64 = 0x8000_0012_3456_7067;
    vec![
        ("PDSHIFT", "PDSHIFT(2)", 30),
        ("PDX", "PDX(3, 0x7f1234567abcULL)", pg::pml4_index(la) as u64),
        ("PDX", "PDX(2, 0x7f1234567abcULL)", pg::pdpt_index(la) as u64),
        ("PDX", "PDX(1, 0x7f1234567abcULL)", pg::pd_index(la) as u64),
        ("PDX", "PDX(0, 0x7f1234567abcULL)", pg::pt_index(la) as u64),
        ("PDADDR", "PDADDR(1, 3)", 3 * PageSize::Size2M.bytes()),
        ("PPN", "PPN(0x7f1234567abcULL)", la / pg::PAGE_SIZE),
        ("PGOFF", "PGOFF(0x7f1234567abcULL)", la % pg::PAGE_SIZE),
        ("PGADDR", "PGADDR(0x7f1234567abcULL)", la & !(pg::PAGE_SIZE - 1)),
        ("BIG_PGOFF", "BIG_PGOFF(0x7f1234567abcULL)", la % PageSize::Size2M.bytes()),
        ("BIG_PGADDR", "BIG_PGADDR(0x7f1234567abcULL)", la & !(PageSize::Size2M.bytes() - 1)),
        ("PTE_ADDR", "PTE_ADDR(0x8000001234567067ULL)", pg::Pte(pte).addr()),
        ("PTE_FLAGS", "PTE_FLAGS(0x8000001234567067ULL)", pte & !pg::ADDR_MASK),
        ("ARG0", "ARG0(&args)", 1),
        ("ARG1", "ARG1(&args)", 2),
        ("ARG2", "ARG2(&args)", 3),
        ("ARG3", "ARG3(&args)", 4),
        ("ARG4", "ARG4(&args)", 5),
        ("ARG5", "ARG5(&args)", 6),
    ]
    .into_iter()
    .chain(x86_expressions())
    .collect()
}

/// The function-like macros of mmu.h, mmu-x86.h, cpu-x86.h and local.h. `gate` is a
/// `struct Gatedesc` the probe fills with SETGATE(gate, SEG_IG, GD_KT, TARGET, 3).
fn x86_expressions() -> Vec<(&'static str, &'static str, u64)> {
    const TARGET: u64 = 0x1122_3344_5566_7788;
    const BASE: u64 = 0x1234_5678_9abc_def0;
    let ig3 = gate(TARGET, gdt::KERNEL_CS, GateType::Interrupt, Ring3);
    let tss = gdt::tss_descriptor(BASE, 0x67);
    let limit_bits = |l: u32| gdt::tss_descriptor(0, l)[0] & !((gdt::TYPE_TSS64_AVAILABLE << 40) | gdt::DESC_P);
    let trap3 = gate(TARGET, gdt::KERNEL_CS, GateType::Trap, Ring3);
    vec![
        ("UINT64", "UINT64(-1)", u64::MAX),
        ("CAST64", "CAST64(-2)", u64::MAX - 1),
        ("MTRR_BASE", "MTRR_BASE(3)", mtrr::physbase(3) as u64),
        ("MTRR_MASK", "MTRR_MASK(3)", mtrr::physmask(3) as u64),
        ("DR7_L", "DR7_L(2)", dr7::l(2)),
        ("DR7_G", "DR7_G(3)", dr7::g(3)),
        ("DR7_RW_SHIFT", "DR7_RW_SHIFT(1)", dr7::rw_shift(1) as u64),
        ("DR7_LEN_SHIFT", "DR7_LEN_SHIFT(3)", dr7::len_shift(3) as u64),
        ("SEG_DPL", "SEG_DPL(3)", 3 << gdt::DESC_DPL_SHIFT),
        ("SEG_LIM", "SEG_LIM(0xfffffU)", limit_bits(0xfffff)),
        ("SEG_BASELO", "SEG_TSSA | SEG_P | SEG_BASELO(0x123456789abcdef0ULL) | SEG_LIM(0x67)", tss[0]),
        ("SEG_BASEHI", "SEG_BASEHI(0x123456789abcdef0ULL)", tss[1]),
        ("SEG64", "SEG64(SEG_X | SEG_R, 0)", gdt::code64(Ring0)),
        ("SEG64", "SEG64(SEG_X | SEG_R, 3)", gdt::code64(Ring3)),
        // The original's 64-bit data segments carry L, which the CPU ignores there.
        ("SEG64", "SEG64(SEG_W, 3)", (gdt::data(Ring3) & !gdt::DESC_DB) | gdt::DESC_L),
        ("SEG32", "SEG32(SEG_W, 0, 0xffffffffU, 0)", gdt::data(Ring0)),
        ("SEG_SEL", "SEG_SEL(GD_KT)", gate(0, gdt::KERNEL_CS, GateType::Interrupt, Ring0)[0] & 0xffff_ffff),
        ("SEG_TARGETLO", "SEG_TARGETLO(0x1122334455667788ULL)", ig3[0] & 0xffff_0000_0000_ffff),
        ("SEG_TARGETHI", "SEG_TARGETHI(0x1122334455667788ULL)", ig3[1]),
        ("GATE32", "GATE32(SEG_IG, GD_KT, 0x1122334455667788ULL, 3)", ig3[0]),
        ("SETGATE", "gate.gd_lo", ig3[0]),
        ("SETGATE", "gate.gd_hi", ig3[1]),
        ("EAX_EDX_VAL", "EAX_EDX_VAL(0, 0x89abcdefU, 0x01234567U)", 0x0123_4567_89ab_cdef),
        // A struct idtd filled by fields: the same 16 bytes as the Rust gate.
        ("struct idtd", "idtd_words(0)", trap3[0]),
        ("struct idtd", "idtd_words(1)", trap3[1]),
        ("rdtscll", "rdtscll() > 0 && rdtscll() <= rdtscll()", 1),
        ("__str", "strcmp(__str(PGSHIFT), \"12\") == 0", 1),
        ("__str_t", "strcmp(__str_t(PGSHIFT), \"PGSHIFT\") == 0", 1),
    ]
}

/// Sizes and offsets: C expression, Rust value.
fn layouts() -> Vec<(String, u64)> {
    let mut l = vec![
        ("sizeof(struct dune_tf)".to_string(), size_of::<TrapFrame>() as u64),
        ("sizeof(ptent_t)".to_string(), 8),
        ("sizeof(physaddr_t)".to_string(), 8),
        ("sizeof(struct dune_procmap_entry)".to_string(), size_of::<ProcmapEntry>() as u64),
    ];
    macro_rules! fields {
        ($c:literal, $t:ty: $($f:ident)*) => {
            $( l.push((format!("offsetof(struct {}, {})", $c, stringify!($f)), offset_of!($t, $f) as u64)); )*
        };
    }
    fields!("dune_tf", TrapFrame: rdi rsi rdx rcx r8 r9 r10 r11 rbx rbp r12 r13 r14 r15 rax err rip cs rflags rsp ss);
    fields!("dune_procmap_entry", ProcmapEntry: begin end offset r w x p path);
    l.push(("offsetof(struct dune_procmap_entry, type)".into(), offset_of!(ProcmapEntry, r#type) as u64));
    fields!("dune_elf", DuneElf: fd mem len hdr phdr shdr shdrstr);
    l.push(("offsetof(struct dune_elf, priv)".into(), offset_of!(DuneElf, priv_) as u64));
    fields!("Fpregs", Fpregs: cwd swd twd fop rip rdp mxcsr mxcsr_mask st_space xmm_space padding);
    fields!("tptr", DescriptorTablePointer: limit base);
    l.extend([
        ("sizeof(struct dune_elf)".to_string(), size_of::<DuneElf>() as u64),
        ("sizeof(Elf64_Ehdr)".to_string(), size_of::<libc::Elf64_Ehdr>() as u64),
        ("sizeof(Elf64_Phdr)".to_string(), size_of::<libc::Elf64_Phdr>() as u64),
        ("sizeof(Elf64_Shdr)".to_string(), size_of::<libc::Elf64_Shdr>() as u64),
        ("offsetof(Elf64_Phdr, p_vaddr)".to_string(), offset_of!(libc::Elf64_Phdr, p_vaddr) as u64),
        ("offsetof(Elf64_Shdr, sh_offset)".to_string(), offset_of!(libc::Elf64_Shdr, sh_offset) as u64),
        ("sizeof(struct Fpregs)".to_string(), size_of::<Fpregs>() as u64),
        ("sizeof(struct tptr)".to_string(), size_of::<DescriptorTablePointer>() as u64),
        ("sizeof(struct idtd)".to_string(), size_of::<IdtEntry>() as u64),
        ("sizeof(struct Gatedesc)".to_string(), size_of::<IdtEntry>() as u64),
        ("sizeof(struct Pseudodesc)".to_string(), 2 * size_of::<u64>() as u64),
        ("offsetof(struct Pseudodesc, pd_lim)".to_string(), (2 * size_of::<u64>() - size_of::<DescriptorTablePointer>()) as u64),
        ("offsetof(struct Pseudodesc, pd_base)".to_string(), (2 * size_of::<u64>() - size_of::<DescriptorTablePointer>() + offset_of!(DescriptorTablePointer, base)) as u64),
        ("sizeof(struct Tss)".to_string(), tss::TSS_SIZE as u64),
        ("offsetof(struct Tss, tss_rsp)".to_string(), tss::TSS_RSP0_OFFSET as u64),
        // tss_ist[0] is the reserved quadword before IST1.
        ("offsetof(struct Tss, tss_ist[1])".to_string(), tss::TSS_IST1_OFFSET as u64),
        ("offsetof(struct Tss, tss_iomb)".to_string(), tss::TSS_IOMAP_BASE_OFFSET as u64),
    ]);
    l
}

/// What the header declares: every exported function and variable of this crate.
fn exports() -> BTreeSet<&'static str> {
    use crate::{apic, elf, entry, layout, page, procmap, trap, util, vm};
    // Taking each address makes this list fail to compile when a name disappears.
    let list: &[(&str, usize)] = &[
        ("dune_init", entry::dune_init as *const () as usize),
        ("dune_enter", entry::dune_enter as *const () as usize),
        ("dune_init_and_enter", entry::dune_init_and_enter as *const () as usize),
        ("pgroot", &entry::pgroot as *const _ as usize),
        ("dune_get_ticks", util::dune_get_ticks as *const () as usize),
        ("dune_printf", util::dune_printf as *const () as usize),
        ("dune_vprintf", util::dune_vprintf as *const () as usize),
        ("dune_die", util::dune_die as *const () as usize),
        ("dune_mmap", util::dune_mmap as *const () as usize),
        ("dune_signal", util::dune_signal as *const () as usize),
        ("dune_get_user_fs", util::dune_get_user_fs as *const () as usize),
        ("dune_set_user_fs", util::dune_set_user_fs as *const () as usize),
        ("dune_register_intr_handler", trap::dune_register_intr_handler as *const () as usize),
        ("dune_register_signal_handler", trap::dune_register_signal_handler as *const () as usize),
        ("dune_register_pgflt_handler", trap::dune_register_pgflt_handler as *const () as usize),
        ("dune_register_syscall_handler", trap::dune_register_syscall_handler as *const () as usize),
        ("dune_jump_to_user", trap::dune_jump_to_user as *const () as usize),
        ("dune_ret_from_user", trap::dune_ret_from_user as *const () as usize),
        ("dune_dump_trap_frame", trap::dune_dump_trap_frame as *const () as usize),
        ("dune_passthrough_syscall", trap::dune_passthrough_syscall as *const () as usize),
        ("dune_page_alloc", page::dune_page_alloc as *const () as usize),
        ("dune_page_free", page::dune_page_free as *const () as usize),
        ("dune_page_get", page::dune_page_get as *const () as usize),
        ("dune_page_put", page::dune_page_put as *const () as usize),
        ("dune_pa2page", page::dune_pa2page as *const () as usize),
        ("dune_page2pa", page::dune_page2pa as *const () as usize),
        ("dune_page_isfrompool", page::dune_page_isfrompool as *const () as usize),
        ("dune_page_refcount", page::dune_page_refcount as *const () as usize),
        ("dune_page_stats", page::dune_page_stats as *const () as usize),
        ("dune_vm_insert_page", vm::dune_vm_insert_page as *const () as usize),
        ("dune_vm_lookup_page", vm::dune_vm_lookup_page as *const () as usize),
        ("dune_enter_ex", entry::dune_enter_ex as *const () as usize),
        ("dune_pa2va", page::dune_pa2va as *const () as usize),
        ("dune_flush_tlb", vm::dune_flush_tlb as *const () as usize),
        ("dune_flush_tlb_one", vm::dune_flush_tlb_one as *const () as usize),
        ("load_cr3", vm::load_cr3 as *const () as usize),
        ("dune_vm_mprotect", vm::dune_vm_mprotect as *const () as usize),
        ("dune_vm_map_phys", vm::dune_vm_map_phys as *const () as usize),
        ("dune_vm_map_pages", vm::dune_vm_map_pages as *const () as usize),
        ("dune_vm_unmap", vm::dune_vm_unmap as *const () as usize),
        ("dune_vm_lookup", vm::dune_vm_lookup as *const () as usize),
        ("dune_vm_clone", vm::dune_vm_clone as *const () as usize),
        ("dune_vm_free", vm::dune_vm_free as *const () as usize),
        ("dune_vm_page_walk", vm::dune_vm_page_walk as *const () as usize),
        ("dune_va_to_pa", vm::dune_va_to_pa as *const () as usize),
        ("dune_procmap_iterate", procmap::dune_procmap_iterate as *const () as usize),
        ("dune_procmap_dump", procmap::dune_procmap_dump as *const () as usize),
        ("phys_limit", &layout::phys_limit as *const _ as usize),
        ("mmap_base", &layout::mmap_base as *const _ as usize),
        ("stack_base", &layout::stack_base as *const _ as usize),
        ("dune_pop_trap_frame", trap::dune_pop_trap_frame as *const () as usize),
        ("dune_vm_default_pgflt_handler", vm::dune_vm_default_pgflt_handler as *const () as usize),
        ("dune_apic_id", apic::dune_apic_id as *const () as usize),
        ("dune_apic_id_for_cpu", apic::dune_apic_id_for_cpu as *const () as usize),
        ("dune_apic_send_ipi", apic::dune_apic_send_ipi as *const () as usize),
        ("dune_apic_eoi", apic::dune_apic_eoi as *const () as usize),
        ("dune_apic_init_rt_entry", apic::dune_apic_init_rt_entry as *const () as usize),
        ("dune_elf_open", elf::dune_elf_open as *const () as usize),
        ("dune_elf_open_mem", elf::dune_elf_open_mem as *const () as usize),
        ("dune_elf_close", elf::dune_elf_close as *const () as usize),
        ("dune_elf_dump", elf::dune_elf_dump as *const () as usize),
        ("dune_elf_iter_sh", elf::dune_elf_iter_sh as *const () as usize),
        ("dune_elf_iter_ph", elf::dune_elf_iter_ph as *const () as usize),
        ("dune_elf_load_ph", elf::dune_elf_load_ph as *const () as usize),
    ];
    assert!(list.iter().all(|&(_, a)| a != 0));
    list.iter().map(|&(n, _)| n).collect()
}

/// The text of both headers.
fn header_text() -> String {
    let dir = include_dir().join("libdune");
    HEADERS.iter().map(|f| std::fs::read_to_string(dir.join(f)).expect("read header")).collect::<Vec<_>>().join("\n")
}

/// `#define`s in the headers, minus include guards.
#[derive(Default)]
struct Macros {
    /// Object-like macros with a value.
    obj: BTreeSet<String>,
    /// Function-like macros.
    func: BTreeSet<String>,
}

fn defined_macros(text: &str) -> Macros {
    let mut m = Macros::default();
    let ident = |s: &str| -> String { s.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect() };
    for line in text.lines() {
        let Some(rest) = line.trim_start().strip_prefix("#define") else { continue };
        let rest = rest.trim_start();
        let name = ident(rest);
        if name.starts_with("LIBDUNE_") && name.ends_with("_H") {
            continue;
        }
        if rest[name.len()..].starts_with('(') {
            m.func.insert(name);
        } else {
            m.obj.insert(name);
        }
    }
    m
}

/// Names the header declares with `extern` (functions and variables).
fn declared_externs(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let Some(rest) = line.trim_start().strip_prefix("extern ") else { continue };
        if rest.starts_with('"') {
            continue; // extern "C" {
        }
        let head = rest.split(['(', ';']).next().unwrap_or("");
        let name: String = head.chars().rev().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect::<Vec<_>>().into_iter().rev().collect();
        out.insert(name);
    }
    out
}

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("libdune-c-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

fn compiler(var: &str, default: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| default.to_string())
}

/// Compiles and runs the probe program; returns its `key value` lines.
fn probe() -> BTreeMap<String, u64> {
    let mut src = String::from("#include \"libdune/dune.h\"\n#include \"libdune/cpu-x86.h\"\n#include \"libdune/local.h\"\n");
    src.push_str("#include <stdio.h>\n#include <stddef.h>\n#include <string.h>\n");
    src.push_str("#define P(k, e) printf(\"%s %llu\\n\", k, (unsigned long long)(uintptr_t)(e))\n");
    // A gate filled by fields, as two quadwords.
    src.push_str("static uint64_t idtd_words(int i) {\n\tstruct idtd d = { .low = 0x7788, .selector = GD_KT, .ist = 0,\n");
    src.push_str("\t\t.type = IDTD_P | IDTD_CPL3 | IDTD_TRAP_GATE, .middle = 0x5566, .high = 0x11223344, .zero = 0 };\n");
    src.push_str("\tuint64_t w[2];\n\tmemcpy(w, &d, sizeof(w));\n\treturn w[i];\n}\n");
    // Ring-0 macros: compiled, not run (tests/c runs them in Dune mode).
    src.push_str("__attribute__((unused)) static void ring0_only(void) {\n\tu64 v;\n\trdmsrl(MSR_FS_BASE, v);\n");
    src.push_str("\twrmsrl(MSR_KERNEL_GS_BASE, v);\n}\n");
    src.push_str("int main(void) {\n\tstruct dune_tf args = {0};\n\tstruct Gatedesc gate;\n");
    src.push_str("\tSETGATE(gate, SEG_IG, GD_KT, 0x1122334455667788ULL, 3);\n");
    src.push_str("\targs.rdi = 1; args.rsi = 2; args.rdx = 3; args.rcx = 4; args.r8 = 5; args.r9 = 6;\n");
    for (name, _) in constants() {
        src.push_str(&format!("\tP(\"{name}\", {name});\n"));
    }
    for (_, expr, _) in expressions() {
        // The key is the expression as a C string literal (some contain quotes).
        src.push_str(&format!("\tP(\"{}\", {expr});\n", expr.escape_default()));
    }
    for (expr, _) in layouts() {
        src.push_str(&format!("\tP(\"{expr}\", {expr});\n"));
    }
    src.push_str("\tP(\"sizeof(bool)\", sizeof(bool));\n\treturn 0;\n}\n");
    let dir = temp_dir("probe");
    let (c, exe) = (dir.join("probe.c"), dir.join("probe"));
    std::fs::write(&c, src).expect("write probe");
    let inc = include_dir();
    let out = Command::new(compiler("CC", "cc"))
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic", "-I"])
        .arg(&inc)
        .arg(&c)
        .arg("-o")
        .arg(&exe)
        .output()
        .expect("run cc");
    assert!(out.status.success(), "the probe does not compile:\n{}", String::from_utf8_lossy(&out.stderr));
    let run = Command::new(&exe).output().expect("run probe");
    assert!(run.status.success());
    let _ = std::fs::remove_dir_all(&dir);
    String::from_utf8_lossy(&run.stdout)
        .lines()
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

#[test]
fn header_matches_the_rust_side() {
    let got = probe();
    let mut bad = Vec::new();
    let want = constants()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .chain(expressions().into_iter().map(|(_, e, v)| (e.to_string(), v)))
        .chain(layouts())
        .chain([("sizeof(bool)".to_string(), 1)]);
    for (k, v) in want {
        match got.get(&k) {
            Some(&g) if g == v => {}
            g => bad.push(format!("{k}: header {g:?}, Rust {v:#x}")),
        }
    }
    assert!(bad.is_empty(), "header and Rust disagree:\n{}", bad.join("\n"));
}

#[test]
fn every_macro_is_checked() {
    let Macros { obj, func, .. } = defined_macros(&header_text());
    let checked: BTreeSet<String> = constants().iter().map(|(k, _)| k.to_string()).collect();
    let checked_fn: BTreeSet<String> = expressions().iter().map(|(k, _, _)| k.to_string()).collect();
    let unchecked: Vec<_> = obj.iter().filter(|m| !checked.contains(*m)).collect();
    let unchecked_fn: Vec<_> = func.iter().filter(|m| !checked_fn.contains(*m) && !EXERCISED_IN_C_TESTS.contains(&m.as_str())).collect();
    assert!(unchecked.is_empty() && unchecked_fn.is_empty(), "macros without a Rust counterpart in header_check: {unchecked:?} {unchecked_fn:?}");
}

#[test]
fn unvalued_macros_are_used_by_the_c_tests() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c");
    let tests: String = std::fs::read_dir(&dir)
        .expect("tests/c")
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "c"))
        .map(|e| std::fs::read_to_string(e.path()).expect("read C test"))
        .collect();
    for m in EXERCISED_IN_C_TESTS {
        assert!(tests.contains(&format!("{m}(")), "{m} is used by no C test under tests/c");
    }
}

#[test]
fn declared_functions_are_the_exported_ones() {
    let text = header_text();
    let mut declared = declared_externs(&text);
    // local.h declares arch_prctl, which the C library exports, as the original did.
    assert!(declared.remove("arch_prctl"));
    let exported: BTreeSet<String> = exports().iter().map(|s| s.to_string()).collect();
    assert_eq!(declared, exported, "dune.h declarations and libdune-c exports differ");
}

#[test]
fn header_compiles_as_cplusplus() {
    let dir = temp_dir("cxx");
    let src = dir.join("t.cc");
    let includes: String = HEADERS.iter().map(|h| format!("#include \"libdune/{h}\"\n")).collect();
    std::fs::write(&src, format!("{includes}int main() {{ return dune_page2pa(nullptr) != 0; }}\n")).expect("write");
    let out = Command::new(compiler("CXX", "c++"))
        .args(["-std=c++17", "-Wall", "-Wextra", "-Werror", "-fsyntax-only", "-I"])
        .arg(include_dir())
        .arg(&src)
        .output()
        .expect("run c++");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.status.success(), "dune.h does not compile as C++:\n{}", String::from_utf8_lossy(&out.stderr));
}
