//! Evidence: records (in-toto Statement v1), DSSE envelopes, keys, the hash chain, and
//! offline verification.

pub mod certificate;
pub mod chain;
pub mod continuity;
pub mod envelope;
pub mod keys;
pub mod record;
pub mod timestamp;
pub mod trust;
pub mod verify;
