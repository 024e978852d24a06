//! Constant-time comparison with an explicit length check.

use subtle::ConstantTimeEq;

/// True when `a` and `b` are the same bytes. The length check comes first and is not
/// secret (signature lengths are public); the content comparison takes the same time
/// whatever the position of the first differing byte.
pub(crate) fn eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() || a.is_empty() {
        return false;
    }
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    #[test]
    fn rejects_empty_and_different_lengths() {
        assert!(!super::eq(b"", b""));
        assert!(!super::eq(b"abc", b"ab"));
        assert!(!super::eq(b"abc", b"abd"));
        assert!(super::eq(b"abc", b"abc"));
    }
}
