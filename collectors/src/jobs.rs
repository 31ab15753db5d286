//! Scheduled jobs on the observed host: systemd timers and cron entries that run one of a
//! vocabulary of programs (restic, borg, freshclam...), shared by the collectors that ask
//! "is X scheduled?" (`resilience.backups`, `hardening.antimalware`).
//!
//! Systemd: `*.timer` units in `/etc/systemd/system`, `/run/systemd/system`,
//! `/usr/local/lib/systemd/system`, `/usr/lib/systemd/system` and `/lib/systemd/system` (the
//! first directory holding a name wins, as systemd's unit path), with their drop-ins
//! `NAME.timer.d/*.conf` from those directories; a unit linked to `/dev/null` is masked.
//! Each directory is listed once per scan, and a unit or drop-in directory is looked up only
//! where the listing holds its name (everywhere when a listing failed or was cut short). A
//! timer's service (`Unit=`, else the same name) is read the same way, and its `ExecStart=`
//! lines are split into words: a job matches when a word's base name is in the vocabulary,
//! or when the timer's or service's name holds one of the name words (`backup`). Enabled
//! means linked from a `*.wants` or `*.requires` directory of `/etc/systemd/system`. The
//! last trigger comes from `/var/lib/systemd/timers/stamp-NAME` (timers with `Persistent=`).
//! Cron: `/etc/crontab` and `/etc/cron.d/*` (with a user field), `/var/spool/cron/crontabs/*`
//! and `/var/spool/cron/*` (per-user, the file name is the user), and the run-parts
//! directories `/etc/cron.{hourly,daily,weekly,monthly}` (a script matches by its name or by a
//! word of its text).
//! Records: per job its source, file, unit or line number, schedule (`OnCalendar=` and the
//! monotonic settings verbatim; the five cron fields or `@daily`), whether it recurs (not only
//! at boot), the cron user, the matched
//! program (a word from the vocabulary, never a path or an argument), whether it is enabled.
//! Never records: a command line, an argument, an environment assignment or any other text
//! of a script, crontab or unit — they may hold repository passwords and keys.

use crate::Context;
use crate::read;
use crate::util::Errors;
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// Unit directories in systemd's precedence (first wins).
const UNIT_DIRS: &[&str] = &[
    "/etc/systemd/system",
    "/run/systemd/system",
    "/usr/local/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
];

/// Names listed from one directory at most.
const MAX_NAMES: usize = 8192;

/// Jobs recorded at most.
pub const MAX_JOBS: usize = 512;

/// What to look for.
pub struct Vocabulary<'a> {
    /// Program base names (`restic`).
    pub programs: &'a [String],
    /// Words that make a unit or script name a match (`backup`), lowercase.
    pub name_words: &'a [&'a str],
}

impl Vocabulary<'_> {
    /// The first program among the words of `text` (quotes, `;&|()` and systemd's `@-:+!`
    /// prefixes stripped, base names compared).
    fn program_in(&self, text: &str) -> Option<String> {
        text.split(|c: char| c.is_whitespace() || "'\";&|()`".contains(c))
            .map(|w| w.trim_start_matches(['@', '-', ':', '+', '!']))
            .filter(|w| !w.is_empty() && !w.contains('='))
            .map(|w| w.rsplit('/').next().unwrap_or(w))
            .find(|b| self.programs.iter().any(|p| p == b))
            .map(str::to_string)
    }

    fn name_matches(&self, name: &str) -> bool {
        let lower = name.to_ascii_lowercase();
        self.name_words.iter().any(|w| lower.contains(w))
            || self.programs.iter().any(|p| {
                lower
                    .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
                    .any(|part| part == p)
            })
    }
}

/// Units linked from `/etc/systemd/system/*.wants` and `*.requires` (enabled units).
pub fn enabled_units(ctx: &Context, errors: &mut Errors) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let base = "/etc/systemd/system";
    let names = match read::host_dir(ctx, base, MAX_NAMES) {
        Ok(Some((names, _))) => names,
        Ok(None) => return out,
        Err(e) => {
            errors.push(base, &e);
            return out;
        }
    };
    for d in names
        .iter()
        .filter(|n| n.ends_with(".wants") || n.ends_with(".requires"))
    {
        let dir = format!("{base}/{d}");
        match read::host_dir(ctx, &dir, MAX_NAMES) {
            Ok(Some((units, _))) => out.extend(units),
            Ok(None) => {}
            Err(e) => errors.push(&dir, &e),
        }
    }
    out
}

/// Whether a unit (`x.service`, or a template `x@.timer` through any instance) is enabled.
pub fn is_enabled(enabled: &BTreeSet<String>, unit: &str) -> bool {
    if let Some((stem, suffix)) = unit.split_once("@.") {
        let (prefix, dot) = (format!("{stem}@"), format!(".{suffix}"));
        return enabled
            .iter()
            .any(|u| u.starts_with(&prefix) && u.ends_with(&dot));
    }
    enabled.contains(unit)
}

/// A unit file found in the unit path: its host path and `section -> key -> values` after its
/// drop-ins. `Ok(None)` when no directory holds it; `masked` when linked to /dev/null.
struct Unit {
    path: String,
    masked: bool,
    keys: std::collections::BTreeMap<String, Vec<(String, String)>>,
}

/// The names in each directory of [`UNIT_DIRS`], as listed once per scan: `None` for a
/// directory whose listing failed or was cut short (every name is then looked up there, as
/// if it might hold it). A directory that does not exist lists nothing.
struct Listings(Vec<Option<BTreeSet<String>>>);

impl Listings {
    /// Whether `dir` (an index into [`UNIT_DIRS`]) may hold `name` (a name a listing cannot
    /// show, such as `..` or one with a `/`, is looked up as it is).
    fn may_hold(&self, dir: usize, name: &str) -> bool {
        if name.contains('/') || name == "." || name == ".." || name.is_empty() {
            return true;
        }
        self.0
            .get(dir)
            .and_then(Option::as_ref)
            .is_none_or(|names| names.contains(name))
    }
}

/// Finds a unit in the unit path, looking only in the directories whose listing holds its
/// name (or its `NAME.d` drop-in directory): the same answer as trying every directory, at a
/// fraction of the lookups.
fn find_unit(ctx: &Context, listings: &Listings, name: &str, errors: &mut Errors) -> Option<Unit> {
    let dev_null = ctx.host_path("/dev/null");
    for (i, dir) in UNIT_DIRS.iter().enumerate() {
        if !listings.may_hold(i, name) {
            continue;
        }
        let path = format!("{dir}/{name}");
        match read::resolve(&ctx.host_root, &path) {
            Ok(real) if real == dev_null => {
                return Some(Unit {
                    path,
                    masked: true,
                    keys: Default::default(),
                });
            }
            Ok(_) => {}
            Err(e) => {
                errors.push(&path, &e);
                continue;
            }
        }
        match read::host_text(ctx, &path) {
            Ok(Some(text)) => {
                let mut keys = Default::default();
                unit_into(&text, &mut keys);
                // Drop-ins from every unit directory, in name order (later names win).
                let mut dropins = BTreeSet::new();
                let dropin_dir = format!("{name}.d");
                for (j, d) in UNIT_DIRS.iter().enumerate() {
                    if !listings.may_hold(j, &dropin_dir) {
                        continue;
                    }
                    let dd = format!("{d}/{dropin_dir}");
                    if let Ok(Some((names, _))) = read::host_dir(ctx, &dd, 256) {
                        for n in names.into_iter().filter(|n| n.ends_with(".conf")) {
                            dropins.insert((n, dd.clone()));
                        }
                    }
                }
                for (n, dd) in dropins {
                    let p = format!("{dd}/{n}");
                    match read::host_text(ctx, &p) {
                        Ok(Some(t)) => unit_into(&t, &mut keys),
                        Ok(None) => {}
                        Err(e) => errors.push(&p, &e),
                    }
                }
                return Some(Unit {
                    path,
                    masked: false,
                    keys,
                });
            }
            Ok(None) => {}
            Err(e) => {
                errors.push(&path, &e);
                return None;
            }
        }
    }
    None
}

/// Adds a unit file's assignments: `section -> [(key, value)]`, in order. An empty value
/// resets the list of that key (systemd's rule for list settings).
fn unit_into(text: &str, out: &mut std::collections::BTreeMap<String, Vec<(String, String)>>) {
    let mut section = String::new();
    let mut pending = String::new();
    for raw in text.lines() {
        // Line continuations.
        if let Some(head) = raw.strip_suffix('\\') {
            pending.push_str(head);
            pending.push(' ');
            continue;
        }
        pending.push_str(raw);
        let line = std::mem::take(&mut pending);
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') || l.starts_with(';') {
            continue;
        }
        if l.starts_with('[') && l.ends_with(']') {
            section = l[1..l.len() - 1].to_string();
            continue;
        }
        if let Some((k, v)) = l.split_once('=') {
            let (k, v) = (k.trim().to_string(), v.trim().to_string());
            let list = out.entry(section.clone()).or_default();
            if v.is_empty() {
                list.retain(|(key, _)| *key != k);
            } else {
                list.push((k, v));
            }
        }
    }
}

impl Unit {
    fn values(&self, section: &str, key: &str) -> Vec<String> {
        self.keys
            .get(section)
            .map(|l| {
                l.iter()
                    .filter(|(k, _)| k == key)
                    .map(|(_, v)| v.clone())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Timer settings that schedule a run.
const TIMER_KEYS: &[&str] = &[
    "OnCalendar",
    "OnActiveSec",
    "OnBootSec",
    "OnStartupSec",
    "OnUnitActiveSec",
    "OnUnitInactiveSec",
];

/// Systemd timers whose service runs a program of the vocabulary (or whose name matches).
pub fn timers(ctx: &Context, vocab: &Vocabulary<'_>, errors: &mut Errors) -> Vec<Value> {
    let mut names = BTreeSet::new();
    let mut listings = Listings(Vec::with_capacity(UNIT_DIRS.len()));
    for dir in UNIT_DIRS {
        match read::host_dir(ctx, dir, MAX_NAMES) {
            Ok(Some((list, truncated))) => {
                if truncated {
                    errors.note(dir, "too_large", format!("more than {MAX_NAMES} names"));
                }
                names.extend(list.iter().filter(|n| n.ends_with(".timer")).cloned());
                listings
                    .0
                    .push((!truncated).then(|| list.into_iter().collect()));
            }
            Ok(None) => listings.0.push(Some(BTreeSet::new())),
            Err(e) => {
                errors.push(dir, &e);
                listings.0.push(None);
            }
        }
    }
    let enabled = enabled_units(ctx, errors);
    let mut out = Vec::new();
    for name in names {
        let Some(timer) = find_unit(ctx, &listings, &name, errors) else {
            continue;
        };
        let stem = name.trim_end_matches(".timer");
        let service = timer
            .values("Timer", "Unit")
            .pop()
            .unwrap_or_else(|| format!("{stem}.service"));
        let svc = find_unit(ctx, &listings, &service, errors);
        let exec: Vec<String> = svc
            .as_ref()
            .map(|s| s.values("Service", "ExecStart"))
            .unwrap_or_default();
        let program = exec.iter().find_map(|e| vocab.program_in(e));
        let by_name = vocab.name_matches(&name) || vocab.name_matches(&service);
        if program.is_none() && !by_name {
            continue;
        }
        let mut schedule = Vec::new();
        for k in TIMER_KEYS {
            for v in timer.values("Timer", k) {
                schedule.push(format!("{k}={v}"));
            }
        }
        let recurring = ["OnCalendar", "OnUnitActiveSec", "OnUnitInactiveSec"]
            .iter()
            .any(|k| !timer.values("Timer", k).is_empty());
        let stamp = format!("/var/lib/systemd/timers/stamp-{name}");
        let last = read::host_mtime(ctx, &stamp).ok().flatten();
        let masked = timer.masked || svc.as_ref().is_some_and(|s| s.masked);
        out.push(json!({
            "source": "systemd",
            "file": timer.path,
            "unit": name,
            "service": service,
            "service_found": svc.is_some(),
            "schedule": schedule,
            "recurring": recurring,
            "persistent": timer.values("Timer", "Persistent").pop().is_some_and(|v| truthy(&v)),
            "program": program,
            "matched": if program.is_some() { "program" } else { "name" },
            "enabled": is_enabled(&enabled, &name) && !masked,
            "masked": masked,
            "last_triggered_unix": last,
        }));
        if out.len() >= MAX_JOBS {
            break;
        }
    }
    out
}

fn truthy(v: &str) -> bool {
    matches!(v.to_ascii_lowercase().as_str(), "1" | "yes" | "true" | "on")
}

/// The run-parts directories and the schedule they stand for.
const RUN_PARTS: &[(&str, &str)] = &[
    ("/etc/cron.hourly", "hourly"),
    ("/etc/cron.daily", "daily"),
    ("/etc/cron.weekly", "weekly"),
    ("/etc/cron.monthly", "monthly"),
];

/// Cron entries and run-parts scripts that run a program of the vocabulary.
pub fn cron(ctx: &Context, vocab: &Vocabulary<'_>, errors: &mut Errors) -> Vec<Value> {
    let mut out = Vec::new();
    let mut files: Vec<(String, Option<String>)> = vec![("/etc/crontab".into(), None)];
    let list = |dir: &str, errors: &mut Errors| -> Vec<String> {
        match read::host_dir(ctx, dir, MAX_NAMES) {
            Ok(Some((names, _))) => names
                .into_iter()
                .filter(|n| !n.starts_with('.') && !n.ends_with('~') && !n.contains(".dpkg-"))
                .collect(),
            Ok(None) => Vec::new(),
            Err(e) => {
                errors.push(dir, &e);
                Vec::new()
            }
        }
    };
    for n in list("/etc/cron.d", errors) {
        files.push((format!("/etc/cron.d/{n}"), None));
    }
    for n in list("/var/spool/cron/crontabs", errors) {
        files.push((format!("/var/spool/cron/crontabs/{n}"), Some(n)));
    }
    for n in list("/var/spool/cron", errors) {
        let p = format!("/var/spool/cron/{n}");
        if !read::host_is_dir(ctx, &p) {
            files.push((p, Some(n)));
        }
    }
    for (path, user) in files {
        let text = match read::host_text(ctx, &path) {
            Ok(Some(t)) => t,
            Ok(None) => continue,
            Err(e) => {
                errors.push(&path, &e);
                continue;
            }
        };
        for (i, line) in text.lines().enumerate() {
            let Some(entry) = cron_line(line, user.is_none()) else {
                continue;
            };
            let Some(program) = vocab.program_in(entry.command) else {
                continue;
            };
            out.push(json!({
                "source": "cron",
                "file": path,
                "line": i + 1,
                "recurring": entry.schedule != "@reboot",
                "schedule": [entry.schedule],
                "user": user.clone().or(entry.user),
                "program": program,
                "matched": "program",
                "enabled": true,
            }));
            if out.len() >= MAX_JOBS {
                return out;
            }
        }
    }
    for (dir, schedule) in RUN_PARTS {
        for n in list(dir, errors) {
            let path = format!("{dir}/{n}");
            // run-parts runs names of letters, digits, `_` and `-` only.
            if !n
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            {
                continue;
            }
            let by_text = match read::host_text(ctx, &path) {
                Ok(Some(t)) => t
                    .lines()
                    .filter(|l| !l.trim_start().starts_with('#'))
                    .find_map(|l| vocab.program_in(l)),
                Ok(None) => None,
                Err(e) => {
                    errors.push(&path, &e);
                    None
                }
            };
            let program = vocab.program_in(&n).or(by_text);
            if program.is_none() && !vocab.name_matches(&n) {
                continue;
            }
            out.push(json!({
                "source": "cron",
                "file": path,
                "schedule": [format!("@{schedule}")],
                "recurring": true,
                "user": "root",
                "program": program,
                "matched": if program.is_some() { "program" } else { "name" },
                "enabled": true,
            }));
            if out.len() >= MAX_JOBS {
                return out;
            }
        }
    }
    out
}

/// One crontab entry: its schedule, user (system crontabs) and command.
struct CronLine<'a> {
    schedule: String,
    user: Option<String>,
    command: &'a str,
}

/// Parses a crontab line; `None` for comments, blank lines, variable assignments and junk.
fn cron_line(line: &str, system: bool) -> Option<CronLine<'_>> {
    let l = line.trim_start();
    if l.is_empty() || l.starts_with('#') {
        return None;
    }
    // NAME=value (the value may hold a secret: never recorded, never matched).
    let first = l.split_whitespace().next()?;
    if let Some((name, _)) = first.split_once('=')
        && !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return None;
    }
    let mut rest = l;
    let mut take = || -> Option<&str> {
        let t = rest.trim_start();
        let end = t.find(char::is_whitespace).unwrap_or(t.len());
        let (w, r) = t.split_at(end);
        rest = r;
        (!w.is_empty()).then_some(w)
    };
    let schedule = if first.starts_with('@') {
        let k = take()?;
        if !matches!(
            k,
            "@reboot"
                | "@yearly"
                | "@annually"
                | "@monthly"
                | "@weekly"
                | "@daily"
                | "@midnight"
                | "@hourly"
        ) {
            return None;
        }
        k.to_string()
    } else {
        let mut f = Vec::new();
        for _ in 0..5 {
            let w = take()?;
            if !w
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"*,/-".contains(&b))
            {
                return None;
            }
            f.push(w);
        }
        f.join(" ")
    };
    let user = if system {
        Some(take()?.to_string())
    } else {
        None
    };
    let command = rest.trim();
    (!command.is_empty()).then_some(CronLine {
        schedule,
        user,
        command,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn programs() -> Vec<String> {
        ["restic", "borg", "rsync"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    #[test]
    fn cron_lines() {
        let l = cron_line(
            "0 2 * * * root RESTIC_PASSWORD=x /usr/bin/restic backup /",
            true,
        )
        .expect("line");
        assert_eq!(l.schedule, "0 2 * * *");
        assert_eq!(l.user.as_deref(), Some("root"));
        let p = programs();
        let v = Vocabulary {
            programs: &p,
            name_words: &["backup"],
        };
        assert_eq!(v.program_in(l.command).as_deref(), Some("restic"));
        let l = cron_line("@daily  cd /srv && flock -n /l borg create ::x", false).expect("l");
        assert_eq!((l.schedule.as_str(), l.user), ("@daily", None));
        assert_eq!(v.program_in(l.command).as_deref(), Some("borg"));
        assert!(cron_line("RESTIC_PASSWORD=hunter2", true).is_none());
        assert!(cron_line("MAILTO = root", true).is_none());
        assert!(cron_line("# 0 2 * * * root restic", true).is_none());
        assert!(cron_line("@often root restic", true).is_none());
        assert!(cron_line("0 2 * *", true).is_none());
        assert!(cron_line("0 2 * * * root", true).is_none());
        assert!(cron_line("0 2 * * $(x) root restic", true).is_none());
        // A word holding a program as an argument value is not the program.
        assert!(v.program_in("/usr/bin/notrestic --tool=restic").is_none());
        assert_eq!(
            v.program_in("/bin/sh -c \"/opt/bin/rsync -a /a /b\"")
                .as_deref(),
            Some("rsync")
        );
    }

    #[test]
    fn units_and_dropins() {
        let mut keys = Default::default();
        unit_into(
            "[Timer]\nOnCalendar=daily\nOnCalendar=*-*-* 03:00\n[Service]\nExecStart=/usr/bin/restic \\\n  backup /\n",
            &mut keys,
        );
        unit_into("[Timer]\nOnCalendar=\nOnCalendar=hourly\n", &mut keys);
        let u = Unit {
            path: String::new(),
            masked: false,
            keys,
        };
        assert_eq!(u.values("Timer", "OnCalendar"), vec!["hourly"]);
        assert_eq!(
            u.values("Service", "ExecStart"),
            vec!["/usr/bin/restic    backup /"]
        );
        let enabled: BTreeSet<String> = ["a.timer", "b@home.timer"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert!(is_enabled(&enabled, "a.timer") && is_enabled(&enabled, "b@.timer"));
        assert!(!is_enabled(&enabled, "c.timer") && !is_enabled(&enabled, "a@.timer"));
    }

    /// Units and drop-ins spread over the unit path are found from the listings as they were
    /// by trying every directory: the first directory holding a name wins, drop-ins come from
    /// every directory in name order, a link to /dev/null masks.
    #[test]
    fn unit_path_lookups_follow_the_listings() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        let put = |p: &str, text: &str| {
            let path = root.join(p.trim_start_matches('/'));
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, text).expect("write");
        };
        put("/dev/null", "");
        put(
            "/usr/lib/systemd/system/nightly.timer",
            "[Timer]\nOnCalendar=weekly\nUnit=job.service\n",
        );
        // Shadowed by the /etc copy, which names no program: never read.
        put(
            "/usr/lib/systemd/system/job.service",
            "[Service]\nExecStart=/usr/bin/restic backup /\n",
        );
        put(
            "/etc/systemd/system/job.service",
            "[Service]\nExecStart=/usr/bin/true\n",
        );
        // Drop-ins from two directories: /run's 10-when.conf, then /usr/lib's 20-cmd.conf.
        put(
            "/run/systemd/system/nightly.timer.d/10-when.conf",
            "[Timer]\nOnCalendar=\nOnCalendar=*-*-* 02:00\n",
        );
        put(
            "/usr/lib/systemd/system/job.service.d/20-cmd.conf",
            "[Service]\nExecStart=\nExecStart=/usr/bin/restic backup /srv\n",
        );
        put(
            "/usr/lib/systemd/system/other.timer",
            "[Timer]\nOnBootSec=5m\n",
        );
        put(
            "/usr/lib/systemd/system/other.service",
            "[Service]\nExecStart=/usr/bin/restic check\n",
        );
        std::os::unix::fs::symlink("/dev/null", root.join("etc/systemd/system/other.timer"))
            .expect("mask");
        let ctx = Context {
            host_root: root.to_path_buf(),
            ..Context::default()
        };
        let programs = programs();
        let vocab = Vocabulary {
            programs: &programs,
            name_words: &[],
        };
        let mut errors = Errors::default();
        let jobs = timers(&ctx, &vocab, &mut errors);
        assert!(errors.0.is_empty(), "{:?}", errors.0);
        assert_eq!(jobs.len(), 2, "{jobs:#?}");
        let nightly = &jobs[0];
        assert_eq!(nightly["unit"], "nightly.timer");
        assert_eq!(nightly["file"], "/usr/lib/systemd/system/nightly.timer");
        assert_eq!(nightly["schedule"], json!(["OnCalendar=*-*-* 02:00"]));
        assert_eq!(nightly["program"], "restic", "the /etc service's drop-in");
        assert_eq!(nightly["masked"], false);
        let other = &jobs[1];
        assert_eq!(other["unit"], "other.timer");
        assert_eq!(other["masked"], true);
        assert_eq!(other["file"], "/etc/systemd/system/other.timer");
    }
}
