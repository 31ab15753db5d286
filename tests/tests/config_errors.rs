//! Broken configs: each fixture in tests/fixtures/config/ states the errors it must produce
//! (`# expect: LINE: key: message`); `evident config check` must report every one of them at
//! once, as `FILE:LINE: key: message`, and exit 2. `run` refuses the same config the same way.

use evident_tests::evident;

fn fixtures() -> Vec<std::path::PathBuf> {
    let dir = evident_tests::manifest_dir().join("fixtures/config");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("fixtures")
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    files
}

#[test]
fn every_broken_config_names_file_line_and_key_for_every_error() {
    let files = fixtures();
    assert!(files.len() >= 7);
    let cwd = tempfile::tempdir().expect("tempdir");
    for file in files {
        let text = std::fs::read_to_string(&file).expect("fixture");
        let expected: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# expect: "))
            .collect();
        assert!(
            !expected.is_empty(),
            "{} has no `# expect:` lines",
            file.display()
        );
        let path = file.to_str().expect("utf8");
        let r = evident(cwd.path(), &["config", "check", "--config", path]);
        assert_eq!(r.code, 2, "{}: {}", file.display(), r.all());
        let lines: Vec<&str> = r.stderr.lines().filter(|l| l.starts_with(path)).collect();
        for want in &expected {
            let prefix = format!("{path}:{want}");
            assert!(
                lines.iter().any(|l| l.starts_with(&prefix)),
                "{}: missing `{want}` in:\n{}",
                file.display(),
                r.stderr
            );
        }
        assert_eq!(
            lines.len(),
            expected.len(),
            "{}: unexpected extra errors:\n{}",
            file.display(),
            r.stderr
        );
        let run = evident(cwd.path(), &["run", "--once", "--config", path]);
        assert_eq!(
            run.code,
            2,
            "{}: run must refuse the config: {}",
            file.display(),
            run.all()
        );
    }
    assert_eq!(
        std::fs::read_dir(cwd.path()).expect("ls").count(),
        0,
        "a refused config must not write anything"
    );
}

#[test]
fn the_documented_default_config_checks_clean() {
    let cfg = evident_tests::manifest_dir().join("../config/evident.toml");
    let cwd = tempfile::tempdir().expect("tempdir");
    let r = evident(
        cwd.path(),
        &["config", "check", "--config", cfg.to_str().expect("utf8")],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    let defaults = evident_collectors::default_kinds().count();
    assert!(
        r.stdout
            .contains(&format!(": ok ({defaults} collector(s), 1 sink(s)")),
        "{}",
        r.stdout
    );
}

#[test]
fn a_missing_config_file_is_a_usage_error() {
    let cwd = tempfile::tempdir().expect("tempdir");
    let r = evident(cwd.path(), &["config", "check", "--config", "nope.toml"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr.starts_with("nope.toml:0: cannot read config"),
        "{}",
        r.stderr
    );
}
