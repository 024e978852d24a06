//! Case-insensitive header lookup over any list of `(name, value)` pairs.
//!
//! Values are raw bytes: HTTP header values need not be UTF-8, and verification never
//! requires them to be.

/// A source of HTTP headers. Names are matched ASCII-case-insensitively.
pub trait Headers {
    /// Every value of the header `name`, in order of appearance.
    fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a;
}

impl<K: AsRef<str>, V: AsRef<[u8]>> Headers for [(K, V)] {
    fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.iter()
            .filter(move |(k, _)| k.as_ref().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_ref())
    }
}

impl<K: AsRef<str>, V: AsRef<[u8]>> Headers for Vec<(K, V)> {
    fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.as_slice().values(name)
    }
}

impl<K: AsRef<str>, V: AsRef<[u8]>, const N: usize> Headers for [(K, V); N] {
    fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.as_slice().values(name)
    }
}

/// What looking up a header that must appear at most once found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Single<'a> {
    /// The header is absent.
    Missing,
    /// The header appears exactly once.
    One(&'a [u8]),
    /// The header appears more than once: ambiguous, so refused.
    Duplicated,
}

/// Looks up a header that must appear at most once.
pub fn single<'a, H: Headers + ?Sized>(headers: &'a H, name: &'a str) -> Single<'a> {
    let mut it = headers.values(name);
    match (it.next(), it.next()) {
        (None, _) => Single::Missing,
        (Some(v), None) => Single::One(v),
        (Some(_), Some(_)) => Single::Duplicated,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_ignores_case_and_counts_duplicates() {
        let h = [
            ("X-Skytells-Signature", "a"),
            ("other", "b"),
            ("OTHER", "c"),
        ];
        assert_eq!(single(&h, "x-skytells-signature"), Single::One(b"a"));
        assert_eq!(single(&h, "Other"), Single::Duplicated);
        assert_eq!(single(&h, "missing"), Single::Missing);
    }
}
