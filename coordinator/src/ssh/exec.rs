//! Running commands on a session. A command is an argv: every argument is quoted here, so no
//! inventory value ever reaches a shell unquoted.
//!
//! sshd runs the command through the user's login shell, which may be bash, dash, zsh or fish,
//! and whose rc files may print banners on stdout and stderr before the command starts. So the
//! quoting works in all four, and the command line first prints a marker line on stdout and on
//! stderr: what comes before it is the shell's, not the command's, and is set aside (shown with
//! `-v`); a stdout that ends without the marker means the shell never ran the command.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use russh::ChannelMsg;
use russh::client::Msg;
use russh::{ChannelReadHalf, ChannelWriteHalf};

use super::error::SshError;
use super::session::Session;

/// stderr kept from a streaming command, for error messages.
const STDERR_KEEP: usize = 64 * 1024;
const SUDO_PASSWORD_PROMPT: &str = "sudo: a password is required";
/// What sudo says under `Defaults requiretty` (older and newer wordings).
const SUDO_WANTS_TTY: [&str; 2] = ["you must have a tty to run sudo", "a terminal is required"];

/// The line a command line prints on stdout and stderr before the command itself runs.
const OUTPUT_MARKER: &str = "restate-fleet:output-begins";
/// Shell output before the marker kept for `-v` (a banner, a warning), per stream.
const PREAMBLE_KEEP: usize = 16 * 1024;

/// Quotes one argument for the login shell: single quotes, with each `'` written as `'\''` and
/// each `\` as `'\\'`. POSIX shells and zsh read that back unchanged, and so does fish, whose
/// single quotes would otherwise take `\\` and `\'` as escapes.
pub fn shell_quote(argument: &str) -> String {
    let mut quoted = String::with_capacity(argument.len() + 2);
    quoted.push('\'');
    for c in argument.chars() {
        match c {
            '\'' => quoted.push_str(r"'\''"),
            '\\' => quoted.push_str(r"'\\'"),
            c => quoted.push(c),
        }
    }
    quoted.push('\'');
    quoted
}

/// Runs `$1` (sh syntax) with a controlling terminal, for sudo under `Defaults requiretty`,
/// while the command's stdin, stdout and stderr stay the session's own pipes (fds 3, 4 and 5
/// inside): binary data and end-of-file pass untouched, as no terminal ever carries them.
/// script(1) (util-linux, on every Linux base system) makes the terminal; `-e` passes the exit
/// status on; `SHELL=/bin/sh` because script runs `-c` with `$SHELL`, which may be fish.
const SUDO_IN_A_TERMINAL: &str =
    r#"exec env SHELL=/bin/sh script -qec "$1" /dev/null 3<&0 4>&1 5>&2 </dev/null >/dev/null"#;

/// `argv` quoted as one line for the login shell, after the output markers. `echo`, `;` and
/// `>&2` mean the same in sh, bash, zsh and fish.
fn marked_line<'a>(argv: impl IntoIterator<Item = &'a str>) -> String {
    let words: Vec<String> = argv.into_iter().map(shell_quote).collect();
    format!(
        "echo {OUTPUT_MARKER}; echo {OUTPUT_MARKER} >&2; {}",
        words.join(" ")
    )
}

/// How a remote command ended.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ExitStatus {
    Code(u32),
    Signal(String),
    /// The channel closed without an exit status (e.g. the connection dropped).
    #[default]
    Unknown,
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Code(code) => write!(f, "exit status {code}"),
            Self::Signal(signal) => write!(f, "signal {signal}"),
            Self::Unknown => f.write_str("no exit status (connection lost?)"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl ExecOutput {
    pub fn success(&self) -> bool {
        self.status == ExitStatus::Code(0)
    }
}

impl Session {
    /// The command line sent to the host for `argv`: the output markers, then `argv` quoted, behind
    /// `sudo -n` when the host uses `become`.
    pub fn command_line<S: AsRef<str>>(&self, argv: &[S]) -> Result<String, SshError> {
        let argv = argv.iter().map(AsRef::as_ref);
        if let Some(argument) = argv.clone().find(|argument| argument.contains('\0')) {
            return Err(SshError::NulInArgument {
                host: self.host().to_owned(),
                argument: argument.to_owned(),
            });
        }
        if !self.inner.become_root {
            return Ok(marked_line(argv));
        }
        let sudo = ["sudo", "-n", "--"].into_iter().chain(argv);
        if !self.inner.sudo_wants_tty.load(Ordering::Relaxed) {
            return Ok(marked_line(sudo));
        }
        let words: Vec<String> = sudo.map(shell_quote).collect();
        let inner = format!("exec {} <&3 >&4 2>&5", words.join(" "));
        Ok(marked_line(["sh", "-c", SUDO_IN_A_TERMINAL, "sh", &inner]))
    }

    /// Runs `true` through sudo once: a password prompt fails the connection here, before any
    /// step, and sudo that insists on a terminal switches this session to the terminal wrapper.
    pub(super) async fn probe_sudo(&self) -> Result<(), SshError> {
        let probe = ["true"];
        match self.exec(&probe, b"").await {
            Err(SshError::SudoRequiresTty { .. }) => {
                self.inner.sudo_wants_tty.store(true, Ordering::Relaxed);
                let output = self.exec(&probe, b"").await?;
                self.checked(
                    &["sudo", "-n", "true", "(in a terminal made by script(1))"],
                    output,
                )
                .map(drop)
            }
            other => self.checked(&["sudo", "-n", "true"], other?).map(drop),
        }
    }

    /// Runs `argv` with `stdin` and collects its output. A non-zero exit is not an error here
    /// (see [`Session::exec_checked`]); sudo asking for a password is.
    pub async fn exec<S: AsRef<str>>(
        &self,
        argv: &[S],
        stdin: &[u8],
    ) -> Result<ExecOutput, SshError> {
        self.exec_reader(argv, stdin).await
    }

    /// [`Session::exec`] with stdin streamed from `stdin` (a large file need not be in memory).
    pub async fn exec_reader<S: AsRef<str>>(
        &self,
        argv: &[S],
        stdin: impl tokio::io::AsyncRead + Unpin,
    ) -> Result<ExecOutput, SshError> {
        let command = self.command_line(argv)?;
        let (mut reader, writer) = self.start(&command).await?;
        let protocol = self.protocol_error("sending a command's input");
        // Feed stdin while reading output: a command that writes before it has read all of
        // its input would otherwise stall on the channel window. A command that exits without
        // reading all of it closes the channel, which ends the feed; its exit status and stderr
        // then say more than the write error.
        let feed = async {
            writer.data(stdin).await?;
            writer.eof().await
        };
        let mut collected = Collected::default();
        let fed = {
            let drain = collected.drain(&mut reader, None);
            tokio::pin!(feed, drain);
            let mut fed = None;
            loop {
                tokio::select! {
                    result = &mut feed, if fed.is_none() => fed = Some(result),
                    () = &mut drain => break fed,
                }
            }
        };
        if let Some(Err(err)) = fed
            && collected.status == ExitStatus::Unknown
            && collected.out.begun
        {
            return Err(protocol(err));
        }
        self.check_shell(&mut collected)?;
        self.check_sudo(&collected.stderr)?;
        Ok(ExecOutput {
            status: collected.status,
            stdout: collected.stdout,
            stderr: collected.stderr,
        })
    }

    /// Like [`Session::exec`], but a non-zero exit becomes [`SshError::CommandFailed`].
    pub async fn exec_checked<S: AsRef<str>>(
        &self,
        argv: &[S],
        stdin: &[u8],
    ) -> Result<ExecOutput, SshError> {
        let output = self.exec(argv, stdin).await?;
        self.checked(argv, output)
    }

    /// A finished command's output, or [`SshError::CommandFailed`] when it did not exit 0.
    pub(super) fn checked<S: AsRef<str>>(
        &self,
        argv: &[S],
        output: ExecOutput,
    ) -> Result<ExecOutput, SshError> {
        if output.success() {
            return Ok(output);
        }
        Err(SshError::CommandFailed {
            host: self.host().to_owned(),
            command: argv.iter().map(AsRef::as_ref).collect::<Vec<_>>().join(" "),
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        })
    }

    /// Starts `argv` and keeps its channel open for a line-based conversation (the agent's
    /// `serve` mode: newline-delimited JSON on stdin and stdout).
    pub async fn exec_streaming<S: AsRef<str>>(&self, argv: &[S]) -> Result<ExecStream, SshError> {
        let command = self.command_line(argv)?;
        let (reader, writer) = self.start(&command).await?;
        Ok(ExecStream {
            session: self.clone(),
            command: argv.iter().map(AsRef::as_ref).collect::<Vec<_>>().join(" "),
            reader,
            lines: LineWriter {
                writer: Arc::new(writer),
                gate: Arc::new(tokio::sync::Mutex::new(())),
            },
            pending: Vec::new(),
            collected: Collected::default(),
            closed: false,
        })
    }

    async fn start(
        &self,
        command: &str,
    ) -> Result<(ChannelReadHalf, ChannelWriteHalf<Msg>), SshError> {
        let channel = self
            .inner
            .handle
            .channel_open_session()
            .await
            .map_err(self.protocol_error("opening a channel"))?;
        channel
            .exec(true, command)
            .await
            .map_err(self.protocol_error("starting a command"))?;
        Ok(channel.split())
    }

    /// Sets the login shell's preamble aside (logged for `-v`), and fails when the shell ended
    /// without running the command at all.
    fn check_shell(&self, collected: &mut Collected) -> Result<(), SshError> {
        for (stream, preamble) in [
            ("stdout", &mut collected.out),
            ("stderr", &mut collected.err),
        ] {
            if preamble.begun && !preamble.bytes.is_empty() {
                tracing::debug!(
                    "{}: the login shell printed on {stream} before the command: {}",
                    self.host(),
                    String::from_utf8_lossy(&preamble.bytes).trim()
                );
                preamble.bytes.clear();
            }
        }
        if collected.out.begun {
            return Ok(());
        }
        let mut printed = std::mem::take(&mut collected.out.bytes);
        printed.extend_from_slice(&collected.err.bytes);
        printed.extend_from_slice(&collected.stderr);
        Err(SshError::ShellDidNotRun {
            host: self.host().to_owned(),
            user: self.user().to_owned(),
            status: collected.status.to_string(),
            printed: String::from_utf8_lossy(&printed).trim().to_owned(),
        })
    }

    fn check_sudo(&self, stderr: &[u8]) -> Result<(), SshError> {
        if !self.inner.become_root {
            return Ok(());
        }
        let stderr = String::from_utf8_lossy(stderr);
        let (host, user) = (self.host().to_owned(), self.user().to_owned());
        if stderr.contains(SUDO_PASSWORD_PROMPT) {
            return Err(SshError::SudoNeedsPassword { host, user });
        }
        if SUDO_WANTS_TTY.iter().any(|said| stderr.contains(said)) {
            return Err(SshError::SudoRequiresTty { host, user });
        }
        Ok(())
    }
}

/// What the login shell printed on one stream before the command's marker line.
#[derive(Default)]
struct Preamble {
    /// Before the marker: everything so far (its last [`PREAMBLE_KEEP`] bytes); after: the
    /// shell's part.
    bytes: Vec<u8>,
    /// The marker was seen: what follows is the command's.
    begun: bool,
}

impl Preamble {
    /// Appends the command's part of `data` to `out`.
    fn split(&mut self, data: &[u8], out: &mut Vec<u8>) {
        if self.begun {
            out.extend_from_slice(data);
            return;
        }
        self.bytes.extend_from_slice(data);
        let marker = [OUTPUT_MARKER.as_bytes(), b"\n"].concat();
        match self
            .bytes
            .windows(marker.len())
            .position(|window| window == marker)
        {
            Some(at) => {
                out.extend_from_slice(&self.bytes[at + marker.len()..]);
                self.bytes.truncate(at);
                self.begun = true;
            }
            None if self.bytes.len() > PREAMBLE_KEEP + marker.len() => {
                // The tail stays long enough to find a marker split across two reads.
                let cut = self.bytes.len() - PREAMBLE_KEEP;
                self.bytes.drain(..cut);
            }
            None => {}
        }
    }
}

/// What a channel delivered so far.
#[derive(Default)]
struct Collected {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    out: Preamble,
    err: Preamble,
    status: ExitStatus,
}

impl Collected {
    /// Handles one message; false once the channel is finished.
    fn absorb(&mut self, message: Option<ChannelMsg>, stderr_cap: Option<usize>) -> bool {
        match message {
            Some(ChannelMsg::Data { data }) => self.out.split(&data, &mut self.stdout),
            Some(ChannelMsg::ExtendedData { data, ext: 1 }) => {
                self.err.split(&data, &mut self.stderr);
                if let Some(cap) = stderr_cap
                    && self.stderr.len() > cap
                {
                    self.stderr.drain(..self.stderr.len() - cap);
                }
            }
            Some(ChannelMsg::ExitStatus { exit_status }) => {
                self.status = ExitStatus::Code(exit_status);
            }
            Some(ChannelMsg::ExitSignal { signal_name, .. }) => {
                self.status = ExitStatus::Signal(format!("{signal_name:?}"));
            }
            Some(ChannelMsg::Close) | None => return false,
            Some(_) => {}
        }
        true
    }

    async fn drain(&mut self, reader: &mut ChannelReadHalf, stderr_cap: Option<usize>) {
        while self.absorb(reader.wait().await, stderr_cap) {}
    }
}

/// Writes whole lines to a running command's stdin; lines from several tasks never interleave.
#[derive(Clone)]
pub struct LineWriter {
    writer: Arc<ChannelWriteHalf<Msg>>,
    gate: Arc<tokio::sync::Mutex<()>>,
}

impl LineWriter {
    /// `Err`: the command no longer reads its stdin.
    pub async fn send_line(&self, line: &str) -> Result<(), ()> {
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        let _whole_line = self.gate.lock().await;
        self.writer.data(bytes.as_slice()).await.map_err(|_| ())
    }
}

/// A running command with open stdin and stdout, exchanged line by line.
pub struct ExecStream {
    session: Session,
    command: String,
    reader: ChannelReadHalf,
    lines: LineWriter,
    /// Bytes of stdout not yet returned as lines.
    pending: Vec<u8>,
    collected: Collected,
    closed: bool,
}

impl ExecStream {
    /// Writes `line` and a newline to the command's stdin.
    pub async fn send_line(&mut self, line: &str) -> Result<(), SshError> {
        self.lines.send_line(line).await.map_err(|()| self.ended())
    }

    /// A writer for lines that must reach the command while a task waits for its answer.
    pub fn line_writer(&self) -> LineWriter {
        self.lines.clone()
    }

    /// The next line of stdout without its newline; `None` once stdout ended (see
    /// [`ExecStream::finish`] for the exit status).
    pub async fn recv_line(&mut self) -> Result<Option<String>, SshError> {
        loop {
            if let Some(end) = self.pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=end).take(end).collect();
                return self.utf8(line).map(Some);
            }
            if self.closed {
                self.session.check_shell(&mut self.collected)?;
                self.session.check_sudo(&self.collected.stderr)?;
                if self.pending.is_empty() {
                    return Ok(None);
                }
                let rest = std::mem::take(&mut self.pending);
                return self.utf8(rest).map(Some);
            }
            let message = self.reader.wait().await;
            self.closed = !self.collected.absorb(message, Some(STDERR_KEEP));
            self.pending.append(&mut self.collected.stdout);
        }
    }

    /// stderr received so far (the last 64 KiB).
    pub fn stderr(&self) -> &[u8] {
        &self.collected.stderr
    }

    /// Closes stdin, waits for the command to end and returns its status, the stdout not read
    /// as lines, and the tail of stderr.
    pub async fn finish(mut self) -> Result<ExecOutput, SshError> {
        // The command may have exited already; a failed EOF then changes nothing.
        let _ = self.lines.writer.eof().await;
        if !self.closed {
            self.collected
                .drain(&mut self.reader, Some(STDERR_KEEP))
                .await;
        }
        self.session.check_shell(&mut self.collected)?;
        self.session.check_sudo(&self.collected.stderr)?;
        self.pending.append(&mut self.collected.stdout);
        Ok(ExecOutput {
            status: self.collected.status,
            stdout: self.pending,
            stderr: self.collected.stderr,
        })
    }

    fn ended(&self) -> SshError {
        SshError::CommandFailed {
            host: self.session.host().to_owned(),
            command: self.command.clone(),
            status: "ended while we were still writing to it".into(),
            stderr: String::from_utf8_lossy(&self.collected.stderr)
                .trim()
                .to_owned(),
        }
    }

    fn utf8(&self, line: Vec<u8>) -> Result<String, SshError> {
        String::from_utf8(line).map_err(|err| SshError::CommandFailed {
            host: self.session.host().to_owned(),
            command: self.command.clone(),
            status: format!("wrote a line that is not UTF-8 ({err})"),
            stderr: String::from_utf8_lossy(&self.collected.stderr)
                .trim()
                .to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTILE: [&str; 13] = [
        "plain",
        "",
        "with space",
        "it's",
        "'",
        "a;rm -rf /tmp/x",
        "$(touch /tmp/pwned)",
        "`id`",
        "\"dq\" $HOME \\ \n newline",
        "back\\\\slash \\' \\n",
        "*",
        "-n",
        "{a,b} ~ (echo fish) %self",
    ];

    /// The login shells sshd may run a command through (`scripts/install-deps` installs them).
    const SHELLS: [&str; 5] = ["sh", "dash", "bash", "zsh", "fish"];

    /// Runs `line` as sshd would (`SHELL -c LINE`) after an rc file that prints on both streams.
    fn through(shell: &str, line: &str) -> std::process::Output {
        std::process::Command::new(shell)
            .arg("-c")
            .arg(format!(
                "echo 'Welcome to host n1'; echo 'warning: quota nearly full' >&2; printf partial; {line}"
            ))
            .output()
            .unwrap_or_else(|err| panic!("{shell}: {err} (scripts/install-deps installs it)"))
    }

    #[test]
    fn quoting_is_reversible_by_every_login_shell() {
        let line = marked_line(std::iter::once("printf").chain(["%s|END|"]).chain(HOSTILE));
        for shell in SHELLS {
            let output = through(shell, &line);
            let mut collected = Collected::default();
            collected.out.split(&output.stdout, &mut collected.stdout);
            collected.err.split(&output.stderr, &mut collected.stderr);
            assert!(
                collected.out.begun && collected.err.begun,
                "{shell}: {output:?}"
            );
            let stdout = String::from_utf8(collected.stdout).unwrap();
            let got: Vec<&str> = stdout.split("|END|").collect();
            assert_eq!(&got[..HOSTILE.len()], &HOSTILE[..], "{shell}");
            assert_eq!(got.len(), HOSTILE.len() + 1, "{shell}: {stdout:?}");
            assert_eq!(collected.stderr, b"", "{shell}");
            assert_eq!(
                String::from_utf8_lossy(&collected.out.bytes),
                "Welcome to host n1\npartial",
                "{shell}"
            );
            assert_eq!(
                String::from_utf8_lossy(&collected.err.bytes),
                "warning: quota nearly full\n",
                "{shell}"
            );
        }
    }

    #[test]
    fn a_marker_split_across_reads_is_found() {
        let data = format!("banner\n{OUTPUT_MARKER}\n{{\"ok\":true}}\n");
        for cut in 0..data.len() {
            let mut preamble = Preamble::default();
            let mut out = Vec::new();
            preamble.split(&data.as_bytes()[..cut], &mut out);
            preamble.split(&data.as_bytes()[cut..], &mut out);
            assert!(preamble.begun, "cut at {cut}");
            assert_eq!(out, b"{\"ok\":true}\n", "cut at {cut}");
            assert_eq!(preamble.bytes, b"banner\n", "cut at {cut}");
        }
    }

    #[test]
    fn endless_noise_without_a_marker_keeps_only_a_bounded_tail() {
        let mut preamble = Preamble::default();
        let mut out = Vec::new();
        for _ in 0..100 {
            preamble.split(&[b'x'; 4096], &mut out);
        }
        assert!(!preamble.begun && out.is_empty());
        assert!(preamble.bytes.len() <= PREAMBLE_KEEP + OUTPUT_MARKER.len() + 1);
    }
}
