//! Public key authentication, in OpenSSH's order: explicit identity files, ssh-agent keys, then
//! the default key files. Decoded keys are cached for the whole run so an encrypted key is
//! decrypted (and its passphrase asked for) once, not once per host.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use russh::client::Handle;
use russh::keys::agent::client::AgentClient;
use russh::keys::{HashAlg, PrivateKey, PrivateKeyWithHashAlg};

use super::error::SshError;
use super::session::ClientHandler;

/// Key material shared by every session of a run.
pub struct Credentials {
    agent_socket: Option<PathBuf>,
    default_identities: Vec<PathBuf>,
    passphrase: Option<String>,
    prompt_on_tty: bool,
    /// Also serialises terminal prompts between parallel sessions.
    keys: tokio::sync::Mutex<HashMap<PathBuf, Result<Arc<PrivateKey>, String>>>,
}

impl Credentials {
    /// `agent_socket`: usually `$SSH_AUTH_SOCK`. `passphrase`: for encrypted key files (the
    /// inventory reads it from an environment variable). `prompt_on_tty`: ask on the terminal
    /// for an encrypted key when no passphrase was given and stdin is a terminal.
    pub fn new(
        agent_socket: Option<PathBuf>,
        default_identities: Vec<PathBuf>,
        passphrase: Option<String>,
        prompt_on_tty: bool,
    ) -> Self {
        Self {
            agent_socket,
            default_identities,
            passphrase,
            prompt_on_tty,
            keys: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    /// `$SSH_AUTH_SOCK`, `~/.ssh/id_{ed25519,ecdsa,rsa}`, prompting allowed.
    pub fn from_env(passphrase: Option<String>) -> Self {
        let defaults = std::env::home_dir()
            .map(|home| {
                ["id_ed25519", "id_ecdsa", "id_rsa"]
                    .iter()
                    .map(|name| home.join(".ssh").join(name))
                    .collect()
            })
            .unwrap_or_default();
        let agent = std::env::var_os("SSH_AUTH_SOCK")
            .filter(|sock| !sock.is_empty())
            .map(PathBuf::from);
        Self::new(agent, defaults, passphrase, true)
    }

    /// Authenticates `user`, trying `identities` (explicit, in order), the agent's keys, then the
    /// default key files not already tried.
    pub(crate) async fn authenticate(
        &self,
        handle: &mut Handle<ClientHandler>,
        host: &str,
        user: &str,
        identities: &[PathBuf],
    ) -> Result<(), SshError> {
        let protocol = |source| SshError::Protocol {
            host: host.to_owned(),
            step: "authenticating",
            source,
        };
        let rsa_hash = handle
            .best_supported_rsa_hash()
            .await
            .map_err(protocol)?
            .flatten();
        let mut tried = Vec::new();
        for path in identities {
            if self
                .try_file(handle, user, path, true, rsa_hash, &mut tried)
                .await
                .map_err(protocol)?
            {
                return Ok(());
            }
        }
        if self.try_agent(handle, user, rsa_hash, &mut tried).await? {
            return Ok(());
        }
        for path in self
            .default_identities
            .iter()
            .filter(|path| !identities.contains(path))
        {
            if self
                .try_file(handle, user, path, false, rsa_hash, &mut tried)
                .await
                .map_err(protocol)?
            {
                return Ok(());
            }
        }
        if tried.is_empty() {
            tried.push(
                "no identity file, no ssh-agent (SSH_AUTH_SOCK unset), no default key in ~/.ssh"
                    .into(),
            );
        }
        Err(SshError::AuthFailed {
            host: host.to_owned(),
            user: user.to_owned(),
            tried,
        })
    }

    /// Tries one key file; a missing default file is skipped silently, like OpenSSH.
    async fn try_file(
        &self,
        handle: &mut Handle<ClientHandler>,
        user: &str,
        path: &Path,
        explicit: bool,
        rsa_hash: Option<HashAlg>,
        tried: &mut Vec<String>,
    ) -> Result<bool, russh::Error> {
        if !explicit && !path.exists() {
            return Ok(false);
        }
        let key = match self.load(path).await {
            Ok(key) => key,
            Err(reason) => {
                tried.push(format!("key {}: {reason}", path.display()));
                return Ok(false);
            }
        };
        let result = handle
            .authenticate_publickey(user, PrivateKeyWithHashAlg::new(key, rsa_hash))
            .await?;
        if result.success() {
            return Ok(true);
        }
        tried.push(format!("key {}: rejected by the server", path.display()));
        Ok(false)
    }

    async fn try_agent(
        &self,
        handle: &mut Handle<ClientHandler>,
        user: &str,
        rsa_hash: Option<HashAlg>,
        tried: &mut Vec<String>,
    ) -> Result<bool, SshError> {
        let Some(socket) = &self.agent_socket else {
            return Ok(false);
        };
        let mut agent = match AgentClient::connect_uds(socket).await {
            Ok(agent) => agent,
            Err(err) => {
                tried.push(format!("ssh-agent at {}: {err}", socket.display()));
                return Ok(false);
            }
        };
        let identities = match agent.request_identities().await {
            Ok(identities) => identities,
            Err(err) => {
                tried.push(format!("ssh-agent at {}: {err}", socket.display()));
                return Ok(false);
            }
        };
        if identities.is_empty() {
            tried.push(format!("ssh-agent at {}: holds no keys", socket.display()));
        }
        for identity in identities {
            let key = identity.public_key().into_owned();
            let hash = key.algorithm().is_rsa().then_some(rsa_hash).flatten();
            let label = format!(
                "ssh-agent key {} {}",
                key.fingerprint(HashAlg::Sha256),
                identity.comment()
            );
            match handle
                .authenticate_publickey_with(user, key, hash, &mut agent)
                .await
            {
                Ok(result) if result.success() => return Ok(true),
                Ok(_) => tried.push(format!("{label}: rejected by the server")),
                Err(err) => tried.push(format!("{label}: {err}")),
            }
        }
        Ok(false)
    }

    /// Decodes a key file once per run, asking for its passphrase if needed.
    async fn load(&self, path: &Path) -> Result<Arc<PrivateKey>, String> {
        let mut keys = self.keys.lock().await;
        if let Some(cached) = keys.get(path) {
            return cached.clone();
        }
        let loaded = self.decode(path).await;
        keys.insert(path.to_owned(), loaded.clone());
        loaded
    }

    async fn decode(&self, path: &Path) -> Result<Arc<PrivateKey>, String> {
        let text = tokio::fs::read_to_string(path)
            .await
            .map_err(|err| format!("cannot read: {err}"))?;
        let err = match russh::keys::decode_secret_key(&text, None) {
            Ok(key) => return Ok(Arc::new(key)),
            Err(err) => err,
        };
        if !matches!(err, russh::keys::Error::KeyIsEncrypted) {
            return Err(format!("cannot decode: {err}"));
        }
        let passphrase = match &self.passphrase {
            Some(passphrase) => passphrase.clone(),
            None if self.prompt_on_tty && std::io::stdin().is_terminal() => {
                let prompt = format!("Passphrase for {}: ", path.display());
                tokio::task::spawn_blocking(move || rpassword::prompt_password(prompt))
                    .await
                    .map_err(|err| format!("passphrase prompt failed: {err}"))?
                    .map_err(|err| format!("passphrase prompt failed: {err}"))?
            }
            None => {
                return Err(
                    "encrypted, and no passphrase was given (set it in the inventory's passphrase env var, or run from a terminal)"
                        .into(),
                );
            }
        };
        russh::keys::decode_secret_key(&text, Some(&passphrase))
            .map(Arc::new)
            .map_err(|err| format!("cannot decrypt with the given passphrase: {err}"))
    }
}
