//! Hides secret values in config text shown to operators (diffs).
//!
//! Works on the text, not the parsed document, so every form a key can take is covered: `key = v`,
//! `a.b.key = v`, `"key" = v`, inside inline tables, and multi-line strings. A key is secret by its
//! last name segment, wherever it sits: over-redacting a same-named key is the safe error.

const REDACTED: &str = "\"<redacted>\"";

pub struct Redactor {
    names: Vec<String>,
}

impl Redactor {
    pub fn new(names: impl IntoIterator<Item = String>) -> Self {
        Self {
            names: names.into_iter().filter(|n| !n.is_empty()).collect(),
        }
    }

    /// One output line per input line (split on `\n`, without line ends), secrets replaced.
    pub fn redact_lines(&self, text: &str) -> Vec<String> {
        let mut open_multiline: Option<&'static str> = None;
        let mut out = Vec::new();
        for raw in text.split_inclusive('\n') {
            let line = raw.trim_end_matches(['\n', '\r']);
            if let Some(delim) = open_multiline {
                // Inside a secret multi-line string: hide the whole line, including its end.
                if line.contains(delim) {
                    open_multiline = None;
                }
                out.push("<redacted>".to_string());
                continue;
            }
            let (redacted, still_open) = self.redact_line(line);
            open_multiline = still_open;
            out.push(redacted);
        }
        out
    }

    /// The line with each secret value replaced, and the delimiter of a secret multi-line string
    /// that is still open at the end of the line.
    fn redact_line(&self, line: &str) -> (String, Option<&'static str>) {
        let mut out = String::with_capacity(line.len());
        let mut rest = line;
        while let Some(key_end) = self.next_secret_key(rest) {
            let Some(value_start) = value_start(&rest[key_end..]).map(|v| key_end + v) else {
                out.push_str(&rest[..key_end]);
                rest = &rest[key_end..];
                continue;
            };
            out.push_str(&rest[..value_start]);
            out.push_str(REDACTED);
            let value = &rest[value_start..];
            match value_len(value) {
                ValueEnd::At(len) => rest = &value[len..],
                ValueEnd::OpenMultiline(delim) => return (out, Some(delim)),
            }
        }
        out.push_str(rest);
        (out, None)
    }

    /// Byte offset just past the next secret key name in `s`.
    fn next_secret_key(&self, s: &str) -> Option<usize> {
        let mut best: Option<usize> = None;
        for name in &self.names {
            let mut from = 0;
            while let Some(pos) = s[from..].find(name.as_str()).map(|p| p + from) {
                let end = pos + name.len();
                if is_key_boundary_before(&s[..pos]) && is_key_boundary_after(&s[end..]) {
                    if best.is_none_or(|b| end < b) {
                        best = Some(end);
                    }
                    break;
                }
                from = pos + 1;
            }
        }
        best
    }
}

fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

fn is_key_boundary_before(before: &str) -> bool {
    before.chars().next_back().is_none_or(|c| !is_key_char(c))
}

fn is_key_boundary_after(after: &str) -> bool {
    after.chars().next().is_none_or(|c| !is_key_char(c))
}

/// Offset of the value after a key name: past an optional closing quote, `=` and spaces.
fn value_start(after_key: &str) -> Option<usize> {
    let trimmed = after_key.trim_start_matches(['"', '\'']);
    let trimmed = trimmed.trim_start_matches([' ', '\t']);
    let trimmed = trimmed.strip_prefix('=')?;
    let value = trimmed.trim_start_matches([' ', '\t']);
    Some(after_key.len() - value.len())
}

enum ValueEnd {
    At(usize),
    OpenMultiline(&'static str),
}

fn value_len(value: &str) -> ValueEnd {
    for delim in ["\"\"\"", "'''"] {
        if let Some(body) = value.strip_prefix(delim) {
            return match body.find(delim) {
                Some(end) => ValueEnd::At(delim.len() + end + delim.len()),
                None => ValueEnd::OpenMultiline(delim),
            };
        }
    }
    if let Some(body) = value.strip_prefix('"') {
        let mut escaped = false;
        for (i, c) in body.char_indices() {
            match c {
                '\\' if !escaped => escaped = true,
                '"' if !escaped => return ValueEnd::At(1 + i + 1),
                _ => escaped = false,
            }
        }
        return ValueEnd::At(value.len());
    }
    if let Some(body) = value.strip_prefix('\'') {
        return ValueEnd::At(body.find('\'').map_or(value.len(), |i| 1 + i + 1));
    }
    ValueEnd::At(
        value
            .find([',', '}', '#', ' ', '\t'])
            .unwrap_or(value.len()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redactor() -> Redactor {
        Redactor::new(["aws-secret-access-key".to_string(), "token".to_string()])
    }

    #[test]
    fn plain_quoted_dotted_and_inline_forms() {
        let text = "aws-secret-access-key = \"s3cr3t\" # keep comment\n\
                    worker.snapshots.aws-secret-access-key='lit'\n\
                    \"aws-secret-access-key\" = \"q\"\n\
                    snapshots = { aws-secret-access-key = \"a\\\"b\", region = \"r\", token = 42 }\n\
                    my-aws-secret-access-key = \"visible\"\n";
        let lines = redactor().redact_lines(text);
        assert_eq!(
            lines,
            vec![
                "aws-secret-access-key = \"<redacted>\" # keep comment",
                "worker.snapshots.aws-secret-access-key=\"<redacted>\"",
                "\"aws-secret-access-key\" = \"<redacted>\"",
                "snapshots = { aws-secret-access-key = \"<redacted>\", region = \"r\", token = \"<redacted>\" }",
                "my-aws-secret-access-key = \"visible\"",
            ]
        );
        assert!(!lines.concat().contains("s3cr3t"));
    }

    #[test]
    fn multiline_secret_hides_every_line() {
        let text = "token = \"\"\"\nline one\nline two\"\"\"\nnext = 1\n";
        assert_eq!(
            redactor().redact_lines(text),
            vec![
                "token = \"<redacted>\"",
                "<redacted>",
                "<redacted>",
                "next = 1"
            ]
        );
    }

    #[test]
    fn line_count_is_kept_for_crlf_and_missing_final_newline() {
        let text = "a = 1\r\ntoken = \"x\"";
        assert_eq!(
            redactor().redact_lines(text),
            vec!["a = 1", "token = \"<redacted>\""]
        );
    }
}
