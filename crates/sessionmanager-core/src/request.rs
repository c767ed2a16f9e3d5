//! The rule every web integration follows to write back what one request did
//! to its session: axum's layer, and Flask, Starlette and Django through the
//! Python binding. It says which store call a request's end needs and which
//! keys the request changed; the compare-and-set, and re-applying those keys
//! over a concurrent write, are [`SessionManager::apply_changes`].
//!
//! [`SessionManager::apply_changes`]: crate::SessionManager::apply_changes

use serde_json::{Map, Value};

/// What writing back a request's session takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SaveStep<K> {
    /// Nothing: the request failed (a server error), changed nothing, or is
    /// a visitor without a stored session whose data is empty (an empty
    /// visitor session is never stored).
    Nothing,
    /// A visitor's first data: store it in a new session.
    Create,
    /// The request cleared the data (a logout, a reset): end the session.
    End,
    /// Write the data with [`SessionManager::apply_changes`], re-applying
    /// these keys (set, changed or removed, in that order) over whatever a
    /// concurrent request wrote.
    ///
    /// [`SessionManager::apply_changes`]: crate::SessionManager::apply_changes
    Apply(Vec<K>),
}

/// Session data as an integration holds it: top-level keys with values it
/// can compare (a JSON object in Rust, a `dict` in Python).
pub trait RequestData {
    /// A key, as the integration names it.
    type Key;
    /// What comparing two values may fail with (a Python `__eq__` may raise).
    type Error;

    /// The keys, in the data's order.
    fn keys(&self) -> Vec<Self::Key>;
    /// Whether `key` is present.
    fn contains(&self, key: &Self::Key) -> bool;
    /// Whether `key`, present in both, holds equal values in `self` and `other`.
    fn same_at(&self, other: &Self, key: &Self::Key) -> Result<bool, Self::Error>;
}

/// What a request's end needs, given whether it `failed` (a server error),
/// whether it is tied to a stored session (`stored_session`), the data as
/// stored when the request last read or wrote it, and the data it holds now.
pub fn save_step<D: RequestData>(
    failed: bool,
    stored_session: bool,
    stored: &D,
    current: &D,
) -> Result<SaveStep<D::Key>, D::Error> {
    if failed {
        return Ok(SaveStep::Nothing);
    }
    let current_keys = current.keys();
    if !stored_session {
        return Ok(if current_keys.is_empty() {
            SaveStep::Nothing
        } else {
            SaveStep::Create
        });
    }
    let kept = current_keys.len();
    let mut changed = Vec::new();
    for key in current_keys {
        if !stored.contains(&key) || !current.same_at(stored, &key)? {
            changed.push(key);
        }
    }
    changed.extend(
        stored
            .keys()
            .into_iter()
            .filter(|key| !current.contains(key)),
    );
    Ok(match (changed.is_empty(), kept) {
        (true, _) => SaveStep::Nothing,
        (false, 0) => SaveStep::End,
        (false, _) => SaveStep::Apply(changed),
    })
}

impl RequestData for Map<String, Value> {
    type Key = String;
    type Error = std::convert::Infallible;

    fn keys(&self) -> Vec<String> {
        Map::keys(self).cloned().collect()
    }

    fn contains(&self, key: &String) -> bool {
        self.contains_key(key)
    }

    fn same_at(&self, other: &Self, key: &String) -> Result<bool, Self::Error> {
        Ok(self.get(key) == other.get(key))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn map(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    fn step(failed: bool, session: bool, stored: Value, current: Value) -> SaveStep<String> {
        let Ok(step) = save_step(failed, session, &map(stored), &map(current));
        step
    }

    #[test]
    fn each_kind_of_request_end() {
        let (empty, some) = (json!({}), json!({"a": 1}));
        assert_eq!(
            step(true, true, empty.clone(), some.clone()),
            SaveStep::Nothing
        );
        assert_eq!(
            step(false, false, empty.clone(), empty.clone()),
            SaveStep::Nothing
        );
        assert_eq!(
            step(false, false, empty.clone(), some.clone()),
            SaveStep::Create
        );
        assert_eq!(
            step(false, true, some.clone(), some.clone()),
            SaveStep::Nothing
        );
        assert_eq!(
            step(false, true, some.clone(), empty.clone()),
            SaveStep::End
        );
        assert_eq!(step(false, true, empty.clone(), empty), SaveStep::Nothing);
    }

    #[test]
    fn the_keys_set_changed_or_removed_and_no_others() {
        let stored = json!({"same": [1], "changed": 1, "removed": true});
        let current = json!({"same": [1], "changed": 2, "new": null});
        assert_eq!(
            step(false, true, stored, current),
            SaveStep::Apply(vec!["changed".into(), "new".into(), "removed".into()])
        );
    }
}
