//! Engine speed on the memory store, one thread: with 1 M live sessions (the
//! store's tables mostly out of CPU cache) and with 10 k (mostly in cache).

#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use sessionmanager_core::{
    CreateOptions, DataLimits, ManagerConfig, MemoryStore, SessionData, SessionManager, block_on,
};

fn small_data() -> SessionData {
    SessionData::from_json_str(r#"{"role":"admin","theme":"dark"}"#, &DataLimits::default())
        .unwrap()
}

fn filled(live: usize) -> (SessionManager<MemoryStore>, Vec<String>) {
    let manager = SessionManager::new(MemoryStore::default(), ManagerConfig::default());
    let tokens = (0..live)
        .map(|i| {
            let user = format!("user{i}");
            block_on(manager.create(&user, small_data(), CreateOptions::default()))
                .unwrap()
                .into_string()
        })
        .collect();
    (manager, tokens)
}

fn engine(c: &mut Criterion) {
    for (name, live) in [("memory_10k_live", 10_000), ("memory_1M_live", 1_000_000)] {
        bench_store(c, name, live);
    }
}

fn bench_store(c: &mut Criterion, name: &str, live: usize) {
    let (manager, tokens) = filled(live);
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(1));

    // Sessions are picked at random, as real traffic does, so the store's
    // tables are mostly out of cache. The token itself is copied in untimed:
    // a server has it in cache, fresh from the request.
    let mut i = 0usize;
    let mut next_token = || {
        i = (i + 7919) % live;
        tokens[i].clone()
    };
    group.bench_function("get", |b| {
        b.iter_batched_ref(
            &mut next_token,
            |token| black_box(block_on(manager.get(token)).unwrap()),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("is_active", |b| {
        b.iter_batched_ref(
            &mut next_token,
            |token| black_box(block_on(manager.is_active(token)).unwrap()),
            BatchSize::SmallInput,
        )
    });
    let patch = SessionData::from_json_str(r#"{"theme":"light"}"#, &DataLimits::default()).unwrap();
    group.bench_function("update", |b| {
        b.iter_batched_ref(
            &mut next_token,
            |token| black_box(block_on(manager.update(token, &patch)).unwrap()),
            BatchSize::SmallInput,
        )
    });

    group.bench_function("create_then_end", |b| {
        b.iter_batched(
            small_data,
            |data| {
                let token =
                    block_on(manager.create("bench", data, CreateOptions::default())).unwrap();
                block_on(manager.end(token.as_str())).unwrap();
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30);
    targets = engine
}
criterion_main!(benches);
