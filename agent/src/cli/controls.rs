//! `evident controls`: the controls with the collectors and checks that evidence them.

use crate::config::Config;
use std::path::Path;
use std::process::ExitCode;

/// The arguments of `evident controls`.
#[derive(clap::Args)]
pub struct Args {
    /// Only this framework (e.g. ISO42001:2023).
    #[arg(long)]
    pub framework: Option<String>,
    /// JSON output.
    #[arg(long)]
    pub json: bool,
}

/// Runs `evident controls`.
pub(super) fn run(args: &Args, config_path: Option<&Path>) -> anyhow::Result<ExitCode> {
    let Args { framework, json } = args;
    let config = config_or_exit!(config_path);
    if let Some(f) = framework
        && !config.catalog.has_framework(f)
    {
        eprintln!(
            "evident: unknown framework `{f}` (known: {})",
            config.catalog.framework_ids().join(", ")
        );
        return Ok(ExitCode::from(2));
    }
    print_controls(&config, framework.as_deref(), *json)?;
    Ok(ExitCode::SUCCESS)
}

fn print_controls(config: &Config, framework: Option<&str>, json: bool) -> anyhow::Result<()> {
    let catalog = &config.catalog;
    let mut rows = Vec::new();
    for c in catalog
        .controls()
        .filter(|c| framework.is_none_or(|f| c.framework == f))
    {
        let mut collectors: Vec<String> = config
            .collectors
            .iter()
            .filter(|e| match &e.controls {
                Some(list) => list.contains(&c.id),
                None => catalog.mapped(&e.id, &e.kind).contains(&c.id),
            })
            .map(|e| e.id.clone())
            .collect();
        let checks: Vec<String> = config
            .checks
            .all()
            .iter()
            .filter(|k| k.enabled && k.controls.contains(&c.id))
            .map(|k| k.id.clone())
            .collect();
        for k in config
            .checks
            .all()
            .iter()
            .filter(|k| k.enabled && k.controls.contains(&c.id))
        {
            if let Some(e) = config
                .collectors
                .iter()
                .find(|e| e.id == k.collector || e.kind == k.collector)
                && !collectors.contains(&e.id)
            {
                collectors.push(e.id.clone());
            }
        }
        rows.push(serde_json::json!({
            "id": c.id, "framework": c.framework, "kind": c.kind(), "title": c.title, "group": c.group,
            "automatable": c.automatable, "collectors": collectors, "checks": checks,
        }));
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    let evidenced = |kind: &str| {
        rows.iter()
            .filter(|r| r["kind"] == kind)
            .filter(|r| r["collectors"].as_array().is_some_and(|a| !a.is_empty()))
            .count()
    };
    let total = |kind: &str| rows.iter().filter(|r| r["kind"] == kind).count();
    for r in &rows {
        let list = |k: &str| {
            r[k].as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default()
        };
        let by = list("collectors");
        println!(
            "{:<24} {:<60} {}",
            r["id"].as_str().unwrap_or_default(),
            r["title"].as_str().unwrap_or_default(),
            if by.is_empty() {
                "-".to_string()
            } else {
                format!("{by} [{}]", list("checks"))
            }
        );
    }
    println!(
        "{} control(s), {} with evidence from the configured collectors; {} clause(s), {} with evidence",
        total("control"),
        evidenced("control"),
        total("clause"),
        evidenced("clause")
    );
    Ok(())
}
