//! "Did you mean ...?" by edit distance.

/// The closest candidate, if it is close enough to be a plausible typo.
pub(crate) fn closest<'c>(
    word: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> Option<&'c str> {
    let limit = (word.chars().count() / 3).max(2);
    candidates
        .into_iter()
        .map(|c| (strsim::levenshtein(word, c), c))
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| c)
}

/// A help line: the closest candidate, or the full list when nothing is close.
pub(crate) fn help<'c>(word: &str, candidates: &[&'c str]) -> String {
    match closest(word, candidates.iter().copied()) {
        Some(c) => format!("did you mean `{c}`?"),
        None => format!("expected one of: {}", candidates.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_words_only() {
        assert_eq!(closest("adress", ["address", "port"]), Some("address"));
        assert_eq!(
            closest("identity_file", ["identity-file", "user"]),
            Some("identity-file")
        );
        assert_eq!(closest("zzz", ["address", "port"]), None);
    }
}
