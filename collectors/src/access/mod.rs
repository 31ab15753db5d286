//! Access control: accounts, sudo, SSH.

pub mod accounts;
pub mod ssh;
pub mod sudoers;
