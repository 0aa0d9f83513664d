//! Text from outside mptcp-ss (control sockets, capture files, the kernel)
//! made harmless for a terminal. A string there may hold escape sequences
//! that recolour, retitle or rewrite the user's terminal, or bidirectional
//! controls that reorder what is shown; every text output path (the view,
//! `--once`, `--events` lines, notes) passes such strings through [`escape`],
//! and the JSON printers through [`json_for_terminal`].

use std::borrow::Cow;
use std::fmt::Write;

/// Whether `c` must not reach a terminal as it is: the C0 and C1 control
/// characters and DEL (Unicode category Cc), and the bidirectional
/// formatting characters (Unicode UAX #9: embeddings, overrides, isolates
/// and marks).
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `s` with every [`is_unsafe`] character written out: `\n`, `\r`, `\t`,
/// `\xHH` for the other ASCII ones (ESC is `\x1b`), `\u{HHHH}` above.
/// Idempotent: the result holds no unsafe character. A backslash is left as
/// it is, so the result is for reading, not for unescaping.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if is_unsafe(c) && c.is_ascii() => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if is_unsafe(c) => {
                let _ = write!(out, "\\u{{{:04x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// [`escape`] into an owned string.
pub fn escaped(s: &str) -> String {
    escape(s).into_owned()
}

/// JSON text (as serde_json writes it) with the unsafe characters that
/// serde_json leaves raw — DEL, the C1 controls, the bidirectional ones; it
/// escapes C0 itself — written as `\uHHHH` escapes. Outside strings JSON
/// text is ASCII punctuation, digits and letters, so every such character
/// is inside a string, where the escape means the same character: the
/// value read back is unchanged.
pub fn json_for_terminal(json: String) -> String {
    // Raw C0 characters in serde_json's output are its own line breaks.
    let raw = |c: char| is_unsafe(c) && u32::from(c) >= 0x7f;
    if !json.chars().any(raw) {
        return json;
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if raw(c) {
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn controls_are_written_out() {
        assert_eq!(escape("ESTAB"), "ESTAB");
        assert!(matches!(escape("10.0.0.1:80"), Cow::Borrowed(_)));
        assert_eq!(escape("\u{1b}[31mred\u{1b}[0m"), "\\x1b[31mred\\x1b[0m");
        assert_eq!(escape("a\nb\tc\rd\u{0}\u{7f}"), "a\\nb\\tc\\rd\\x00\\x7f");
        assert_eq!(escape("\u{9b}2J"), "\\u{009b}2J", "C1 CSI");
        assert_eq!(escape("abc\u{202e}fed"), "abc\\u{202e}fed", "right-to-left override");
        assert_eq!(escape("héllo ✓"), "héllo ✓", "printable text is kept");
    }

    #[test]
    fn json_stays_json() {
        let v = serde_json::json!({ "kind": "x\u{1b}]0;pwned\u{7}\u{9b}\u{7f}\u{202e}" });
        let s = json_for_terminal(v.to_string());
        assert!(!s.chars().any(is_unsafe), "{s}");
        assert_eq!(s, r#"{"kind":"x\u001b]0;pwned\u0007\u009b\u007f\u202e"}"#);
        let back: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(back, v);
    }

    proptest! {
        #[test]
        fn escaped_text_is_safe_and_stable(s in any::<String>()) {
            let e = escape(&s);
            prop_assert!(!e.chars().any(is_unsafe));
            let twice = escape(&e).into_owned();
            prop_assert_eq!(twice.as_str(), e.as_ref(), "idempotent");
            if !s.chars().any(is_unsafe) {
                prop_assert_eq!(e.as_ref(), s.as_str());
            }
        }

        #[test]
        fn json_round_trips(s in any::<String>()) {
            let v = serde_json::json!({ "s": s });
            let j = json_for_terminal(serde_json::to_string_pretty(&v).unwrap());
            prop_assert!(!j.chars().any(|c| is_unsafe(c) && c != '\n'));
            let back: serde_json::Value = serde_json::from_str(&j).unwrap();
            prop_assert_eq!(back, v);
        }
    }
}
