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
