//! The scaffolding of the AI model-registry tests (tests/tests/ai_registry.rs for
//! `ai.mlflow`, tests/tests/sagemaker.rs for `ai.sagemaker`): a config with one collector
//! into a file sink, one `collect` of it and its records.

use crate::{evident_with, records};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Writes `work/evident.toml`: state in `work/state`, the `collector` entry (TOML), a file
/// sink `work/store`. Returns its path.
pub fn write_config(work: &Path, collector: &str) -> PathBuf {
    let c = format!(
        "[agent]\nstate_dir = \"{}\"\n\n{collector}\n[[sinks]]\ntype = \"file\"\npath = \"{}\"\n",
        work.join("state").display(),
        work.join("store").display()
    );
    let path = work.join("evident.toml");
    std::fs::write(&path, c).expect("config");
    path
}

/// The records of collector `kind` in a store (not chain starts or checkpoints), in chain
/// order.
pub fn records_of(store: &Path, kind: &str) -> Vec<PathBuf> {
    let part = format!("-{kind}-");
    records(store)
        .into_iter()
        .filter(|p| p.to_string_lossy().contains(&part))
        .collect()
}

/// `evident --config CONFIG collect KIND` in `dir` with `env`; asserts it succeeded and
/// returns the record it printed.
pub fn collect(dir: &Path, config: &Path, kind: &str, env: &[(&str, &str)]) -> Value {
    let r = evident_with(
        dir,
        &["--config", config.to_str().expect("utf8"), "collect", kind],
        env,
    );
    assert_eq!(r.code, 0, "{}", r.all());
    serde_json::from_str(&r.stdout).expect("record JSON")
}
