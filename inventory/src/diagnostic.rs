//! Structured diagnostics: what went wrong, where (file:line:col), the offending line and a hint.
//!
//! The coordinator prints them as text or serializes them for `--output json`, so every field is
//! plain data.

use std::fmt;
use std::ops::Range;

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    pub file: String,
    /// 1-based; 0 when the problem has no single place in the file.
    pub line: usize,
    /// 1-based, in characters.
    pub col: usize,
    pub message: String,
    /// The line of the file the problem is on, without its newline.
    pub source_line: Option<String>,
    /// How many characters of `source_line` from `col` on are underlined.
    pub width: usize,
    pub help: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let label = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        writeln!(f, "{label}: {}", self.message)?;
        if self.line == 0 {
            writeln!(f, "  --> {}", self.file)?;
        } else {
            writeln!(f, "  --> {}:{}:{}", self.file, self.line, self.col)?;
        }
        if let Some(source_line) = &self.source_line {
            let number = self.line.to_string();
            let pad = " ".repeat(number.len());
            writeln!(f, "{pad} |")?;
            writeln!(f, "{number} | {source_line}")?;
            let indent: String = source_line
                .chars()
                .take(self.col.saturating_sub(1))
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            writeln!(f, "{pad} | {indent}{}", "^".repeat(self.width.max(1)))?;
        }
        if let Some(help) = &self.help {
            let pad = " ".repeat(self.line.max(1).to_string().len());
            writeln!(f, "{pad} = help: {help}")?;
        }
        Ok(())
    }
}

/// Every problem found in one input; the error type of parsing. Holds errors and warnings alike so
/// that the operator sees everything at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(transparent)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter().filter(|d| d.severity == Severity::Error)
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter().filter(|d| d.severity == Severity::Warning)
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for diagnostic in &self.0 {
            writeln!(f, "{diagnostic}")?;
        }
        let errors = self.errors().count();
        let warnings = self.warnings().count();
        write!(
            f,
            "{errors} error{}, {warnings} warning{}",
            plural(errors),
            plural(warnings)
        )
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// One input file and the diagnostics found in it so far.
pub(crate) struct Report<'s> {
    file: &'s str,
    text: &'s str,
    items: Vec<Diagnostic>,
}

impl<'s> Report<'s> {
    pub(crate) fn new(file: &'s str, text: &'s str) -> Self {
        Report {
            file,
            text,
            items: Vec::new(),
        }
    }

    pub(crate) fn error(
        &mut self,
        span: Range<usize>,
        message: impl Into<String>,
        help: Option<String>,
    ) {
        self.push(Severity::Error, Some(span), message.into(), help);
    }

    /// `span` is `None` for a warning about the file as a whole.
    pub(crate) fn warning(
        &mut self,
        span: Option<Range<usize>>,
        message: impl Into<String>,
        help: Option<String>,
    ) {
        self.push(Severity::Warning, span, message.into(), help);
    }

    /// A problem of the whole file (nothing to point at).
    pub(crate) fn file_error(&mut self, message: impl Into<String>, help: Option<String>) {
        self.push(Severity::Error, None, message.into(), help);
    }

    pub(crate) fn text(&self) -> &'s str {
        self.text
    }

    pub(crate) fn into_diagnostics(self) -> Vec<Diagnostic> {
        self.items
    }

    fn push(
        &mut self,
        severity: Severity,
        span: Option<Range<usize>>,
        message: String,
        help: Option<String>,
    ) {
        let (line, col, source_line, width) = match span {
            Some(span) => locate(self.text, span),
            None => (0, 0, None, 0),
        };
        self.items.push(Diagnostic {
            severity,
            file: self.file.to_string(),
            line,
            col,
            message,
            source_line,
            width,
            help,
        });
    }
}

/// Turns a byte range into line, column, the line's text and the underline width (clipped to the
/// line, so a multi-line span underlines the rest of its first line).
fn locate(text: &str, span: Range<usize>) -> (usize, usize, Option<String>, usize) {
    let start = floor_char_boundary(text, span.start.min(text.len()));
    let end = floor_char_boundary(text, span.end.clamp(start, text.len()));
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
    let line = text[..start].matches('\n').count() + 1;
    let source_line = text[line_start..line_end].trim_end_matches('\r');
    let col = text[line_start..start].chars().count() + 1;
    let width = text[start..end.min(line_end)].chars().count().max(1);
    (line, col, Some(source_line.to_string()), width)
}

fn floor_char_boundary(text: &str, mut index: usize) -> usize {
    while !text.is_char_boundary(index) {
        index -= 1;
    }
    index
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_line_column_and_width_in_characters() {
        let text = "a = 1\nbé = \"x\"\n";
        let start = text.find("\"x\"").unwrap();
        let (line, col, source, width) = locate(text, start..start + 3);
        assert_eq!((line, col, width), (2, 6, 3));
        assert_eq!(source.as_deref(), Some("bé = \"x\""));
    }

    #[test]
    fn renders_caret_under_the_offending_text() {
        let mut report = Report::new("inv.toml", "[hosts.n1]\nadress = \"x\"\n");
        report.error(
            11..17,
            "unknown key `adress`",
            Some("did you mean `address`?".into()),
        );
        let text = Diagnostics(report.into_diagnostics()).to_string();
        insta::assert_snapshot!(text);
    }
}
