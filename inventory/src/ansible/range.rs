//! Ansible host ranges: `www[01:50].example.com`, `db-[a:f]`, `n[1:10:2]`; several ranges in one
//! name multiply out.

/// More hosts than any real inventory lists from one line; guards against `n[0:999999999]`.
const MAX_HOSTS: usize = 100_000;

pub(crate) fn expand(pattern: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    expand_into(pattern, &mut out)?;
    Ok(out)
}

fn expand_into(pattern: &str, out: &mut Vec<String>) -> Result<(), String> {
    let Some((head, range, tail)) = split_range(pattern) else {
        out.push(pattern.to_string());
        return Ok(());
    };
    for item in sequence(range)? {
        if out.len() >= MAX_HOSTS {
            return Err(format!(
                "host range `{pattern}` expands to more than {MAX_HOSTS} hosts"
            ));
        }
        expand_into(&format!("{head}{item}{tail}"), out)?;
    }
    Ok(())
}

/// `head[range]tail` for the first bracket that holds a `:`.
fn split_range(pattern: &str) -> Option<(&str, &str, &str)> {
    let open = pattern.find('[')?;
    let close = open + pattern[open..].find(']')?;
    let range = &pattern[open + 1..close];
    range
        .contains(':')
        .then(|| (&pattern[..open], range, &pattern[close + 1..]))
}

fn sequence(range: &str) -> Result<Vec<String>, String> {
    let parts: Vec<&str> = range.split(':').collect();
    let (begin, end, step) = match parts.as_slice() {
        [b, e] => (*b, *e, "1"),
        [b, e, s] => (*b, *e, *s),
        _ => {
            return Err(format!(
                "`[{range}]` is not a host range: write [BEGIN:END] or [BEGIN:END:STEP]"
            ));
        }
    };
    let begin = if begin.is_empty() { "0" } else { begin };
    if end.is_empty() {
        return Err(format!("host range `[{range}]` has no end"));
    }
    let step: usize = step.parse().ok().filter(|s| *s > 0).ok_or_else(|| {
        format!("step `{step}` of host range `[{range}]` is not a positive number")
    })?;
    if let (Some(b), Some(e)) = (single_letter(begin), single_letter(end)) {
        if b > e {
            return Err(format!("host range `[{range}]` runs backwards"));
        }
        return Ok((b..=e).step_by(step).map(|c| c.to_string()).collect());
    }
    let (Ok(b), Ok(e)) = (begin.parse::<u64>(), end.parse::<u64>()) else {
        return Err(format!(
            "`[{range}]` is neither a numeric nor an alphabetic host range"
        ));
    };
    if b > e {
        return Err(format!("host range `[{range}]` runs backwards"));
    }
    if e - b >= MAX_HOSTS as u64 {
        return Err(format!(
            "host range `[{range}]` expands to more than {MAX_HOSTS} hosts"
        ));
    }
    // A leading zero fixes the width: [01:10] gives 01..10.
    let width = if begin.len() > 1 && begin.starts_with('0') {
        if begin.len() != end.len() {
            return Err(format!(
                "host range `[{range}]` pads with zeros, so begin and end need the same width"
            ));
        }
        begin.len()
    } else {
        0
    };
    Ok((b..=e)
        .step_by(step)
        .map(|n| format!("{n:0width$}"))
        .collect())
}

fn single_letter(s: &str) -> Option<char> {
    let mut chars = s.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if c.is_ascii_alphabetic() => Some(c),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_alphabetic_stepped_and_nested() {
        assert_eq!(
            expand("node[01:03]").unwrap(),
            ["node01", "node02", "node03"]
        );
        assert_eq!(
            expand("db-[a:c].x").unwrap(),
            ["db-a.x", "db-b.x", "db-c.x"]
        );
        assert_eq!(expand("n[1:10:4]").unwrap(), ["n1", "n5", "n9"]);
        assert_eq!(
            expand("r[1:2]c[a:b]").unwrap(),
            ["r1ca", "r1cb", "r2ca", "r2cb"]
        );
        assert_eq!(expand("plain").unwrap(), ["plain"]);
        assert_eq!(expand("n[8:10]").unwrap(), ["n8", "n9", "n10"]);
    }

    #[test]
    fn rejects_bad_ranges() {
        for bad in [
            "n[3:1]",
            "n[01:100]",
            "n[1:]",
            "n[1:2:0]",
            "n[a:3]",
            "n[0:99999999999]",
        ] {
            assert!(expand(bad).is_err(), "{bad}");
        }
    }
}
