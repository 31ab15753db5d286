//! `governance.people`: the HR and training-system export, and whether staff are screened,
//! bound by terms and NDAs, trained, and whether leavers lost their access in time.
//!
//! Reads: one export file under the host root, CSV (a header line with the field names
//! below), YAML or JSON (a list of people, or a mapping with `people: [...]`), by extension or
//! `format`, bounded by the agent's file limit. Fields of one person: `id` (a pseudonymous id
//! or employee number; also `person_id`, `employee_id`), `login` (the work login, if it
//! differs from `id`; also `username`), `role`, `ai_role` (yes/no: develops, operates or
//! oversees AI systems), `status` (`active`, `on_leave`, `notice`, `left`, `terminated`...),
//! `start` and `end` (dates; also `start_date`, `end_date`), `screened` (date or yes/no; also
//! `screening_date`), `terms_signed`, `nda_signed` and `policy_acknowledged` (the information
//! security policy and the disciplinary process) and `reporting_briefed` (told how to report
//! information-security events and concerns about AI systems), each a date or yes/no,
//! `awareness_training` (date of the last security-awareness training; also
//! `security_training`), `ai_training` (date of the last AI competence training),
//! `access_revoked` (date or time the leaver's access was removed) and `assets_returned`
//! (date or yes/no). With `accounts_from_host = true` it also reads `/etc/passwd` under the
//! host root (the bounded reader and parser of `access.accounts`) and lists the leavers whose
//! login still has an account with a login shell.
//! Records: per person those fields (the flags as booleans, the dates as written and in Unix
//! seconds), whether the person is active, has left or has not started yet (as of the
//! collection time, `as_of_unix`), when training is next due (for a new starter without
//! training: the start date plus `new_starter_grace`), the deadline for revoking a leaver's
//! access, what the record lacks and what could not be read; the host cross-check; parse
//! errors as data; the policy under `policy`.
//! Evidences: ISO27001:2022 A.6.1-A.6.6 (screening, terms, awareness training, the
//! disciplinary process communicated, termination, NDAs), A.6.8 (people know how to report
//! events), A.5.11 (return of assets), A.5.16
//! and A.5.18 (identities and access rights removed on leaving), 7.2 and 7.3 (competence,
//! awareness); ISO42001:2023 A.4.6 (human resources and their competences), A.3.3 (reporting
//! of concerns: people know how), 7.2.
//! Never collects: names, birth dates, addresses, salaries, screening results, disciplinary
//! records, free text or any field outside the schema (unknown columns are not recorded);
//! from `/etc/passwd` only the login, uid and shell of matching leavers (never GECOS).

use super::{
    Interval, Register, Rows, add_interval, done, field, flag, missing, normal, parse_interval,
    scalar, time_value,
};
use crate::access::accounts::NOLOGIN_SHELLS;
use crate::read;
use crate::util::{Errors, blocking};
use crate::{BoxFuture, CollectError, Collector, Context, Observation, Options, Registration};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Registration of `governance.people`.
pub const REGISTRATION: Registration = Registration {
    kind: "governance.people",
    summary: "HR and training export (CSV/YAML/JSON): screening, terms, NDAs, awareness and AI training, leavers' access revoked; optional cross-check with local accounts",
    multiple: true,
    build,
    controls: &[
        "ISO27001:2022/A.6.1",  // Screening
        "ISO27001:2022/A.6.2",  // Terms and conditions of employment
        "ISO27001:2022/A.6.3",  // Information security awareness, education and training
        "ISO27001:2022/A.6.4",  // Disciplinary process
        "ISO27001:2022/A.6.5",  // Responsibilities after termination or change of employment
        "ISO27001:2022/A.6.6",  // Confidentiality or non-disclosure agreements
        "ISO27001:2022/A.6.8",  // Information security event reporting
        "ISO27001:2022/A.5.11", // Return of assets
        "ISO27001:2022/A.5.18", // Access rights
        "ISO27001:2022/7.2",    // Competence
        "ISO27001:2022/7.3",    // Awareness
        "ISO42001:2023/A.3.3",  // Reporting of concerns
        "ISO42001:2023/A.4.6",  // Human resources
        "ISO42001:2023/7.2",    // Competence
    ],
    checks: crate::builtin_checks!("governance/people"),
    default: false,
    host: false,
};

/// `governance.people` options.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// The HR / training export file on the host.
    #[serde(default = "default_path")]
    path: String,
    /// `csv`, `yaml` or `json`; default: from the file's extension.
    #[serde(default)]
    format: Option<String>,
    /// How often security-awareness training must be repeated.
    #[serde(default = "default_interval")]
    training_interval: String,
    /// How often people in AI roles must repeat their AI competence training.
    #[serde(default = "default_interval")]
    ai_training_interval: String,
    /// How long after their start date a new starter has to complete a first training.
    #[serde(default = "default_grace")]
    new_starter_grace: String,
    /// Longest time from a leaver's end date to the revocation of their access.
    #[serde(default = "default_revoke")]
    revoke_within: String,
    /// Fields every person must fill, for the `complete` check.
    #[serde(default = "default_required")]
    required_fields: Vec<String>,
    /// Compare leavers' logins with the accounts in `/etc/passwd` under the host root.
    #[serde(default)]
    accounts_from_host: bool,
    /// Shells that do not allow an interactive login (for the host cross-check; the default
    /// of `access.accounts`).
    #[serde(default = "default_nologin")]
    nologin_shells: Vec<String>,
    /// At most this many people.
    #[serde(default = "default_max")]
    max_people: usize,
}

fn default_path() -> String {
    "/etc/evident/people.csv".into()
}
fn default_interval() -> String {
    "365d".into()
}
fn default_grace() -> String {
    "30d".into()
}
fn default_revoke() -> String {
    "1d".into()
}
fn default_required() -> Vec<String> {
    ["id", "role", "ai_role", "start"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}
fn default_nologin() -> Vec<String> {
    NOLOGIN_SHELLS.iter().map(|s| s.to_string()).collect()
}
fn default_max() -> usize {
    100_000
}

/// The parsed intervals of the options.
#[derive(Debug, Clone, Copy)]
struct Intervals {
    training: Interval,
    ai_training: Interval,
    grace: Interval,
    revoke: Interval,
}

impl Config {
    fn intervals(&self) -> Result<Intervals, String> {
        let p = |k: &str, v: &str| parse_interval(v).map_err(|e| format!("{k}: {e}"));
        Ok(Intervals {
            training: p("training_interval", &self.training_interval)?,
            ai_training: p("ai_training_interval", &self.ai_training_interval)?,
            grace: p("new_starter_grace", &self.new_starter_grace)?,
            revoke: p("revoke_within", &self.revoke_within)?,
        })
    }
}

fn build(opts: Options<'_>) -> Result<Box<dyn Collector>, toml::de::Error> {
    let config: Config = crate::options(opts)?;
    if let Err(e) = config.intervals() {
        return Err(serde::de::Error::custom(e));
    }
    Ok(Box::new(People { config }))
}

struct People {
    config: Config,
}

impl Collector for People {
    fn kind(&self) -> &'static str {
        REGISTRATION.kind
    }

    fn collect<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, Result<Observation, CollectError>> {
        let ctx = ctx.clone();
        let config = self.config.clone();
        Box::pin(blocking(move || observe(&ctx, &config, crate::util::now())))
    }
}

/// Whether a status is that of someone who has left; `None` for an unknown status.
fn left_status(s: &str) -> Option<bool> {
    match normal(s).as_str() {
        "active" | "employed" | "on_leave" | "leave" | "notice" | "joining" | "onboarding"
        | "contractor" => Some(false),
        "left" | "leaver" | "terminated" | "former" | "inactive" | "ended" | "offboarded" => {
            Some(true)
        }
        _ => None,
    }
}

/// The next due time of a recurring training: the last one plus the interval, or for someone
/// never trained the start date plus the grace period.
fn due(last: Option<i64>, start: Option<i64>, every: Interval, grace: Interval) -> Option<i64> {
    match last {
        Some(t) => add_interval(t, every),
        None => start.and_then(|s| add_interval(s, grace)),
    }
}

/// One person as recorded, as of `now`.
fn person(raw: &Value, config: &Config, iv: Intervals, now: i64) -> Value {
    let mut problems = Vec::new();
    let id = scalar(field(raw, &["id", "person_id", "employee_id"]));
    let login = scalar(field(raw, &["login", "username"]));
    let ai_role = flag(raw.get("ai_role")).unwrap_or_else(|e| {
        problems.push(format!("ai_role: {e}"));
        None
    });
    let status = scalar(raw.get("status")).map(|s| normal(&s));
    let status_left = match status.as_deref().map(left_status) {
        None => None,
        Some(Some(l)) => Some(l),
        Some(None) => {
            problems.push(format!(
                "status: `{}` is not active, on_leave, notice, left or terminated",
                status.as_deref().unwrap_or_default()
            ));
            None
        }
    };
    let (start, start_unix) = time_value(
        field(raw, &["start", "start_date", "started"]),
        "start",
        &mut problems,
    );
    let (end, end_unix) = time_value(
        field(raw, &["end", "end_date", "termination_date"]),
        "end",
        &mut problems,
    );
    let (s, e) = (start_unix.as_i64(), end_unix.as_i64());
    if let (Some(s), Some(e)) = (s, e)
        && e < s
    {
        problems.push("end is before start".into());
    }
    let left = e.is_some_and(|e| e <= now) || status_left == Some(true);
    let not_started = !left && s.is_some_and(|s| s > now);
    let active = !left && !not_started;
    let (screened, screened_on, screened_unix) = done(
        field(raw, &["screened", "screening", "screening_date"]),
        "screened",
        &mut problems,
    );
    let screened_before_start = screened_unix.as_i64().zip(s).map(|(t, s)| t <= s);
    let (terms, terms_on, _) = done(
        field(raw, &["terms_signed", "terms"]),
        "terms_signed",
        &mut problems,
    );
    let (nda, nda_on, _) = done(
        field(raw, &["nda_signed", "nda"]),
        "nda_signed",
        &mut problems,
    );
    let (ack, ack_on, _) = done(
        field(raw, &["policy_acknowledged", "policies_acknowledged"]),
        "policy_acknowledged",
        &mut problems,
    );
    let (briefed, briefed_on, _) = done(
        field(raw, &["reporting_briefed", "reporting_channel_briefed"]),
        "reporting_briefed",
        &mut problems,
    );
    let (training, training_unix) = time_value(
        field(raw, &["awareness_training", "security_training"]),
        "awareness_training",
        &mut problems,
    );
    let (ai_training, ai_training_unix) = time_value(
        field(raw, &["ai_training", "ai_competence_training"]),
        "ai_training",
        &mut problems,
    );
    let (revoked, revoked_unix) = time_value(
        field(raw, &["access_revoked", "revoked"]),
        "access_revoked",
        &mut problems,
    );
    let (assets, assets_on, _) = done(raw.get("assets_returned"), "assets_returned", &mut problems);
    let deadline = e.and_then(|e| add_interval(e, iv.revoke));
    let mut m = json!({
        "id": id,
        "login": login,
        "role": scalar(raw.get("role")),
        "ai_role": ai_role,
        "status": status,
        "start": start,
        "start_unix": start_unix,
        "end": end,
        "end_unix": end_unix,
        "active": active,
        "left": left,
        "not_started": not_started,
        "screened": screened,
        "screened_on": screened_on,
        "screened_before_start": screened_before_start,
        "terms_signed": terms,
        "terms_signed_on": terms_on,
        "nda_signed": nda,
        "nda_signed_on": nda_on,
        "policy_acknowledged": ack,
        "policy_acknowledged_on": ack_on,
        "reporting_briefed": briefed,
        "reporting_briefed_on": briefed_on,
        "awareness_training": training,
        "awareness_training_unix": training_unix,
        "awareness_due_unix": due(training_unix.as_i64(), s, iv.training, iv.grace),
        "ai_training": ai_training,
        "ai_training_unix": ai_training_unix,
        "ai_training_due_unix": due(ai_training_unix.as_i64(), s, iv.ai_training, iv.grace),
        "access_revoked": revoked,
        "access_revoked_unix": revoked_unix,
        "revoke_deadline_unix": deadline,
        "assets_returned": assets,
        "assets_returned_on": assets_on,
        "problems": problems,
    });
    let mut lacks = missing(&m, &config.required_fields);
    if status_left == Some(true) && e.is_none() && !lacks.iter().any(|f| f == "end") {
        lacks.push("end".into());
    }
    m["missing_fields"] = json!(lacks);
    m
}

/// The leavers whose login has an account with a login shell in `/etc/passwd`.
fn host_accounts(ctx: &Context, config: &Config, people: &[Value], errors: &mut Errors) -> Value {
    let mark = errors.len();
    let text = match read::host_text(ctx, "/etc/passwd") {
        Ok(Some(t)) => t,
        Ok(None) => {
            errors.note(
                "/etc/passwd",
                "unavailable",
                "no /etc/passwd under the host root",
            );
            errors.incomplete_since(mark, &["host_accounts"]);
            return Value::Null;
        }
        Err(e) => {
            errors.push("/etc/passwd", &e);
            errors.incomplete_since(mark, &["host_accounts"]);
            return Value::Null;
        }
    };
    let (users, bad) = crate::parse::passwd::passwd(&text);
    for b in bad {
        errors.note(&format!("/etc/passwd:{}", b.line), "invalid", b.reason);
    }
    // A line not understood may be a leaver's account.
    errors.incomplete_since(mark, &["host_accounts"]);
    let by_name: BTreeMap<&str, &crate::parse::passwd::User> =
        users.iter().map(|u| (u.name.as_str(), u)).collect();
    let mut checked = 0usize;
    let mut with_login = Vec::new();
    for p in people.iter().filter(|p| p["left"] == true) {
        let Some(login) = p["login"].as_str().or_else(|| p["id"].as_str()) else {
            continue;
        };
        checked += 1;
        if let Some(u) = by_name.get(login)
            && !config.nologin_shells.iter().any(|s| s == &u.shell)
        {
            with_login.push(json!({"id": p["id"], "login": login, "uid": u.uid, "shell": u.shell}));
        }
    }
    json!({
        "path": "/etc/passwd",
        "accounts": users.len(),
        "leavers_checked": checked,
        "leavers_with_login": with_login,
    })
}

fn observe(ctx: &Context, config: &Config, now: i64) -> Result<Value, CollectError> {
    let iv = config.intervals().map_err(CollectError::Invalid)?;
    let mut errors = Errors::default();
    let Rows {
        format,
        rows,
        parse_error,
    } = Register {
        path: &config.path,
        format: config.format.as_deref(),
        what: "people export",
        rows: "people",
        max: config.max_people,
        unparsed: &["people", "host_accounts"],
        cut: &["people", "host_accounts"],
    }
    .read_table(ctx, &mut errors)?;
    let people: Vec<Value> = rows.iter().map(|r| person(r, config, iv, now)).collect();
    let with_problems = people
        .iter()
        .filter(|p| p["problems"].as_array().is_some_and(|a| !a.is_empty()))
        .count();
    let host = if config.accounts_from_host {
        host_accounts(ctx, config, &people, &mut errors)
    } else {
        Value::Null
    };
    let count = |k: &str| people.iter().filter(|p| p[k] == true).count();
    let (active_count, leaver_count) = (count("active"), count("left"));
    let (errs, incomplete) = errors.finish();
    Ok(json!({
        "policy": {
            "training_interval": config.training_interval,
            "ai_training_interval": config.ai_training_interval,
            "new_starter_grace": config.new_starter_grace,
            "revoke_within": config.revoke_within,
            "required_fields": config.required_fields,
            "accounts_from_host": config.accounts_from_host,
        },
        "path": config.path,
        "format": format,
        "as_of_unix": now,
        "parse_error": parse_error,
        "person_count": people.len(),
        "people_with_problems": with_problems,
        "active_count": active_count,
        "leaver_count": leaver_count,
        "people": people,
        "host_accounts": host,
        "errors": errs,
        "incomplete": incomplete,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-03-01T00:00:00Z.
    const NOW: i64 = 1_772_323_200;

    const CSV: &str = "id,login,role,ai_role,start,end,screened,terms_signed,nda_signed,policy_acknowledged,awareness_training,ai_training,access_revoked,assets_returned,full_name,salary,birth_date\n\
P-1,alice,engineer,no,2024-01-15,,2024-01-02,yes,2024-01-10,yes,2025-09-01,,,,Alice Example,90000,1990-01-01\n\
P-2,bob,ml-engineer,yes,2026-02-20,,2026-02-25,yes,yes,yes,,,,,Bob Example,1,1991-01-01\n\
P-3,carol,analyst,no,2020-01-01,2026-02-01,yes,yes,yes,yes,2025-01-01,,2026-02-10,yes,Carol Example,1,1992-01-01\n\
P-4,dave,engineer,no,2027-01-01,,yes,yes,yes,yes,,,,,Dave Example,1,1993-01-01\n";

    use crate::governance::test_ctx as ctx;

    fn config(path: &str) -> Config {
        let mut c: Config = toml::from_str("").expect("defaults");
        c.path = path.into();
        c
    }

    #[test]
    fn people_dates_and_deadlines() {
        let rows = super::super::csv_rows(CSV).expect("csv");
        let c = config("/p.csv");
        let iv = c.intervals().expect("intervals");
        let p1 = person(&rows[0], &c, iv, NOW);
        assert_eq!(
            (p1["active"].clone(), p1["left"].clone()),
            (json!(true), json!(false))
        );
        assert_eq!(p1["screened"], true);
        assert_eq!(p1["screened_before_start"], true);
        assert_eq!(p1["nda_signed_on"], "2024-01-10");
        assert_eq!(p1["ai_role"], false);
        // 2025-09-01 + 365 days.
        assert_eq!(p1["awareness_due_unix"], 1_756_684_800 + 365 * 86_400);
        assert_eq!(p1["missing_fields"], json!([]));
        for leak in ["Alice", "90000", "1990-01-01"] {
            assert!(!p1.to_string().contains(leak), "{leak} recorded: {p1:#}");
        }
        // A new starter: training due 30 days after the start date; screened after starting.
        let p2 = person(&rows[1], &c, iv, NOW);
        assert_eq!(p2["screened_before_start"], false);
        let start = p2["start_unix"].as_i64().expect("start");
        assert_eq!(p2["awareness_due_unix"], start + 30 * 86_400);
        assert_eq!(p2["ai_training_due_unix"], start + 30 * 86_400);
        // A leaver, revoked nine days after the end date (limit: one day).
        let p3 = person(&rows[2], &c, iv, NOW);
        assert_eq!(
            (p3["active"].clone(), p3["left"].clone()),
            (json!(false), json!(true))
        );
        assert_eq!(
            p3["revoke_deadline_unix"].as_i64(),
            p3["end_unix"].as_i64().map(|e| e + 86_400)
        );
        assert!(p3["access_revoked_unix"].as_i64() > p3["revoke_deadline_unix"].as_i64());
        assert_eq!(p3["assets_returned"], true);
        // Not started yet.
        let p4 = person(&rows[3], &c, iv, NOW);
        assert_eq!(
            (p4["active"].clone(), p4["not_started"].clone()),
            (json!(false), json!(true))
        );
        // Bad values are problems; a leaver by status without an end date lacks `end`.
        let bad = person(
            &json!({"id": "P-9", "status": "left", "ai_role": "sometimes", "nda_signed": "later", "start": "01/02/2020"}),
            &c,
            iv,
            NOW,
        );
        assert_eq!(bad["problems"].as_array().map(Vec::len), Some(3), "{bad:#}");
        assert_eq!(bad["left"], true);
        assert_eq!(bad["missing_fields"], json!(["role", "ai_role", "end"]));
        let odd = person(
            &json!({"start": "2026-01-02", "end": "2026-01-01", "status": "?"}),
            &c,
            iv,
            NOW,
        );
        assert_eq!(odd["problems"].as_array().map(Vec::len), Some(2), "{odd:#}");
    }

    #[test]
    fn export_host_accounts_and_hostile_input() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("p.csv"), CSV).expect("write");
        let etc = dir.path().join("etc");
        std::fs::create_dir_all(&etc).expect("mkdir");
        std::fs::write(
            etc.join("passwd"),
            "root:x:0:0:root:/root:/bin/bash\ncarol:x:1003:1003:Carol Example,,,:/home/carol:/bin/bash\nalice:x:1001:1001::/home/alice:/bin/bash\n",
        )
        .expect("passwd");
        let obs = observe(&ctx(dir.path()), &config("/p.csv"), NOW).expect("observe");
        assert_eq!(obs["host_accounts"], Value::Null);
        assert_eq!(
            (obs["person_count"].clone(), obs["leaver_count"].clone()),
            (json!(4), json!(1))
        );
        let mut c = config("/p.csv");
        c.accounts_from_host = true;
        let obs = observe(&ctx(dir.path()), &c, NOW).expect("observe");
        let h = &obs["host_accounts"];
        assert_eq!(h["leavers_checked"], 1);
        assert_eq!(
            h["leavers_with_login"],
            json!([{"id": "P-3", "login": "carol", "uid": 1003, "shell": "/bin/bash"}])
        );
        assert!(!obs.to_string().contains("Carol Example"));
        assert_eq!(obs["incomplete"], json!({}));
        // A locked-out shell is no login account.
        std::fs::write(
            etc.join("passwd"),
            "carol:x:1003:1003::/home/carol:/usr/sbin/nologin\n",
        )
        .expect("passwd");
        let obs = observe(&ctx(dir.path()), &c, NOW).expect("observe");
        assert_eq!(obs["host_accounts"]["leavers_with_login"], json!([]));
        // A broken passwd line might be the leaver's account: incomplete.
        std::fs::write(etc.join("passwd"), "carol:x:1003\n").expect("passwd");
        let obs = observe(&ctx(dir.path()), &c, NOW).expect("observe");
        assert!(obs["incomplete"]["host_accounts"].is_array(), "{obs:#}");
        std::fs::remove_file(etc.join("passwd")).expect("rm");
        let obs = observe(&ctx(dir.path()), &c, NOW).expect("observe");
        assert_eq!(obs["host_accounts"], Value::Null);
        assert!(obs["incomplete"]["host_accounts"].is_array(), "{obs:#}");
        assert!(obs["incomplete"].get("people").is_none());

        // JSON and YAML exports.
        std::fs::write(
            dir.path().join("p.json"),
            "{\"people\": [{\"id\": \"P-1\", \"ai_role\": true, \"ai_training\": \"2026-01-01\"}]}",
        )
        .expect("write");
        let obs = observe(&ctx(dir.path()), &config("/p.json"), NOW).expect("observe");
        assert_eq!(obs["people"][0]["ai_training_unix"], 1_767_225_600);
        // Broken exports: the error is data, every judgement on people is incomplete.
        for (name, body, want) in [
            ("b.json", "[{\"id\": ", "invalid JSON"),
            ("b.csv", "id,role\nP-1,\"x\n", "unterminated"),
            ("c.csv", "id,role\nP-1\n", "fields"),
            ("d.yaml", "people: {id: 1}\n", "expected a list"),
        ] {
            std::fs::write(dir.path().join(name), body).expect("write");
            let obs =
                observe(&ctx(dir.path()), &config(&format!("/{name}")), NOW).expect("observe");
            assert!(
                obs["parse_error"]
                    .as_str()
                    .is_some_and(|e| e.contains(want)),
                "{name}: {obs:#}"
            );
            assert!(obs["incomplete"]["people"].is_array(), "{obs:#}");
        }
        std::fs::write(dir.path().join("bin.csv"), [b'i', b'd', 0xc3, 0x28]).expect("write");
        assert!(matches!(
            observe(&ctx(dir.path()), &config("/bin.csv"), NOW),
            Err(CollectError::Invalid(_))
        ));
        assert!(matches!(
            observe(&ctx(dir.path()), &config("/none.csv"), NOW),
            Err(CollectError::Unavailable(_))
        ));
        let mut small = ctx(dir.path());
        small.max_file_bytes = 10;
        assert!(matches!(
            observe(&small, &config("/p.csv"), NOW),
            Err(CollectError::TooLarge { .. })
        ));
    }
}
