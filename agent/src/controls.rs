//! Control catalogs, collector-to-control mappings and the 27001 <-> 42001 crosswalk, as data.
//!
//! Built-in catalogs (config/controls/) are compiled in, and each collector's default controls
//! come from its registration (`evident_collectors::REGISTRY`); users add frameworks of their own
//! (SOC 2, internal control IDs) as TOML files named in `agent.catalogs`. Control IDs are
//! edition-qualified everywhere: `ISO27001:2022/A.8.24`.

use crate::config::{Diagnostic, Source};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use toml::Spanned;

/// Built-in data files: (name shown in errors, text).
const BUILTIN_CATALOGS: &[(&str, &str)] = &[
    (
        "config/controls/iso27001-2022.toml",
        include_str!("../../config/controls/iso27001-2022.toml"),
    ),
    (
        "config/controls/iso42001-2023.toml",
        include_str!("../../config/controls/iso42001-2023.toml"),
    ),
    // Clauses 4-10 extend the frameworks loaded above.
    (
        "config/controls/iso27001-2022-clauses.toml",
        include_str!("../../config/controls/iso27001-2022-clauses.toml"),
    ),
    (
        "config/controls/iso42001-2023-clauses.toml",
        include_str!("../../config/controls/iso42001-2023-clauses.toml"),
    ),
];
const BUILTIN_CROSSWALKS: &[(&str, &str)] = &[
    (
        "config/controls/crosswalk.toml",
        include_str!("../../config/controls/crosswalk.toml"),
    ),
    (
        "config/controls/crosswalk-clauses.toml",
        include_str!("../../config/controls/crosswalk-clauses.toml"),
    ),
];

/// A framework (a catalog of controls).
#[derive(Debug, Clone, Serialize)]
pub struct Framework {
    /// `ISO27001:2022`.
    pub id: String,
    /// Human title.
    pub title: String,
}

/// One control.
#[derive(Debug, Clone, Serialize)]
pub struct Control {
    /// Qualified ID: `ISO27001:2022/A.8.24`.
    pub id: String,
    /// Framework ID.
    pub framework: String,
    /// The control's own ID within its framework: `A.8.24`.
    pub local_id: String,
    /// Title.
    pub title: String,
    /// Theme or objective group.
    pub group: String,
    /// Whether an agent can collect direct technical evidence for it.
    pub automatable: bool,
    /// A management-system clause (ISO clauses 4-10), not an Annex A control.
    pub clause: bool,
}

impl Control {
    /// `clause` or `control`, as `evident controls --json` and the report show it.
    pub fn kind(&self) -> &'static str {
        if self.clause { "clause" } else { "control" }
    }
}

/// A pair of controls that the same evidence supports.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrosswalkPair {
    /// ISO 27001 control (qualified).
    pub iso27001: String,
    /// ISO 42001 control (qualified).
    pub iso42001: String,
    /// Why the same evidence serves both.
    pub reason: String,
    /// Shared Secure Controls Framework IDs, if any.
    #[serde(default)]
    pub scf: Option<String>,
}

/// `[[mappings]]`: which controls a collector's evidence supports.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingDef {
    /// Collector id or kind.
    pub collector: String,
    /// Qualified control IDs.
    pub controls: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    framework: FrameworkDef,
    #[serde(default)]
    controls: Vec<ControlDef>,
    /// Management-system clauses. A file with clauses only may name a framework that is
    /// already loaded: it extends it (the clause catalogs beside the Annex A ones).
    #[serde(default)]
    clauses: Vec<ControlDef>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FrameworkDef {
    id: String,
    title: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ControlDef {
    id: String,
    title: String,
    #[serde(default)]
    group: String,
    #[serde(default)]
    automatable: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CrosswalkFile {
    #[serde(default)]
    pairs: Vec<CrosswalkPair>,
}

/// Every loaded framework, control, mapping and crosswalk pair.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    frameworks: Vec<Framework>,
    controls: BTreeMap<String, Control>,
    /// Control IDs in catalog order (A.5.1, A.5.2, ... A.5.10), as the standards list them.
    order: Vec<String>,
    enabled: BTreeSet<String>,
    mappings: BTreeMap<String, BTreeSet<String>>,
    crosswalk: Vec<CrosswalkPair>,
}

fn parse<T: for<'de> Deserialize<'de>>(src: &Source<'_>, errs: &mut Vec<Diagnostic>) -> Option<T> {
    let doc = match src.parse() {
        Ok(d) => d,
        Err(d) => {
            errs.push(d);
            return None;
        }
    };
    let value = toml::Spanned::new(doc.span(), toml::de::DeValue::Table(doc.into_inner()));
    src.deserialize_all(errs, "", &value, |v| {
        T::deserialize(toml::de::ValueDeserializer::from(v))
    })
}

impl Catalog {
    /// The built-in catalogs, mappings and crosswalk. Errors in them are bugs (tests prove
    /// there are none) and are reported like any config error.
    pub fn builtin_checked(errs: &mut Vec<Diagnostic>) -> Catalog {
        let mut c = Catalog::default();
        for (name, text) in BUILTIN_CATALOGS {
            c.load_text(&Source::new(*name, text), errs);
        }
        let all: Vec<String> = c.frameworks.iter().map(|f| f.id.clone()).collect();
        c.set_enabled(&all);
        // Each collector's default controls come from its registration.
        for reg in evident_collectors::REGISTRY {
            for id in reg.controls {
                if c.controls.contains_key(*id) {
                    c.mappings
                        .entry(reg.kind.to_string())
                        .or_default()
                        .insert((*id).to_string());
                } else {
                    errs.push(Diagnostic {
                        file: format!("collectors registry ({})", reg.kind),
                        line: 0,
                        key: "controls".into(),
                        message: format!("unknown control `{id}`: not in any loaded catalog"),
                    });
                }
            }
        }
        for (name, text) in BUILTIN_CROSSWALKS {
            let src = Source::new(*name, text);
            if let Some(file) = parse::<CrosswalkFile>(&src, errs) {
                for p in &file.pairs {
                    for id in [&p.iso27001, &p.iso42001] {
                        if !c.controls.contains_key(id) {
                            errs.push(src.at(None, "pairs", format!("unknown control `{id}`")));
                        }
                    }
                }
                c.crosswalk.extend(file.pairs);
            }
        }
        c
    }

    /// The built-in catalogs (see [`Catalog::builtin_checked`]).
    pub fn builtin() -> Catalog {
        let mut errs = Vec::new();
        Catalog::builtin_checked(&mut errs)
    }

    /// Loads a user catalog file.
    pub fn load_file(&mut self, path: &Path, errs: &mut Vec<Diagnostic>) {
        let name = path.display().to_string();
        match crate::config::read_config_file(path) {
            Ok(text) => self.load_text(&Source::new(name, &text), errs),
            Err(e) => errs.push(Diagnostic {
                file: name,
                line: 0,
                key: String::new(),
                message: format!("cannot read catalog: {e}"),
            }),
        }
    }

    fn load_text(&mut self, src: &Source<'_>, errs: &mut Vec<Diagnostic>) {
        let Some(file) = parse::<CatalogFile>(src, errs) else {
            return;
        };
        let fw = file.framework;
        if !fw.id.contains(':') || fw.id.contains('/') {
            errs.push(src.at(
                None,
                "framework.id",
                format!(
                    "`{}` must be edition-qualified like `SOC2:2017` and contain no `/`",
                    fw.id
                ),
            ));
            return;
        }
        let extends = self.has_framework(&fw.id);
        if extends && !file.controls.is_empty() {
            errs.push(src.at(
                None,
                "framework.id",
                format!(
                    "framework `{}` is already loaded (a second file for it may add `[[clauses]]` only)",
                    fw.id
                ),
            ));
            return;
        }
        let entries = file
            .controls
            .into_iter()
            .map(|c| (c, false))
            .chain(file.clauses.into_iter().map(|c| (c, true)));
        for (c, clause) in entries {
            let id = format!("{}/{}", fw.id, c.id);
            if self.controls.contains_key(&id) {
                errs.push(src.at(None, "clauses", format!("`{id}` is defined twice")));
                continue;
            }
            self.order.push(id.clone());
            self.controls.insert(
                id.clone(),
                Control {
                    id,
                    framework: fw.id.clone(),
                    local_id: c.id,
                    title: c.title,
                    group: c.group,
                    automatable: c.automatable,
                    clause,
                },
            );
        }
        if !extends {
            self.frameworks.push(Framework {
                id: fw.id,
                title: fw.title,
            });
        }
    }

    /// Whether a framework is loaded.
    pub fn has_framework(&self, id: &str) -> bool {
        self.frameworks.iter().any(|f| f.id == id)
    }

    /// IDs of the loaded frameworks.
    pub fn framework_ids(&self) -> Vec<String> {
        self.frameworks.iter().map(|f| f.id.clone()).collect()
    }

    /// Loaded frameworks.
    pub fn frameworks(&self) -> &[Framework] {
        &self.frameworks
    }

    /// Restricts recorded control IDs to these frameworks.
    pub fn set_enabled(&mut self, frameworks: &[String]) {
        self.enabled = frameworks.iter().cloned().collect();
    }

    /// Whether a qualified control ID's framework is enabled.
    pub fn is_enabled(&self, control: &str) -> bool {
        control
            .split_once('/')
            .is_some_and(|(fw, _)| self.enabled.contains(fw))
    }

    /// A control by qualified ID.
    pub fn control(&self, id: &str) -> Option<&Control> {
        self.controls.get(id)
    }

    /// All controls, in catalog order.
    pub fn controls(&self) -> impl Iterator<Item = &Control> {
        self.order.iter().filter_map(|id| self.controls.get(id))
    }

    /// The crosswalk pairs.
    pub fn crosswalk(&self) -> &[CrosswalkPair] {
        &self.crosswalk
    }

    /// Validates a control ID reference; reports unknown IDs at their line.
    pub fn check_control(
        &self,
        src: &Source<'_>,
        id: &Spanned<String>,
        key: &str,
        errs: &mut Vec<Diagnostic>,
    ) -> Option<String> {
        let v = id.get_ref();
        if self.controls.contains_key(v) {
            return Some(v.clone());
        }
        let hint = if v.contains('/') {
            "not in any loaded catalog"
        } else {
            "control IDs are edition-qualified, e.g. `ISO27001:2022/A.8.24`"
        };
        errs.push(src.at(
            Some(id.span()),
            key,
            format!("unknown control `{v}`: {hint}"),
        ));
        None
    }

    /// Adds a mapping, validating its control IDs.
    pub fn add_mapping(
        &mut self,
        src: &Source<'_>,
        m: &Spanned<MappingDef>,
        errs: &mut Vec<Diagnostic>,
    ) {
        let def = m.get_ref();
        let ids: Vec<String> = def
            .controls
            .iter()
            .filter_map(|id| self.check_control(src, id, "mappings.controls", errs))
            .collect();
        self.mappings
            .entry(def.collector.clone())
            .or_default()
            .extend(ids);
    }

    /// Controls mapped to a collector (by id, then by kind), enabled frameworks only.
    pub fn mapped(&self, collector_id: &str, kind: &str) -> BTreeSet<String> {
        self.mappings
            .get(collector_id)
            .into_iter()
            .chain(self.mappings.get(kind))
            .flatten()
            .filter(|c| self.is_enabled(c))
            .cloned()
            .collect()
    }

    /// All mappings (collector -> controls), for `evident controls`.
    pub fn mappings(&self) -> &BTreeMap<String, BTreeSet<String>> {
        &self.mappings
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_catalogs_are_complete_and_consistent() {
        let mut errs = Vec::new();
        let c = Catalog::builtin_checked(&mut errs);
        assert!(errs.is_empty(), "{errs:#?}");
        let count = |fw: &str, clause: bool| {
            c.controls()
                .filter(|x| x.framework == fw && x.clause == clause)
                .count()
        };
        assert_eq!(count("ISO27001:2022", false), 93);
        assert_eq!(count("ISO42001:2023", false), 38);
        assert_eq!(count("ISO27001:2022", true), 34);
        assert_eq!(count("ISO42001:2023", true), 36);
        assert_eq!(c.frameworks().len(), 2);
        assert_eq!(
            c.control("ISO27001:2022/A.8.24").map(|x| x.title.as_str()),
            Some("Use of cryptography")
        );
        assert_eq!(
            c.control("ISO42001:2023/6.1.4")
                .map(|x| (x.title.as_str(), x.kind())),
            Some(("AI system impact assessment", "clause"))
        );
        // 18 Annex A pairs and 34 clause pairs (every clause both standards have).
        assert_eq!(c.crosswalk().len(), 18 + 34);
        let pair = |a: &str| {
            c.crosswalk()
                .iter()
                .find(|p| p.iso27001 == a)
                .map(|p| p.iso42001.as_str())
        };
        assert_eq!(pair("ISO27001:2022/6.1.2"), Some("ISO42001:2023/6.1.2"));
        assert!(
            !c.crosswalk()
                .iter()
                .any(|p| p.iso42001 == "ISO42001:2023/6.1.4")
        );
    }

    #[test]
    fn every_mapped_id_exists_in_a_catalog() {
        let c = Catalog::builtin();
        assert!(!c.mappings().is_empty());
        for (collector, ids) in c.mappings() {
            for id in ids {
                assert!(c.control(id).is_some(), "{collector} maps to unknown {id}");
            }
        }
    }

    #[test]
    fn a_user_framework_loads_from_a_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("soc2.toml");
        std::fs::write(&p, "[framework]\nid = \"SOC2:2017\"\ntitle = \"SOC 2\"\n\n[[controls]]\nid = \"CC6.1\"\ntitle = \"Logical access\"\n").expect("write");
        let mut c = Catalog::builtin();
        let mut errs = Vec::new();
        c.load_file(&p, &mut errs);
        assert!(errs.is_empty(), "{errs:#?}");
        assert!(c.control("SOC2:2017/CC6.1").is_some());
        // A second file for a loaded framework may add clauses, not controls.
        std::fs::write(&p, "[framework]\nid = \"SOC2:2017\"\ntitle = \"SOC 2\"\n\n[[clauses]]\nid = \"1.1\"\ntitle = \"Scope\"\n").expect("write");
        c.load_file(&p, &mut errs);
        assert!(errs.is_empty(), "{errs:#?}");
        assert_eq!(
            c.control("SOC2:2017/1.1").map(Control::kind),
            Some("clause")
        );
        c.load_file(&p, &mut errs);
        assert!(
            errs.iter().any(|e| e.message.contains("defined twice")),
            "{errs:#?}"
        );
        let q = dir.path().join("again.toml");
        std::fs::write(&q, "[framework]\nid = \"SOC2:2017\"\ntitle = \"SOC 2\"\n\n[[controls]]\nid = \"CC9\"\ntitle = \"x\"\n").expect("write");
        let mut errs = Vec::new();
        c.load_file(&q, &mut errs);
        assert!(
            errs.iter().any(|e| e.message.contains("already loaded")),
            "{errs:#?}"
        );
    }
}
