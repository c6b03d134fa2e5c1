//! Unified diffs of config files, with secret values redacted.
//!
//! The diff is computed on the real lines (so a changed secret still shows as a change) and printed
//! from the redacted lines at the same positions.

use crate::redact::Redactor;

const CONTEXT: usize = 3;

/// Past this many cell comparisons the middle of the files is shown as replaced wholesale rather
/// than aligned: config files are far smaller, and a diff must never stall the agent.
const MAX_LCS_CELLS: usize = 4_000_000;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Edit {
    Keep(usize, usize),
    Delete(usize),
    Insert(usize),
}

/// `diff -u` style text; empty when `old == new`.
pub fn unified(old: &str, new: &str, label: &str, redactor: &Redactor) -> String {
    if old == new {
        return String::new();
    }
    let old_lines: Vec<&str> = old.split_inclusive('\n').collect();
    let new_lines: Vec<&str> = new.split_inclusive('\n').collect();
    let old_shown = redactor.redact_lines(old);
    let new_shown = redactor.redact_lines(new);
    let edits = edit_script(&old_lines, &new_lines);

    let mut out = format!("--- {label}\n+++ {label}\n");
    for hunk in hunks(&edits) {
        let (old_start, new_start) = hunk_origin(&edits, hunk.start);
        let old_count = edits[hunk.clone()]
            .iter()
            .filter(|e| !matches!(e, Edit::Insert(_)))
            .count();
        let new_count = edits[hunk.clone()]
            .iter()
            .filter(|e| !matches!(e, Edit::Delete(_)))
            .count();
        out.push_str(&format!(
            "@@ -{} +{} @@\n",
            range(old_start, old_count),
            range(new_start, new_count)
        ));
        for edit in &edits[hunk] {
            let (sign, raw, shown) = match *edit {
                Edit::Keep(i, _) => (' ', old_lines[i], &old_shown[i]),
                Edit::Delete(i) => ('-', old_lines[i], &old_shown[i]),
                Edit::Insert(j) => ('+', new_lines[j], &new_shown[j]),
            };
            out.push(sign);
            out.push_str(shown);
            out.push('\n');
            if !raw.ends_with('\n') {
                out.push_str("\\ No newline at end of file\n");
            }
        }
    }
    out
}

/// 1-based first line and count as `diff -u` prints them (an empty range names the line before).
fn range(start: usize, count: usize) -> String {
    match count {
        0 => format!("{start},0"),
        1 => format!("{}", start + 1),
        n => format!("{},{n}", start + 1),
    }
}

/// 0-based old and new line numbers where the edit at `at` begins.
fn hunk_origin(edits: &[Edit], at: usize) -> (usize, usize) {
    edits[..at].iter().fold((0, 0), |(o, n), e| match e {
        Edit::Keep(..) => (o + 1, n + 1),
        Edit::Delete(_) => (o + 1, n),
        Edit::Insert(_) => (o, n + 1),
    })
}

/// Ranges of the edit script to print: each change with up to CONTEXT kept lines around it,
/// ranges whose context would touch merged.
fn hunks(edits: &[Edit]) -> Vec<std::ops::Range<usize>> {
    let mut out: Vec<std::ops::Range<usize>> = Vec::new();
    for (i, _) in edits
        .iter()
        .enumerate()
        .filter(|(_, e)| !matches!(e, Edit::Keep(..)))
    {
        let start = i.saturating_sub(CONTEXT);
        let end = (i + 1 + CONTEXT).min(edits.len());
        match out.last_mut() {
            Some(last) if start <= last.end => last.end = end,
            _ => out.push(start..end),
        }
    }
    out
}

fn edit_script(old: &[&str], new: &[&str]) -> Vec<Edit> {
    let prefix = old.iter().zip(new).take_while(|(a, b)| a == b).count();
    let max_suffix = old.len().min(new.len()) - prefix;
    let suffix = old
        .iter()
        .rev()
        .zip(new.iter().rev())
        .take(max_suffix)
        .take_while(|(a, b)| a == b)
        .count();
    let old_mid = &old[prefix..old.len() - suffix];
    let new_mid = &new[prefix..new.len() - suffix];

    let mut edits: Vec<Edit> = (0..prefix).map(|i| Edit::Keep(i, i)).collect();
    for edit in align(old_mid, new_mid) {
        edits.push(match edit {
            Edit::Keep(i, j) => Edit::Keep(prefix + i, prefix + j),
            Edit::Delete(i) => Edit::Delete(prefix + i),
            Edit::Insert(j) => Edit::Insert(prefix + j),
        });
    }
    let (old_tail, new_tail) = (old.len() - suffix, new.len() - suffix);
    edits.extend((0..suffix).map(|k| Edit::Keep(old_tail + k, new_tail + k)));
    edits
}

/// Longest-common-subsequence alignment; deletions before insertions within a change.
fn align(old: &[&str], new: &[&str]) -> Vec<Edit> {
    let (n, m) = (old.len(), new.len());
    if n * m > MAX_LCS_CELLS {
        return (0..n)
            .map(Edit::Delete)
            .chain((0..m).map(Edit::Insert))
            .collect();
    }
    // lcs[i][j]: LCS length of old[i..] and new[j..].
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if old[i] == new[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, Vec::with_capacity(n + m));
    while i < n || j < m {
        if i < n && j < m && old[i] == new[j] {
            out.push(Edit::Keep(i, j));
            i += 1;
            j += 1;
        } else if i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1]) {
            out.push(Edit::Delete(i));
            i += 1;
        } else {
            out.push(Edit::Insert(j));
            j += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(old: &str, new: &str) -> String {
        unified(old, new, "restate.toml", &Redactor::new(Vec::new()))
    }

    #[test]
    fn equal_texts_have_no_diff() {
        assert_eq!(plain("a\nb\n", "a\nb\n"), "");
    }

    #[test]
    fn one_changed_line_with_context() {
        let old = "1\n2\n3\n4\n5\n6\n7\n8\n9\n";
        let new = "1\n2\n3\n4\nFIVE\n6\n7\n8\n9\n";
        assert_eq!(
            plain(old, new),
            "--- restate.toml\n+++ restate.toml\n@@ -2,7 +2,7 @@\n 2\n 3\n 4\n-5\n+FIVE\n 6\n 7\n 8\n"
        );
    }

    #[test]
    fn far_apart_changes_make_two_hunks_and_insertions_count() {
        let old: String = (1..=20).map(|i| format!("{i}\n")).collect();
        let new = old
            .replacen("\n2\n", "\n2\nnew\n", 1)
            .replacen("19\n", "", 1);
        let diff = plain(&old, &new);
        assert!(
            diff.contains("@@ -1,5 +1,6 @@\n 1\n 2\n+new\n 3\n 4\n 5\n"),
            "{diff}"
        );
        assert!(
            diff.contains("@@ -16,5 +17,4 @@\n 16\n 17\n 18\n-19\n 20\n"),
            "{diff}"
        );
    }

    #[test]
    fn new_file_diff_starts_at_zero() {
        assert_eq!(
            plain("", "a = 1\n"),
            "--- restate.toml\n+++ restate.toml\n@@ -0,0 +1 @@\n+a = 1\n"
        );
    }

    #[test]
    fn missing_final_newline_is_marked() {
        let diff = plain("a = 1", "a = 2");
        assert!(
            diff.ends_with(
                "-a = 1\n\\ No newline at end of file\n+a = 2\n\\ No newline at end of file\n"
            ),
            "{diff}"
        );
    }

    #[test]
    fn secrets_are_redacted_on_both_sides_but_still_diffed() {
        let redactor = Redactor::new(["aws-secret-access-key".to_string(), "pw".to_string()]);
        let old = "[worker.snapshots]\naws-secret-access-key = \"OLDSECRET\"\n";
        let new = "[worker.snapshots]\naws-secret-access-key = \"NEWSECRET\"\npw = \"hunter2\"\n";
        let diff = unified(old, new, "f", &redactor);
        assert!(
            !diff.contains("SECRET") && !diff.contains("hunter2"),
            "{diff}"
        );
        assert!(
            diff.contains("-aws-secret-access-key = \"<redacted>\"\n"),
            "{diff}"
        );
        assert!(
            diff.contains("+aws-secret-access-key = \"<redacted>\"\n"),
            "{diff}"
        );
        assert!(diff.contains("+pw = \"<redacted>\"\n"), "{diff}");
    }

    #[test]
    fn crlf_lines_print_without_carriage_returns() {
        let diff = plain("a = 1\r\nb = 2\r\n", "a = 1\r\nb = 3\r\n");
        assert!(
            diff.contains("-b = 2\n+b = 3\n") && !diff.contains('\r'),
            "{diff:?}"
        );
    }
}
