//! The subset of `~/.ssh/config` the coordinator honours: `Host` blocks (patterns with `*`, `?`,
//! `!`) and the keywords HostName, User, Port, IdentityFile and ProxyJump. Like OpenSSH, the first
//! value obtained for a keyword wins and IdentityFile accumulates. `Match` blocks are not
//! evaluated: their options are skipped (with a warning) rather than applied to the wrong hosts.

use std::path::{Path, PathBuf};

use super::error::SshError;
use super::pattern::match_list;

/// A parsed ssh config file.
#[derive(Debug, Clone, Default)]
pub struct SshConfig {
    blocks: Vec<Block>,
}

#[derive(Debug, Clone)]
struct Block {
    /// `None` for a `Match` block, which never applies.
    patterns: Option<Vec<String>>,
    options: Vec<(Keyword, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keyword {
    HostName,
    User,
    Port,
    IdentityFile,
    ProxyJump,
}

/// What the ssh config says about one host alias.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostConfig {
    pub hostname: Option<String>,
    pub user: Option<String>,
    pub port: Option<u16>,
    /// In file order, `~`, `%d`, `%h`, `%r` and `%%` not yet expanded (see [`expand_path`]).
    pub identity_files: Vec<String>,
    /// `None` also when the config says `ProxyJump none`.
    pub proxy_jump: Option<String>,
}

impl SshConfig {
    /// Reads `path`; a missing file is an empty config, as for OpenSSH.
    pub fn load(path: &Path) -> Result<Self, SshError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text, path),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(SshError::ConfigRead {
                file: path.to_owned(),
                source,
            }),
        }
    }

    /// `~/.ssh/config`, or an empty config when there is no home directory or no file.
    pub fn load_default() -> Result<Self, SshError> {
        match std::env::home_dir() {
            Some(home) => Self::load(&home.join(".ssh").join("config")),
            None => Ok(Self::default()),
        }
    }

    pub fn parse(text: &str, file: &Path) -> Result<Self, SshError> {
        let invalid = |line: usize, message: String| SshError::ConfigSyntax {
            file: file.to_owned(),
            line,
            message,
        };
        // Options before the first Host line apply to every host.
        let mut blocks = vec![Block {
            patterns: Some(vec!["*".to_owned()]),
            options: Vec::new(),
        }];
        for (index, raw) in text.lines().enumerate() {
            let line_no = index + 1;
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (keyword, rest) = split_keyword(line);
            let args = split_args(rest).map_err(|message| invalid(line_no, message))?;
            match keyword.to_ascii_lowercase().as_str() {
                "host" => {
                    if args.is_empty() {
                        return Err(invalid(line_no, "Host needs at least one pattern".into()));
                    }
                    blocks.push(Block {
                        patterns: Some(args),
                        options: Vec::new(),
                    });
                }
                "match" => {
                    tracing::warn!(
                        "{}:{line_no}: Match blocks are not supported; their options are ignored",
                        file.display()
                    );
                    blocks.push(Block {
                        patterns: None,
                        options: Vec::new(),
                    });
                }
                other => {
                    let keyword = match other {
                        "hostname" => Keyword::HostName,
                        "user" => Keyword::User,
                        "port" => Keyword::Port,
                        "identityfile" => Keyword::IdentityFile,
                        "proxyjump" => Keyword::ProxyJump,
                        _ => continue,
                    };
                    let [value] = args.as_slice() else {
                        return Err(invalid(line_no, format!("{keyword:?} takes one value")));
                    };
                    if keyword == Keyword::Port && value.parse::<u16>().is_err() {
                        return Err(invalid(line_no, format!("bad port {value:?}")));
                    }
                    if let Some(block) = blocks.last_mut() {
                        block.options.push((keyword, value.clone()));
                    }
                }
            }
        }
        Ok(Self { blocks })
    }

    /// Collects the options of every block whose patterns match `alias`.
    pub fn lookup(&self, alias: &str) -> HostConfig {
        let mut out = HostConfig::default();
        let mut proxy_jump_seen = false;
        let matching = self.blocks.iter().filter(|block| {
            block
                .patterns
                .as_ref()
                .is_some_and(|patterns| match_list(patterns.iter().map(String::as_str), alias))
        });
        for (keyword, value) in matching.flat_map(|block| block.options.iter()) {
            match keyword {
                Keyword::HostName => {
                    out.hostname
                        .get_or_insert_with(|| value.replace("%h", alias).replace("%%", "%"));
                }
                Keyword::User => {
                    out.user.get_or_insert_with(|| value.clone());
                }
                Keyword::Port => {
                    if out.port.is_none() {
                        out.port = value.parse().ok();
                    }
                }
                Keyword::IdentityFile => out.identity_files.push(value.clone()),
                Keyword::ProxyJump if !proxy_jump_seen => {
                    proxy_jump_seen = true;
                    if !value.eq_ignore_ascii_case("none") {
                        out.proxy_jump = Some(value.clone());
                    }
                }
                Keyword::ProxyJump => {}
            }
        }
        out
    }
}

/// Splits `Keyword value`, `Keyword=value` and `Keyword = value`.
fn split_keyword(line: &str) -> (&str, &str) {
    let end = line
        .find(|c: char| c.is_whitespace() || c == '=')
        .unwrap_or(line.len());
    let (keyword, rest) = line.split_at(end);
    let rest = rest.trim_start();
    let rest = rest.strip_prefix('=').unwrap_or(rest);
    (keyword, rest.trim())
}

/// Whitespace-separated arguments; double quotes group an argument containing spaces.
fn split_args(rest: &str) -> Result<Vec<String>, String> {
    let mut args = Vec::new();
    let mut current = String::new();
    let mut in_arg = false;
    let mut quoted = false;
    for c in rest.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                in_arg = true;
            }
            c if c.is_whitespace() && !quoted => {
                if in_arg {
                    args.push(std::mem::take(&mut current));
                    in_arg = false;
                }
            }
            c => {
                current.push(c);
                in_arg = true;
            }
        }
    }
    if quoted {
        return Err("unterminated quote".into());
    }
    if in_arg {
        args.push(current);
    }
    Ok(args)
}

/// Expands the tokens OpenSSH allows in IdentityFile: `~` and `%d` (home), `%h` (remote host
/// name), `%r` (remote user) and `%%`.
pub fn expand_path(raw: &str, host: &str, user: &str) -> PathBuf {
    let home = std::env::home_dir().unwrap_or_default();
    let home = home.to_string_lossy();
    let raw = match raw.strip_prefix("~/") {
        Some(rest) => format!("{home}/{rest}"),
        None if raw == "~" => home.to_string(),
        None => raw.to_owned(),
    };
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('d') => out.push_str(&home),
            Some('h') => out.push_str(host),
            Some('r') => out.push_str(user),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    PathBuf::from(out)
}

/// One ProxyJump hop: `[user@]host[:port]` or `ssh://[user@]host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JumpHost {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
}

impl JumpHost {
    pub fn parse(spec: &str) -> Result<Self, String> {
        if spec.contains(',') {
            return Err(format!(
                "ProxyJump {spec:?} chains several jump hosts; only one is supported"
            ));
        }
        let spec = spec.strip_prefix("ssh://").unwrap_or(spec);
        let (user, host_port) = match spec.rsplit_once('@') {
            Some((user, rest)) => (Some(user.to_owned()), rest),
            None => (None, spec),
        };
        let (host, port) = if let Some(bracketed) = host_port.strip_prefix('[') {
            let (host, after) = bracketed
                .split_once(']')
                .ok_or_else(|| format!("ProxyJump {spec:?}: missing ']'"))?;
            (host, after.strip_prefix(':'))
        } else {
            match host_port.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (host_port, None),
            }
        };
        let port = port
            .map(|port| {
                port.parse::<u16>()
                    .map_err(|_| format!("ProxyJump {spec:?}: bad port {port:?}"))
            })
            .transpose()?;
        if host.is_empty() {
            return Err(format!("ProxyJump {spec:?}: empty host"));
        }
        Ok(Self {
            user,
            host: host.to_owned(),
            port,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> SshConfig {
        SshConfig::parse(text, Path::new("test_config")).unwrap()
    }

    #[test]
    fn first_value_wins_and_identity_files_accumulate() {
        let config = parse(
            "User global\n\
             Host n1\n  HostName 10.0.0.1\n  Port 2222\n  IdentityFile ~/.ssh/n1\n\
             Host n*\n  HostName=ignored\n  User fleet\n  Port = 22\n  IdentityFile \"/k/with space\"\n",
        );
        let n1 = config.lookup("n1");
        assert_eq!(n1.hostname.as_deref(), Some("10.0.0.1"));
        assert_eq!(
            n1.user.as_deref(),
            Some("global"),
            "options before Host apply first"
        );
        assert_eq!(n1.port, Some(2222));
        assert_eq!(n1.identity_files, ["~/.ssh/n1", "/k/with space"]);
        let n2 = config.lookup("n2");
        assert_eq!(n2.hostname.as_deref(), Some("ignored"));
        assert_eq!(n2.port, Some(22));
        assert_eq!(config.lookup("other").hostname, None);
    }

    #[test]
    fn negated_patterns_and_match_blocks() {
        let config = parse(
            "Host * !bastion\n  ProxyJump admin@bastion:2200\n\
             Match host n1\n  User never\n\
             Host bastion\n  ProxyJump none\n  User jump\n",
        );
        assert_eq!(
            config.lookup("n1").proxy_jump.as_deref(),
            Some("admin@bastion:2200")
        );
        assert_eq!(config.lookup("n1").user, None, "Match options are skipped");
        let bastion = config.lookup("bastion");
        assert_eq!(bastion.proxy_jump, None);
        assert_eq!(bastion.user.as_deref(), Some("jump"));
    }

    #[test]
    fn proxy_jump_none_first_wins() {
        let config = parse("Host n1\n  ProxyJump none\nHost *\n  ProxyJump b\n");
        assert_eq!(config.lookup("n1").proxy_jump, None);
        assert_eq!(config.lookup("n2").proxy_jump.as_deref(), Some("b"));
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let err = SshConfig::parse("Host a\n  Port twenty\n", Path::new("cfg")).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("cfg:2"), "{text}");
        assert!(SshConfig::parse("Host a\nUser \"x\n", Path::new("cfg")).is_err());
    }

    #[test]
    fn jump_host_forms() {
        assert_eq!(
            JumpHost::parse("u@h:2200").unwrap(),
            JumpHost {
                user: Some("u".into()),
                host: "h".into(),
                port: Some(2200)
            }
        );
        assert_eq!(JumpHost::parse("ssh://[::1]:22").unwrap().host, "::1");
        assert_eq!(JumpHost::parse("h").unwrap().port, None);
        assert!(JumpHost::parse("a,b").is_err());
        assert!(JumpHost::parse("h:x").is_err());
    }

    #[test]
    fn path_tokens() {
        let home = std::env::home_dir().unwrap();
        assert_eq!(
            expand_path("~/.ssh/%h-%r%%", "n1", "root"),
            home.join(".ssh/n1-root%")
        );
        assert_eq!(expand_path("/abs", "h", "u"), PathBuf::from("/abs"));
    }
}
