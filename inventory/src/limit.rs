//! `--limit`: host selection the way Ansible reads patterns. Terms are separated by `,` or `:`;
//! a term is a host name, a group name, `all`, or a glob (`*`, `?`) over either. Plain terms are
//! united, `&term` intersects, `!term` excludes, whatever their order.

use crate::model::{Fleet, Host};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    #[error("--limit pattern `{pattern}` matches no host or group")]
    NoMatch { pattern: String },
    #[error("--limit `{limit}` is empty")]
    Empty { limit: String },
}

impl Fleet {
    /// The hosts `limit` selects, in file order.
    pub fn select(&self, limit: &str) -> Result<Vec<&Host>, LimitError> {
        let terms: Vec<&str> = limit
            .split([',', ':'])
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .collect();
        if terms.is_empty() {
            return Err(LimitError::Empty {
                limit: limit.to_string(),
            });
        }
        let mut union = vec![false; self.hosts.len()];
        let mut intersect = vec![true; self.hosts.len()];
        let mut exclude = vec![false; self.hosts.len()];
        let mut any_plain = false;
        for term in terms {
            let (target, pattern) = match term.as_bytes()[0] {
                b'!' => (&mut exclude, &term[1..]),
                b'&' => (&mut intersect, &term[1..]),
                _ => {
                    any_plain = true;
                    (&mut union, term)
                }
            };
            let matched = self.matching(pattern);
            if !matched.iter().any(|m| *m) {
                return Err(LimitError::NoMatch {
                    pattern: term.to_string(),
                });
            }
            let intersecting = term.starts_with('&');
            for (slot, m) in target.iter_mut().zip(matched) {
                *slot = if intersecting { *slot && m } else { *slot || m };
            }
        }
        // Like Ansible, a limit of only exclusions and intersections starts from all hosts.
        if !any_plain {
            union.fill(true);
        }
        Ok(self
            .hosts
            .iter()
            .enumerate()
            .filter(|(i, _)| union[*i] && intersect[*i] && !exclude[*i])
            .map(|(_, h)| h)
            .collect())
    }

    fn matching(&self, pattern: &str) -> Vec<bool> {
        let groups: Vec<&str> = self
            .groups
            .iter()
            .filter(|g| glob(pattern, &g.name))
            .map(|g| g.name.as_str())
            .collect();
        self.hosts
            .iter()
            .map(|h| {
                pattern == "all"
                    || glob(pattern, &h.name)
                    || h.groups.iter().any(|g| groups.contains(&g.as_str()))
            })
            .collect()
    }
}

/// `*` is any run of characters, `?` one character; everything else is literal. Also the
/// coordinator's matcher for OpenSSH host patterns (after lowercasing both sides).
pub fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // Iterative matching with one backtrack point: linear in practice, never exponential.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn globs() {
        assert!(glob("n*", "n12"));
        assert!(glob("n?", "n1"));
        assert!(!glob("n?", "n12"));
        assert!(glob("*a*b", "xxaxxb"));
        assert!(!glob("n1", "n12"));
        assert!(glob("*", ""));
    }
}
