//! Sessions out of one store and into another: `export_sessions`,
//! `import_sessions`, and `copy_sessions`, which moves a page from store to
//! store without turning it into Python objects (what `migrate` runs).

use std::sync::Arc;

use futures_util::StreamExt;
use futures_util::stream;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use sessionmanager_core::{
    ExportCursor, ImportOutcome, Result, SessionKey, SessionRecord, Timestamp,
};

use crate::convert::{data_from_py, fill_dict, int_arg, str_arg};
use crate::errors::IntoPyResult;
use crate::fork::Engine;
use crate::ops::{Task, run_task, task};
use crate::store::AnyStore;

/// Sessions per `import_many` call (one Redis script call), and calls in
/// flight at once: enough to keep a Redis server or a PostgreSQL pool busy.
const IMPORT_CHUNK: usize = 64;
const CHUNKS_IN_FLIGHT: usize = 8;

/// Page size when none is given.
const DEFAULT_PAGE: u32 = 1000;

/// What one batch of imports did, by outcome.
#[derive(Default)]
struct Imported {
    created: u64,
    updated: u64,
    unchanged: u64,
    expired: u64,
}

impl Imported {
    fn to_py<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let dict = PyDict::new(py);
        dict.set_item("created", self.created)?;
        dict.set_item("updated", self.updated)?;
        dict.set_item("unchanged", self.unchanged)?;
        dict.set_item("expired", self.expired)?;
        Ok(dict)
    }
}

/// Runs a batch `task` whose imports go to `target`'s store. On Redis and
/// PostgreSQL it runs as a task of that store's runtime, where its imports
/// share connections and are in flight together (on the caller's thread
/// each would wait for its own round trip); elsewhere on this thread.
pub(crate) fn run_batch(py: Python<'_>, target: &Engine, task: Task) -> PyResult<Py<PyAny>> {
    if !matches!(target.store(), AnyStore::Redis(_) | AnyStore::Postgres(_)) {
        return run_task(py, task);
    }
    let (sender, answer) = tokio::sync::oneshot::channel();
    let job = async move {
        let _ = sender.send(task.await);
    };
    let spawned = match target.store() {
        AnyStore::Redis(store) => store.spawn(job),
        AnyStore::Postgres(store) => store.spawn(job),
        _ => unreachable!("only stores with a runtime get here"),
    };
    spawned.py(py)?;
    let outcome = crate::manager::run(py, async move {
        answer.await.map_err(|_| sessionmanager_core::Error::Closed)
    })?;
    outcome(py)
}

/// Imports `sessions` into `target`, several at a time. The first error
/// ends the batch; what was imported before stays (an import can run again).
async fn import_all(
    target: &Engine,
    sessions: Vec<(SessionKey, SessionRecord)>,
) -> Result<Imported> {
    let mut sessions = sessions.into_iter();
    let owned = std::iter::from_fn(|| {
        let chunk: Vec<_> = sessions.by_ref().take(IMPORT_CHUNK).collect();
        (!chunk.is_empty()).then_some(chunk)
    });
    let mut chunks = stream::iter(owned.collect::<Vec<_>>())
        .map(|chunk| async move { target.import_many(&chunk).await })
        .buffer_unordered(CHUNKS_IN_FLIGHT);
    let mut done = Imported::default();
    while let Some(outcomes) = chunks.next().await {
        for outcome in outcomes? {
            match outcome {
                ImportOutcome::Created => done.created += 1,
                ImportOutcome::Updated => done.updated += 1,
                ImportOutcome::Expired => done.expired += 1,
                _ => done.unchanged += 1,
            }
        }
    }
    Ok(done)
}

fn cursor_arg(cursor: Option<&Bound<'_, PyAny>>) -> PyResult<ExportCursor> {
    match cursor.filter(|c| !c.is_none()) {
        Some(text) => Ok(ExportCursor::new(str_arg(text, "cursor")?)),
        None => Ok(ExportCursor::start()),
    }
}

fn limit_arg(limit: Option<&Bound<'_, PyAny>>) -> PyResult<u32> {
    match limit.filter(|l| !l.is_none()) {
        // The engine names the allowed range; a negative or huge value is out of it too.
        Some(value) => Ok(u32::try_from(int_arg(value, "limit")?).unwrap_or(0)),
        None => Ok(DEFAULT_PAGE),
    }
}

fn cursor_to_py(py: Python<'_>, next: Option<ExportCursor>) -> PyResult<Py<PyAny>> {
    Ok(next
        .map(|c| c.as_str().to_owned())
        .into_pyobject(py)?
        .into_any()
        .unbind())
}

/// `export_sessions(cursor, limit)`: a page of exported sessions as dicts, and the next cursor.
pub(crate) fn export_sessions(
    engine: Arc<Engine>,
    cursor: Option<&Bound<'_, PyAny>>,
    limit: Option<&Bound<'_, PyAny>>,
) -> PyResult<Task> {
    let (cursor, limit) = (cursor_arg(cursor)?, limit_arg(limit)?);
    task(
        async move { engine.export_page(&cursor, limit).await },
        |py, page| {
            let list = PyList::empty(py);
            for (key, record) in page.sessions {
                list.append(session_to_py(py, &key, &record)?)?;
            }
            Ok((list, cursor_to_py(py, page.next)?)
                .into_pyobject(py)?
                .into_any()
                .unbind())
        },
    )
}

/// `import_sessions(sessions)`: stores exported session dicts; counts by outcome.
pub(crate) fn import_sessions(engine: Arc<Engine>, sessions: &Bound<'_, PyAny>) -> PyResult<Task> {
    let limits = engine.config().limits;
    let mut parsed = Vec::new();
    for (index, item) in sessions.try_iter()?.enumerate() {
        let item = item?;
        let session = item.cast::<PyDict>().map_err(|_| {
            PyValueError::new_err(format!(
                "sessions[{index}] must be a dict as export_sessions returns, got {}",
                item.get_type()
                    .name()
                    .map_or_else(|_| "?".into(), |n| n.to_string())
            ))
        })?;
        parsed.push(
            session_from_py(session, &limits)
                .map_err(|e| PyValueError::new_err(format!("sessions[{index}]: {e}")))?,
        );
    }
    task(
        async move { import_all(&engine, parsed).await },
        |py, done| Ok(done.to_py(py)?.into_any().unbind()),
    )
}

/// `copy_sessions(target, cursor, limit)`: one page from this store into
/// `target`'s, never as Python objects. Returns (sessions read, counts, next cursor).
pub(crate) fn copy_sessions(
    engine: Arc<Engine>,
    target: Arc<Engine>,
    cursor: Option<&Bound<'_, PyAny>>,
    limit: Option<&Bound<'_, PyAny>>,
) -> PyResult<Task> {
    let (cursor, limit) = (cursor_arg(cursor)?, limit_arg(limit)?);
    task(
        async move {
            let page = engine.export_page(&cursor, limit).await?;
            let read = page.sessions.len();
            let done = import_all(&target, page.sessions).await?;
            Ok((read, done, page.next))
        },
        |py, (read, done, next)| {
            let next = cursor_to_py(py, next)?;
            Ok((read, done.to_py(py)?, next)
                .into_pyobject(py)?
                .into_any()
                .unbind())
        },
    )
}

/// An exported session as a JSON-ready dict: the key's hex (never a token),
/// the user, the data, the version and every time in milliseconds since the epoch.
fn session_to_py<'py>(
    py: Python<'py>,
    key: &SessionKey,
    record: &SessionRecord,
) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    dict.set_item("key", key.to_hex())?;
    dict.set_item("user_id", &*record.user_id)?;
    let data = PyDict::new(py);
    fill_dict(&data, record.data.as_json())?;
    dict.set_item("data", data)?;
    dict.set_item("version", record.version)?;
    dict.set_item("created_at_ms", record.created_at.millis())?;
    dict.set_item("last_active_ms", record.last_active.millis())?;
    dict.set_item("expires_at_ms", record.expires_at.millis())?;
    dict.set_item("idle_timeout_ms", record.idle_timeout_ms)?;
    dict.set_item("sliding", record.sliding)?;
    dict.set_item(
        "absolute_expires_at_ms",
        record.absolute_expires_at.map(Timestamp::millis),
    )?;
    Ok(dict)
}

/// The dict [`session_to_py`] makes, back; a message naming the bad field otherwise.
fn session_from_py(
    dict: &Bound<'_, PyDict>,
    limits: &sessionmanager_core::DataLimits,
) -> std::result::Result<(SessionKey, SessionRecord), String> {
    let field = |name: &str| -> std::result::Result<Bound<'_, PyAny>, String> {
        dict.get_item(name)
            .ok()
            .flatten()
            .ok_or_else(|| format!("missing {name:?}"))
    };
    let int = |name: &str| -> std::result::Result<i64, String> {
        int_arg(&field(name)?, name).map_err(|e| e.to_string())
    };
    let key = field("key")?;
    let key = key
        .extract::<&str>()
        .ok()
        .and_then(SessionKey::from_hex)
        .ok_or("\"key\" must be 64 hex digits (a session key as exported)")?;
    let user_id: String = field("user_id")?
        .extract()
        .map_err(|_| "\"user_id\" must be a str".to_owned())?;
    let data = data_from_py(Some(&field("data")?), limits).map_err(|e| format!("data: {e}"))?;
    let version = u64::try_from(int("version")?)
        .ok()
        .filter(|v| *v >= 1)
        .ok_or("\"version\" must be at least 1")?;
    let sliding = field("sliding")?
        .extract::<bool>()
        .map_err(|_| "\"sliding\" must be a bool".to_owned())?;
    let absolute = match field("absolute_expires_at_ms") {
        Ok(value) if !value.is_none() => Some(Timestamp(
            int_arg(&value, "absolute_expires_at_ms").map_err(|e| e.to_string())?,
        )),
        _ => None,
    };
    let idle_timeout_ms = int("idle_timeout_ms")?;
    if idle_timeout_ms <= 0 {
        return Err("\"idle_timeout_ms\" must be positive".into());
    }
    let record = SessionRecord {
        user_id: user_id.into(),
        data,
        version,
        created_at: Timestamp(int("created_at_ms")?),
        last_active: Timestamp(int("last_active_ms")?),
        expires_at: Timestamp(int("expires_at_ms")?),
        idle_timeout_ms,
        sliding,
        absolute_expires_at: absolute,
    };
    sessionmanager_core::check_import(&key, &record, limits).map_err(|e| e.to_string())?;
    Ok((key, record))
}
