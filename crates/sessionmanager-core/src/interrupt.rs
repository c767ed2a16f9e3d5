//! Letting a caller that waits for a store give up when its host asks, as
//! the Python binding does for Ctrl-C: a signal handler that raises
//! (`KeyboardInterrupt`) must run within [`CHECK_EVERY`], not once the store
//! answers or `timeout_ms` ends the wait.
//!
//! The host installs a [`Hook`]; stores and [`block_on_interruptible`]
//! consult it every [`CHECK_EVERY`] while they wait, on threads the hook
//! calls interruptible, and then fail with
//! [`Error::Interrupted`](crate::Error::Interrupted). What the
//! abandoned call was doing may still complete: an interrupted write may or
//! may not have happened.
//!
//! [`block_on_interruptible`]: crate::block_on_interruptible

use std::sync::OnceLock;
use std::time::Duration;

/// How often a waiting, interruptible caller asks whether to give up.
pub const CHECK_EVERY: Duration = Duration::from_millis(50);

/// The host's answers, as plain functions (they run on the waiting thread).
#[derive(Clone, Copy, Debug)]
pub struct Hook {
    /// Whether the calling thread can be interrupted at all (cheap: called
    /// at the start of waits).
    pub interruptible: fn() -> bool,
    /// Whether the caller should give up now (called every [`CHECK_EVERY`]).
    pub interrupted: fn() -> bool,
}

static HOOK: OnceLock<Hook> = OnceLock::new();

/// Installs the host's hook; the first one stays.
pub fn install(hook: Hook) {
    let _ = HOOK.set(hook);
}

/// Whether the calling thread can be interrupted.
pub fn interruptible() -> bool {
    HOOK.get().is_some_and(|hook| (hook.interruptible)())
}

/// Whether the caller should give up its wait now.
pub fn interrupted() -> bool {
    HOOK.get().is_some_and(|hook| (hook.interrupted)())
}
