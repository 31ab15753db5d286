//! Resilience evidence: whether the host's data survives the loss of a disk (software RAID)
//! or of the host itself (backup jobs and the repositories they write to).
//!
//! One domain for both because both answer the same audit question (can the information be
//! recovered?), for the controls on backup (A.8.13), redundancy (A.8.14) and ICT readiness
//! for business continuity (A.5.30); neither is a hardening setting.

pub mod backups;
pub mod raid;
