//! `SessionManager.stats()`: the engine's counters as plain Python dicts.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use sessionmanager_core::{LATENCY_BOUNDS_NS, Latency, StatsSnapshot};

/// The figures of `snapshot` as the dict `stats()` documents.
pub(crate) fn to_py<'py>(
    py: Python<'py>,
    snapshot: &StatsSnapshot,
) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    out.set_item("uptime_seconds", snapshot.uptime.as_secs_f64())?;
    out.set_item("created", snapshot.created)?;
    out.set_item(
        "ended",
        named(py, snapshot.ended.iter().map(|(r, n)| (r.name(), *n)))?,
    )?;
    out.set_item("rotated", snapshot.rotated)?;
    out.set_item("expired", snapshot.expired)?;
    out.set_item("retries", snapshot.retries)?;
    out.set_item("events_dropped", snapshot.events_dropped)?;
    out.set_item(
        "errors",
        named(py, snapshot.errors.iter().map(|(k, n)| (k.name(), *n)))?,
    )?;
    let latency = PyDict::new(py);
    for (op, figures) in &snapshot.latency {
        latency.set_item(op.name(), histogram(py, figures)?)?;
    }
    out.set_item("latency", latency)?;
    Ok(out)
}

fn named<'py>(
    py: Python<'py>,
    items: impl Iterator<Item = (&'static str, u64)>,
) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    for (name, count) in items {
        dict.set_item(name, count)?;
    }
    Ok(dict)
}

/// `count`, `sum_seconds`, cumulative `buckets` as `(upper bound in
/// seconds, calls)` pairs ending with infinity, the way Prometheus has
/// them, and the bounds of the median's and the 99th percentile's buckets.
fn histogram<'py>(py: Python<'py>, figures: &Latency) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    dict.set_item("count", figures.count)?;
    dict.set_item("sum_seconds", figures.sum.as_secs_f64())?;
    let buckets = PyList::empty(py);
    let mut cumulative = 0;
    for (i, calls) in figures.buckets.iter().enumerate() {
        cumulative += calls;
        let bound = LATENCY_BOUNDS_NS
            .get(i)
            .map_or(f64::INFINITY, |&ns| ns as f64 / 1e9);
        buckets.append((bound, cumulative))?;
    }
    dict.set_item("buckets", buckets)?;
    for (name, q) in [("p50_seconds", 0.5), ("p99_seconds", 0.99)] {
        dict.set_item(name, figures.quantile_bound(q).map(|d| d.as_secs_f64()))?;
    }
    Ok(dict)
}
