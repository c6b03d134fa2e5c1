//! Checks of host addresses, fabric URLs and snapshot destinations, before anything is sent to a
//! host that would fail on them later and less clearly.

use std::net::{IpAddr, Ipv6Addr};

/// A hostname or an IP address (no scheme, no port).
pub(crate) fn check_host(address: &str) -> Result<(), String> {
    if address.contains("://") {
        return Err(format!(
            "`{address}` is a URL; an address is a hostname or an IP address"
        ));
    }
    if address.parse::<IpAddr>().is_ok() || is_hostname(address) {
        Ok(())
    } else {
        Err(format!(
            "`{address}` is neither an IP address nor a valid hostname"
        ))
    }
}

fn is_hostname(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// `http(s)://host:port/...`, as Restate's `advertised-address` must be.
pub(crate) fn check_fabric_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| format!("`{url}` must start with http:// or https://"))?;
    let authority = rest.split('/').next().unwrap_or_default();
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (ip, after) = bracketed
            .split_once(']')
            .ok_or_else(|| format!("`{url}` has an unclosed `[` in its host"))?;
        if ip.parse::<Ipv6Addr>().is_err() {
            return Err(format!("`{ip}` in `{url}` is not an IPv6 address"));
        }
        (None, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(authority), None),
        }
    };
    if let Some(host) = host {
        check_host(host).map_err(|e| format!("{e} (in `{url}`)"))?;
    }
    match port {
        None => Err(format!(
            "`{url}` has no port; Restate's fabric port is usually 5122"
        )),
        Some(port) => match port.parse::<u16>() {
            Ok(p) if p > 0 => Ok(()),
            _ => Err(format!(
                "`{port}` in `{url}` is not a port number (1-65535)"
            )),
        },
    }
}

/// The default `advertised-address` of a host: its address on the fabric port.
pub(crate) fn default_fabric_url(address: &str, port: u16) -> String {
    if address.parse::<Ipv6Addr>().is_ok() {
        format!("http://[{address}]:{port}/")
    } else {
        format!("http://{address}:{port}/")
    }
}

/// Object-store schemes Restate's snapshot repository accepts.
pub(crate) const SNAPSHOT_SCHEMES: [&str; 8] =
    ["s3", "s3a", "gs", "az", "azure", "abfs", "abfss", "adl"];

/// Whether restate-server will accept this `[worker.snapshots] destination`; the error carries a
/// help line.
pub(crate) fn check_snapshot_destination(destination: &str) -> Result<(), (String, String)> {
    let accepted = SNAPSHOT_SCHEMES.map(|s| format!("{s}://")).join(", ");
    let Some((scheme, rest)) = destination.split_once("://") else {
        return Err((
            format!("snapshot destination `{destination}` is not a URL"),
            format!("use an object store URL: {accepted}"),
        ));
    };
    if scheme == "file" {
        return Err((
            "snapshot destination `file://` is not accepted by Restate: the worker fails at server start"
                .to_string(),
            "use an object store (S3 or compatible, e.g. MinIO): s3://bucket/prefix".to_string(),
        ));
    }
    if !SNAPSHOT_SCHEMES.contains(&scheme) {
        return Err((
            format!("snapshot destination scheme `{scheme}://` is not one Restate accepts"),
            format!("use one of: {accepted}"),
        ));
    }
    if rest.split('/').next().unwrap_or_default().is_empty() {
        return Err((
            format!("snapshot destination `{destination}` names no bucket"),
            format!("write it as {scheme}://BUCKET/PREFIX"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        for ok in [
            "10.0.0.1",
            "::1",
            "n1",
            "n1.internal.example.com",
            "node-01",
        ] {
            assert!(check_host(ok).is_ok(), "{ok}");
        }
        for bad in ["", "http://n1", "n1:22", "-n1", "a..b", "n 1", "n_1"] {
            assert!(check_host(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn fabric_urls() {
        for ok in [
            "http://n2.internal:5122/",
            "https://10.0.0.1:5122",
            "http://[::1]:5122/x",
        ] {
            assert!(check_fabric_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "n2:5122",
            "ftp://n2:5122/",
            "http://n2/",
            "http://n2:0/",
            "http://n2:x/",
            "http://[zz]:1/",
        ] {
            assert!(check_fabric_url(bad).is_err(), "{bad}");
        }
        assert_eq!(default_fabric_url("::1", 5122), "http://[::1]:5122/");
        assert_eq!(
            default_fabric_url("10.0.0.1", 5122),
            "http://10.0.0.1:5122/"
        );
    }

    #[test]
    fn snapshot_destinations() {
        for ok in ["s3://b/p", "gs://b", "az://c/p", "abfs://c/p"] {
            assert!(check_snapshot_destination(ok).is_ok(), "{ok}");
        }
        let (message, _) = check_snapshot_destination("file:///tmp/x").unwrap_err();
        assert!(message.contains("fails at server start"), "{message}");
        for bad in ["/tmp/x", "http://b/p", "s3://"] {
            assert!(check_snapshot_destination(bad).is_err(), "{bad}");
        }
    }
}
