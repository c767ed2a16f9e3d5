//! Schema versions for stores that keep their layout in a database (SQLite,
//! PostgreSQL): the version each database records, and the steps that move
//! an older one forward. Each store runs the steps in its own transaction.

use crate::error::{Error, Result};

/// How a database reaches the layout this build writes: the first version's
/// script, then one step per later version, each applied in order. To change
/// a layout, append a step; never edit a released one, since databases in
/// the field were made by it.
#[derive(Debug)]
pub struct Schema {
    /// Creates version 1 where the store has no tables yet.
    pub create: &'static str,
    /// `steps[i]` moves a database from version `i + 1` to `i + 2`.
    pub steps: &'static [&'static str],
}

impl Schema {
    /// The version a database has once every step has run.
    pub fn version(&self) -> i64 {
        1 + self.steps.len() as i64
    }

    /// The version to migrate from, given the one the database records
    /// (`found`); refuses a newer or unknown one. `subject` names the
    /// database in messages (a file's path, or "the pysessionmanager tables
    /// in schema \"public\"").
    pub fn current(&self, found: Option<i64>, subject: &str) -> Result<i64> {
        let target = self.version();
        match found {
            Some(v) if (1..=target).contains(&v) => Ok(v),
            Some(newer) if newer > target => Err(Error::NewerSchema {
                subject: subject.to_owned(),
                found: newer,
                supported: target,
            }),
            other => Err(Error::Store(
                format!(
                    "{subject}: unknown pysessionmanager schema version ({other:?}); \
                     it may be damaged"
                )
                .into(),
            )),
        }
    }

    /// The steps still to run from version `current`, each with the version
    /// it starts from.
    pub fn steps_from(&self, current: i64) -> impl Iterator<Item = (i64, &'static str)> {
        let done = usize::try_from(current - 1).unwrap_or(0);
        (current..).zip(self.steps.iter().skip(done).copied())
    }

    /// The error for the step from version `from` failing with `cause`; the
    /// transaction around the steps leaves the database at `current`.
    pub fn step_failed(
        subject: &str,
        from: i64,
        current: i64,
        cause: impl std::error::Error + Send + Sync + 'static,
    ) -> Error {
        let message = format!(
            "{subject}: migrating the schema from version {from} to \
             {} failed, and it was left at version {current}: {cause}",
            from + 1
        );
        Error::store(message, cause)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V3: Schema = Schema {
        create: "create",
        steps: &["to 2", "to 3"],
    };

    #[test]
    fn steps_run_from_the_recorded_version() {
        assert_eq!(V3.version(), 3);
        let steps = |v| V3.steps_from(v).collect::<Vec<_>>();
        assert_eq!(steps(1), [(1, "to 2"), (2, "to 3")]);
        assert_eq!(steps(2), [(2, "to 3")]);
        assert_eq!(steps(3), []);
    }

    #[test]
    fn a_newer_or_unknown_version_is_refused_by_name() {
        assert_eq!(V3.current(Some(2), "db").unwrap(), 2);
        let newer = V3.current(Some(4), "db").unwrap_err().to_string();
        assert!(
            newer.contains(
                "db: written by a newer pysessionmanager (schema version 4; this one reads up to 3)"
            ),
            "{newer}"
        );
        for unknown in [None, Some(0), Some(-1)] {
            let err = V3.current(unknown, "db").unwrap_err().to_string();
            assert!(
                err.contains("unknown pysessionmanager schema version"),
                "{err}"
            );
        }
    }
}
