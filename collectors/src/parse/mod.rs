//! Small pure parsers of host files. Each takes text (or bytes) and returns plain data; none
//! reads files itself (the ones that follow includes take a loader), so each is unit-tested
//! on real-world samples and fuzzed with proptest.

pub mod keyval;
pub mod logging;
pub mod packages;
pub mod passwd;
pub mod ssh_keys;
pub mod sshd;
pub mod storage;
pub mod sudoers;
