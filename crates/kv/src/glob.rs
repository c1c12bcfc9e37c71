//! Redis's glob patterns (`KEYS`, `SCAN ... MATCH`, `CONFIG GET`, `COMMAND LIST`), in time
//! bounded by the pattern's length times the string's.
//!
//! A pattern is a sequence of tokens, each matching one byte (`?`, a class `[abc]`,
//! `[^a-z]`, an escape `\x`, a literal), and runs of `*` matching any bytes. Matching
//! tries each `*` against ever longer spans, but only the most recent one: when the
//! tokens after the last `*` fail, lengthening that `*` is the only choice that can help
//! (any longer span for an earlier `*` leaves the later one a shorter string, and it
//! already failed on every suffix). So the work is at most one pass of the pattern per
//! starting byte of the string.
//!
//! Redis's own matcher (`stringmatchlen` in `util.c`) recursed on every `*` and took
//! exponential time on patterns like `a*a*a*...*b` (CVE-2022-36021, fixed in 7.0.9 with a
//! flag that ends the search early). The results here are Redis 7.0's, quirks included, as
//! the differential test against a real `redis-server` checks:
//! - an empty string matches only the empty pattern (even `*` does not match it);
//! - an unterminated class ends at the end of the pattern;
//! - in a class, `\x` compares `x` exactly, even when matching ignores case; a range's
//!   ends are swapped if reversed, then folded, and bytes above 127 compare as negative
//!   (C's signed `char`, as Redis built for x86 has it);
//! - a lone `\` at the end of the pattern is a literal `\`;
//! - a pattern that needs more than 1000 `*` runs before its end matches nothing (Redis's
//!   limit on its recursion).

/// Most `*` runs a match may pass (Redis's nesting limit).
const MAX_STARS: usize = 1000;

/// True if `string` matches `pattern`, comparing ASCII letters without case if `nocase`.
pub fn glob_match(pattern: &[u8], string: &[u8], nocase: bool) -> bool {
    matches_counting(pattern, string, nocase, &mut 0)
}

/// [`glob_match`], adding to `steps` one per token compared (for the tests' bound).
fn matches_counting(pattern: &[u8], string: &[u8], nocase: bool, steps: &mut u64) -> bool {
    if string.is_empty() {
        return pattern.is_empty();
    }
    let (mut p, mut s) = (0, 0);
    // Where the pattern resumes after the last `*` run, and where that run's span ends.
    let mut star: Option<(usize, usize)> = None;
    let mut stars = 0;
    while s < string.len() {
        *steps += 1;
        if pattern.get(p) == Some(&b'*') {
            while pattern.get(p) == Some(&b'*') {
                p += 1;
            }
            if p == pattern.len() {
                return true;
            }
            stars += 1;
            if stars > MAX_STARS {
                return false;
            }
            star = Some((p, s));
            continue;
        }
        if let Some(next) = token(pattern, p, string[s], nocase) {
            p = next;
            s += 1;
            continue;
        }
        match star {
            Some((resume, span_end)) if span_end < string.len() => {
                star = Some((resume, span_end + 1));
                p = resume;
                s = span_end + 1;
            }
            _ => return false,
        }
    }
    while pattern.get(p) == Some(&b'*') {
        p += 1;
    }
    p == pattern.len()
}

/// If the token at `pattern[p..]` matches byte `c`, where the next token starts; `None`
/// if it does not match, or the pattern has ended.
fn token(pattern: &[u8], p: usize, c: u8, nocase: bool) -> Option<usize> {
    let eq = |a: u8, b: u8| a == b || (nocase && a.eq_ignore_ascii_case(&b));
    match *pattern.get(p)? {
        b'?' => Some(p + 1),
        b'[' => class(pattern, p + 1, c, nocase),
        b'\\' if p + 1 < pattern.len() => eq(pattern[p + 1], c).then_some(p + 2),
        literal => eq(literal, c).then_some(p + 1),
    }
}

/// The class whose body starts at `pattern[p..]` (after its `[`) against `c`: where the
/// next token starts if it matches.
fn class(pattern: &[u8], mut p: usize, c: u8, nocase: bool) -> Option<usize> {
    let negated = pattern.get(p) == Some(&b'^');
    if negated {
        p += 1;
    }
    let fold = |b: i8| {
        if nocase {
            (b as u8).to_ascii_lowercase() as i8
        } else {
            b
        }
    };
    let mut matched = false;
    loop {
        match pattern.get(p) {
            // Unterminated: the class ends with the pattern.
            None => break,
            Some(b']') => {
                p += 1;
                break;
            }
            Some(b'\\') if p + 1 < pattern.len() => {
                matched |= pattern[p + 1] == c;
                p += 2;
            }
            Some(&first) if p + 2 < pattern.len() && pattern[p + 1] == b'-' => {
                // Bytes compare as C's signed `char` here, as in Redis built for x86.
                let (a, b) = (first as i8, pattern[p + 2] as i8);
                let (low, high) = (a.min(b), a.max(b));
                matched |= (fold(low)..=fold(high)).contains(&fold(c as i8));
                p += 3;
            }
            Some(&b) => {
                matched |= b == c || (nocase && b.eq_ignore_ascii_case(&c));
                p += 1;
            }
        }
    }
    (matched != negated).then_some(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match(b"*", b"anything", false));
        assert!(glob_match(b"h?llo", b"hello", false));
        assert!(glob_match(b"h[ae]llo", b"hallo", false));
        assert!(!glob_match(b"h[^e]llo", b"hello", false));
        assert!(glob_match(b"h[a-b]llo", b"hbllo", false));
        assert!(glob_match(b"h[b-a]llo", b"hbllo", false));
        assert!(glob_match(b"key:*", b"key:1", false));
        assert!(!glob_match(b"key:*", b"ke", false));
        assert!(glob_match(b"a\\*b", b"a*b", false));
        assert!(!glob_match(b"a\\*b", b"axb", false));
        assert!(glob_match(b"HELLO", b"hello", true));
        assert!(glob_match(b"a*b*c", b"axxbyyc", false));
        assert!(!glob_match(b"a*b*c", b"axxbyy", false));
        assert!(glob_match(b"*a", b"bbba", false));
        assert!(glob_match(b"a**", b"a", false));
        // Redis's quirks.
        assert!(!glob_match(b"*", b"", false));
        assert!(glob_match(b"", b"", false));
        assert!(glob_match(b"a[bc", b"ab", false), "unterminated class");
        assert!(glob_match(b"a\\", b"a\\", false), "a trailing backslash");
        assert!(
            !glob_match(b"[\\A]", b"a", true),
            "an escape in a class is exact"
        );
        assert!(glob_match(b"[A-C]", b"b", true));
        assert!(
            glob_match(b"[a-\xe9]", b"A", false),
            "a signed range: -23 to 97"
        );
        assert!(!glob_match(b"[a-\xe9]", b"b", false));
        let stars = "a*".repeat(MAX_STARS + 1) + "b";
        assert!(!glob_match(
            stars.as_bytes(),
            "ab".repeat(MAX_STARS + 1).as_bytes(),
            false
        ));
        let stars = "a*".repeat(MAX_STARS) + "b";
        assert!(glob_match(
            stars.as_bytes(),
            "ab".repeat(MAX_STARS).as_bytes(),
            false
        ));
    }

    /// The pattern of CVE-2022-36021 and worse ones finish in at most one pass of the
    /// pattern per byte of the string.
    #[test]
    fn the_work_is_bounded_by_the_pattern_times_the_string() {
        let string = [b'a'; 40];
        for pattern in [
            "a*".repeat(20) + "b",
            "*a".repeat(30) + "*b",
            "?*".repeat(40) + "[b]",
            "*".repeat(200) + &"a*".repeat(50) + "\\b",
        ] {
            let mut steps = 0;
            assert!(!matches_counting(
                pattern.as_bytes(),
                &string,
                false,
                &mut steps
            ));
            let bound = (pattern.len() as u64 + 1) * (string.len() as u64 + 1);
            assert!(steps <= bound, "{pattern}: {steps} steps, bound {bound}");
        }
    }

    /// Redis 7.0's recursive matching, as a reference for small inputs (exponential in
    /// the number of `*`, fine at these sizes).
    fn reference(p: &[u8], s: &[u8], nocase: bool, depth: usize) -> bool {
        if depth > MAX_STARS {
            return false;
        }
        if s.is_empty() {
            return p.is_empty();
        }
        if p.is_empty() {
            return false;
        }
        if p[0] == b'*' {
            let rest = {
                let mut r = p;
                while r.first() == Some(&b'*') {
                    r = &r[1..];
                }
                r
            };
            if rest.is_empty() {
                return true;
            }
            return (0..s.len()).any(|i| reference(rest, &s[i..], nocase, depth + 1));
        }
        match token(p, 0, s[0], nocase) {
            Some(next) if s.len() == 1 => p[next..].iter().all(|&b| b == b'*'),
            Some(next) => reference(&p[next..], &s[1..], nocase, depth),
            None => false,
        }
    }

    #[test]
    fn agrees_with_the_recursive_matcher() {
        let alphabet = b"ab*?[]^-\\A";
        let mut rng = crate::rng::Rng::new(11);
        let mut word = |max: u64| -> Vec<u8> {
            let len = rng.below(max + 1) as usize;
            (0..len)
                .map(|_| alphabet[rng.below(alphabet.len() as u64) as usize])
                .collect()
        };
        for _ in 0..200_000 {
            let (p, s) = (word(8), word(6));
            for nocase in [false, true] {
                assert_eq!(
                    glob_match(&p, &s, nocase),
                    reference(&p, &s, nocase, 0),
                    "pattern {:?} string {:?} nocase {nocase}",
                    String::from_utf8_lossy(&p),
                    String::from_utf8_lossy(&s)
                );
            }
        }
    }
}
