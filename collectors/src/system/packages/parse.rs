//! Package databases that are plain text: dpkg's `status` file and apt's cached `Packages`
//! lists (RFC 822-style stanzas), Alpine's `/lib/apk/db/installed`, and Debian version
//! comparison (deb-version(7)) to tell whether a cached security list has a newer version.

use std::cmp::Ordering;

/// An installed (or listed) package.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Package {
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Architecture.
    pub arch: String,
}

/// Iterates the stanzas of a dpkg-style control file (separated by empty lines): for each,
/// the fields the caller asks for (names compared without case, continuation lines
/// ignored, a later line of the same field wins). One pass over the lines, no allocation:
/// the status file of a desktop holds some 40,000 lines, read every cycle.
fn stanzas<'a, const N: usize>(
    text: &'a str,
    fields: &'a [&'a str; N],
) -> impl Iterator<Item = [Option<&'a str>; N]> + 'a {
    let mut lines = text.split('\n');
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        let mut out = [None; N];
        loop {
            let Some(line) = lines.next() else {
                done = true;
                return Some(out);
            };
            match line.as_bytes().first() {
                None => return Some(out),
                Some(b' ' | b'\t') => continue,
                Some(_) => {}
            }
            if let Some((k, v)) = line.split_once(':')
                && let Some(i) = fields.iter().position(|f| f.eq_ignore_ascii_case(k.trim()))
            {
                out[i] = Some(v.trim());
            }
        }
    })
}

/// Installed packages from `/var/lib/dpkg/status` (Status `install ok installed`, or any
/// `... installed` / half-configured state that keeps files on disk).
pub fn dpkg_status(text: &str) -> Vec<Package> {
    installed(stanzas(text, &DPKG_FIELDS))
}

/// Packages offered by an apt `Packages` list.
pub fn apt_packages(text: &str) -> Vec<Package> {
    offered(stanzas(text, &APT_FIELDS))
}

const DPKG_FIELDS: [&str; 4] = ["Package", "Status", "Version", "Architecture"];
const APT_FIELDS: [&str; 3] = ["Package", "Version", "Architecture"];

/// The packages of dpkg status stanzas (fields as [`DPKG_FIELDS`]) that keep files on disk.
fn installed<'a>(stanzas: impl Iterator<Item = [Option<&'a str>; 4]>) -> Vec<Package> {
    let mut out: Vec<Package> = stanzas
        .filter_map(|f| {
            let status = f[1]?;
            let state = status.split_whitespace().last()?;
            if !matches!(
                state,
                "installed"
                    | "half-configured"
                    | "unpacked"
                    | "triggers-awaited"
                    | "triggers-pending"
            ) {
                return None;
            }
            Some(Package {
                name: f[0]?.to_string(),
                version: f[2]?.to_string(),
                arch: f[3].unwrap_or("").to_string(),
            })
        })
        .collect();
    out.sort();
    out
}

/// The packages of apt list stanzas (fields as [`APT_FIELDS`]).
fn offered<'a>(stanzas: impl Iterator<Item = [Option<&'a str>; 3]>) -> Vec<Package> {
    stanzas
        .filter_map(|f| {
            Some(Package {
                name: f[0]?.to_string(),
                version: f[1]?.to_string(),
                arch: f[2].unwrap_or("").to_string(),
            })
        })
        .collect()
}

/// Installed packages from Alpine's `/lib/apk/db/installed` (`P:` name, `V:` version,
/// `A:` arch; stanzas separated by blank lines).
pub fn apk_installed(text: &str) -> Vec<Package> {
    let mut out = Vec::new();
    for stanza in text.split("\n\n") {
        let (mut p, mut v, mut a) = (None, None, "");
        for line in stanza.lines() {
            if let Some(x) = line.strip_prefix("P:") {
                p = Some(x.trim());
            } else if let Some(x) = line.strip_prefix("V:") {
                v = Some(x.trim());
            } else if let Some(x) = line.strip_prefix("A:") {
                a = x.trim();
            }
        }
        if let (Some(p), Some(v)) = (p, v) {
            out.push(Package {
                name: p.to_string(),
                version: v.to_string(),
                arch: a.to_string(),
            });
        }
    }
    out.sort();
    out
}

/// Compares two Debian versions (`[epoch:]upstream[-revision]`).
pub fn compare_debian(a: &str, b: &str) -> Ordering {
    let (ea, ra) = split_epoch(a);
    let (eb, rb) = split_epoch(b);
    match ea.cmp(&eb) {
        Ordering::Equal => {}
        o => return o,
    }
    let (ua, da) = ra.rsplit_once('-').unwrap_or((ra, ""));
    let (ub, db) = rb.rsplit_once('-').unwrap_or((rb, ""));
    match compare_part(ua, ub) {
        Ordering::Equal => compare_part(da, db),
        o => o,
    }
}

fn split_epoch(v: &str) -> (u64, &str) {
    match v.split_once(':') {
        Some((e, rest)) if e.chars().all(|c| c.is_ascii_digit()) => (e.parse().unwrap_or(0), rest),
        _ => (0, v),
    }
}

fn order(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(b'~') => -1,
        Some(c) if c.is_ascii_alphabetic() => c as i32,
        Some(c) => c as i32 + 256,
    }
}

fn compare_part(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        // Non-digit prefix, compared with dpkg's ordering (~ sorts before everything).
        while (i < a.len() && !a[i].is_ascii_digit()) || (j < b.len() && !b[j].is_ascii_digit()) {
            let ca = (i < a.len() && !a[i].is_ascii_digit()).then(|| a[i]);
            let cb = (j < b.len() && !b[j].is_ascii_digit()).then(|| b[j]);
            let (oa, ob) = (order(ca), order(cb));
            if oa != ob {
                return oa.cmp(&ob);
            }
            if ca.is_some() {
                i += 1;
            }
            if cb.is_some() {
                j += 1;
            }
        }
        // Numeric part.
        while i < a.len() && a[i] == b'0' {
            i += 1;
        }
        while j < b.len() && b[j] == b'0' {
            j += 1;
        }
        let si = i;
        while i < a.len() && a[i].is_ascii_digit() {
            i += 1;
        }
        let sj = j;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        let (na, nb) = (&a[si..i], &b[sj..j]);
        match na.len().cmp(&nb.len()).then_with(|| na.cmp(nb)) {
            Ordering::Equal => {}
            o => return o,
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const STATUS: &str = "Package: openssl
Status: install ok installed
Priority: optional
Architecture: amd64
Version: 3.0.15-1~deb12u1
Description: Secure Sockets Layer toolkit
 This package contains the openssl binary.

Package: removed-thing
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0

Package: bash
Essential: yes
Status: install ok installed
Architecture: amd64
Version: 5.2.15-2+b7
";

    #[test]
    fn dpkg_installed_only() {
        let p = dpkg_status(STATUS);
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].name, "bash");
        assert_eq!(p[1].version, "3.0.15-1~deb12u1");
    }

    #[test]
    fn apk_alpine() {
        let p = apk_installed(
            "C:Q1abc=\nP:musl\nV:1.2.5-r0\nA:x86_64\n\nC:Q1x\nP:busybox\nV:1.36.1-r29\nA:x86_64\n",
        );
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].name, "busybox");
    }

    #[test]
    fn debian_versions() {
        use Ordering::*;
        for (a, b, o) in [
            ("1.0", "1.0", Equal),
            ("1.0", "1.1", Less),
            ("1.0~rc1", "1.0", Less),
            ("3.0.15-1~deb12u1", "3.0.15-1", Less),
            ("3.0.15-1~deb12u1", "3.0.14-1", Greater),
            ("1:1.0", "2.0", Greater),
            ("1.0a", "1.0", Greater),
            ("1.0+b1", "1.0", Greater),
            ("1.10", "1.9", Greater),
            ("2.36-9+deb12u7", "2.36-9+deb12u10", Less),
        ] {
            assert_eq!(compare_debian(a, b), o, "{a} vs {b}");
        }
    }

    proptest! {
        #[test]
        fn never_panics(text in "\\PC{0,400}") {
            let _ = dpkg_status(&text);
            let _ = apt_packages(&text);
            let _ = apk_installed(&text);
        }

        /// The one-pass reader finds the same packages as splitting at every "\n\n" and
        /// then into lines did (the reader before it), on text made of the pieces that
        /// matter: field names in any case, colons, blank and whitespace-only lines, CRLF,
        /// continuation lines.
        #[test]
        fn one_pass_reader_matches_split_reader(
            text in "(Package|Status|Version|Architecture|pACKAGE|Description|: |:|install ok installed|deinstall ok config-files|half-configured| |\t|\r|\n|\n\n|\r\n|[a-z0-9.+~-]{1,6}){0,80}"
        ) {
            prop_assert_eq!(dpkg_status(&text), installed(reference::stanzas(&text, &DPKG_FIELDS)));
            prop_assert_eq!(apt_packages(&text), offered(reference::stanzas(&text, &APT_FIELDS)));
        }

        #[test]
        fn version_order_is_antisymmetric(a in "[0-9a-z.+~:-]{0,12}", b in "[0-9a-z.+~:-]{0,12}") {
            prop_assert_eq!(compare_debian(&a, &b), compare_debian(&b, &a).reverse());
            prop_assert_eq!(compare_debian(&a, &a), Ordering::Equal);
        }
    }

    /// The reader `stanzas` replaced: `split("\n\n")`, then `lines()` of each piece.
    mod reference {
        pub fn stanzas<'a, const N: usize>(
            text: &'a str,
            fields: &'a [&'a str; N],
        ) -> impl Iterator<Item = [Option<&'a str>; N]> + 'a {
            text.split("\n\n").map(move |stanza| {
                let mut out = [None; N];
                for line in stanza.lines() {
                    if line.starts_with([' ', '\t']) {
                        continue;
                    }
                    if let Some((k, v)) = line.split_once(':')
                        && let Some(i) =
                            fields.iter().position(|f| f.eq_ignore_ascii_case(k.trim()))
                    {
                        out[i] = Some(v.trim());
                    }
                }
                out
            })
        }
    }
}
