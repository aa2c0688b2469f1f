//! Making the VM: open `/dev/kvm`, check the capabilities the runtime needs, create
//! the VM with its in-kernel irqchip, the guest-physical memory and page table, the
//! shared IDT and the vCPU template, and take over the process's signal handlers.
//!
//! Runs once per process (and again, in part, in a forked child: `State::rebuild_after_fork`).

use std::os::fd::AsRawFd;

use kvm_ioctls::VmFd;

use dune_x86::exception;
use dune_x86::gdt::{self, PrivilegeLevel};
use dune_x86::idt::{GateType, IdtEntry};
use dune_x86::tss::Ist;

use crate::error::{Error, Result};
use crate::guest::entry;
use crate::options::Options;
use super::exits::signal;
use super::exits::exec;
use super::kvm;
use super::memory::Memory;
use super::reserved;
use super::state::{lock, State, STATS_AT_EXIT};
use super::vcpu::Template;

/// Creates the VM if needed. Idempotent; `options` of later calls are ignored.
pub fn init(options: &Options) -> Result<()> {
    let mut g = lock();
    if g.is_some() {
        return Ok(());
    }
    if !options.allow_emulated {
        if let Some(reason) = crate::doctor::emulated_ring0() {
            return Err(Error::EmulatedRing0(reason));
        }
    }
    reserved::init_fds();
    STATS_AT_EXIT.store(options.stats_at_exit, core::sync::atomic::Ordering::Relaxed);
    let kvm = kvm::open(&options.kvm_path, options.kvm_fd)?;
    exec::configure(options.exec_preload.as_deref(), kvm.as_raw_fd());
    for (cap, name) in [
        (kvm_ioctls::Cap::SyncRegs, "KVM_CAP_SYNC_REGS"),
        (kvm_ioctls::Cap::ImmediateExit, "KVM_CAP_IMMEDIATE_EXIT"),
        (kvm_ioctls::Cap::Xcrs, "KVM_CAP_XCRS"),
    ] {
        if !kvm.check_extension(cap) {
            return Err(Error::MissingCapability(name));
        }
    }
    let vm = kvm::create_vm(&kvm, "KVM_CREATE_VM")?;
    // Intel needs a TSS range for real-mode emulation even if never used; AMD ignores it.
    vm.set_tss_address(0xfffb_d000).map_err(Error::kvm("KVM_SET_TSS_ADDR"))?;
    // Local APICs for TLB-shootdown IPIs (guest::shootdown); before any vCPU exists.
    vm.create_irq_chip().map_err(Error::kvm("KVM_CREATE_IRQCHIP"))?;
    let maxphy = Template::maxphyaddr(&kvm)?;
    let mut mem = Memory::new(&vm, maxphy, kvm.get_nr_memslots(), options.memslot_budget)?;
    let idt = build_idt(&vm, &mut mem)?;
    let template = Template::new(&kvm, idt, mem.root())?;
    let max_vcpus = kvm.get_max_vcpus();
    let free_vcpus = Vec::with_capacity(max_vcpus);
    mem.map_all(&vm)?;
    signal::import_handlers();
    // After the VM's own descriptors, which come first at the runtime's numbers.
    super::procmap::open_own();
    *g = Some(State { kvm, vm, mem, template, free_vcpus, next_vcpu_id: 0, max_vcpus });
    Ok(())
}

/// The IDT, shared by all vCPUs: every vector goes to its stub on IST1.
fn build_idt(vm: &VmFd, mem: &mut Memory) -> Result<u64> {
    let gpa = mem.alloc_page(vm)?;
    let hva = mem.gpa_to_hva(gpa).ok_or(Error::TableFull("IDT lookup"))?;
    for v in 0..=255u8 {
        // int3 and into may be used from ring 3 later (DPL 3); everything else is ring 0.
        let dpl = if v == exception::BP || v == exception::OF { PrivilegeLevel::Ring3 } else { PrivilegeLevel::Ring0 };
        let ist = if v == exception::DF { Ist::Ist2 } else { Ist::Ist1 };
        let gate = IdtEntry::new(entry::trap_stub(v), gdt::KERNEL_CS, GateType::Interrupt, dpl, Some(ist));
        // SAFETY: the IDT page is runtime memory owned here; 256 gates of 16 bytes fill it.
        unsafe { core::ptr::write_unaligned((hva as *mut [u64; 2]).add(v as usize), gate.to_words()) };
    }
    Ok(hva)
}
