//! The time servers each daemon is configured with, following each program's own rules:
//! systemd-timesyncd's `NTP=` / `FallbackNTP=` assignments over its main file and drop-ins
//! (each assignment adds servers, an empty one resets the list), chrony's `server` / `pool`
//! / `peer` directives with `include`, `confdir` and `sourcedir`, and ntpd's.

use serde::Serialize;

/// What systemd-timesyncd is configured with, after every file it reads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Timesyncd {
    /// `NTP=`: the system servers, in order (an empty assignment reset the list).
    pub ntp: Vec<String>,
    /// `FallbackNTP=`: `None` when no server was ever assigned (the compiled-in list is used);
    /// an empty list when servers were assigned and then reset (no fallback at all).
    pub fallback_ntp: Option<Vec<String>>,
}

impl Timesyncd {
    /// Applies one file's `[Time]` assignments in order, as timesyncd does.
    pub fn apply(&mut self, text: &str) {
        for (section, key, value) in systemd_assignments(text) {
            if section != "Time" {
                continue;
            }
            // An empty FallbackNTP= before any server leaves the compiled-in list in place;
            // after one it empties the list (timesyncd 252).
            let list = match key.as_str() {
                "NTP" => &mut self.ntp,
                "FallbackNTP" if value.trim().is_empty() && self.fallback_ntp.is_none() => {
                    continue;
                }
                "FallbackNTP" => self.fallback_ntp.get_or_insert_with(Vec::new),
                _ => continue,
            };
            if value.trim().is_empty() {
                list.clear();
                continue;
            }
            for w in value.split_whitespace() {
                if !list.iter().any(|s| s == w) {
                    list.push(w.to_string());
                }
            }
        }
    }
}

/// The assignments of a systemd unit-style file in order: (section, key, value). Comment
/// lines start with `#` or `;`; a trailing backslash continues the line; keys are
/// case-sensitive; an assignment outside any section is ignored (as systemd does).
pub fn systemd_assignments(text: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let mut section: Option<String> = None;
    let mut joined = String::new();
    for raw in text.lines() {
        let raw = raw.trim_end_matches('\r');
        if joined.is_empty() {
            let t = raw.trim_start();
            if t.starts_with('#') || t.starts_with(';') {
                continue;
            }
        }
        if let Some(part) = raw.strip_suffix('\\') {
            joined.push_str(part);
            joined.push(' ');
            continue;
        }
        joined.push_str(raw);
        let line = std::mem::take(&mut joined);
        let l = line.trim();
        if l.is_empty() {
            continue;
        }
        if let Some(name) = l.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            section = Some(name.to_string());
            continue;
        }
        if let (Some(s), Some((k, v))) = (&section, l.split_once('=')) {
            out.push((s.clone(), k.trim().to_string(), v.trim().to_string()));
        }
    }
    out
}

/// One time source of chrony or ntpd.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Source {
    /// `server`, `pool`, `peer` (or `refclock` for chrony's reference clocks).
    pub kind: String,
    /// Host name or address (the driver for a refclock).
    pub address: String,
    /// Where it is configured (`file:line`).
    pub at: String,
}

/// What one chrony configuration line means for the sources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChronyLine {
    /// A time source.
    Source(Source),
    /// `include PATTERN`.
    Include(String),
    /// `confdir DIR...` (`*.conf` files).
    ConfDir(Vec<String>),
    /// `sourcedir DIR...` (`*.sources` files).
    SourceDir(Vec<String>),
    /// A line chronyd refuses (it then does not start): `file:line` and why.
    Invalid(String, String),
}

/// The lines of one chrony file that matter for its sources (chrony.conf(5): comments start
/// with `!`, `;`, `#` or `%`; directives are case-insensitive). In a `.sources` file only
/// `server`, `pool` and `peer` are allowed (`sources_file`).
pub fn chrony_lines(file: &str, text: &str, sources_file: bool) -> Vec<ChronyLine> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let l = raw.trim();
        if l.is_empty() || l.starts_with(['!', ';', '#', '%']) {
            continue;
        }
        let mut w = l.split_whitespace();
        let Some(directive) = w.next().map(str::to_ascii_lowercase) else {
            continue;
        };
        let args: Vec<String> = w.map(String::from).collect();
        let at = format!("{file}:{}", i + 1);
        match directive.as_str() {
            "server" | "pool" | "peer" => match args.first() {
                Some(a) => out.push(ChronyLine::Source(Source {
                    kind: directive,
                    address: a.clone(),
                    at,
                })),
                None if !sources_file => out.push(ChronyLine::Invalid(
                    at,
                    format!("`{directive}` without an address"),
                )),
                None => {}
            },
            "refclock" if !sources_file => {
                if let Some(a) = args.first() {
                    out.push(ChronyLine::Source(Source {
                        kind: directive,
                        address: a.clone(),
                        at,
                    }));
                }
            }
            "include" if !sources_file => match args.first() {
                Some(p) => out.push(ChronyLine::Include(p.clone())),
                None => out.push(ChronyLine::Invalid(at, "`include` without a path".into())),
            },
            "confdir" if !sources_file => out.push(ChronyLine::ConfDir(args)),
            "sourcedir" if !sources_file => out.push(ChronyLine::SourceDir(args)),
            _ => {}
        }
    }
    out
}

/// The files of a chrony `confdir` / `sourcedir` directive, in the order chrony reads them:
/// the names with `suffix` of all the directories, sorted, a name in an earlier directory
/// masking the same name in a later one; hidden names never match (chronyd globs
/// `DIR/*SUFFIX`). `listing` gives each directory's names.
pub fn chrony_dir_files(
    dirs: &[String],
    suffix: &str,
    mut listing: impl FnMut(&str) -> Vec<String>,
) -> Vec<String> {
    let mut by_name: std::collections::BTreeMap<String, String> = Default::default();
    for d in dirs {
        for n in listing(d)
            .into_iter()
            .filter(|n| n.ends_with(suffix) && !n.starts_with('.'))
        {
            let path = format!("{}/{n}", d.trim_end_matches('/'));
            by_name.entry(n).or_insert(path);
        }
    }
    by_name.into_values().collect()
}

/// ntpd's sources (`server`, `pool`, `peer`), with its `includefile` directives.
pub fn ntp_lines(file: &str, text: &str) -> (Vec<Source>, Vec<String>) {
    let (mut sources, mut includes) = (Vec::new(), Vec::new());
    for (i, raw) in text.lines().enumerate() {
        let l = raw.split('#').next().unwrap_or_default().trim();
        let mut w = l.split_whitespace();
        match w.next() {
            Some(d @ ("server" | "pool" | "peer")) => {
                if let Some(a) = w.next() {
                    sources.push(Source {
                        kind: d.to_string(),
                        address: a.to_string(),
                        at: format!("{file}:{}", i + 1),
                    });
                }
            }
            Some("includefile") => includes.extend(w.next().map(String::from)),
            _ => {}
        }
    }
    (sources, includes)
}

/// One line of `chronyc -c -n sources`: mode (`^` server, `=` peer, `#` local clock),
/// state (`*` selected, `+` combined, `-` not combined, `?` unusable, `x` falseticker,
/// `~` too variable), address, stratum, and the reach register.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChronySource {
    /// `^`, `=` or `#`.
    pub mode: String,
    /// `*`, `+`, `-`, `?`, `x`, `~`.
    pub state: String,
    /// Address (or refclock name).
    pub address: String,
    /// Stratum.
    pub stratum: Option<u32>,
    /// Reach register (octal as printed).
    pub reach: String,
}

/// Parses `chronyc -c -n sources` (CSV); `None` when a line is not understood.
pub fn chronyc_sources(text: &str) -> Option<Vec<ChronySource>> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split(',').collect();
        if f.len() < 6 {
            return None;
        }
        out.push(ChronySource {
            mode: f[0].to_string(),
            state: f[1].to_string(),
            address: f[2].to_string(),
            stratum: f[3].trim().parse().ok(),
            reach: f[5].to_string(),
        });
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn timesyncd_assignments_add_and_an_empty_one_resets() {
        let mut t = Timesyncd::default();
        t.apply("[Time]\nNTP=a.example b.example\nFallbackNTP=f.example\n");
        t.apply("# x\n[Time]\nNTP=\nNTP=c.example\n");
        t.apply("[Time]\nNTP=d.example c.example\n[Other]\nNTP=z\n");
        assert_eq!(t.ntp, vec!["c.example", "d.example"]);
        assert_eq!(t.fallback_ntp, Some(vec!["f.example".to_string()]));
        let mut t = Timesyncd::default();
        t.apply("NTP=outside\n[Time]\nntp=lowercase\nNTP=x \\\n  y\n");
        assert_eq!(t.ntp, vec!["x", "y"]);
        assert_eq!(t.fallback_ntp, None);
        // An empty FallbackNTP= first keeps the compiled-in list; after servers, clears it.
        let mut t = Timesyncd::default();
        t.apply("[Time]\nFallbackNTP=\n");
        assert_eq!(t.fallback_ntp, None);
        t.apply("[Time]\nFallbackNTP=f\nFallbackNTP=\n");
        assert_eq!(t.fallback_ntp, Some(vec![]));
    }

    #[test]
    fn chrony_directives() {
        let l = chrony_lines(
            "/etc/chrony/chrony.conf",
            "! c\nPool 2.debian.pool.ntp.org iburst\nsourcedir /run/chrony-dhcp /etc/chrony/sources.d\nconfdir /etc/chrony/conf.d\ninclude /etc/chrony/x/*.conf\nrefclock PHC /dev/ptp0\n",
            false,
        );
        assert_eq!(l.len(), 5);
        assert!(matches!(&l[0], ChronyLine::Source(s) if s.kind == "pool" && s.at.ends_with(":2")));
        assert!(matches!(&l[1], ChronyLine::SourceDir(d) if d.len() == 2));
        let s = chrony_lines("/x.sources", "server a\ninclude /etc/y\nconfdir /z\n", true);
        assert_eq!(s.len(), 1);
        let files = chrony_dir_files(
            &["/a".to_string(), "/b".to_string()],
            ".sources",
            |d| match d {
                "/a" => vec!["2.sources".into(), "x.conf".into(), ".h.sources".into()],
                _ => vec!["1.sources".into(), "2.sources".into()],
            },
        );
        assert_eq!(files, vec!["/b/1.sources", "/a/2.sources"]);
    }

    #[test]
    fn chronyc_sources_csv() {
        let s = chronyc_sources(
            "^,*,192.0.2.1,2,6,377,12,-0.000012,0.000010,0.020000\n^,?,192.0.2.2,0,6,0,-,0,0,0\n",
        )
        .expect("parsed");
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].state, "*");
        assert_eq!(s[0].stratum, Some(2));
        assert!(chronyc_sources("garbage\n").is_none());
    }

    proptest! {
        #[test]
        fn never_panics(text in "\\PC{0,300}") {
            let mut t = Timesyncd::default();
            t.apply(&text);
            let _ = chrony_lines("/f", &text, false);
            let _ = ntp_lines("/f", &text);
            let _ = chronyc_sources(&text);
        }
    }
}
