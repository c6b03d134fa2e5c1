//! OpenSSH host pattern lists (`*`, `?`, `!negation`), shared by ~/.ssh/config `Host` lines and
//! known_hosts host fields.

/// Whether `text` matches a single wildcard pattern: `*` is any run of characters, `?` exactly one.
/// Comparison is ASCII case-insensitive, like OpenSSH's `match_pattern` on lowercased host names.
pub(crate) fn wildcard_match(pattern: &str, text: &str) -> bool {
    restate_fleet_inventory::glob(&pattern.to_ascii_lowercase(), &text.to_ascii_lowercase())
}

/// Whether `text` matches a list of patterns: at least one positive pattern must match and no
/// negated (`!`) pattern may match — a negated match vetoes the whole list, as in OpenSSH.
pub(crate) fn match_list<'a>(patterns: impl IntoIterator<Item = &'a str>, text: &str) -> bool {
    let mut matched = false;
    for pattern in patterns {
        match pattern.strip_prefix('!') {
            Some(negated) if wildcard_match(negated, text) => return false,
            Some(_) => {}
            None => matched |= wildcard_match(pattern, text),
        }
    }
    matched
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(wildcard_match("*", "anything"));
        assert!(wildcard_match("n?", "n1"));
        assert!(!wildcard_match("n?", "n10"));
        assert!(wildcard_match("*.internal", "db.eu.internal"));
        assert!(!wildcard_match("*.internal", "internal"));
        assert!(wildcard_match("10.0.*.1", "10.0.33.1"));
        assert!(wildcard_match("N1", "n1"));
        assert!(wildcard_match("a*b*c", "aXXbYYbc"));
        assert!(!wildcard_match("a*b*c", "aXXbYYbd"));
        assert!(wildcard_match("[127.0.0.1]:*", "[127.0.0.1]:2222"));
    }

    #[test]
    fn negation_vetoes() {
        assert!(match_list(["n*", "!n3"], "n1"));
        assert!(!match_list(["n*", "!n3"], "n3"));
        assert!(
            !match_list(["!n3"], "n1"),
            "a list of only negations matches nothing"
        );
        assert!(match_list(["x", "y", "n1"], "n1"));
    }
}
