//! `evident controls`: every control of both catalogs, with the collectors and checks that
//! evidence it; a user's own framework loads from config without recompiling.

use evident_tests::evident;

#[test]
fn lists_every_control_with_its_evidence() {
    let dir = tempfile::tempdir().expect("tempdir");
    let r = evident(dir.path(), &["controls", "--json"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let rows: Vec<serde_json::Value> = serde_json::from_str(&r.stdout).expect("json");
    // Annex A controls and the management-system clauses 4-10 of both standards.
    assert_eq!(rows.len(), 93 + 38 + 34 + 36);
    let kind = |k: &str| rows.iter().filter(|r| r["kind"] == k).count();
    assert_eq!((kind("control"), kind("clause")), (93 + 38, 34 + 36));
    let c614 = rows
        .iter()
        .find(|r| r["id"] == "ISO42001:2023/6.1.4")
        .expect("6.1.4");
    assert_eq!(c614["title"], "AI system impact assessment");
    let a59 = rows
        .iter()
        .find(|r| r["id"] == "ISO27001:2022/A.5.9")
        .expect("A.5.9");
    assert_eq!(a59["collectors"], serde_json::json!(["system.inventory"]));
    assert!(
        a59["checks"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c == "system.inventory.os_identified"))
    );
    let r = evident(dir.path(), &["controls", "--framework", "ISO42001:2023"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stdout.contains("ISO42001:2023/A.4.5") && !r.stdout.contains("ISO27001:2022/"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("38 control(s)"), "{}", r.stdout);
    assert!(r.stdout.contains("36 clause(s)"), "{}", r.stdout);
    assert_eq!(
        evident(dir.path(), &["controls", "--framework", "ISO27001:2013"]).code,
        2
    );
}

#[test]
fn a_user_framework_is_mapped_and_recorded_without_recompiling() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("acme.toml"),
        "[framework]\nid = \"ACME:2026\"\ntitle = \"ACME internal controls\"\n\n[[controls]]\nid = \"SEC-7\"\ntitle = \"Servers are inventoried\"\ngroup = \"Assets\"\n",
    )
    .expect("catalog");
    std::fs::write(
        dir.path().join("evident.toml"),
        "[agent]\nframeworks = [\"ISO27001:2022\", \"ACME:2026\"]\ncatalogs = [\"acme.toml\"]\n\n[[mappings]]\ncollector = \"system.inventory\"\ncontrols = [\"ACME:2026/SEC-7\"]\n\n[[collectors]]\nname = \"system.inventory\"\n\n[[sinks]]\ntype = \"file\"\npath = \"store\"\n",
    )
    .expect("config");
    let r = evident(
        dir.path(),
        &[
            "controls",
            "--config",
            "evident.toml",
            "--framework",
            "ACME:2026",
            "--json",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    let rows: Vec<serde_json::Value> = serde_json::from_str(&r.stdout).expect("json");
    assert_eq!(
        rows[0]["collectors"],
        serde_json::json!(["system.inventory"])
    );
    let r = evident(
        dir.path(),
        &["collect", "system.inventory", "--config", "evident.toml"],
    );
    let p: serde_json::Value = serde_json::from_str(&r.stdout).expect("json");
    let controls: Vec<&str> = p["controls"]
        .as_array()
        .expect("controls")
        .iter()
        .filter_map(|c| c.as_str())
        .collect();
    assert!(controls.contains(&"ACME:2026/SEC-7"), "{controls:?}");
    // ISO 42001 is not enabled in this config, so none of its IDs are recorded.
    assert!(
        !controls.iter().any(|c| c.starts_with("ISO42001")),
        "{controls:?}"
    );
}
