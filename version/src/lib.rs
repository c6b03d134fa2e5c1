//! A Restate release version, `MAJOR.MINOR.PATCH[-PRE][+BUILD]`, ordered as semver orders them.
//!
//! One type for everything that reads a version (the inventory, `restate-server --version` on a
//! host, a cluster's nodes), so that a pre-release is never taken for its release: `1.8.0-rc.1`
//! sorts before `1.8.0` and is not equal to it.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone)]
pub struct Version {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
    /// The pre-release identifiers (`rc.1`), empty for a release.
    pre: String,
    /// Build metadata (`+abc`): shown, but no part of precedence or equality.
    build: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not a version: write it as MAJOR.MINOR.PATCH, e.g. 1.7.12")]
pub struct NotAVersion {
    pub text: String,
}

impl Version {
    pub const fn new(major: u64, minor: u64, patch: u64) -> Self {
        Self {
            major,
            minor,
            patch,
            pre: String::new(),
            build: String::new(),
        }
    }

    /// The first word of a program's output that is a version, e.g. `1.7.12` in
    /// `restate-server 1.7.12` (a leading `v` is allowed).
    pub fn find_in(output: &str) -> Option<Self> {
        output.split_whitespace().find_map(|w| w.parse().ok())
    }

    pub fn is_prerelease(&self) -> bool {
        !self.pre.is_empty()
    }

    /// The release line, `1.7` of `1.7.12`: Restate supports upgrades one line at a time.
    pub fn line(&self) -> (u64, u64) {
        (self.major, self.minor)
    }
}

impl FromStr for Version {
    type Err = NotAVersion;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || NotAVersion { text: text.into() };
        let word = text.strip_prefix('v').unwrap_or(text);
        let (rest, build) = word.split_once('+').unwrap_or((word, ""));
        let (core, pre) = rest.split_once('-').unwrap_or((rest, ""));
        let mut numbers = core.split('.').map(number);
        let (Some(Some(major)), Some(Some(minor)), Some(Some(patch)), None) = (
            numbers.next(),
            numbers.next(),
            numbers.next(),
            numbers.next(),
        ) else {
            return Err(bad());
        };
        let identifiers_ok = |s: &str, what_if_empty: bool| {
            s.is_empty() && what_if_empty
                || s.split('.').all(|id| {
                    !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                })
        };
        // `1.7.12-` and `1.7.12+` are typos, not versions.
        let pre_ok = identifiers_ok(pre, !rest.contains('-'));
        let build_ok = identifiers_ok(build, !word.contains('+'));
        if !pre_ok || !build_ok {
            return Err(bad());
        }
        Ok(Self {
            major,
            minor,
            patch,
            pre: pre.into(),
            build: build.into(),
        })
    }
}

/// A numeric part: digits only, no sign, no leading zero (semver's rule).
fn number(part: &str) -> Option<u64> {
    let digits = !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    let leading_zero = part.len() > 1 && part.starts_with('0');
    (digits && !leading_zero)
        .then(|| part.parse().ok())
        .flatten()
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        if !self.pre.is_empty() {
            write!(f, "-{}", self.pre)?;
        }
        if !self.build.is_empty() {
            write!(f, "+{}", self.build)?;
        }
        Ok(())
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.major, self.minor, self.patch)
            .cmp(&(other.major, other.minor, other.patch))
            .then_with(|| match (self.pre.is_empty(), other.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                // A pre-release comes before its release.
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => compare_pre(&self.pre, &other.pre),
            })
    }
}

/// Semver's rule: identifier by identifier, numbers numerically and before words, and a
/// shorter list first when one is a prefix of the other.
fn compare_pre(a: &str, b: &str) -> Ordering {
    let key = |id: &str| match id.parse::<u64>() {
        Ok(n) if id.bytes().all(|b| b.is_ascii_digit()) => (0, n, String::new()),
        _ => (1, 0, id.to_string()),
    };
    a.split('.').map(key).cmp(b.split('.').map(key))
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version {}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> Version {
        text.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn parses_what_restate_prints_and_refuses_the_rest() {
        let cases = [
            ("1.7.12", Some("1.7.12")),
            ("v1.4.0", Some("1.4.0")),
            ("1.8.0-rc.1", Some("1.8.0-rc.1")),
            ("1.7.12-dev+abc.1", Some("1.7.12-dev+abc.1")),
            ("1.7", None),
            ("1.7.12.1", None),
            ("01.7.12", None),
            ("1.7.x", None),
            ("1.7.12-", None),
            ("1.7.12+", None),
            ("1.7.12-rc..1", None),
            ("", None),
            ("restate", None),
        ];
        for (text, want) in cases {
            let got = text.parse::<Version>().ok().map(|v| v.to_string());
            assert_eq!(got.as_deref(), want, "{text}");
        }
    }

    #[test]
    fn finds_the_version_in_a_programs_output() {
        let cases = [
            ("restate-server 1.7.12", Some("1.7.12")),
            ("restate-server v1.8.0-rc.1", Some("1.8.0-rc.1")),
            ("restate-server 1.7", None),
            ("", None),
        ];
        for (output, want) in cases {
            let got = Version::find_in(output).map(|v| v.to_string());
            assert_eq!(got.as_deref(), want, "{output}");
        }
    }

    #[test]
    fn orders_as_semver_does() {
        // Ascending, from semver.org's example and Restate's own shapes.
        let ascending = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "1.6.2",
            "1.7.0-dev",
            "1.7.0",
            "1.7.12",
            "1.8.0-rc.1",
            "1.8.0",
            "2.0.0",
        ];
        for pair in ascending.windows(2) {
            assert!(v(pair[0]) < v(pair[1]), "{} < {}", pair[0], pair[1]);
        }
        assert_ne!(v("1.8.0-rc.1"), v("1.8.0"));
        assert_eq!(v("1.7.12+a"), v("1.7.12+b"));
        assert_eq!(v("1.7.12").line(), (1, 7));
    }
}
