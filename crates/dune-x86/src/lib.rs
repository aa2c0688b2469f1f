//! Pure x86-64 architectural structures for Dune.
//!
//! Nothing here talks to KVM or the operating system, and nothing allocates, so
//! the same code serves the host side (building the guest's first page tables,
//! GDT and IDT in guest memory) and code running in guest ring 0 (a page-fault
//! handler editing the live page tables).
//!
//! | module        | contents                                                       |
//! |---------------|----------------------------------------------------------------|
//! | [`paging`]    | 4-level page tables: entry bits, [`paging::Mapper`], walks     |
//! | [`gdt`]       | segment descriptors, selectors, `STAR`, descriptor-table pointer |
//! | [`tss`]       | the 64-bit task-state segment and interrupt stack table indices |
//! | [`idt`]       | 64-bit interrupt and trap gates                                 |
//! | [`exception`] | exception vectors, names, page-fault error codes               |
//! | [`regs`]      | CR0, CR3, CR4, DR7, EFER, RFLAGS and XCR0 bits                 |
//! | [`msr`]       | model-specific register numbers, x2APIC and MTRR fields        |
//! | [`cpuid`]     | pure decoders for CPUID results                                |
//!
//! References are to the Intel 64 and IA-32 Architectures Software Developer's
//! Manual ("SDM"), Vols. 1, 2 and 3A, with section numbers as in the 2016–2023
//! editions; titles are given as well because later editions renumber some
//! chapters. "APM" is the
//! AMD64 Architecture Programmer's Manual.
//!
//! The crate contains no `unsafe` code. Page tables are reached through
//! [`paging::FrameSource`], whose implementations (host: guest-physical to host
//! pointer; guest: a fixed offset) own the one unsafe conversion from a physical
//! address to a reference.
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

#[cfg(test)]
extern crate std;

pub mod cpuid;
pub mod exception;
pub mod gdt;
pub mod idt;
pub mod msr;
pub mod paging;
pub mod regs;
pub mod tss;
