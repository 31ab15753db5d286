//! Host hardening evidence: the running kernel's security settings, setuid/setgid programs,
//! the PAM authentication stacks and the packet filter.

pub mod firewall;
pub mod pam;
pub mod setuid;
pub mod sysctl;
