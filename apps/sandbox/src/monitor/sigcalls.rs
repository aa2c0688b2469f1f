//! The signal calls: actions, masks, the alternate stack, pending signals and the
//! calls that wait for signals (the state itself is [`super::signals`]).

use super::io::wait_mask;
use super::signals;
use super::state::Thread;
use super::sys::{deny, fwd, EFAULT, EINVAL, R};
use super::user::{copy_in, opt, word, write_user};

/// `rt_sigaction(sig, act, old, size)`.
pub fn sigaction(a: [u64; 6]) -> R {
    super::sys::ret(signals::sigaction(a[0], a[1], a[2], a[3]))
}

/// `rt_sigprocmask(how, set, old, size)`: the program's mask, kept per thread.
pub fn sigprocmask(t: &mut Thread, a: [u64; 6]) -> R {
    if a[3] != 8 {
        return Err(EINVAL);
    }
    let old = t.mask;
    if a[1] != 0 {
        let s = word(&copy_in(a[1], 8)?, 0);
        let new = match a[0] as i32 {
            libc::SIG_BLOCK => old | s,
            libc::SIG_UNBLOCK => old & !s,
            libc::SIG_SETMASK => s,
            _ => return Err(EINVAL),
        };
        signals::set_mask(t, new);
    }
    if a[2] != 0 && !write_user(a[2], &old.to_le_bytes()) {
        return Err(EFAULT);
    }
    Ok(0)
}

/// `sigaltstack(ss, old)`.
pub fn sigaltstack(t: &mut Thread, a: [u64; 6]) -> R {
    super::sys::ret(signals::sigaltstack(t, a[0], a[1]))
}

/// `rt_sigpending(set, size)`.
pub fn sigpending(t: &mut Thread, a: [u64; 6]) -> R {
    super::sys::ret(signals::sigpending(t, a[0]))
}

/// `rt_sigsuspend(mask, size)`: waits with the program's mask, the monitor's
/// signals unblocked.
pub fn sigsuspend(t: &mut Thread, n: i64, a: [u64; 6]) -> R {
    let mk = wait_mask(a[0], a[1])?.ok_or(EFAULT)?;
    t.saved_mask = Some(t.mask);
    fwd(n, [mk.as_ptr() as u64, 8, 0, 0, 0, 0])
}

/// `rt_sigtimedwait(set, info, timeout, size)`: never for the monitor's own signal.
pub fn sigtimedwait(n: i64, a: [u64; 6]) -> R {
    let mut b = copy_in(a[0], 8)?;
    let set = word(&b, 0) & !signals::bit(signals::MONITOR_SIGNAL as usize);
    b[..8].copy_from_slice(&set.to_le_bytes());
    opt(a[1], 128)?;
    opt(a[2], 16)?;
    fwd(n, [b.as_ptr() as u64, a[1], a[2], 8, 0, 0])
}

/// A call the program makes with the monitor's signal as its argument.
pub fn monitor_signal(n: i64) -> R {
    deny(&format!("{}(.., {})", super::sys::name(n as u64), signals::MONITOR_SIGNAL), "the monitor's own signal", libc::EINVAL)
}
