//! Running commands on a session. A command is an argv: every argument is quoted for the
//! remote POSIX shell here, so no inventory value ever reaches a shell unquoted.

use std::fmt;

use russh::ChannelMsg;
use russh::client::Msg;
use russh::{ChannelReadHalf, ChannelWriteHalf};

use super::error::SshError;
use super::session::Session;

/// stderr kept from a streaming command, for error messages.
const STDERR_KEEP: usize = 64 * 1024;
const SUDO_PASSWORD_PROMPT: &str = "sudo: a password is required";

/// Quotes one argument for a POSIX shell: single quotes, with each `'` written as `'\''`.
pub fn shell_quote(argument: &str) -> String {
    let mut quoted = String::with_capacity(argument.len() + 2);
    quoted.push('\'');
    for c in argument.chars() {
        if c == '\'' {
            quoted.push_str("'\\''");
        } else {
            quoted.push(c);
        }
    }
    quoted.push('\'');
    quoted
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
    /// The command line sent to the host for `argv`: quoted, and behind `sudo -n` when the host
    /// uses `become`.
    pub fn command_line<S: AsRef<str>>(&self, argv: &[S]) -> Result<String, SshError> {
        let sudo = ["sudo", "-n", "--"];
        let prefix = if self.inner.become_root {
            &sudo[..]
        } else {
            &[]
        };
        let mut words = Vec::with_capacity(prefix.len() + argv.len());
        for argument in prefix.iter().copied().chain(argv.iter().map(AsRef::as_ref)) {
            if argument.contains('\0') {
                return Err(SshError::NulInArgument {
                    host: self.host().to_owned(),
                    argument: argument.to_owned(),
                });
            }
            words.push(shell_quote(argument));
        }
        Ok(words.join(" "))
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
        {
            return Err(protocol(err));
        }
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
            writer,
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

    fn check_sudo(&self, stderr: &[u8]) -> Result<(), SshError> {
        if self.inner.become_root && String::from_utf8_lossy(stderr).contains(SUDO_PASSWORD_PROMPT)
        {
            return Err(SshError::SudoNeedsPassword {
                host: self.host().to_owned(),
                user: self.user().to_owned(),
            });
        }
        Ok(())
    }
}

/// What a channel delivered so far.
#[derive(Default)]
struct Collected {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    status: ExitStatus,
}

impl Collected {
    /// Handles one message; false once the channel is finished.
    fn absorb(&mut self, message: Option<ChannelMsg>, stderr_cap: Option<usize>) -> bool {
        match message {
            Some(ChannelMsg::Data { data }) => self.stdout.extend_from_slice(&data),
            Some(ChannelMsg::ExtendedData { data, ext: 1 }) => {
                self.stderr.extend_from_slice(&data);
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

/// A running command with open stdin and stdout, exchanged line by line.
pub struct ExecStream {
    session: Session,
    command: String,
    reader: ChannelReadHalf,
    writer: ChannelWriteHalf<Msg>,
    /// Bytes of stdout not yet returned as lines.
    pending: Vec<u8>,
    collected: Collected,
    closed: bool,
}

impl ExecStream {
    /// Writes `line` and a newline to the command's stdin.
    pub async fn send_line(&mut self, line: &str) -> Result<(), SshError> {
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        self.writer
            .data(bytes.as_slice())
            .await
            .map_err(|_| self.ended())
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
        let _ = self.writer.eof().await;
        if !self.closed {
            self.collected
                .drain(&mut self.reader, Some(STDERR_KEEP))
                .await;
        }
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

    #[test]
    fn quoting_is_reversible_by_a_real_shell() {
        let hostile = [
            "plain",
            "",
            "with space",
            "it's",
            "'",
            "a;rm -rf /tmp/x",
            "$(touch /tmp/pwned)",
            "`id`",
            "\"dq\" $HOME \\ \n newline",
            "*",
            "-n",
        ];
        let line = hostile.map(shell_quote).join(" ");
        let output = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("printf '%s\\0' {line}"))
            .output()
            .unwrap();
        let got: Vec<String> = output
            .stdout
            .split(|b| *b == 0)
            .filter(|_| true)
            .map(|part| String::from_utf8(part.to_vec()).unwrap())
            .collect();
        assert_eq!(&got[..hostile.len()], &hostile[..]);
        assert_eq!(
            got.len(),
            hostile.len() + 1,
            "trailing empty split after last NUL"
        );
    }
}
