//! Kyverno's wildcards (`ext/wildcard`, go-wildcard v1): `*` is any run of characters, `?`
//! exactly one, everything else itself. Matched with the two-pointer algorithm, so a hostile
//! pattern (`*a*a*a*...`) costs at most `pattern × text` steps instead of go-wildcard's
//! exponential backtracking; the answers are the same.

/// Whether `name` matches `pattern` as a whole.
pub fn matches(pattern: &str, name: &str) -> bool {
    if pattern.is_empty() {
        return name.is_empty();
    }
    if pattern == "*" {
        return true;
    }
    let p: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = name.chars().collect();
    let (mut pi, mut si) = (0usize, 0usize);
    // Where the last `*` was seen and the text position it is currently taken to cover up to.
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, si));
                pi += 1;
            }
            Some(&c) if c == '?' || c == s[si] => {
                pi += 1;
                si += 1;
            }
            _ => match star {
                Some((sp, ss)) => {
                    pi = sp + 1;
                    si = ss + 1;
                    star = Some((sp, ss + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Whether `value` holds a wildcard character.
pub fn contains_wildcard(value: &str) -> bool {
    value.contains('*') || value.contains('?')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn star_and_question_mark_follow_go_wildcard() {
        assert!(matches("*", ""));
        assert!(matches("", ""));
        assert!(!matches("", "a"));
        assert!(matches("?*", "a"));
        assert!(!matches("?*", ""), "? needs exactly one character");
        assert!(matches("*:*", "nginx:1.2"));
        assert!(!matches("*:*", "nginx"));
        assert!(matches("*-nginx", "test-nginx"));
        assert!(matches("a*b*c", "aXbYbZc"));
        assert!(!matches("a*b*c", "aXbYbZ"));
        assert!(matches("ca?", "cat"));
        assert!(!matches("ca?", "ca"));
        assert!(matches("é?", "éa"), "characters, not bytes");
    }

    #[test]
    fn a_hostile_pattern_is_quick() {
        let pattern = "*a".repeat(2000) + "b";
        let text = "a".repeat(20_000);
        let start = std::time::Instant::now();
        assert!(!matches(&pattern, &text));
        assert!(start.elapsed() < std::time::Duration::from_secs(5));
    }
}
