//! One vCPU per thread in Dune mode: its creation, and the CPU state that makes the
//! guest look like the host thread (long mode, ring 0, the thread's FS base, XCR0,
//! MXCSR, x87 control word, the host's TSC).

use kvm_bindings::{kvm_xsave, kvm_device_attr, kvm_dtable, kvm_msr_entry, kvm_regs, kvm_segment, kvm_sregs, kvm_xcrs, CpuId, Msrs, KVM_MAX_CPUID_ENTRIES, KVM_VCPU_TSC_CTRL, KVM_VCPU_TSC_OFFSET};
use std::os::fd::AsRawFd;

use kvm_ioctls::{Kvm, SyncReg, VcpuFd, VmFd};

use dune_x86::gdt;
use dune_x86::msr;
use dune_x86::regs::{cr0, cr4, efer, rflags};
use dune_x86::tss::{Ist, Tss64, TSS_SIZE};

use crate::error::{Error, Result};
use crate::guest::{entry, Percpu, PERCPU_GDT, PERCPU_TSS};
use super::memory::{Memory, PAGE};
use super::{reserved, sys};

/// `KVM_CAP_VCPU_ATTRIBUTES` (linux/kvm.h), for the TSC offset attribute.
const KVM_CAP_VCPU_ATTRIBUTES: std::os::raw::c_ulong = 215;
/// `KVM_SET_DEVICE_ATTR`: `_IOW(KVMIO, 0xe1, struct kvm_device_attr)`.
const KVM_SET_DEVICE_ATTR: std::os::raw::c_ulong = 0x4018_aee1;

/// Pages of each vCPU's area:
///
/// | page | contents |
/// | --- | --- |
/// | 0 | `Percpu` (GS base points here), GDT at `PERCPU_GDT`, TSS at `PERCPU_TSS` |
/// | 1 | guard (not mapped in the guest) |
/// | 2-4 | IST2: #DF alone, so a fault while delivering a fault is reported |
/// | 5 | guard |
/// | 6-25 | IST1: every other vector and ring-3 system calls; `TRAP_LEVEL_STACK` per nesting level |
pub const AREA_PAGES: u64 = 26;
const GUARD_PAGES: [u64; 2] = [1, 5];
const IST2_TOP_PAGE: u64 = 5;
/// SYSCALL clears these RFLAGS bits on entry, as Linux does (TF, DF, IF, IOPL, AC, NT).
const SFMASK: u64 = rflags::TF | rflags::DF | rflags::IF | rflags::IOPL | rflags::AC | rflags::NT;

/// What every vCPU of the VM shares, prepared once (allocating) at `init`.
pub struct Template {
    cpuid: CpuId,
    msrs: Msrs,
    xcr0: Option<u64>,
    cr4: u64,
    idt_base: u64,
    root: u64,
    tsc_offset_attr: bool,
    /// Bytes the trap path reserves for XSAVE, or 0 for FXSAVE.
    xsave_size: u64,
    /// Size of each vCPU's `kvm_run` mapping.
    run_size: usize,
}

impl Template {
    /// Prepares the shared state; `idt_base` is the host (= guest) address of the IDT.
    pub fn new(kvm: &Kvm, idt_base: u64, root: u64) -> Result<Self> {
        let cpuid = kvm.get_supported_cpuid(KVM_MAX_CPUID_ENTRIES).map_err(Error::kvm("KVM_GET_SUPPORTED_CPUID"))?;
        let leaf = |f: u32| cpuid.as_slice().iter().find(|e| e.function == f && e.index == 0).copied();
        let l1 = leaf(1).unwrap_or_default();
        let l7 = leaf(7).unwrap_or_default();
        let xsave = l1.ecx & (1 << 26) != 0;
        let mut cr4v = cr4::PAE | cr4::OSFXSR | cr4::OSXMMEXCPT;
        // XCR0 only exists with XSAVE: then the guest gets exactly the host's XCR0, so
        // glibc's AVX routines chosen at start-up keep working in Dune mode.
        let xcr0 = if xsave && host_osxsave() {
            cr4v |= cr4::OSXSAVE;
            // Features KVM cannot give the guest (MPX on some hosts) are left out; code
            // that uses them directly would fault, glibc and Rust do not.
            let d = cpuid.as_slice().iter().find(|e| e.function == 0xd && e.index == 0).copied().unwrap_or_default();
            let supported = (d.edx as u64) << 32 | d.eax as u64;
            Some(host_xcr0() & supported)
        } else {
            None
        };
        // CR4.FSGSBASE stays off: with it, ring 3 could point GS base (which the entry
        // code trusts as its per-vCPU block) at memory of its own with `wrgsbase`.
        let _ = l7;
        // Process-context identifiers for vm::load_cr3_pcid (CPUID.1:ECX.PCID[bit 17]).
        if l1.ecx & (1 << 17) != 0 {
            cr4v |= cr4::PCIDE;
        }
        let msrs = Msrs::from_entries(&[
            msr_entry(msr::STAR, gdt::STAR),
            msr_entry(msr::LSTAR, entry::addr_of(entry::dune_syscall_entry)),
            msr_entry(msr::CSTAR, 0),
            msr_entry(msr::SFMASK, SFMASK),
            msr_entry(msr::KERNEL_GS_BASE, 0),
            msr_entry(msr::PAT, msr::PAT_DEFAULT),
        ])
        .map_err(|_| Error::TableFull("MSR list"))?;
        let tsc_offset_attr = kvm.check_extension_raw(KVM_CAP_VCPU_ATTRIBUTES) > 0;
        // The XSAVE image for the enabled features (CPUID 0xD.0 EBX for the host's XCR0,
        // a superset of the guest's), rounded for the 64-byte alignment XSAVE needs.
        let xsave_size = if xcr0.is_some() { (core::arch::x86_64::__cpuid_count(0xd, 0).ebx as u64 + 63) & !63 } else { 0 };
        let run_size = kvm.get_vcpu_mmap_size().map_err(Error::kvm("KVM_GET_VCPU_MMAP_SIZE"))?;
        Ok(Template { cpuid, msrs, xcr0, cr4: cr4v, idt_base, root, tsc_offset_attr, xsave_size, run_size })
    }

    /// The guest MAXPHYADDR, from supported CPUID leaf 0x8000_0008.
    pub fn maxphyaddr(kvm: &Kvm) -> Result<u8> {
        let cpuid = kvm.get_supported_cpuid(KVM_MAX_CPUID_ENTRIES).map_err(Error::kvm("KVM_GET_SUPPORTED_CPUID"))?;
        Ok(cpuid.as_slice().iter().find(|e| e.function == 0x8000_0008).map_or(36, |e| (e.eax & 0xff) as u8))
    }
}

/// Creates vCPU `id` with its descriptor at the runtime's numbers (out of the
/// program's reach) and its `kvm_run` mapping recorded as runtime memory.
fn create_vcpu_fd(vm: &VmFd, t: &Template, id: u64) -> Result<VcpuFd> {
    let fd = reserved::with_fd_room(|| -> Result<VcpuFd> {
        let _pin = reserved::pin_runtime();
        let low = vm.create_vcpu(id).map_err(Error::kvm("KVM_CREATE_VCPU"))?;
        let high = reserved::dup_high(low.as_raw_fd()).map_err(|e| Error::os_errno("moving a vCPU descriptor to the runtime's numbers", e))?;
        // SAFETY: `high` is a fresh duplicate of this VM's vCPU descriptor that nothing
        // else owns; the new VcpuFd takes it over (and maps its own kvm_run). `low` is
        // dropped: its descriptor closed, its kvm_run unmapped.
        unsafe { vm.create_vcpu_from_rawfd(high) }.map_err(Error::kvm("KVM_CREATE_VCPU (mapping kvm_run)"))
    })?;
    let mut fd = fd;
    reserved::record(fd.get_kvm_run() as *mut kvm_bindings::kvm_run as u64, t.run_size as u64);
    Ok(fd)
}

fn msr_entry(index: u32, data: u64) -> kvm_msr_entry {
    kvm_msr_entry { index, data, ..Default::default() }
}

/// A vCPU and its private area (GDT, TSS, IST stack) in runtime memory.
pub struct Vcpu {
    /// The KVM vCPU.
    pub fd: VcpuFd,
    /// Its KVM id.
    pub id: u64,
    area: u64,
}

impl Drop for Vcpu {
    /// Its `kvm_run` mapping goes with the descriptor: it stops being runtime memory,
    /// or a later mapping of the program's at that address would be refused.
    fn drop(&mut self) {
        reserved::forget(self.fd.get_kvm_run() as *mut kvm_bindings::kvm_run as u64);
    }
}

impl Vcpu {
    /// Creates vCPU `id` with its area. Does not allocate from the heap.
    pub fn create(vm: &VmFd, mem: &mut Memory, t: &Template, id: u64) -> Result<Self> {
        let mut fd = create_vcpu_fd(vm, t, id)?;
        let area_gpa = mem.alloc_contiguous(vm, AREA_PAGES)?;
        let area = mem.gpa_to_hva(area_gpa).ok_or(Error::TableFull("vCPU area lookup"))?;
        // SAFETY: the area was just allocated from the arena and nothing else refers to it.
        unsafe { core::ptr::write_bytes(area as *mut u8, 0, (AREA_PAGES * PAGE) as usize) };
        for g in GUARD_PAGES {
            mem.unmap_runtime_page(area + g * PAGE);
        }
        let v = Vcpu { fd: Self::setup_fd(&mut fd, t).map(|_| fd)?, id, area };
        v.write_area(t);
        crate::guest::shootdown::register(id, v.percpu());
        Ok(v)
    }

    /// Re-creates the KVM side of this vCPU in a new VM (a forked child).
    pub fn recreate(&mut self, vm: &VmFd, t: &Template) -> Result<()> {
        let mut fd = create_vcpu_fd(vm, t, self.id)?;
        Self::setup_fd(&mut fd, t)?;
        reserved::forget(self.fd.get_kvm_run() as *mut kvm_bindings::kvm_run as u64);
        self.fd = fd;
        Ok(())
    }

    fn setup_fd(fd: &mut VcpuFd, t: &Template) -> Result<()> {
        fd.set_cpuid2(&t.cpuid).map_err(Error::kvm("KVM_SET_CPUID2"))?;
        let n = fd.set_msrs(&t.msrs).map_err(Error::kvm("KVM_SET_MSRS"))?;
        if n != t.msrs.as_slice().len() {
            return Err(Error::MissingCapability("the syscall MSRs (STAR, LSTAR, SFMASK)"));
        }
        if let Some(xcr0) = t.xcr0 {
            let mut xcrs = kvm_xcrs { nr_xcrs: 1, ..Default::default() };
            xcrs.xcrs[0].xcr = 0;
            xcrs.xcrs[0].value = xcr0;
            fd.set_xcrs(&xcrs).map_err(Error::kvm("KVM_SET_XCRS"))?;
        }
        if t.tsc_offset_attr {
            // Guest TSC = host TSC, so the vDSO's clock reads give the host's time.
            let offset: u64 = 0;
            let attr = kvm_device_attr { group: KVM_VCPU_TSC_CTRL, attr: KVM_VCPU_TSC_OFFSET as u64, addr: &offset as *const u64 as u64, flags: 0 };
            // kvm-ioctls offers KVM_SET_DEVICE_ATTR on vCPUs for arm64 only.
            // SAFETY: KVM_SET_DEVICE_ATTR reads one kvm_device_attr, whose addr points to
            // the u64 `offset` that outlives the call.
            let r = unsafe { libc::ioctl(fd.as_raw_fd(), KVM_SET_DEVICE_ATTR, &attr) };
            if r < 0 {
                return Err(Error::Kvm { step: "KVM_VCPU_TSC_OFFSET", source: kvm_ioctls::Error::last() });
            }
        }
        // The local APIC: software-enabled, spurious vector 0xff, LINT0/LINT1 masked so
        // the PIC can never interrupt; x2APIC mode comes with apic_base in `sregs`. The
        // timer set up for ring-3 time slices (`guest::timer`): one-shot, its vector,
        // dividing by 1, idle until a slice writes its initial count.
        let mut lapic = fd.get_lapic().map_err(Error::kvm("KVM_GET_LAPIC"))?;
        let timer = crate::guest::timer::VECTOR as u32;
        for (reg, val) in [(0xf0usize, 0x1ffu32), (0x350, 1 << 16), (0x360, 1 << 16), (0x320, timer), (0x3e0, 0b1011)] {
            for (i, b) in val.to_le_bytes().iter().enumerate() {
                lapic.regs[reg + i] = *b as std::os::raw::c_char;
            }
        }
        fd.set_lapic(&lapic).map_err(Error::kvm("KVM_SET_LAPIC"))?;
        // Every vCPU runs at once: none waits for INIT/SIPI as an application processor would.
        fd.set_mp_state(kvm_bindings::kvm_mp_state { mp_state: kvm_bindings::KVM_MP_STATE_RUNNABLE }).map_err(Error::kvm("KVM_SET_MP_STATE"))?;
        fd.set_sync_valid_reg(SyncReg::Register);
        Ok(())
    }

    /// The vCPU's `in_host` word, as an atomic (written by its host loop).
    pub fn in_host_flag(&self) -> &'static core::sync::atomic::AtomicU64 {
        // SAFETY: Percpu is runtime memory that outlives the vCPU; the field is a naturally
        // aligned u64 accessed atomically by the host loop and other vCPUs.
        unsafe { &*(core::ptr::addr_of!((*self.percpu()).in_host) as *const core::sync::atomic::AtomicU64) }
    }

    fn tss_base(&self) -> u64 {
        self.area + PERCPU_TSS
    }

    /// Whether `addr` is in one of the guard pages around this vCPU's trap stacks.
    pub fn is_guard_page(&self, addr: u64) -> bool {
        GUARD_PAGES.iter().any(|&g| (self.area + g * PAGE..self.area + (g + 1) * PAGE).contains(&addr))
    }

    /// Whether `[addr, addr+len)` lies inside this vCPU's area.
    pub fn area_contains(&self, addr: u64, len: u64) -> bool {
        addr >= self.area && addr.checked_add(len).is_some_and(|e| e <= self.area + AREA_PAGES * PAGE)
    }

    /// The FPU image the trap entry code saved for the frame at `tf_addr` (XSAVE or
    /// FXSAVE format; the first 512 bytes are the same).
    pub fn trap_fpu_image(&self, tf_addr: u64) -> Option<&[u8]> {
        // SAFETY: Percpu is this vCPU's runtime memory.
        let size = unsafe { (*self.percpu()).xsave_size };
        let len = if size == 0 { 512 } else { size };
        let at = tf_addr.checked_sub(len)? & !63;
        // SAFETY: inside this vCPU's IST1 stack (checked), written by the entry code for
        // the trap the host is handling; only this thread uses it meanwhile.
        self.area_contains(at, len).then(|| unsafe { core::slice::from_raw_parts(at as *const u8, len as usize) })
    }

    /// The vCPU's per-vCPU block (host and guest see it at the same address).
    pub fn percpu(&self) -> *mut Percpu {
        self.area as *mut Percpu
    }

    fn write_area(&self, t: &Template) {
        let ist1_top = self.area + AREA_PAGES * PAGE;
        // In the host until its loop first runs it: a vCPU made for a thread that never
        // started (a failed clone) must not hold up a shootdown waiting for its answer.
        // The TSC rate, for the time slice's bookkeeping (0 where KVM does not say).
        let tsc_khz = self.fd.get_tsc_khz().map_or(0, u64::from);
        let pc = Percpu { self_ptr: self.area, ist1_top, xsave_size: t.xsave_size, in_host: 1, tsc_khz, ..Default::default() };
        // SAFETY: page 0 of the area is this vCPU's Percpu, not yet used by any CPU.
        unsafe { self.percpu().write(pc) };
        let gdt = gdt::build_gdt(self.tss_base());
        let mut tss = Tss64::new();
        tss.set_ist(Ist::Ist1, ist1_top);
        tss.set_ist(Ist::Ist2, self.area + IST2_TOP_PAGE * PAGE);
        let tss = tss.to_bytes();
        // SAFETY: the area is this vCPU's own: page 0 holds the GDT (56 bytes) at
        // PERCPU_GDT and the TSS (104 bytes) at PERCPU_TSS; nothing else writes them.
        unsafe {
            core::ptr::copy_nonoverlapping(gdt.as_ptr(), (self.area + PERCPU_GDT) as *mut u64, gdt.len());
            core::ptr::copy_nonoverlapping(tss.as_ptr(), self.tss_base() as *mut u8, tss.len());
        }
    }

    /// Ring-0 long-mode system registers for this vCPU with the given FS base. GS base
    /// is the vCPU's `Percpu` (the process's own GS base is kept in `Percpu::saved_gs`).
    pub fn sregs(&self, t: &Template, fs_base: u64) -> kvm_sregs {
        let gs_base = self.area;
        let code = kvm_segment { base: 0, limit: 0xffff_ffff, selector: gdt::KERNEL_CS, type_: 0xb, present: 1, dpl: 0, db: 0, s: 1, l: 1, g: 1, ..Default::default() };
        let data = kvm_segment { selector: gdt::KERNEL_DS, type_: 0x3, l: 0, db: 1, ..code };
        let tr = kvm_segment { base: self.tss_base(), limit: TSS_SIZE as u32 - 1, selector: gdt::TSS_SELECTOR, type_: gdt::TYPE_TSS64_BUSY as u8, present: 1, s: 0, l: 0, g: 0, ..Default::default() };
        let ldt = kvm_segment { type_: 0x2, present: 1, unusable: 1, ..Default::default() };
        kvm_sregs {
            cs: code,
            ds: data,
            es: data,
            ss: data,
            fs: kvm_segment { base: fs_base, ..data },
            gs: kvm_segment { base: gs_base, ..data },
            tr,
            ldt,
            gdt: kvm_dtable { base: self.area + PERCPU_GDT, limit: (gdt::GDT_ENTRIES * 8 - 1) as u16, ..Default::default() },
            idt: kvm_dtable { base: t.idt_base, limit: (256 * 16 - 1) as u16, ..Default::default() },
            cr0: cr0::PE | cr0::MP | cr0::ET | cr0::NE | cr0::WP | cr0::PG,
            cr3: t.root,
            cr4: t.cr4,
            efer: efer::SCE | efer::LME | efer::LMA | efer::NXE,
            // x2APIC enabled (bits 11, 10), BSP flag for vCPU 0 (Intel SDM vol. 3A, 11.4.4).
            apic_base: 0xfee0_0000 | (1 << 11) | (1 << 10) | if self.id == 0 { 1 << 8 } else { 0 },
            ..Default::default()
        }
    }

    /// Loads a complete state: system registers, general registers, FPU/vector state.
    pub fn load(&mut self, sregs: &kvm_sregs, regs: &kvm_regs, fpu: &FpuState) -> Result<()> {
        self.fd.set_sregs(sregs).map_err(Error::kvm("KVM_SET_SREGS"))?;
        // KERNEL_GS_BASE holds the Percpu pointer too: the entry code `swapgs`es on
        // every entry from ring 3, whose GS base ring 3 can change (a selector load).
        self.set_msr(msr::KERNEL_GS_BASE, sregs.gs.base)?;
        let fresh;
        let xsave = match fpu {
            FpuState::Full(x) => x,
            FpuState::Control(c) => {
                let mut x = self.fd.get_xsave().map_err(Error::kvm("KVM_GET_XSAVE"))?;
                c.apply(&mut x);
                fresh = x;
                &fresh
            }
        };
        // SAFETY: the buffer is a full 4 KiB kvm_xsave as KVM_GET_XSAVE returns it; no
        // dynamically enabled (larger) xfeatures are used by this VM.
        unsafe { self.fd.set_xsave(xsave) }.map_err(Error::kvm("KVM_SET_XSAVE"))?;
        self.fd.set_regs(regs).map_err(Error::kvm("KVM_SET_REGS"))
    }

    /// Sets one MSR without allocating (`Msrs` is heap-backed): this runs on exit
    /// paths, among them a forked child's first steps, where another thread of the
    /// parent may have held the allocator's lock at the moment of the fork.
    fn set_msr(&self, index: u32, data: u64) -> Result<()> {
        /// `struct kvm_msrs` with room for one entry.
        #[repr(C)]
        struct OneMsr {
            head: kvm_bindings::kvm_msrs,
            entry: kvm_msr_entry,
        }
        /// `_IOW(KVMIO, 0x89, struct kvm_msrs)`.
        const KVM_SET_MSRS: libc::c_ulong = 0x4008_ae89;
        let one = OneMsr { head: kvm_bindings::kvm_msrs { nmsrs: 1, ..Default::default() }, entry: msr_entry(index, data) };
        // SAFETY: KVM_SET_MSRS reads `nmsrs` (1) entries that follow the header, and
        // `one` holds exactly that, laid out as the kernel's struct (repr(C)); the
        // descriptor is this vCPU's. The kernel returns the number of MSRs it set.
        let r = unsafe { libc::ioctl(self.fd.as_raw_fd(), KVM_SET_MSRS, &one) };
        match r {
            1 => Ok(()),
            -1 => Err(Error::kvm("KVM_SET_MSRS")(kvm_ioctls::Error::last())),
            _ => Err(Error::kvm("KVM_SET_MSRS")(kvm_ioctls::Error::new(libc::EINVAL))),
        }
    }

    /// The vCPU's whole FPU/vector state, for a thread or child to inherit.
    pub fn fpu_state(&self) -> Result<FpuState> {
        self.fd.get_xsave().map(FpuState::Full).map_err(Error::kvm("KVM_GET_XSAVE"))
    }
}

/// FPU state to load into a vCPU.
// Not boxed: the image is loaded on exit paths (thread creation, fork), which must not allocate.
#[allow(clippy::large_enum_variant)]
pub enum FpuState {
    /// A fresh state with the given control words (entering Dune mode is a call: only
    /// the callee-saved control state must survive it).
    Control(FpuControl),
    /// A complete copy (a new thread or a forked child inherits everything).
    Full(kvm_xsave),
}

/// The callee-saved FPU control state (System V ABI): x87 control word and MXCSR.
#[derive(Debug, Clone, Copy)]
pub struct FpuControl {
    /// x87 control word.
    pub fcw: u16,
    /// SSE control and status.
    pub mxcsr: u32,
}

// Offsets in the XSAVE legacy region (Intel SDM vol. 1, 10.5.1 and 13.4.2).
const XSAVE_FCW: usize = 0;
const XSAVE_MXCSR: usize = 24;
const XSAVE_XSTATE_BV: usize = 512;
/// XSTATE_BV bits of the x87 and SSE components.
const XSTATE_FP_SSE: u64 = 0x3;

impl FpuControl {
    /// Writes the control words into an XSAVE image and marks x87 and SSE state as
    /// present: KVM_SET_FPU alone leaves XSTATE_BV clear, and XRSTORS then resets
    /// MXCSR to its default.
    fn apply(&self, x: &mut kvm_xsave) {
        let bytes: &mut [u8] = bytemuck_region(x);
        bytes[XSAVE_FCW..XSAVE_FCW + 2].copy_from_slice(&self.fcw.to_le_bytes());
        bytes[XSAVE_MXCSR..XSAVE_MXCSR + 4].copy_from_slice(&self.mxcsr.to_le_bytes());
        let mut bv = [0u8; 8];
        bv.copy_from_slice(&bytes[XSAVE_XSTATE_BV..XSAVE_XSTATE_BV + 8]);
        let bv = u64::from_le_bytes(bv) | XSTATE_FP_SSE;
        bytes[XSAVE_XSTATE_BV..XSAVE_XSTATE_BV + 8].copy_from_slice(&bv.to_le_bytes());
    }

    /// The calling thread's current values.
    pub fn current() -> Self {
        let mut fcw: u16 = 0;
        let mut mxcsr: u32 = 0;
        // SAFETY: fnstcw and stmxcsr only store into the two locals.
        unsafe {
            core::arch::asm!("fnstcw [{0}]", "stmxcsr [{1}]", in(reg) &mut fcw, in(reg) &mut mxcsr, options(nostack));
        }
        FpuControl { fcw, mxcsr }
    }
}

fn host_osxsave() -> bool {
    let l1 = core::arch::x86_64::__cpuid(1);
    l1.ecx & (1 << 27) != 0
}

fn host_xcr0() -> u64 {
    // SAFETY: only called when CPUID says the OS enabled XSAVE (OSXSAVE), so xgetbv is legal.
    unsafe { core::arch::x86_64::_xgetbv(0) }
}

/// The calling thread's FS and GS bases.
pub fn current_fs_gs() -> (u64, u64) {
    let mut fs = 0u64;
    let mut gs = 0u64;
    // SAFETY: ARCH_GET_FS/GS store one u64 at the given addresses (locals).
    unsafe {
        sys::syscall(libc::SYS_arch_prctl, sys::ARCH_GET_FS as u64, &mut fs as *mut u64 as u64, 0);
        sys::syscall(libc::SYS_arch_prctl, sys::ARCH_GET_GS as u64, &mut gs as *mut u64 as u64, 0);
    }
    (fs, gs)
}

/// Registers of a thread resuming at `rip` with stack `rsp`, interrupts on (for
/// TLB-shootdown IPIs; nothing else interrupts the guest).
pub fn initial_regs(rip: u64, rsp: u64) -> kvm_regs {
    kvm_regs { rip, rsp, rflags: rflags::FIXED | rflags::IF, ..Default::default() }
}

/// The legacy 4 KiB region of a `kvm_xsave` as bytes.
fn bytemuck_region(x: &mut kvm_xsave) -> &mut [u8] {
    // SAFETY: `region` is a plain [u32; 1024] array; viewing it as 4096 bytes is valid
    // for reads and writes of any value, and the borrow is tied to `x`.
    unsafe { core::slice::from_raw_parts_mut(x.region.as_mut_ptr().cast::<u8>(), core::mem::size_of_val(&x.region)) }
}
