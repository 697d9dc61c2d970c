//! Glob-style patterns as Redis matches them (`KEYS`, `SCAN MATCH`, `CONFIG GET`): `*`, `?`,
//! `[abc]`, `[^abc]`, `[a-z]`, and `\` to escape.

/// True if `text` matches `pattern`; `nocase` folds ASCII case.
pub fn glob_match(pattern: &[u8], text: &[u8], nocase: bool) -> bool {
    let eq = |a: u8, b: u8| {
        if nocase {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    };
    let (mut p, mut t) = (0, 0);
    // Where to resume after the last `*`: the pattern position after it, and the text
    // position it has swallowed up to. Backtracking to only the last star is enough.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        let mut matched = None;
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p + 1, t));
                p += 1;
                continue;
            }
            Some(b'?') => matched = Some(p + 1),
            Some(b'[') => {
                if let Some((ok, next)) = class(pattern, p + 1, text[t], nocase) {
                    if ok {
                        matched = Some(next);
                    }
                }
            }
            Some(b'\\') if p + 1 < pattern.len() && eq(pattern[p + 1], text[t]) => {
                matched = Some(p + 2);
            }
            Some(b'\\') if p + 1 < pattern.len() => {}
            Some(&c) if eq(c, text[t]) => matched = Some(p + 1),
            _ => {}
        }
        match (matched, star) {
            (Some(next), _) => {
                p = next;
                t += 1;
            }
            (None, Some((after_star, swallowed))) => {
                p = after_star;
                t = swallowed + 1;
                star = Some((after_star, swallowed + 1));
            }
            (None, None) => return false,
        }
    }
    pattern[p.min(pattern.len())..].iter().all(|&c| c == b'*')
}

/// Matches `c` against the class that starts after `[` at `pattern[at]`. Returns whether it
/// matched and the position after the closing `]` (an unclosed class runs to the end).
fn class(pattern: &[u8], mut at: usize, c: u8, nocase: bool) -> Option<(bool, usize)> {
    let fold = |x: u8| if nocase { x.to_ascii_lowercase() } else { x };
    let negate = pattern.get(at) == Some(&b'^');
    if negate {
        at += 1;
    }
    let mut hit = false;
    loop {
        match pattern.get(at) {
            None => break,
            Some(b']') => {
                at += 1;
                break;
            }
            Some(b'\\') if at + 1 < pattern.len() => {
                hit |= fold(pattern[at + 1]) == fold(c);
                at += 2;
            }
            Some(&lo)
                if pattern.get(at + 1) == Some(&b'-')
                    && at + 2 < pattern.len()
                    && pattern[at + 2] != b']' =>
            {
                let hi = pattern[at + 2];
                let (lo, hi) = if lo <= hi { (lo, hi) } else { (hi, lo) };
                hit |= (fold(lo)..=fold(hi)).contains(&fold(c));
                at += 3;
            }
            Some(&x) => {
                hit |= fold(x) == fold(c);
                at += 1;
            }
        }
    }
    Some((hit != negate, at))
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn redis_glob_rules() {
        let yes =
            |p: &str, t: &str| assert!(glob_match(p.as_bytes(), t.as_bytes(), false), "{p} ~ {t}");
        let no = |p: &str, t: &str| {
            assert!(!glob_match(p.as_bytes(), t.as_bytes(), false), "{p} !~ {t}")
        };
        yes("*", "");
        yes("h?llo", "hello");
        yes("h*llo", "heeeello");
        yes("h[ae]llo", "hallo");
        no("h[^e]llo", "hello");
        yes("h[a-b]llo", "hbllo");
        yes("*max-*", "maxclients-x-max-y");
        no("user:*:x", "user:1:y");
        yes("a\\*b", "a*b");
        no("a\\*b", "axb");
        yes("*a*b*c*", "xxaxxbxxcxx");
        assert!(glob_match(b"PORT", b"port", true));
    }
}
