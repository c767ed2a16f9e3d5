//! The session engine behind pysessionmanager.
//!
//! A [`SessionManager`] issues opaque 256-bit tokens, keeps each session's JSON
//! data and expiry in a [`SessionStore`], and builds its richer operations
//! (merge, counters, rotation, per-user limits) on the store's small contract.
//! [`MemoryStore`] is the in-process store; other crates provide SQLite, Redis
//! and PostgreSQL stores.
//!
//! ```
//! use sessionmanager_core::{block_on, ManagerConfig, SessionManager, SessionData};
//!
//! let manager = SessionManager::in_memory(ManagerConfig::default()).unwrap();
//! let data = SessionData::from_json_str(r#"{"role": "admin"}"#, &Default::default()).unwrap();
//! let token = block_on(manager.create("12345", data, Default::default())).unwrap();
//! let session = block_on(manager.get(token.as_str())).unwrap();
//! assert_eq!(session.record.user_id.as_ref(), "12345");
//! ```

mod apply;
mod block_on;
mod clock;
#[cfg(feature = "conformance")]
pub mod conformance;
mod data;
mod error;
mod events;
mod expiry;
mod export;
pub mod fork;
#[doc(hidden)]
pub mod interrupt;
mod json;
mod manager;
pub mod memory;
mod periodic;
mod ratelimit;
mod record;
mod redact;
mod request;
mod schema;
mod stats;
mod store;
mod token;
#[doc(hidden)]
pub mod url;

pub use apply::{ApplyOutcome, Basis, MAX_APPLY_ATTEMPTS};
pub use block_on::block_on;
#[doc(hidden)]
pub use block_on::block_on_interruptible;
pub use clock::{Clock, ManualClock, SystemClock, Timestamp};
pub use data::{DataErrorKind, DataLimits, SessionData};
// Plumbing of the Python binding's JSON conversion, not an API.
#[doc(hidden)]
pub use data::{DataPath, too_deep, too_deep_message};
pub use error::BoxError;
pub use error::{Error, Result, StoreFailure};
pub use events::{
    EventKind, ExpiredSession, ExpiryListener, ExpiryReports, SessionEvent, Subscription,
};
pub use expiry::{ExpiryPolicy, MAX_TIMEOUT_MS};
pub use export::{ExportCursor, ExportPage, ImportOutcome, MAX_EXPORT_PAGE, check_import};
#[doc(hidden)]
pub use json::write_json_string;
pub use manager::{
    CreateOptions, LimitAction, MAX_USER_ID_BYTES, ManagerConfig, Session, SessionManager,
};
pub use memory::{MemoryStore, MemoryStoreConfig};
pub use periodic::{Periodic, Tick};
pub use ratelimit::{MAX_RATE_KEY_BYTES, Rate, RateDecision, RateLimit, rate_state_expiry};
pub use record::SessionRecord;
// URL plumbing shared by the store crates' `from_url` (see also `url`).
#[doc(hidden)]
pub use redact::{percent_decode, redact_url, scrub, scrub_error};
pub use request::{RequestData, SaveStep, save_step};
pub use schema::Schema;
pub use stats::{EndReason, ErrorKind, LATENCY_BOUNDS_NS, Latency, Operation, StatsSnapshot};
pub use store::{
    CreateOutcome, EditOutcome, MemberEdit, RateRead, SaveOutcome, SessionStore, UserLimit,
};
pub use token::{MAX_TOKEN_CHARS, SessionKey, SessionToken};
