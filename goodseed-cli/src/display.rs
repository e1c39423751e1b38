//! Text read from run files, made safe and short for a terminal: control characters
//! escaped (a value must not move the cursor or recolour the screen, and stays on one
//! line), long values cut with `…`, durations in words.

use std::fmt::Write as _;

/// `text` on one line, with control characters written as escapes: `\n`, `\t`, `\r`,
/// and `\u{1b}` for the others.
pub(crate) fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

/// [`one_line`], cut to at most `max` characters, the last of them `…` when cut.
pub(crate) fn elide(text: &str, max: usize) -> String {
    let line = one_line(text);
    if line.chars().count() <= max {
        return line;
    }
    let mut cut: String = line.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// The width of `text` in characters (every character counted as one column).
pub(crate) fn width(text: &str) -> usize {
    text.chars().count()
}

/// A duration given in (non-negative) microseconds: `1.5s`, `2m 05s`, `1h 02m 03s`, `3d 04h 05m`.
pub(crate) fn duration(micros: i64) -> String {
    if micros < 60_000_000 {
        // Tenths cut, not rounded, so 59.99s never shows as "60.0s".
        return format!("{}.{}s", micros / 1_000_000, micros % 1_000_000 / 100_000);
    }
    let secs = micros / 1_000_000;
    let (d, h, m, s) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60, secs % 60);
    if d > 0 {
        format!("{d}d {h:02}h {m:02}m")
    } else if h > 0 {
        format!("{h}h {m:02}m {s:02}s")
    } else {
        format!("{m}m {s:02}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_control_characters() {
        let cases = [
            ("plain", "plain"),
            ("a\nb\tc\rd", "a\\nb\\tc\\rd"),
            ("\u{1b}[31mred", "\\u{1b}[31mred"),
            ("\u{7f}\u{85}", "\\u{7f}\\u{85}"),
            ("ünï ✓ 🌱", "ünï ✓ 🌱"),
        ];
        for (text, want) in cases {
            assert_eq!(one_line(text), want, "{text:?}");
        }
    }

    #[test]
    fn elides_long_values() {
        assert_eq!(elide("abcdef", 6), "abcdef");
        assert_eq!(elide("abcdefg", 6), "abcde…");
        assert_eq!(elide("ééééééé", 3), "éé…");
        assert_eq!(elide("a\nb", 3), "a\\…");
    }

    #[test]
    fn writes_durations() {
        let cases = [
            (0, "0.0s"),
            (1_500_000, "1.5s"),
            (59_999_999, "59.9s"),
            (60_000_000, "1m 00s"),
            (125_000_000, "2m 05s"),
            (3_723_000_000, "1h 02m 03s"),
            (273_900_000_000, "3d 04h 05m"),
        ];
        for (micros, want) in cases {
            assert_eq!(duration(micros), want, "{micros}");
        }
    }
}
