//! Generates the reference pages under `docs/` from the code, so they cannot drift: the
//! configuration reference from the config structs (every key, its type, default and doc
//! comment) and one page per collector from its registration, module doc, option struct and
//! `checks.toml`. `tests/tests/docs.rs` fails when a committed page differs from what this
//! generates; `EVIDENT_BLESS_DOCS=1 cargo test -p evident-tests --test docs` rewrites them.
//!
//! The Rust sources are read with `syn` (as text, not compiled), so the pages show exactly
//! what the code says: a default is the expression the code uses, lightly tidied.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use syn::{Attribute, Expr, Fields, Item, ItemFn, ItemImpl, ItemStruct, Lit, Meta};

/// One key of a config table.
#[derive(Debug, Clone)]
pub struct Key {
    /// The key as written in TOML.
    pub name: String,
    /// Its Rust type (tidied).
    pub ty: String,
    /// The doc comment.
    pub doc: String,
    /// The default, or `None` when the key is required or has no value when absent.
    pub default: Option<String>,
    /// Whether the key must be given.
    pub required: bool,
}

/// A config table: a struct deriving `Deserialize`.
#[derive(Debug, Clone)]
pub struct Table {
    /// The struct's name.
    pub name: String,
    /// The struct's doc comment.
    pub doc: String,
    /// Its keys, in source order.
    pub keys: Vec<Key>,
}

fn doc_of(attrs: &[Attribute]) -> String {
    let mut lines = Vec::new();
    for a in attrs {
        if let Meta::NameValue(nv) = &a.meta
            && nv.path.is_ident("doc")
            && let Expr::Lit(l) = &nv.value
            && let Lit::Str(s) = &l.lit
        {
            lines.push(
                s.value()
                    .strip_prefix(' ')
                    .unwrap_or(&s.value())
                    .to_string(),
            );
        }
    }
    lines.join("\n").trim().to_string()
}

/// `serde(...)` words and name-values of an item or field.
fn serde_args(attrs: &[Attribute]) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    for a in attrs.iter().filter(|a| a.path().is_ident("serde")) {
        let _ = a.parse_nested_meta(|m| {
            let name = m
                .path
                .get_ident()
                .map(ToString::to_string)
                .unwrap_or_default();
            let value = match m.value() {
                Ok(v) => match v.parse::<Lit>() {
                    Ok(Lit::Str(s)) => Some(s.value()),
                    _ => None,
                },
                Err(_) => None,
            };
            out.push((name, value));
            Ok(())
        });
    }
    out
}

fn derives_deserialize(attrs: &[Attribute]) -> bool {
    attrs
        .iter()
        .filter(|a| a.path().is_ident("derive"))
        .any(|a| {
            let mut found = false;
            let _ = a.parse_nested_meta(|m| {
                if m.path
                    .segments
                    .last()
                    .is_some_and(|s| s.ident == "Deserialize")
                {
                    found = true;
                }
                Ok(())
            });
            found
        })
}

/// Token text with the spaces `to_string` puts everywhere taken out again.
fn tidy(tokens: &impl quote::ToTokens) -> String {
    let mut s = tokens.to_token_stream().to_string();
    for (a, b) in [
        (" :: ", "::"),
        (":: ", "::"),
        (" . ", "."),
        (" (", "("),
        ("( ", "("),
        (" )", ")"),
        (" ,", ","),
        (" [", "["),
        ("[ ", "["),
        (" ]", "]"),
        (" < ", "<"),
        ("< ", "<"),
        (" >", ">"),
        ("& ", "&"),
        (" !", "!"),
        (" ?", "?"),
    ] {
        while s.contains(a) {
            s = s.replace(a, b);
        }
    }
    s
}

/// The value of a product of integer literals (`15 * 60`), for durations in seconds.
fn product(s: &str) -> Option<u64> {
    s.split('*')
        .map(|p| p.trim().replace('_', "").parse::<u64>().ok())
        .try_fold(1u64, |acc, x| acc.checked_mul(x?))
}

fn human_secs(n: u64) -> String {
    for (unit, secs) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
        if n >= secs && n.is_multiple_of(secs) {
            return format!("{}{unit}", n / secs);
        }
    }
    format!("{n}s")
}

/// Turns the default expression of the code into what a user writes, where that is plain.
fn friendly(expr: &str) -> String {
    let mut e = expr.trim().to_string();
    for wrapper in ["Some(", "Dur("] {
        if let Some(inner) = e.strip_prefix(wrapper).and_then(|r| r.strip_suffix(')')) {
            e = inner.to_string();
        }
    }
    if let Some(inner) = e
        .strip_prefix("Duration::from_secs(")
        .and_then(|r| r.strip_suffix(')'))
        && let Some(n) = product(inner)
    {
        return format!("\"{}\"", human_secs(n));
    }
    if let Some(inner) = e
        .strip_prefix("Duration::from_millis(")
        .and_then(|r| r.strip_suffix(')'))
        && let Some(n) = product(inner)
    {
        return format!("\"{n}ms\"");
    }
    for wrapper in ["PathBuf::from(", "String::from(", "strings(&"] {
        if let Some(inner) = e.strip_prefix(wrapper).and_then(|r| r.strip_suffix(')')) {
            e = inner.to_string();
        }
    }
    e = e
        .replace(".into()", "")
        .replace(".to_string()", "")
        .replace(",]", "]");
    if let Some(addr) = e
        .strip_prefix("std::net::SocketAddr::from(([")
        .or_else(|| e.strip_prefix("SocketAddr::from((["))
        .and_then(|r| r.strip_suffix("))"))
        && let Some((ip, port)) = addr.split_once("],")
    {
        return format!("\"{}:{}\"", ip.replace(", ", "."), port.trim());
    }
    if let Some(inner) = e.strip_prefix("vec!") {
        e = inner.to_string();
    }
    // `["a", "b"].map(String::from).to_vec()` and the like: the list is what matters.
    if e.starts_with('[') {
        let mut depth = 0usize;
        for (i, ch) in e.char_indices() {
            match ch {
                '[' => depth += 1,
                ']' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        e.truncate(i + 1);
                        break;
                    }
                }
                _ => {}
            }
        }
    }
    if e == "Vec::new()" || e == "BTreeMap::new()" || e == "Default::default()" {
        return "empty".into();
    }
    if e == "None" {
        return "none".into();
    }
    if let Some(n) = product(&e)
        && e.contains('*')
    {
        return n.to_string();
    }
    if let Some((a, b)) = e.split_once("<<")
        && let (Ok(a), Ok(b)) = (a.trim().parse::<u64>(), b.trim().parse::<u32>())
        && let Some(n) = a.checked_shl(b)
    {
        return n.to_string();
    }
    e
}

/// Replaces a leading `NAME.iter()...` by the value of the file's `const NAME`, or of the
/// `const NAME` it imports (`use crate::a::b::NAME;`, read through `resolve`).
fn consts(file: &syn::File, expr: &str, resolve: Resolve<'_>) -> String {
    let name: String = expr
        .chars()
        .take_while(|c| c.is_ascii_uppercase() || *c == '_')
        .collect();
    if name.is_empty() || !expr[name.len()..].starts_with('.') {
        return expr.to_string();
    }
    const_in(file, &name)
        .or_else(|| {
            let module = imported_from(file, &name)?;
            let src = resolve(module.strip_prefix("crate::")?)?;
            const_in(&syn::parse_file(&src).ok()?, &name)
        })
        .unwrap_or_else(|| expr.to_string())
}

/// Reads the source of a module of the crate (`access::accounts`), for imported consts.
type Resolve<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The value of `const NAME` in `file`, as written.
fn const_in(file: &syn::File, name: &str) -> Option<String> {
    file.items.iter().find_map(|i| match i {
        Item::Const(c) if c.ident == name => Some(tidy(&c.expr).replacen('&', "", 1)),
        _ => None,
    })
}

/// The module `file` imports `name` from (`use crate::a::b::NAME;` gives `crate::a::b`).
fn imported_from(file: &syn::File, name: &str) -> Option<String> {
    fn walk(tree: &syn::UseTree, prefix: &mut Vec<String>, name: &str) -> Option<String> {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                let found = walk(&p.tree, prefix, name);
                prefix.pop();
                found
            }
            syn::UseTree::Name(n) if n.ident == name => Some(prefix.join("::")),
            syn::UseTree::Group(g) => g.items.iter().find_map(|t| walk(t, prefix, name)),
            _ => None,
        }
    }
    file.items.iter().find_map(|i| match i {
        Item::Use(u) => walk(&u.tree, &mut Vec::new(), name),
        _ => None,
    })
}

fn fn_body(file: &syn::File, name: &str) -> Option<String> {
    file.items.iter().find_map(|i| match i {
        Item::Fn(ItemFn { sig, block, .. }) if sig.ident == name => {
            block.stmts.last().map(|s| match s {
                syn::Stmt::Expr(e, None) => tidy(e),
                other => tidy(other),
            })
        }
        _ => None,
    })
}

/// Field initialisers of `impl Default for NAME { fn default() -> Self { NAME { .. } } }`.
fn default_impl(file: &syn::File, name: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for item in &file.items {
        let Item::Impl(ItemImpl {
            trait_: Some((_, path, _)),
            self_ty,
            items,
            ..
        }) = item
        else {
            continue;
        };
        if !path.is_ident("Default") || tidy(self_ty) != name {
            continue;
        }
        for it in items {
            let syn::ImplItem::Fn(f) = it else { continue };
            if let Some(syn::Stmt::Expr(Expr::Struct(s), _)) = f.block.stmts.last() {
                for fv in &s.fields {
                    if let syn::Member::Named(id) = &fv.member {
                        out.insert(id.to_string(), tidy(&fv.expr));
                    }
                }
            }
        }
    }
    out
}

/// What `Default::default()` of a type is, as a user would write it.
fn type_default(file: &syn::File, ty: &str) -> Option<String> {
    let ty = ty
        .strip_prefix("Spanned<")
        .and_then(|t| t.strip_suffix('>'))
        .unwrap_or(ty);
    if ty.starts_with("Option<") {
        return None;
    }
    if ty == "bool" {
        return Some("false".into());
    }
    if ty.starts_with("Vec<") || ty.starts_with("BTreeMap<") || ty == "String" {
        return Some("empty".into());
    }
    if ["u8", "u16", "u32", "u64", "usize", "i32", "i64"].contains(&ty) {
        return Some("0".into());
    }
    // An enum with a `#[default]` variant, written as serde's kebab or lower case.
    file.items.iter().find_map(|i| match i {
        Item::Enum(e) if e.ident == ty => e
            .variants
            .iter()
            .find(|v| v.attrs.iter().any(|a| a.path().is_ident("default")))
            .map(|v| {
                let mut out = String::new();
                for (i, ch) in v.ident.to_string().chars().enumerate() {
                    if ch.is_uppercase() && i > 0 {
                        out.push('-');
                    }
                    out.extend(ch.to_lowercase());
                }
                format!("\"{out}\"")
            }),
        _ => None,
    })
}

/// The type as a user reads it (`Option<Spanned<Dur>>` -> `duration`).
fn friendly_type(ty: &str) -> String {
    let mut t = ty.to_string();
    loop {
        let before = t.clone();
        for w in ["Option<", "Spanned<", "Box<"] {
            if let Some(inner) = t.strip_prefix(w).and_then(|r| r.strip_suffix('>')) {
                t = inner.to_string();
            }
        }
        if t == before {
            break;
        }
    }
    if let Some(inner) = t.strip_prefix("Vec<").and_then(|r| r.strip_suffix('>')) {
        return format!("list of {}", friendly_type(inner));
    }
    match t.as_str() {
        "Dur" | "Duration" => "duration".into(),
        "PathBuf" => "path".into(),
        "String" => "string".into(),
        "u8" | "u16" | "u32" | "u64" | "usize" | "i32" | "i64" => "integer".into(),
        "f64" => "number".into(),
        "std::net::SocketAddr" | "SocketAddr" => "address".into(),
        other => other.rsplit("::").next().unwrap_or(other).to_string(),
    }
}

/// Every struct with named fields deriving `Deserialize` in a source file, in order.
pub fn tables(src: &str) -> Vec<Table> {
    tables_with(src, &|_| None)
}

/// [`tables`] of a collectors-crate file under `root`: a default may name a const the file
/// imports from another module of the crate.
fn collector_tables(root: &Path, src: &str) -> Vec<Table> {
    tables_with(src, &|module| {
        let base = format!("collectors/src/{}", module.replace("::", "/"));
        [format!("{base}/mod.rs"), format!("{base}.rs")]
            .iter()
            .map(|rel| read(root, rel))
            .find(|text| !text.is_empty())
    })
}

fn tables_with(src: &str, resolve: Resolve<'_>) -> Vec<Table> {
    let Ok(file) = syn::parse_file(src) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for item in &file.items {
        let Item::Struct(ItemStruct {
            attrs,
            ident,
            fields: Fields::Named(named),
            ..
        }) = item
        else {
            continue;
        };
        if !derives_deserialize(attrs) {
            continue;
        }
        let container = serde_args(attrs);
        let container_default = container.iter().any(|(k, _)| k == "default");
        let defaults = if container_default {
            default_impl(&file, &ident.to_string())
        } else {
            BTreeMap::new()
        };
        let mut keys = Vec::new();
        for f in &named.named {
            let Some(id) = &f.ident else { continue };
            let args = serde_args(&f.attrs);
            if args.iter().any(|(k, _)| k == "skip") {
                continue;
            }
            let name = args
                .iter()
                .find(|(k, _)| k == "rename")
                .and_then(|(_, v)| v.clone())
                .unwrap_or_else(|| id.to_string());
            let ty = tidy(&f.ty);
            let optional = ty.starts_with("Option<");
            let field_default = args.iter().find(|(k, _)| k == "default");
            let default = match field_default {
                Some((_, Some(func))) => {
                    fn_body(&file, func).map(|b| friendly(&consts(&file, &b, resolve)))
                }
                Some((_, None)) => type_default(&file, &ty),
                None if container_default => defaults
                    .get(&id.to_string())
                    .map(|e| friendly(e))
                    .or_else(|| type_default(&file, &ty)),
                None => None,
            };
            let flatten = args.iter().any(|(k, _)| k == "flatten");
            keys.push(Key {
                name: if flatten { format!("({ty})") } else { name },
                required: !optional && field_default.is_none() && !container_default && !flatten,
                default: if optional && default.is_none() {
                    None
                } else {
                    default
                },
                ty,
                doc: doc_of(&f.attrs),
            });
        }
        out.push(Table {
            name: ident.to_string(),
            doc: doc_of(attrs),
            keys,
        });
    }
    out
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn table_md(t: &Table, out: &mut String) {
    if t.keys.is_empty() {
        return;
    }
    out.push_str("| key | type | default | meaning |\n|---|---|---|---|\n");
    for k in &t.keys {
        let default = match (&k.default, k.required) {
            (_, true) => "**required**".to_string(),
            (Some(d), _) => format!("`{}`", cell(d)),
            (None, _) => "none".to_string(),
        };
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} |",
            k.name,
            cell(&friendly_type(&k.ty)),
            default,
            cell(&k.doc)
        );
    }
    out.push('\n');
}

const HEADER: &str = "<!-- Generated from the code by tests/src/docgen.rs: do not edit. Regenerate with\n     EVIDENT_BLESS_DOCS=1 cargo test -p evident-tests --test docs -->\n\n";

fn read(root: &Path, rel: &str) -> String {
    std::fs::read_to_string(root.join(rel)).unwrap_or_default()
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "rs"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// `docs/reference/configuration.md`: every table of the agent's config.
pub fn configuration(root: &Path) -> String {
    let mut out = String::from(HEADER);
    out.push_str("# Configuration reference\n\n");
    out.push_str(
        "Evident reads one TOML file (`--config FILE`, else `/etc/evident/evident.toml` when it\n\
         exists, else built-in defaults). Unknown keys are errors; every error names the file, the\n\
         line and the key. `evident config check` validates a file without running anything.\n\
         A documented example is [`config/evident.toml`](../../config/evident.toml). Durations are\n\
         written `500ms`, `30s`, `15m`, `1h30m`, `2d`. Each collector's own options are on its page\n\
         under [collectors](../collectors/README.md).\n\n",
    );
    let mut files = rust_files(&root.join("agent/src/config"));
    files.extend(rust_files(&root.join("agent/src/sinks")));
    for path in files {
        let Ok(src) = std::fs::read_to_string(&path) else {
            continue;
        };
        for t in tables(&src) {
            if t.doc.is_empty() {
                continue;
            }
            let (title, rest) = t.doc.split_once('\n').unwrap_or((&t.doc, ""));
            let _ = writeln!(out, "## {}\n", title.trim_end_matches('.'));
            if !rest.trim().is_empty() {
                let _ = writeln!(out, "{}\n", rest.trim());
            }
            table_md(&t, &mut out);
        }
    }
    out
}

fn folder_of(reg: &evident_collectors::Registration) -> String {
    if reg.kind == "exec" {
        "collectors/src/exec".to_string()
    } else {
        format!("collectors/src/{}", reg.kind.replace('.', "/"))
    }
}

/// A collector's option tables: the structs documented as "`KIND` options", else every
/// deserialized struct of its `mod.rs`.
fn options_of(root: &Path, src: &str, reg: &evident_collectors::Registration) -> Vec<Table> {
    let all = collector_tables(root, src);
    let prefix = format!("`{}` options", reg.kind);
    if all.iter().any(|t| t.doc.starts_with(&prefix)) {
        all.into_iter()
            .filter(|t| t.doc.starts_with(&prefix))
            .collect()
    } else {
        all
    }
}

/// The first sentence of a doc comment, on one line.
fn first_sentence(doc: &str) -> String {
    let one = doc.replace('\n', " ");
    let mut from = 0;
    while let Some(i) = one[from..].find(". ").map(|i| i + from) {
        if !one[..i].ends_with("e.g") && !one[..i].ends_with("i.e") {
            return one[..=i].to_string();
        }
        from = i + 2;
    }
    one
}

const BEGIN: &str =
    "# --- collectors: generated from the registry by tests/src/docgen.rs (do not edit) ---";
const END: &str = "# --- end of generated collectors ---";

/// The `[[collectors]]` entries of the documented configs, one per registered kind (`exec`,
/// whose options are a program of the user's, is shown by hand after the block): enabled when the
/// built-in defaults run it, commented out otherwise, each option with its default.
pub fn collectors_block(root: &Path) -> String {
    let mut out = format!("{BEGIN}\n");
    for reg in evident_collectors::REGISTRY
        .iter()
        .filter(|r| r.kind != "exec")
    {
        let src = read(root, &format!("{}/mod.rs", folder_of(reg)));
        let off = if reg.default { "" } else { "# " };
        let _ = writeln!(
            out,
            "\n# {}: {}. Options and checks: docs/collectors/{}.md{}",
            reg.kind,
            reg.summary,
            reg.kind,
            if reg.default {
                ""
            } else {
                " (off until configured)"
            }
        );
        let _ = writeln!(out, "{off}[[collectors]]\n{off}name = \"{}\"", reg.kind);
        for t in options_of(root, &src, reg) {
            for k in &t.keys {
                let value = match (k.required, k.default.as_deref()) {
                    (true, _) => "...".to_string(),
                    (_, Some("empty")) if k.ty.contains("Vec<") => "[]".to_string(),
                    (_, Some("empty")) => "\"\"".to_string(),
                    (_, Some("none")) | (_, None) => "...".to_string(),
                    (_, Some(d)) => d.to_string(),
                };
                let what = if k.required {
                    "required: "
                } else if value == "..." {
                    "optional: "
                } else {
                    ""
                };
                let _ = writeln!(
                    out,
                    "# {} = {value}    # {what}{}",
                    k.name,
                    first_sentence(&k.doc)
                );
            }
        }
    }
    out.push_str(END);
    out
}

/// `text` with its generated collectors block replaced by `block` (unchanged without markers).
pub fn with_block(text: &str, block: &str) -> String {
    match (text.find(BEGIN), text.find(END)) {
        (Some(a), Some(b)) if a < b => {
            format!("{}{block}{}", &text[..a], &text[b + END.len()..])
        }
        _ => text.to_string(),
    }
}

/// The page of one collector.
pub fn collector(
    root: &Path,
    reg: &evident_collectors::Registration,
    control_title: &dyn Fn(&str) -> Option<String>,
) -> String {
    let folder = folder_of(reg);
    let src = read(root, &format!("{folder}/mod.rs"));
    let module_doc = syn::parse_file(&src)
        .map(|f| doc_of(&f.attrs))
        .unwrap_or_default();
    let mut out = String::from(HEADER);
    let mut summary = reg.summary.to_string();
    if let Some(first) = summary.get(..1) {
        summary.replace_range(..1, &first.to_uppercase());
    }
    let _ = writeln!(out, "# `{}`\n\n{summary}.\n", reg.kind);
    let yes = |b: bool| if b { "yes" } else { "no" };
    let _ = writeln!(
        out,
        "Source: [`{folder}/`](../../{folder}/). On in the built-in default config: {}. Observes the\nhost through `host_root`: {}. Several entries (each with its own `id`): {}.\n",
        yes(reg.default),
        yes(reg.host),
        yes(reg.multiple)
    );
    if !module_doc.is_empty() {
        let _ = writeln!(out, "{module_doc}\n");
    }
    out.push_str("## Controls evidenced by default\n\n");
    if reg.controls.is_empty() {
        out.push_str("None: give `controls = [...]` in the `[[collectors]]` entry.\n\n");
    }
    for c in reg.controls {
        let _ = writeln!(
            out,
            "- `{c}` {}",
            control_title(c).unwrap_or_else(|| "(unknown control)".into())
        );
    }
    if !reg.controls.is_empty() {
        out.push('\n');
    }
    out.push_str("## Options\n\nBesides the keys every `[[collectors]]` entry has (see the [configuration\nreference](../reference/configuration.md)):\n\n");
    let prefix = format!("`{}` options", reg.kind);
    let mut any = false;
    for t in &options_of(root, &src, reg) {
        if !t.keys.is_empty() {
            // A nested table (`[[collectors.x]]` entries) is introduced by its doc's first line.
            let nested = any;
            any = true;
            if (nested || !t.doc.starts_with(&prefix)) && !t.doc.is_empty() {
                let _ = writeln!(out, "{}\n", t.doc.lines().next().unwrap_or_default());
            }
            table_md(t, &mut out);
        }
    }
    if !any {
        out.push_str("None.\n\n");
    }
    out.push_str("## Built-in checks\n\n");
    if reg.checks.text.is_empty() {
        out.push_str("None (add your own under `[[checks]]`).\n");
        return out;
    }
    let _ = writeln!(
        out,
        "From [`{}`](../../{}); override or disable one by its `id` under `[[checks]]`.\n",
        reg.checks.file, reg.checks.file
    );
    out.push_str("| id | severity | passes when | controls |\n|---|---|---|---|\n");
    let parsed: toml::Table = toml::from_str(reg.checks.text).unwrap_or_default();
    for c in parsed
        .get("checks")
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
    {
        let s = |k: &str| c.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
        let controls: Vec<String> = c
            .get("controls")
            .and_then(|v| v.as_array())
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str())
            .map(|v| format!("`{v}`"))
            .collect();
        let sev = c
            .get("severity")
            .and_then(|v| v.as_str())
            .unwrap_or("medium");
        let _ = writeln!(
            out,
            "| `{}` | {sev} | {} | {} |",
            s("id"),
            cell(&s("title")),
            controls.join(", ")
        );
    }
    out
}

/// Every generated page: path relative to the repository root -> text.
pub fn generate(root: &Path) -> BTreeMap<PathBuf, String> {
    let catalog = evident::controls::Catalog::builtin();
    let title = |id: &str| catalog.control(id).map(|c| c.title.clone());
    let mut pages = BTreeMap::new();
    pages.insert(
        PathBuf::from("docs/reference/configuration.md"),
        configuration(root),
    );
    let mut index = String::from(HEADER);
    index.push_str(
        "# Collectors\n\nEvery built-in collector, from `REGISTRY` in `collectors/src/lib.rs`.\n\n",
    );
    index.push_str("| collector | observes | default | host |\n|---|---|---|---|\n");
    for reg in evident_collectors::REGISTRY {
        let file = format!("{}.md", reg.kind);
        let _ = writeln!(
            index,
            "| [`{}`]({file}) | {} | {} | {} |",
            reg.kind,
            cell(reg.summary),
            if reg.default { "yes" } else { "no" },
            if reg.host { "yes" } else { "no" }
        );
        pages.insert(
            PathBuf::from("docs/collectors").join(file),
            collector(root, reg, &title),
        );
    }
    pages.insert(PathBuf::from("docs/collectors/README.md"), index);
    let block = collectors_block(root);
    for config in ["config/evident.toml", "packaging/etc/evident.toml"] {
        pages.insert(
            PathBuf::from(config),
            with_block(&read(root, config), &block),
        );
    }
    pages
}
