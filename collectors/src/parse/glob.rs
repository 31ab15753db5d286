//! glob(7) matching of one path component: `*`, `?`, character classes `[a-z0-9]`, negated
//! classes `[!...]` / `[^...]`, and `\` escapes. A leading `.` is never matched by a wildcard
//! (as glob(3) without `GLOB_PERIOD`).

/// Whether `name` (one path component) matches `pattern`.
pub fn matches(pattern: &str, name: &str) -> bool {
    if name.starts_with('.') && !pattern.starts_with('.') {
        return false;
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    match_from(&p, &n)
}

/// Whether a pattern holds any wildcard (`*`, `?`, `[`).
pub fn is_pattern(pattern: &str) -> bool {
    pattern.contains(['*', '?', '['])
}

/// Matches one character class starting after `[`; returns (matched, index after `]`), or
/// `None` when the class is not closed (then `[` is an ordinary character).
fn class(p: &[char], mut i: usize, c: char) -> Option<(bool, usize)> {
    let negate = matches!(p.get(i), Some('!' | '^'));
    if negate {
        i += 1;
    }
    let mut hit = false;
    let mut first = true;
    loop {
        let &lo = p.get(i)?;
        if lo == ']' && !first {
            return Some((hit != negate, i + 1));
        }
        first = false;
        let lo = if lo == '\\' {
            i += 1;
            *p.get(i)?
        } else {
            lo
        };
        if p.get(i + 1) == Some(&'-') && p.get(i + 2).is_some_and(|&h| h != ']') {
            let hi = p[i + 2];
            hit |= lo <= c && c <= hi;
            i += 3;
        } else {
            hit |= lo == c;
            i += 1;
        }
    }
}

fn match_from(p: &[char], n: &[char]) -> bool {
    // Backtracking over the last `*` only (linear in practice, bounded by |p|*|n|).
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        let step = match p.get(pi) {
            Some('*') => {
                star = Some((pi + 1, ni));
                pi += 1;
                continue;
            }
            Some('?') => Some(pi + 1),
            Some('[') => match class(p, pi + 1, n[ni]) {
                Some((true, next)) => Some(next),
                Some((false, _)) => None,
                None => (n[ni] == '[').then_some(pi + 1),
            },
            Some('\\') if pi + 1 < p.len() => (p[pi + 1] == n[ni]).then_some(pi + 2),
            Some(&c) => (c == n[ni]).then_some(pi + 1),
            None => None,
        };
        match step {
            Some(next) => {
                pi = next;
                ni += 1;
            }
            None => match star {
                Some((sp, sn)) => {
                    pi = sp;
                    ni = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    while p.get(pi) == Some(&'*') {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob7_semantics() {
        assert!(matches("[0-9]*.conf", "10-x.conf"));
        assert!(!matches("[0-9]*.conf", "a-x.conf"));
        assert!(matches("[!a]?.conf", "b1.conf"));
        assert!(!matches("[!a]?.conf", "a1.conf"));
        assert!(matches("[]a]", "]"));
        assert!(matches("*.conf", "x.conf"));
        assert!(!matches("*.conf", ".x.conf"));
        assert!(matches("a\\*", "a*"));
        assert!(!matches("a\\*", "ab"));
        assert!(matches("[a", "[a"));
        assert!(matches("*a*b*c", "xxaxxbxxc"));
        assert!(!matches("*a*b*c", "xxaxxbxx"));
    }
}
