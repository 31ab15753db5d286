//! The shared base collectors and the agent build on, so that no one reaches into another
//! collector's internals: the S3 connection ([`s3`]), HTTP body limits, query encoding and
//! error chains ([`http`]), durable file writes ([`durable`]) and os-release parsing
//! ([`os_release`]).
//! (Bounded file reading is [`crate::read`]; the error trail, commands and blocking helpers are
//! in the crate's `util` module.)

pub mod durable;
pub mod http;
pub mod os_release;
pub mod redact;
pub mod s3;

use serde_json::{Value, json};

/// Marks `fields` of a finished observation incomplete for `reason` (the observation's
/// `incomplete` map, field -> reasons; created when missing), for what is learnt after the
/// file work ([`crate::util::Errors`] does it before): a command that failed, an assumption.
/// Reasons are not repeated and at most 20 are kept per field, as `Errors` does.
pub fn mark_incomplete(obs: &mut Value, fields: &[&str], reason: impl Into<String>) {
    let reason = Value::from(reason.into());
    if !obs["incomplete"].is_object() {
        obs["incomplete"] = json!({});
    }
    for f in fields {
        let list = &mut obs["incomplete"][*f];
        if !list.is_array() {
            *list = json!([]);
        }
        if let Some(a) = list.as_array_mut()
            && !a.contains(&reason)
            && a.len() < 20
        {
            a.push(reason.clone());
        }
    }
}

/// Removes the marks of `fields` whose reason starts with `prefix` (an assumption that a
/// better source replaced), dropping fields left without a reason.
pub fn unmark_incomplete(obs: &mut Value, fields: &[&str], prefix: &str) {
    let Some(map) = obs["incomplete"].as_object_mut() else {
        return;
    };
    for f in fields {
        if let Some(a) = map.get_mut(*f).and_then(Value::as_array_mut) {
            a.retain(|r| !r.as_str().is_some_and(|r| r.starts_with(prefix)));
            if a.is_empty() {
                map.remove(*f);
            }
        }
    }
}
