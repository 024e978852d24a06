//! Settings from the environment.

use std::str::FromStr;

/// A setting is missing or does not parse. Names the variable, never its value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvError {
    /// Not set, or empty.
    #[error("environment variable {0} is not set")]
    Missing(String),
    /// Set, but not of the expected form.
    #[error("environment variable {name} is invalid: expected {expected}")]
    Invalid {
        /// The variable.
        name: String,
        /// What was expected.
        expected: &'static str,
    },
}

/// A required variable.
pub fn required(name: &str) -> Result<String, EnvError> {
    optional(name).ok_or_else(|| EnvError::Missing(name.to_owned()))
}

/// An optional variable; empty counts as unset.
pub fn optional(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// A number, or `default` when unset.
pub fn number<T: FromStr>(name: &str, default: T) -> Result<T, EnvError> {
    match optional(name) {
        None => Ok(default),
        Some(v) => v.trim().parse().map_err(|_| EnvError::Invalid {
            name: name.to_owned(),
            expected: "a number",
        }),
    }
}

/// A number, or `None` when unset.
pub fn optional_number<T: FromStr>(name: &str) -> Result<Option<T>, EnvError> {
    optional(name)
        .map(|v| {
            v.trim().parse().map_err(|_| EnvError::Invalid {
                name: name.to_owned(),
                expected: "a number",
            })
        })
        .transpose()
}

/// A number of at least 1, or `default` when unset (counts, sizes, timeouts: 0 would
/// disable what the setting sizes).
pub fn positive<T: FromStr + PartialOrd + From<u8>>(name: &str, default: T) -> Result<T, EnvError> {
    let v = number(name, default)?;
    if v < T::from(1) {
        return Err(EnvError::Invalid {
            name: name.to_owned(),
            expected: "a number of at least 1",
        });
    }
    Ok(v)
}

/// A boolean (`true`/`false`/`1`/`0`), or `default` when unset.
pub fn flag(name: &str, default: bool) -> Result<bool, EnvError> {
    match optional(name).as_deref().map(str::trim) {
        None => Ok(default),
        Some("true" | "1") => Ok(true),
        Some("false" | "0") => Ok(false),
        Some(_) => Err(EnvError::Invalid {
            name: name.to_owned(),
            expected: "true or false",
        }),
    }
}

/// The region (`AWS_REGION`, which Lambda sets).
pub fn region() -> Result<String, EnvError> {
    required("AWS_REGION")
}

/// The endpoint override (`AWS_ENDPOINT_URL`): the local stack's moto. Unset in AWS.
pub fn endpoint_url() -> Option<String> {
    optional("AWS_ENDPOINT_URL")
}

/// For the functions' settings tests (`functions/*/tests/settings.rs`): the process
/// environment with every variable of `all` unset, then `base` and `over` set in that
/// order (a later pair wins; an empty value unsets the variable), so each case reads
/// exactly the variables it names. The environment is the process's own: call it from one
/// test function at a time.
pub fn set_only(all: &[&str], base: &[(&str, &str)], over: &[(&str, &str)]) {
    for name in all {
        std::env::remove_var(name);
    }
    for (name, value) in base.iter().chain(over) {
        if value.is_empty() {
            std::env::remove_var(name);
        } else {
            std::env::set_var(name, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positive_numbers_refuse_zero_and_name_the_variable() {
        // Names used by this test only: tests run in parallel in one process.
        assert_eq!(positive("HOOKVAULT_TEST_POSITIVE_UNSET", 7u64), Ok(7));
        std::env::set_var("HOOKVAULT_TEST_POSITIVE_ZERO", "0");
        let e = positive("HOOKVAULT_TEST_POSITIVE_ZERO", 7usize).unwrap_err();
        assert_eq!(
            e.to_string(),
            "environment variable HOOKVAULT_TEST_POSITIVE_ZERO is invalid: expected a number of at least 1"
        );
        std::env::set_var("HOOKVAULT_TEST_POSITIVE_NEG", "-3");
        assert!(positive("HOOKVAULT_TEST_POSITIVE_NEG", 7i64).is_err());
        std::env::set_var("HOOKVAULT_TEST_POSITIVE_OK", " 12 ");
        assert_eq!(positive("HOOKVAULT_TEST_POSITIVE_OK", 7i64), Ok(12));
    }
}
