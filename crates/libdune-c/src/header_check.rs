//! The C header and the Rust side cannot drift: this test compiles a C program with
//! `include/libdune/dune.h` that prints every constant macro, the value of each
//! function-like macro on sample arguments, and the size and field offsets of each
//! struct, then compares all of it with the Rust values. It also checks that every
//! macro defined in the headers is covered here, and that the functions and
//! variables the header declares are exactly the ones this crate exports.

use std::collections::{BTreeMap, BTreeSet};
use std::mem::offset_of;
use std::path::{Path, PathBuf};
use std::process::Command;

use dune_x86::exception::PageFaultError as Fec;
use dune_x86::gdt;
use dune_x86::paging::{self as pg, PageSize};
use dune_x86::regs::rflags;
use libdune::trap::TrapFrame;
use libdune::vm as v;

use crate::abi::{self, procmap_type as ty, ProcmapEntry};

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
    l
}

/// What the header declares: every exported function and variable of this crate.
fn exports() -> BTreeSet<&'static str> {
    use crate::{entry, page, procmap, trap, util, vm};
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
    ];
    assert!(list.iter().all(|&(_, a)| a != 0));
    list.iter().map(|&(n, _)| n).collect()
}

/// The text of both headers.
fn header_text() -> String {
    let dir = include_dir().join("libdune");
    ["dune.h", "mmu.h"].iter().map(|f| std::fs::read_to_string(dir.join(f)).expect("read header")).collect::<Vec<_>>().join("\n")
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
    let mut src = String::from("#include \"libdune/dune.h\"\n#include <stdio.h>\n#include <stddef.h>\n");
    src.push_str("#define P(k, e) printf(\"%s %llu\\n\", k, (unsigned long long)(uintptr_t)(e))\n");
    src.push_str("int main(void) {\n\tstruct dune_tf args = {0};\n");
    src.push_str("\targs.rdi = 1; args.rsi = 2; args.rdx = 3; args.rcx = 4; args.r8 = 5; args.r9 = 6;\n");
    for (name, _) in constants() {
        src.push_str(&format!("\tP(\"{name}\", {name});\n"));
    }
    for (_, expr, _) in expressions() {
        src.push_str(&format!("\tP(\"{expr}\", {expr});\n"));
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
    // `assert` is a statement macro, exercised by the C tests.
    let unchecked: Vec<_> = obj.iter().filter(|m| !checked.contains(*m)).collect();
    let unchecked_fn: Vec<_> = func.iter().filter(|m| !checked_fn.contains(*m) && *m != "assert").collect();
    assert!(unchecked.is_empty() && unchecked_fn.is_empty(), "macros without a Rust counterpart in header_check: {unchecked:?} {unchecked_fn:?}");
}

#[test]
fn declared_functions_are_the_exported_ones() {
    let text = header_text();
    let declared = declared_externs(&text);
    let exported: BTreeSet<String> = exports().iter().map(|s| s.to_string()).collect();
    assert_eq!(declared, exported, "dune.h declarations and libdune-c exports differ");
}

#[test]
fn header_compiles_as_cplusplus() {
    let dir = temp_dir("cxx");
    let src = dir.join("t.cc");
    std::fs::write(&src, "#include \"libdune/dune.h\"\nint main() { return dune_page2pa(nullptr) != 0; }\n").expect("write");
    let out = Command::new(compiler("CXX", "c++"))
        .args(["-std=c++17", "-Wall", "-Wextra", "-Werror", "-fsyntax-only", "-I"])
        .arg(include_dir())
        .arg(&src)
        .output()
        .expect("run c++");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.status.success(), "dune.h does not compile as C++:\n{}", String::from_utf8_lossy(&out.stderr));
}
