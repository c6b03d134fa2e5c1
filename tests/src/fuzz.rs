//! What the fuzz tests of several crates share: a seed text with a few characters edited, the
//! kind of damage a hand-edited file or a truncated line suffers.

/// How to edit at a position: replace the character there, insert before it, or remove it.
#[derive(Debug, Clone, Copy)]
pub enum Edit {
    Replace,
    Insert,
    Remove,
}

/// `seed` with each `(position, character, edit)` applied in turn; positions wrap around the
/// text as it is at that point, so any number picks a place.
pub fn edited(seed: &str, edits: &[(usize, char, Edit)]) -> String {
    let mut chars: Vec<char> = seed.chars().collect();
    for &(position, c, edit) in edits {
        let i = position % chars.len().max(1);
        match edit {
            Edit::Replace if i < chars.len() => chars[i] = c,
            Edit::Insert => chars.insert(i.min(chars.len()), c),
            Edit::Remove if i < chars.len() => {
                chars.remove(i);
            }
            _ => {}
        }
    }
    chars.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_land_where_asked_and_wrap() {
        assert_eq!(edited("abc", &[(1, 'X', Edit::Replace)]), "aXc");
        assert_eq!(edited("abc", &[(4, 'X', Edit::Insert)]), "aXbc");
        assert_eq!(edited("abc", &[(2, '-', Edit::Remove)]), "ab");
        assert_eq!(
            edited("", &[(9, 'x', Edit::Insert), (0, 'y', Edit::Remove)]),
            ""
        );
    }
}
