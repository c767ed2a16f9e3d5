//! The Python binding: a thin layer that converts arguments, releases the GIL
//! around engine calls and maps errors in one place (`errors.rs`).

mod aio;
mod clock;
mod convert;
mod errors;
mod events;
mod exit;
mod export;
mod fork;
mod interrupt;
mod manager;
mod ops;
mod ratelimit;
mod request;
mod session;
mod stats;
mod store;

use pyo3::prelude::*;

/// The private native module behind the `pysessionmanager` package.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<manager::SessionManager>()?;
    m.add_class::<aio::AsyncCore>()?;
    m.add_class::<aio::LoopWaker>()?;
    m.add_class::<events::EventStream>()?;
    m.add_class::<ratelimit::RateLimiter>()?;
    m.add_class::<ratelimit::RateLimitResult>()?;
    m.add_class::<session::SessionMeta>()?;
    m.add_class::<clock::ManualClock>()?;
    m.add_function(wrap_pyfunction!(exit::_interpreter_exiting, m)?)?;
    m.add_function(wrap_pyfunction!(request::save_step, m)?)?;
    m.add("TOKEN_BYTES", 32)?;
    m.add("TOKEN_MAX_CHARS", sessionmanager_core::MAX_TOKEN_CHARS)?;
    interrupt::install();
    Ok(())
}
