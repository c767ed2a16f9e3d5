//! The shared store-conformance suite, run against [`MemoryStore`]: one test per check.

use std::sync::Arc;

use sessionmanager_core::{ManualClock, MemoryStore, MemoryStoreConfig};

/// A fresh memory store on the check's clock, with no sweeper thread, so only
/// the checks decide when expired records are removed.
fn memory_store(clock: ManualClock) -> MemoryStore {
    MemoryStore::open(MemoryStoreConfig {
        clock: Arc::new(clock),
        sweep_interval: None,
        ..Default::default()
    })
    .expect("a memory store without a sweeper always starts")
}

sessionmanager_core::conformance_tests!(memory_store);
