//! The support bundle `collect` writes: named text files under one top folder, every one scrubbed
//! of the inventory's secret values as it goes in (the agents redacted their files by key before
//! they left the hosts; this is the last line), written as a `.tar.gz`.

use std::io::Write;

use serde::{Deserialize, Serialize};

const REDACTED: &str = "<redacted>";

pub struct Bundle {
    /// The folder every file sits in, e.g. `restate-fleet-bundle-20261203-140102`.
    root: String,
    secrets: Vec<String>,
    files: Vec<(String, String)>,
}

/// What `collect --output json` prints.
#[derive(Debug, Serialize, Deserialize)]
pub struct CollectReport {
    pub path: String,
    pub bytes: u64,
    /// Every file in the bundle, relative to its top folder.
    pub files: Vec<String>,
    /// What could not be gathered, each naming the host or part.
    pub problems: Vec<String>,
}

impl Bundle {
    pub fn new(root: impl Into<String>, secrets: Vec<String>) -> Self {
        Self {
            root: root.into(),
            // The longest first, so that a secret inside another is never half replaced.
            secrets: {
                let mut s: Vec<String> = secrets.into_iter().filter(|s| !s.is_empty()).collect();
                s.sort_by_key(|s| std::cmp::Reverse(s.len()));
                s
            },
            files: Vec::new(),
        }
    }

    /// Adds `text` as `name` (relative, `/`-separated), scrubbed.
    pub fn add(&mut self, name: impl Into<String>, text: &str) {
        self.files.push((name.into(), scrub(text, &self.secrets)));
    }

    pub fn names(&self) -> Vec<String> {
        self.files.iter().map(|(name, _)| name.clone()).collect()
    }

    /// The bundle as a gzip-compressed tar stream into `out`; `mtime` is each entry's time.
    pub fn write_tar_gz(&self, out: impl Write, mtime: u64) -> std::io::Result<()> {
        let gz = flate2::write::GzEncoder::new(out, flate2::Compression::default());
        let mut tar = tar::Builder::new(gz);
        for (name, text) in &self.files {
            let mut header = tar::Header::new_gnu();
            header.set_size(text.len() as u64);
            header.set_mode(0o644);
            header.set_mtime(mtime);
            header.set_entry_type(tar::EntryType::Regular);
            tar.append_data(
                &mut header,
                format!("{}/{name}", self.root),
                text.as_bytes(),
            )?;
        }
        tar.into_inner()?.finish()?.flush()
    }
}

/// `text` with every secret replaced.
pub fn scrub(text: &str, secrets: &[String]) -> String {
    secrets.iter().fold(text.to_string(), |text, secret| {
        if text.contains(secret.as_str()) {
            text.replace(secret.as_str(), REDACTED)
        } else {
            text
        }
    })
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    #[test]
    fn no_secret_goes_in_and_every_file_comes_out() {
        let mut bundle = Bundle::new(
            "b",
            vec!["key".into(), "keyring-secret".into(), String::new()],
        );
        bundle.add("inventory.toml", "a = \"keyring-secret\"\nb = \"key\"\n");
        bundle.add("hosts/n1/log.txt", "plain\n");
        let mut bytes = Vec::new();
        bundle.write_tar_gz(&mut bytes, 0).unwrap();
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&bytes[..]));
        let mut seen = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let mut text = String::new();
            entry.read_to_string(&mut text).unwrap();
            seen.push((entry.path().unwrap().display().to_string(), text));
        }
        assert_eq!(
            seen,
            [
                (
                    "b/inventory.toml".to_string(),
                    "a = \"<redacted>\"\nb = \"<redacted>\"\n".to_string()
                ),
                ("b/hosts/n1/log.txt".to_string(), "plain\n".to_string()),
            ]
        );
    }
}
