//! Access control: accounts, sudo, SSH, Kubernetes.

pub mod accounts;
pub mod kubernetes;
pub mod ssh;
pub mod sudoers;
