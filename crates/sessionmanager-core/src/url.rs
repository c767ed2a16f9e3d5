//! What every store's URL parser shares: the scheme check, the query's
//! options, and the `sweep_interval_ms` option.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::redact_url;

/// What follows `<scheme>://` in `url`, when its scheme (any case) is one of
/// `schemes`; otherwise an [`Error::InvalidArgument`] saying what was expected.
pub fn after_scheme<'a>(url: &'a str, schemes: &[&str]) -> Result<&'a str> {
    let expected = || {
        let names: Vec<String> = schemes.iter().map(|s| format!("{s}://")).collect();
        Error::InvalidArgument(format!(
            "store URL {:?} does not start with {}",
            redact_url(url),
            names.join(" or ")
        ))
    };
    let (scheme, rest) = url.split_once("://").ok_or_else(expected)?;
    let scheme = scheme.to_ascii_lowercase();
    schemes
        .iter()
        .any(|s| *s == scheme)
        .then_some(rest)
        .ok_or_else(expected)
}

/// The `name=value` options of a URL's query (`value` empty when absent).
pub fn options(query: &str) -> impl Iterator<Item = (&str, &str)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
}

/// The `sweep_interval_ms` option: milliseconds, 0 for no sweeper.
pub fn sweep_interval(value: &str, scheme: &str) -> Result<Option<Duration>> {
    match value.parse::<u64>() {
        Ok(0) => Ok(None),
        Ok(ms) => Ok(Some(Duration::from_millis(ms))),
        Err(_) => Err(Error::InvalidArgument(format!(
            "{scheme} option sweep_interval_ms must be a \
             whole number of milliseconds, got {value:?}"
        ))),
    }
}
