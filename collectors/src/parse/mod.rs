//! Small pure parsers of host files shared by several collectors (a parser one collector
//! uses lives in that collector's folder). Each takes text (or bytes) and returns plain data; none
//! reads files itself (the ones that follow includes take a loader), so each is unit-tested
//! on real-world samples and fuzzed with proptest.

pub mod glob;
pub mod keyval;
pub mod logging;
pub mod passwd;

/// Bounds of an include tree (sshd_config `Include`, sudoers `@include`/`@includedir`).
pub struct IncludeLimits {
    /// Deepest nesting.
    pub depth: usize,
    /// Most files.
    pub files: usize,
}

/// Enters one file of an include tree: refuses a loop, a tree too deep or too large, and a
/// missing or unreadable file, each recorded in `errors`. On success the file is pushed on
/// `files` and `stack` (the caller pops `stack` when done) and its text returned.
pub fn enter_include(
    path: &str,
    required: bool,
    read: impl FnOnce(&str) -> Result<Option<String>, String>,
    limits: &IncludeLimits,
    stack: &mut Vec<String>,
    files: &mut Vec<String>,
    errors: &mut Vec<String>,
) -> Option<String> {
    if stack.iter().any(|p| p == path) {
        errors.push(format!("{path}: include loop (already being read)"));
        return None;
    }
    if stack.len() >= limits.depth || files.len() >= limits.files {
        errors.push(format!("{path}: too many nested or included files"));
        return None;
    }
    let text = match read(path) {
        Ok(Some(t)) => t,
        Ok(None) => {
            if required {
                errors.push(format!("{path}: not found"));
            }
            return None;
        }
        Err(e) => {
            errors.push(e);
            return None;
        }
    };
    files.push(path.to_string());
    stack.push(path.to_string());
    Some(text)
}
