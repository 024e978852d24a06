//! A string as a JSON string literal, eight bytes at a time.
//!
//! The queue message (the envelope, a JSON text of about the webhook's size) travels as a
//! JSON string inside `SendMessage`'s body, so every webhook's bytes are escaped once.
//! serde_json's escaper looks at one byte at a time; in WASM that was about 4 % of a
//! webhook's CPU time (docs/benchmarks.md). This one skips runs of eight bytes with
//! nothing to escape (no `"`, `\` or control character) with three word operations, and
//! writes exactly what serde_json writes (the tests compare both).

const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
const SPACES: u64 = u64::from_ne_bytes([0x20; 8]);
const QUOTES: u64 = u64::from_ne_bytes([b'"'; 8]);
const BACKSLASHES: u64 = u64::from_ne_bytes([b'\\'; 8]);

/// True if any byte of `word` is zero.
const fn has_zero_byte(word: u64) -> bool {
    word.wrapping_sub(ONES) & !word & HIGHS != 0
}

/// True if any of the eight bytes in `word` must be escaped.
const fn needs_escape(word: u64) -> bool {
    // A byte below 0x20: subtracting 0x20 borrows into its high bit.
    let control = word.wrapping_sub(SPACES) & !word & HIGHS != 0;
    control || has_zero_byte(word ^ QUOTES) || has_zero_byte(word ^ BACKSLASHES)
}

/// What `byte` is written as inside a JSON string when not as itself (serde_json's
/// escapes), and that escape's length.
fn escaped(byte: u8) -> Option<([u8; 6], usize)> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let short = match byte {
        b'"' => b'"',
        b'\\' => b'\\',
        b'\n' => b'n',
        b'\r' => b'r',
        b'\t' => b't',
        0x08 => b'b',
        0x0c => b'f',
        0x00..=0x1f => {
            let (hi, lo) = (HEX[usize::from(byte >> 4)], HEX[usize::from(byte & 0xf)]);
            return Some(([b'\\', b'u', b'0', b'0', hi, lo], 6));
        }
        _ => return None,
    };
    Some(([b'\\', short, 0, 0, 0, 0], 2))
}

/// Appends `s` to `out` as a JSON string literal, quotes included.
pub fn push(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut copied = 0; // bytes[..copied] are in `out`
    let mut i = 0;
    while i < bytes.len() {
        if let Some(chunk) = bytes.get(i..i + 8) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            if !needs_escape(u64::from_ne_bytes(word)) {
                i += 8;
                continue;
            }
        }
        if let Some((escape, len)) = escaped(bytes[i]) {
            out.extend_from_slice(&bytes[copied..i]);
            out.extend_from_slice(&escape[..len]);
            copied = i + 1;
        }
        i += 1;
    }
    out.extend_from_slice(&bytes[copied..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ours(s: &str) -> String {
        let mut out = Vec::new();
        push(&mut out, s);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn writes_what_serde_json_writes() {
        let mut cases: Vec<String> = vec![
            String::new(),
            "plain".into(),
            r#"{"id":"pred_1","status":"succeeded","output":["https://cdn/x.png"]}"#.into(),
            "back\\slash and \"quotes\" \u{7f} é ü 日本 🎉".into(),
            "x".repeat(4096),
        ];
        // Every ASCII byte, alone and at every offset of an eight-byte word.
        for b in 0u8..0x80 {
            let c = char::from(b);
            cases.push(c.to_string());
            for offset in 0..9 {
                cases.push(format!(
                    "{}{c}{}",
                    "a".repeat(offset),
                    "b".repeat(9 - offset)
                ));
            }
        }
        // Multi-byte characters across word boundaries, and escapes side by side.
        for offset in 0..9 {
            cases.push(format!("{}é日🎉\n\"\\\u{1}\u{1f}", "a".repeat(offset)));
        }
        for s in cases {
            assert_eq!(ours(&s), serde_json::to_string(&s).unwrap(), "{s:?}");
        }
    }

    #[test]
    fn finds_each_byte_that_needs_an_escape_in_a_word() {
        // The escaped bytes are exactly the control characters, `"` and `\\`.
        for b in 0u8..=255 {
            assert_eq!(
                escaped(b).is_some(),
                b < 0x20 || b == b'"' || b == b'\\',
                "{b:#x}"
            );
        }
        for b in 0u8..=255 {
            for pos in 0..8 {
                let mut word = [b'a'; 8];
                word[pos] = b;
                let expected = escaped(b).is_some();
                assert_eq!(
                    needs_escape(u64::from_ne_bytes(word)),
                    expected,
                    "byte {b:#x} at {pos}"
                );
            }
        }
        // And words of mixed bytes (xorshift), where one byte's borrow meets the next.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let expected = x.to_ne_bytes().iter().any(|&b| escaped(b).is_some());
            assert_eq!(needs_escape(x), expected, "{x:#018x}");
        }
    }
}
