//! Every manager operation as a [`Task`]: its arguments checked and owned,
//! the engine's future, and how its result becomes a Python object. The
//! synchronous manager runs a task on the caller's thread ([`run_task`]);
//! the asynchronous one hands it to the store's executor (`aio`). Argument
//! errors are raised before anything runs, the same way for both.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use pyo3::IntoPyObjectExt;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};
use sessionmanager_core::{ApplyOutcome, CreateOptions, RateLimit, Result};

use crate::convert::{
    basis_arg, data_from_py, dict_arg, fill_dict, int_arg, key_items, optional_bool,
    optional_seconds, positive_int, required_data, session_id_arg, str_arg,
};
use crate::errors::IntoPyResult;
use crate::fork::Engine;
use crate::ratelimit::RateLimitResult;
use crate::session::{self, SessionMeta};

/// A finished call's result, made into a Python object where the GIL is held.
pub(crate) type Outcome = Box<dyn FnOnce(Python<'_>) -> PyResult<Py<PyAny>> + Send>;

/// A checked call, ready for an executor: it yields its [`Outcome`].
pub(crate) type Task = Pin<Box<dyn Future<Output = Outcome> + Send>>;

/// The task of the engine's `future`, whose value `finish` turns into Python.
pub(crate) fn task<T: Send + 'static>(
    future: impl Future<Output = Result<T>> + Send + 'static,
    finish: impl FnOnce(Python<'_>, T) -> PyResult<Py<PyAny>> + Send + 'static,
) -> PyResult<Task> {
    Ok(Box::pin(async move {
        let result = future.await;
        Box::new(move |py: Python<'_>| finish(py, result.py(py)?)) as Outcome
    }))
}

/// Runs `task` on this thread, with the GIL released while it works.
pub(crate) fn run_task(py: Python<'_>, task: Task) -> PyResult<Py<PyAny>> {
    let outcome = crate::manager::run(py, async move { Ok(task.await) })?;
    outcome(py)
}

/// A Python object from a plain value.
fn object<T>(py: Python<'_>, value: T) -> PyResult<Py<PyAny>>
where
    T: for<'py> IntoPyObject<'py>,
{
    value.into_py_any(py)
}

/// A session as the `Session` dict the package returns, with its id if known.
fn session_object(
    py: Python<'_>,
    found: sessionmanager_core::Session,
    session_id: Option<Py<PyAny>>,
) -> PyResult<Py<PyAny>> {
    Ok(session::to_py(py, found, session_id)?.unbind())
}

/// A session id argument, owned, with the object it came from (for the
/// `Session` it may become).
fn token_arg(value: &Bound<'_, PyAny>, name: &str) -> PyResult<(String, Py<PyAny>)> {
    Ok((
        session_id_arg(value, name)?.to_owned(),
        value.clone().unbind(),
    ))
}

pub(crate) fn create_session(
    engine: Arc<Engine>,
    user_id: &Bound<'_, PyAny>,
    data: Option<&Bound<'_, PyAny>>,
    expiration_time: Option<&Bound<'_, PyAny>>,
    absolute_timeout: Option<&Bound<'_, PyAny>>,
    sliding: Option<&Bound<'_, PyAny>>,
) -> PyResult<Task> {
    let py = user_id.py();
    let user_id = str_arg(user_id, "user_id")?.to_owned();
    let options = CreateOptions {
        idle_timeout_ms: optional_seconds(expiration_time, "expiration_time")?,
        sliding: optional_bool(sliding, "sliding")?,
        absolute_timeout_ms: optional_seconds(absolute_timeout, "absolute_timeout")?,
    };
    let data = data_from_py(data, &engine.config().limits).py(py)?;
    task(
        async move { engine.create(&user_id, data, options).await },
        |py, token| object(py, token.as_str()),
    )
}

pub(crate) fn get_session(engine: Arc<Engine>, session_id: &Bound<'_, PyAny>) -> PyResult<Task> {
    let (token, id) = token_arg(session_id, "session_id")?;
    task(async move { engine.get(&token).await }, |py, found| {
        session_object(py, found, Some(id))
    })
}

pub(crate) fn session_info(engine: Arc<Engine>, session_id: &Bound<'_, PyAny>) -> PyResult<Task> {
    let (token, id) = token_arg(session_id, "session_id")?;
    task(async move { engine.peek(&token).await }, |py, found| {
        session_object(py, found, Some(id))
    })
}

pub(crate) fn is_session_active(
    engine: Arc<Engine>,
    session_id: &Bound<'_, PyAny>,
) -> PyResult<Task> {
    // Never raises for a bad id: such an id names no session.
    let token = session_id_arg(session_id, "session_id").map(str::to_owned);
    task(
        async move {
            match token {
                Ok(token) => engine.is_active(&token).await,
                Err(_) => Ok(false),
            }
        },
        object,
    )
}

pub(crate) fn end_session(engine: Arc<Engine>, session_id: &Bound<'_, PyAny>) -> PyResult<Task> {
    let (token, _) = token_arg(session_id, "session_id")?;
    task(async move { engine.end(&token).await }, none)
}

pub(crate) fn update_session(
    engine: Arc<Engine>,
    session_id: &Bound<'_, PyAny>,
    data: &Bound<'_, PyAny>,
) -> PyResult<Task> {
    let (token, _) = token_arg(session_id, "session_id")?;
    let patch = required_data(data, &engine.config().limits).py(data.py())?;
    task(
        async move { engine.update(&token, &patch).await },
        |py, _| Ok(py.None()),
    )
}

pub(crate) fn set_session_data(
    engine: Arc<Engine>,
    session_id: &Bound<'_, PyAny>,
    data: &Bound<'_, PyAny>,
    expected_version: Option<&Bound<'_, PyAny>>,
) -> PyResult<Task> {
    let (token, _) = token_arg(session_id, "session_id")?;
    let expected = match expected_version.filter(|v| !v.is_none()) {
        Some(v) => Some(positive_int(v, "expected_version")?),
        None => None,
    };
    let data = required_data(data, &engine.config().limits).py(session_id.py())?;
    task(
        async move { engine.set_data(&token, data, expected).await },
        object,
    )
}

/// See `SessionManager.apply_changes`.
pub(crate) fn apply_changes(
    engine: Arc<Engine>,
    session_id: &Bound<'_, PyAny>,
    basis: &Bound<'_, PyAny>,
    stored: &Bound<'_, PyAny>,
    current: &Bound<'_, PyAny>,
    keys: &Bound<'_, PyAny>,
) -> PyResult<Task> {
    let py = session_id.py();
    let (token, id) = token_arg(session_id, "session_id")?;
    let limits = engine.config().limits;
    let stored = dict_arg(stored, "stored")?;
    let data = required_data(current, &limits).py(py)?;
    let keys = key_items(keys)?
        .iter()
        .map(|key| str_arg(key, "each key").map(str::to_owned))
        .collect::<PyResult<Vec<String>>>()?;
    // What the changed keys held when the request read them.
    let base = PyDict::new(py);
    for key in &keys {
        if let Some(value) = stored.get_item(key)? {
            base.set_item(key, value)?;
        }
    }
    let base = required_data(&base, &limits).py(py)?;
    let basis = basis_arg(basis, &data)?;
    let sent = data.clone();
    task(
        async move {
            let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
            engine
                .apply_changes(&token, basis, data, &keys, &base)
                .await
        },
        move |py, outcome| {
            let ApplyOutcome::Saved(written) = outcome else {
                return Ok(py.None());
            };
            let merged = if written.record.data == sent {
                py.None()
            } else {
                let dict = PyDict::new(py);
                fill_dict(&dict, written.record.data.as_json())?;
                dict.into_any().unbind()
            };
            let meta = Bound::new(py, SessionMeta::of(written, Some(id)))?;
            Ok(PyTuple::new(py, [meta.into_any().unbind(), merged])?
                .into_any()
                .unbind())
        },
    )
}

pub(crate) fn increment(
    engine: Arc<Engine>,
    session_id: &Bound<'_, PyAny>,
    key: &Bound<'_, PyAny>,
    by: Option<&Bound<'_, PyAny>>,
) -> PyResult<Task> {
    let (token, _) = token_arg(session_id, "session_id")?;
    let key = str_arg(key, "key")?.to_owned();
    let by = match by {
        Some(by) => int_arg(by, "by")?,
        None => 1,
    };
    task(
        async move { engine.increment(&token, &key, by).await },
        object,
    )
}

pub(crate) fn append(
    engine: Arc<Engine>,
    session_id: &Bound<'_, PyAny>,
    key: &Bound<'_, PyAny>,
    value: &Bound<'_, PyAny>,
) -> PyResult<Task> {
    let py = session_id.py();
    let (token, _) = token_arg(session_id, "session_id")?;
    let key_text = str_arg(key, "key")?.to_owned();
    // Checked as the data it becomes part of, so a refusal names its path.
    let holder = PyDict::new(py);
    holder.set_item(key, PyList::new(py, [value])?)?;
    let checked = data_from_py(Some(holder.as_any()), &engine.config().limits).py(py)?;
    let item = match checked.to_map().remove(&key_text) {
        Some(serde_json::Value::Array(mut list)) if list.len() == 1 => list.remove(0),
        _ => unreachable!("the holder has the one key, holding a list of one item"),
    };
    task(
        async move { engine.append(&token, &key_text, &item).await },
        object,
    )
}

pub(crate) fn rotate_session(engine: Arc<Engine>, session_id: &Bound<'_, PyAny>) -> PyResult<Task> {
    let (token, _) = token_arg(session_id, "session_id")?;
    task(async move { engine.rotate(&token).await }, |py, new| {
        object(py, new.as_str())
    })
}

pub(crate) fn touch(engine: Arc<Engine>, session_id: &Bound<'_, PyAny>) -> PyResult<Task> {
    let (token, _) = token_arg(session_id, "session_id")?;
    task(async move { engine.touch(&token).await }, none)
}

pub(crate) fn list_sessions(engine: Arc<Engine>, user_id: &Bound<'_, PyAny>) -> PyResult<Task> {
    let user_id = str_arg(user_id, "user_id")?.to_owned();
    task(
        async move { engine.list_user(&user_id).await },
        |py, sessions| {
            let list = PyList::empty(py);
            for found in sessions {
                list.append(session::to_py(py, found, None)?)?;
            }
            Ok(list.into_any().unbind())
        },
    )
}

pub(crate) fn end_session_by_key(
    engine: Arc<Engine>,
    user_id: &Bound<'_, PyAny>,
    key: &Bound<'_, PyAny>,
) -> PyResult<Task> {
    let user_id = str_arg(user_id, "user_id")?.to_owned();
    let key = str_arg(key, "key")?.to_owned();
    task(
        async move { engine.end_session_by_key(&user_id, &key).await },
        object,
    )
}

pub(crate) fn end_any_session_by_key(
    engine: Arc<Engine>,
    key: &Bound<'_, PyAny>,
) -> PyResult<Task> {
    let key = str_arg(key, "key")?.to_owned();
    task(
        async move { engine.end_any_session_by_key(&key).await },
        object,
    )
}

pub(crate) fn end_user_sessions(
    engine: Arc<Engine>,
    user_id: &Bound<'_, PyAny>,
    except_session: Option<&Bound<'_, PyAny>>,
) -> PyResult<Task> {
    let user_id = str_arg(user_id, "user_id")?.to_owned();
    let keep = match except_session.filter(|s| !s.is_none()) {
        Some(s) => Some(session_id_arg(s, "except_session")?.to_owned()),
        None => None,
    };
    task(
        async move { engine.end_user(&user_id, keep.as_deref()).await },
        object,
    )
}

pub(crate) fn purge_expired(engine: Arc<Engine>) -> PyResult<Task> {
    task(async move { engine.purge_expired().await }, |py, n| {
        object(py, n)
    })
}

pub(crate) fn count(engine: Arc<Engine>) -> PyResult<Task> {
    task(async move { engine.count().await }, object)
}

pub(crate) fn hit_rate_limit(
    engine: Arc<Engine>,
    limit: RateLimit,
    key: &Bound<'_, PyAny>,
) -> PyResult<Task> {
    let key = str_arg(key, "key")?.to_owned();
    task(
        async move { engine.hit_rate_limit(&limit, &key).await },
        |py, decision| object(py, RateLimitResult::from(decision)),
    )
}

/// `None`, for calls that return nothing.
fn none(py: Python<'_>, (): ()) -> PyResult<Py<PyAny>> {
    Ok(py.None())
}
