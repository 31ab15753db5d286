//! `/etc/os-release`: which operating system a host runs, for the inventory collector and the
//! host identity of every record.

use serde_json::Value;

/// Parses `/etc/os-release` (`KEY=value`, optionally quoted) into the fields auditors use.
pub fn parse(text: &str) -> Value {
    let mut out = serde_json::Map::new();
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let field = match key.trim() {
            "ID" => "id",
            "NAME" => "name",
            "VERSION_ID" => "version_id",
            "VERSION_CODENAME" => "codename",
            "PRETTY_NAME" => "pretty_name",
            "ID_LIKE" => "id_like",
            _ => continue,
        };
        let value = value.trim().trim_matches(|c| c == '"' || c == '\'');
        out.insert(field.to_string(), Value::from(value));
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_release_fields_are_unquoted() {
        let v = parse(
            "NAME=\"Debian GNU/Linux\"\nID=debian\nVERSION_ID='12'\n# c\nBOGUS\nHOME_URL=x\n",
        );
        assert_eq!(v["name"], "Debian GNU/Linux");
        assert_eq!(v["id"], "debian");
        assert_eq!(v["version_id"], "12");
        assert!(v.get("home_url").is_none());
    }
}
