//! Splits a command line into an argv the way a POSIX shell would quote it, without running a
//! shell: no expansion, no operators, so inventory values can never inject commands.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SplitError {
    /// Byte offset in the input where the problem starts (the unclosed quote).
    pub offset: usize,
    pub message: String,
}

pub fn split(line: &str) -> Result<Vec<String>, SplitError> {
    let mut words = Vec::new();
    let mut word = String::new();
    // A word exists once any character or quote was seen: `''` is an empty argument.
    let mut in_word = false;
    let mut chars = line.char_indices().peekable();
    while let Some((offset, c)) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some((_, '\'')) => break,
                        Some((_, c)) => word.push(c),
                        None => return Err(unclosed(offset, "single")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some((_, '"')) => break,
                        Some((_, '\\')) => match chars.next() {
                            Some((_, c @ ('$' | '`' | '"' | '\\'))) => word.push(c),
                            Some((_, '\n')) => {}
                            Some((_, c)) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err(unclosed(offset, "double")),
                        },
                        Some((_, c)) => word.push(c),
                        None => return Err(unclosed(offset, "double")),
                    }
                }
            }
            '\\' => match chars.next() {
                Some((_, '\n')) => {}
                Some((_, c)) => {
                    in_word = true;
                    word.push(c);
                }
                None => {
                    return Err(SplitError {
                        offset,
                        message: "trailing backslash escapes nothing".to_string(),
                    });
                }
            },
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

fn unclosed(offset: usize, kind: &str) -> SplitError {
    SplitError {
        offset,
        message: format!("unbalanced {kind} quote: it is never closed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_a_shell_without_expanding() {
        assert_eq!(
            split(r#"/usr/bin/ctl start --name 'my node' "a \"b\" $HOME" c\ d ''"#).unwrap(),
            vec![
                "/usr/bin/ctl",
                "start",
                "--name",
                "my node",
                "a \"b\" $HOME",
                "c d",
                ""
            ]
        );
        assert_eq!(split("  a   b ").unwrap(), vec!["a", "b"]);
        assert_eq!(split("a;rm -rf /").unwrap(), vec!["a;rm", "-rf", "/"]);
        assert_eq!(split(r#""a\nb""#).unwrap(), vec![r"a\nb"]);
        assert!(split("").unwrap().is_empty());
    }

    #[test]
    fn rejects_unbalanced_quotes_at_the_opening_quote() {
        let err = split("ctl 'start").unwrap_err();
        assert_eq!(err.offset, 4);
        assert_eq!(err.message, "unbalanced single quote: it is never closed");
        let err = split(r#"ctl "start \""#).unwrap_err();
        assert_eq!(err.offset, 4);
        assert!(err.message.contains("double quote"));
        assert_eq!(split("ctl \\").unwrap_err().offset, 4);
    }
}
