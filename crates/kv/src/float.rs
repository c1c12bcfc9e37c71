//! Arithmetic and formatting for `INCRBYFLOAT` and `HINCRBYFLOAT`.
//!
//! Redis computes these in C `long double` and prints them with `%.17Lf`, trailing
//! zeros removed. This module does the same in `f64` (see the caveat in
//! `docs/architecture.md`): results agree with Redis whenever the `f64` result prints
//! the same with 17 fractional digits.

/// `a + b`, or `None` if the result is NaN or infinite.
pub fn add(a: f64, b: f64) -> Option<f64> {
    let r = a + b;
    r.is_finite().then_some(r)
}

/// Formats like Redis's `ld2string(..., LD_STR_HUMAN)`: `%.17Lf` with trailing zeros
/// (and a trailing dot) removed; `-0` prints as `0`.
pub fn format_human(v: f64) -> String {
    let mut s = format!("{v:.17}");
    if s.contains('.') {
        while s.ends_with('0') {
            s.pop();
        }
        if s.ends_with('.') {
            s.pop();
        }
    }
    if s == "-0" {
        s = "0".to_string();
    }
    s
}
