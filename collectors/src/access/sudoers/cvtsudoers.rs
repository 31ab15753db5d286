//! sudo's own parse of the policy (`cvtsudoers -f json`), reduced to the facts the checks
//! judge: the global Defaults they read, the principals with a NOPASSWD grant and with an
//! ALL grant, and the `!authenticate` Defaults.

use serde_json::{Value, json};

/// A sudoers principal as Evident writes it (`alice`, `%admin`, `#0`, `ADMINS`).
fn principal(member: &Value) -> Option<String> {
    let (k, v) = member.as_object()?.iter().next()?;
    let v = v.as_str().map_or_else(|| v.to_string(), String::from);
    Some(match k.as_str() {
        "usergroup" => format!("%{v}"),
        "userid" => format!("#{v}"),
        "netgroup" => format!("+{v}"),
        _ => v,
    })
}

/// Whether a command list grants ALL, directly or through (nested) command aliases.
fn grants_all(commands: &Value, aliases: &Value, depth: usize) -> bool {
    commands.as_array().into_iter().flatten().any(|c| {
        c["negated"] != true
            && (c["command"] == "ALL"
                || (depth < 64
                    && c["cmndalias"]
                        .as_str()
                        .is_some_and(|a| grants_all(&aliases[a], aliases, depth + 1))))
    })
}

/// The last global value of each Defaults option (no `Binding`), as sudo applies them.
fn global_option(json: &Value, name: &str) -> Option<Value> {
    let mut found = None;
    for d in json["Defaults"].as_array().into_iter().flatten() {
        if d.get("Binding").is_some() {
            continue;
        }
        for o in d["Options"].as_array().into_iter().flatten() {
            if let Some(v) = o.get(name) {
                found = Some(v.clone());
            }
        }
    }
    found
}

/// The facts of sudo's parse, in the observation's shapes: (`global`, `nopasswd_rules`,
/// `all_grants`, `no_authenticate`).
pub fn facts(json: &Value) -> (Value, Value, Value, Value) {
    let flag = |n: &str| global_option(json, n).is_some_and(|v| v == true);
    let logfile = global_option(json, "logfile").filter(Value::is_string);
    let global = json!({
        "use_pty": flag("use_pty"),
        "logfile": logfile,
        "log_input": flag("log_input"),
        "log_output": flag("log_output"),
        "syslog_disabled": global_option(json, "syslog").is_some_and(|v| v == false),
    });
    let aliases = &json["Command_Aliases"];
    let (mut nopasswd, mut all) = (Vec::new(), Vec::new());
    for spec in json["User_Specs"].as_array().into_iter().flatten() {
        let users: Vec<String> = spec["User_List"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(principal)
            .collect();
        for c in spec["Cmnd_Specs"].as_array().into_iter().flatten() {
            let no_auth = c["Options"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|o| o["authenticate"] == false);
            let rule =
                json!({"principals": users, "commands": c["Commands"], "source": "cvtsudoers"});
            if no_auth {
                nopasswd.push(rule.clone());
            }
            if grants_all(&c["Commands"], aliases, 0) {
                all.push(rule);
            }
        }
    }
    let mut no_authenticate = Vec::new();
    for d in json["Defaults"].as_array().into_iter().flatten() {
        for o in d["Options"].as_array().into_iter().flatten() {
            if o.get("authenticate") == Some(&Value::Bool(false)) {
                no_authenticate.push(json!({"binding": d.get("Binding"), "source": "cvtsudoers"}));
            }
        }
    }
    (global, json!(nopasswd), json!(all), json!(no_authenticate))
}

/// The principals of a list of rules, sorted and deduplicated (to compare two views).
pub fn principals(rules: &Value) -> Vec<String> {
    let mut v: Vec<String> = rules
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| r["principals"].as_array().cloned().unwrap_or_default())
        .filter_map(|p| p.as_str().map(String::from))
        .collect();
    v.sort();
    v.dedup();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_of_a_policy() {
        let j: Value = serde_json::from_str(
            r#"{
            "Defaults": [
                {"Options": [{"use_pty": true}]},
                {"Options": [{"logfile": "/var/log/sudo.log"}]},
                {"Binding": [{"username": "alice"}], "Options": [{"authenticate": false}]},
                {"Options": [{"use_pty": false}]}
            ],
            "Command_Aliases": {"A": [{"command": "ALL"}]},
            "User_Specs": [
                {"User_List": [{"usergroup": "admin"}], "Cmnd_Specs": [
                    {"Options": [{"authenticate": false}], "Commands": [{"cmndalias": "A"}]}]},
                {"User_List": [{"username": "bob"}], "Cmnd_Specs": [
                    {"Commands": [{"command": "/bin/ls"}]}]}
            ]
        }"#,
        )
        .expect("json");
        let (global, nopasswd, all, no_auth) = facts(&j);
        assert_eq!(global["use_pty"], false);
        assert_eq!(global["logfile"], "/var/log/sudo.log");
        assert_eq!(principals(&nopasswd), vec!["%admin"]);
        assert_eq!(principals(&all), vec!["%admin"]);
        assert_eq!(no_auth.as_array().map(Vec::len), Some(1));
    }
}
