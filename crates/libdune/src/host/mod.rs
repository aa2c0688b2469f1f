//! The host side: everything that runs in the Linux thread outside the VM.
//!
//! It owns the KVM VM and its vCPUs, the guest-physical memory and memslots, the
//! guest page table, and the handlers for every exit the guest takes. Its files form
//! layers, each using only those below it:
//!
//! 1. `sys`, `reserved`, `fixed`, `procmap`: raw system calls, the runtime memory and
//!    descriptors the program may not touch, allocation-free containers, and
//!    `/proc/self/maps`. No other part of libdune.
//! 2. `kvm` (the device and VM descriptors), `memory` and `pagetable` (memslots, the
//!    guest-physical allocator, the guest page table; the two use each other), `vcpu`
//!    (one vCPU's registers and areas), `report` (fatal reports and death by signal).
//! 3. `state`: what every handler shares: the VM (`State`, behind one lock), each
//!    thread's host context (`ThreadCtx`), the exit counters, `Resume`.
//! 4. `exits`: the handlers for system calls, faults, signals, threads and fork.
//! 5. `init` (making the VM) and `run` (entering Dune mode and the `KVM_RUN` loop).
//!
//! The host uses the guest part only for the layouts and entry symbols the CPU and the
//! assembly share (`crate::guest`), and `dune-x86` for x86 structures. It never uses
//! the privileged-feature API (`crate::api`), which sits on top of it.

pub mod exits;
pub mod fixed;
pub mod init;
pub mod kvm;
pub mod mapchanges;
pub mod memory;
pub mod pagetable;
pub mod procmap;
pub mod report;
pub mod reserved;
pub mod run;
pub mod state;
pub mod sys;
pub mod vcpu;
