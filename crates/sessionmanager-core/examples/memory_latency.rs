//! Prints how long one read of a random cache line takes on this machine, for
//! working sets from cache-sized to the size of the memory store's tables at
//! 1 M live sessions:
//! `cargo run --release -p sessionmanager-core --example memory_latency`.
//!
//! A get at 1 M live sessions must read at least one line at a random place in
//! ~270 MB of tables, so this is the floor under its time that no table layout
//! removes; the benchmark's per-get figures are read against it.

use std::hint::black_box;
use std::time::Instant;

/// One element per 64-byte line, so each step of the chase is a new line.
const LINE_WORDS: usize = 8;
const STEPS: usize = 20_000_000;

/// A xorshift generator: enough to shuffle, and no dependency.
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// Nanoseconds per dependent load, chasing one random cycle through `mib` MiB.
fn chase(mib: usize) -> f64 {
    let lines = mib * 1024 * 1024 / 64;
    // Sattolo's shuffle: one cycle through every line, in random order, so
    // the prefetchers cannot guess the next address.
    let mut order: Vec<usize> = (0..lines).collect();
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    for i in (1..lines).rev() {
        order.swap(i, rng.below(i));
    }
    let mut next = vec![0usize; lines * LINE_WORDS];
    for (i, &line) in order.iter().enumerate() {
        next[line * LINE_WORDS] = order[(i + 1) % lines] * LINE_WORDS;
    }
    let mut at = 0;
    for _ in 0..lines {
        at = next[at]; // one pass untimed: pages mapped, caches warm
    }
    let start = Instant::now();
    for _ in 0..STEPS {
        at = next[at];
    }
    let elapsed = start.elapsed();
    black_box(at);
    elapsed.as_nanos() as f64 / STEPS as f64
}

fn main() {
    println!("| working set | ns per random line read |");
    println!("|---:|---:|");
    for mib in [1, 2, 4, 16, 64, 256] {
        println!("| {mib} MiB | {:.1} |", chase(mib));
    }
}
