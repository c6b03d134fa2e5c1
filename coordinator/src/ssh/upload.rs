//! Uploading a file to a content-addressed directory on a host: streamed on the command's stdin
//! (gzip-compressed when asked), written to a temporary file in the same directory and renamed to
//! `<name>-<sha256>` only after the host computed the same sha256, so a broken upload never
//! leaves a file under the final name.

use tokio::io::AsyncRead;

use super::error::SshError;
use super::session::Session;

/// `$1` the directory, `$2` the expected sha256, `$3` the file name before `-<sha256>`, `$4`
/// `gzip` when stdin is compressed.
const UPLOAD_SCRIPT: &str = r#"set -eu
umask 077
dir=$1 sum=$2 name=$3 encoding=$4
if [ "$(id -u)" != 0 ]; then
  echo "$dir must be root-owned: connect as root or set become = true" >&2; exit 3
fi
mkdir -p -- "$dir"
chmod 0700 -- "$dir"
if [ "$(stat -c %u -- "$dir")" != 0 ]; then echo "$dir is not owned by root" >&2; exit 3; fi
tmp=$(mktemp "$dir/.upload.XXXXXX")
trap 'rm -f -- "$tmp"' EXIT
if [ "$encoding" = gzip ]; then gzip -dc > "$tmp"; else cat > "$tmp"; fi
got=$(sha256sum < "$tmp"); got=${got%% *}
if [ "$got" != "$sum" ]; then echo "upload damaged: sha256 $got, expected $sum" >&2; exit 3; fi
chmod 0700 -- "$tmp"
mv -f -- "$tmp" "$dir/$name-$sum"
trap - EXIT
"#;

/// Where an upload lands: `<dir>/<name>-<sha256>`.
pub struct RemoteFile<'a> {
    pub dir: &'a str,
    pub name: &'a str,
    pub sha256: &'a str,
}

impl RemoteFile<'_> {
    pub fn path(&self) -> String {
        format!("{}/{}-{}", self.dir, self.name, self.sha256)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Plain,
    /// The stream is gzip; the host decompresses it with `gzip -dc` (part of every Linux base
    /// system).
    Gzip,
}

impl Session {
    /// Streams `content` into `file` on the host.
    pub async fn upload(
        &self,
        file: &RemoteFile<'_>,
        content: impl AsyncRead + Unpin,
        encoding: Encoding,
    ) -> Result<(), SshError> {
        if !file.dir.starts_with('/') {
            return Err(SshError::AgentPush {
                host: self.host().to_owned(),
                message: format!(
                    "the upload directory {:?} must be an absolute path",
                    file.dir
                ),
            });
        }
        let encoding = match encoding {
            Encoding::Plain => "plain",
            Encoding::Gzip => "gzip",
        };
        let argv = [
            "sh",
            "-c",
            UPLOAD_SCRIPT,
            "sh",
            file.dir,
            file.sha256,
            file.name,
            encoding,
        ];
        let output = self.exec_reader(&argv, content).await?;
        self.checked(&argv, output).map(drop)
    }
}
