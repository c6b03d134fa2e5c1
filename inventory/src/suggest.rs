//! "Did you mean ...?" by edit distance.

/// The closest candidate, if it is close enough to be a plausible typo.
pub(crate) fn closest<'c>(
    word: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> Option<&'c str> {
    // Swapped letters count as one edit; a short word may differ by one, a long one by a third,
    // and never by all of it ("zz" is not a typo of "n1").
    let length = word.chars().count();
    let limit = (length / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (strsim::osa_distance(word, c), c))
        .filter(|(distance, _)| *distance <= limit && *distance < length)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| c)
}

/// A help line: the closest candidate, or the full list when nothing is close.
pub(crate) fn help(word: &str, candidates: &[&str]) -> String {
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
        assert_eq!(closest("unti", ["manager", "unit"]), Some("unit"));
        assert_eq!(closest("zz", ["n1"]), None);
    }
}
