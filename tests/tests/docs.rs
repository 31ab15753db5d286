//! The reference under docs/ is generated from the code (tests/src/docgen.rs): this test fails
//! when a committed page is out of date or a generated page is missing, and rewrites them all
//! with `EVIDENT_BLESS_DOCS=1`.

use std::path::Path;

#[test]
fn generated_reference_is_current() {
    let root = evident_tests::manifest_dir().join("..");
    let pages = evident_tests::docgen::generate(&root);
    let bless = std::env::var_os("EVIDENT_BLESS_DOCS").is_some();
    let mut stale = Vec::new();
    for (rel, text) in &pages {
        let path = root.join(rel);
        if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            if bless {
                std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
                std::fs::write(&path, text).expect("write");
            } else {
                stale.push(rel.display().to_string());
            }
        }
    }
    // A page of a collector that no longer exists is stale too.
    if let Ok(dir) = std::fs::read_dir(root.join("docs/collectors")) {
        for e in dir.flatten() {
            let rel = Path::new("docs/collectors").join(e.file_name());
            if !pages.contains_key(&rel) {
                if bless {
                    std::fs::remove_file(e.path()).expect("remove");
                } else {
                    stale.push(format!("{} (no such collector)", rel.display()));
                }
            }
        }
    }
    assert!(
        stale.is_empty(),
        "out of date: {stale:?}; run EVIDENT_BLESS_DOCS=1 cargo test -p evident-tests --test docs"
    );
}

#[test]
fn reference_covers_every_key_and_collector() {
    let root = evident_tests::manifest_dir().join("..");
    let pages = evident_tests::docgen::generate(&root);
    let config = &pages[Path::new("docs/reference/configuration.md")];
    for key in [
        "state_dir",
        "checkpoint_interval",
        "listen",
        "bucket",
        "object_lock",
        "schedule",
    ] {
        assert!(config.contains(&format!("| `{key}` |")), "{key} missing");
    }
    assert!(
        config.contains("| `state_dir` | path | `\".evident\"` |"),
        "{config}"
    );
    for reg in evident_collectors::REGISTRY {
        let page = &pages[&Path::new("docs/collectors").join(format!("{}.md", reg.kind))];
        assert!(
            page.contains("Never collects") || reg.kind == "exec",
            "{}",
            reg.kind
        );
        for c in reg.controls {
            assert!(page.contains(c), "{}: {c}", reg.kind);
        }
    }
    let ssh = &pages[Path::new("docs/collectors/access.ssh.md")];
    assert!(ssh.contains("access.ssh.no_root_password_login"));
}
