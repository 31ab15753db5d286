//! Host hardening evidence: the running kernel's security settings, setuid/setgid programs,
//! the PAM authentication stacks, the packet filter and anti-malware.

pub mod antimalware;
pub mod firewall;
pub mod pam;
pub mod setuid;
pub mod sysctl;
