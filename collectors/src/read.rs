//! Bounded, panic-free reading of host files: every collector reads through here.

use crate::CollectError;
use std::io::Read;
use std::path::Path;

/// Reads a whole file as UTF-8, refusing files larger than `limit` bytes.
pub fn text(path: &Path, limit: u64) -> Result<String, CollectError> {
    let bytes = bytes(path, limit)?;
    String::from_utf8(bytes)
        .map_err(|_| CollectError::Invalid(format!("{} is not valid UTF-8", path.display())))
}

/// Reads a whole file, refusing files larger than `limit` bytes (checked while reading, so
/// a file that grows, or a pseudo-file that reports size 0, is bounded too).
pub fn bytes(path: &Path, limit: u64) -> Result<Vec<u8>, CollectError> {
    let io = |e: std::io::Error| CollectError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut buf = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(io)?;
    if buf.len() as u64 > limit {
        return Err(CollectError::TooLarge {
            what: path.display().to_string(),
            limit,
        });
    }
    Ok(buf)
}

/// Reads a file if it exists: `Ok(None)` when it does not.
pub fn optional_text(path: &Path, limit: u64) -> Result<Option<String>, CollectError> {
    match text(path, limit) {
        Ok(s) => Ok(Some(s)),
        Err(CollectError::Io { .. }) if !path.exists() => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_files_over_the_limit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("big");
        std::fs::write(&p, vec![b'a'; 1025]).expect("write");
        assert!(matches!(text(&p, 1024), Err(CollectError::TooLarge { .. })));
        assert_eq!(text(&p, 2048).expect("read").len(), 1025);
    }

    #[test]
    fn invalid_utf8_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("bin");
        std::fs::write(&p, [0xff, 0xfe, 0x00]).expect("write");
        let err = text(&p, 100).expect_err("must fail");
        assert!(err.to_string().contains("UTF-8"), "{err}");
    }

    #[test]
    fn missing_file_is_none() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(
            optional_text(&dir.path().join("nope"), 10)
                .expect("ok")
                .is_none()
        );
    }
}
