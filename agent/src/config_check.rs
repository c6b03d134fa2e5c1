//! A new restate.toml read by the restate-server that will run it, before the file is written in
//! place: `--dump-config` loads the file and the `RESTATE_` environment exactly as a start does,
//! then exits, 1 with the loader's message on a value the server refuses (a size it cannot
//! parse, an enum value it does not know). It writes nothing else and takes about 20 ms
//! (measured on 1.6.2 and 1.7.12). Unknown keys pass: the server ignores them.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use restate_fleet_proto::agent::AgentError;

use crate::{facts, files, service};

const TIMEOUT: Duration = Duration::from_secs(20);

/// The server's refusal of `text` as the config at `config`, or `None` when it loads it (or no
/// server could be asked: the start would find that out, as before).
pub fn refusal(
    binary: Option<&Path>,
    config: &Path,
    text: &str,
    restate: &[(String, String)],
) -> Result<Option<String>, AgentError> {
    let Some(binary) = binary.map(Path::to_path_buf).or_else(facts::server_on_path) else {
        return Ok(None);
    };
    // Next to the real file, 0600 (it may hold secrets), under a name of its own.
    let (tmp, ()) = files::temp_file(&check_path(config), 0o600, None, |file| {
        file.write_all(text.as_bytes())
            .map_err(|e| files::io_error("write", config, &e))
    })?;
    let argv = [
        binary.display().to_string(),
        "--config-file".to_string(),
        tmp.display().to_string(),
        "--dump-config".to_string(),
    ];
    let done = service::run_with(&argv, Some(restate), TIMEOUT);
    let _ = fs::remove_file(&tmp);
    Ok(match done {
        // 2 is a usage error: a server without --dump-config says nothing about the file.
        Ok(done) if done.code == Some(1) => Some(said(&done.stderr, &tmp, config, &binary)),
        _ => None,
    })
}

fn check_path(config: &Path) -> PathBuf {
    let name = config.file_name().map_or_else(
        || "restate.toml".into(),
        |n| n.to_string_lossy().into_owned(),
    );
    config.with_file_name(format!("{name}.check"))
}

/// The server's message, naming the real file rather than the copy it read.
fn said(stderr: &str, tmp: &Path, config: &Path, binary: &Path) -> String {
    let tmp_name = tmp
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let message = stderr
        .trim()
        .replace(&tmp.display().to_string(), &config.display().to_string())
        .replace(&tmp_name, &config.display().to_string());
    format!("{} refuses it: {message}", binary.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_servers_message_names_the_real_file() {
        let tmp = Path::new("/etc/restate/.restate.toml.check.tmp-42");
        let stderr = "[RT0002] configuration loading error: invalid value string \"lots\" for key \"default.rocksdb-total-memory-size\" in .restate.toml.check.tmp-42 TOML file\n";
        assert_eq!(
            said(
                stderr,
                tmp,
                Path::new("/etc/restate/restate.toml"),
                Path::new("/usr/local/bin/restate-server")
            ),
            "/usr/local/bin/restate-server refuses it: [RT0002] configuration loading error: invalid value string \"lots\" for key \"default.rocksdb-total-memory-size\" in /etc/restate/restate.toml TOML file"
        );
    }

    #[test]
    fn a_server_is_asked_about_the_file_and_its_environment() {
        let dir = std::env::temp_dir().join(format!("rfa-check-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        // A stand-in for restate-server: refuses a file naming "bad" or an environment that
        // sets RESTATE_BAD, as the real loader refuses a bad value.
        let server = dir.join("restate-server");
        fs::write(
            &server,
            "#!/bin/sh\ngrep -q bad \"$2\" && { echo \"bad value in $2\" >&2; exit 1; }\n[ -n \"$RESTATE_BAD\" ] && { echo 'bad env' >&2; exit 1; }\nexit 0\n",
        )
        .unwrap();
        fs::set_permissions(&server, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let config = dir.join("restate.toml");
        let none: &[(String, String)] = &[];
        let ok = refusal(Some(&server), &config, "cluster-name = \"c\"\n", none).unwrap();
        assert_eq!(ok, None);
        let bad = refusal(Some(&server), &config, "x = \"bad\"\n", none).unwrap();
        let bad = bad.unwrap_or_default();
        assert!(
            bad.contains(&format!("bad value in {}", config.display())),
            "{bad}"
        );
        let env = [("RESTATE_BAD".to_string(), "1".to_string())];
        let by_env = refusal(Some(&server), &config, "cluster-name = \"c\"\n", &env).unwrap();
        assert!(by_env.is_some_and(|m| m.contains("bad env")));
        // Nothing is left beside the file, and the file itself was never written.
        let left: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(left, vec![std::ffi::OsString::from("restate-server")]);
        fs::remove_dir_all(dir).unwrap();
    }
}
