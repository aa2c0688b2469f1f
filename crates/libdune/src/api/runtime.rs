//! The runtime as a program sees it: entering Dune mode, and what the runtime has
//! done so far (exits by kind, memory mapped into the VM).

pub use crate::guest::in_dune_mode;
pub use crate::host::init::init;
pub use crate::host::memory::MemStats;
pub use crate::host::run::enter;
pub use crate::host::state::{counters, current_vcpu_fd, mem_stats, Counters};
