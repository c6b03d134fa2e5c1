//! Fabric TLS with a CA restate-fleet manages (docs/fabric-tls.md): a grown 3-node cluster moves
//! from off to require under live traffic, one mode at a time on every node; afterwards plain
//! text and a TLS client without a certificate are refused on every node's 5122 (judged with
//! curl), restatectl works with the tool's certificate, no key is readable by another user on a
//! host nor printed anywhere, `status` answers, a fourth node joins with TLS together with a
//! rolling change, and a re-run changes nothing. With your own CA (openssl-made), a pair that
//! does not name its node's address refuses the run before any change; fixed, a cluster is made
//! at require. On systemd hosts reached through sudo.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use lab::{Kind, Lab, Spec};

use crate::faults::{assert_rerun_changes_nothing, printed, set_inventory};
use crate::harness::{self, assert_exit, fleet};
use crate::traffic::under_traffic;

const CA_DIR: &str = "fleet-ca";

/// The lab's inventory with replication 2, the hosts `hosts` only, and with `tls`, a managed
/// CA in the lab's folder.
fn inventory_of(lab: &Lab, hosts: &[&str], tls: bool) -> String {
    let mut text = lab
        .inventory()
        .replace("[cluster]\n", "[cluster]\nreplication = 2\n");
    if tls {
        text = text.replace(
            "[cluster.snapshots]",
            &format!(
                "[cluster.tls]\nca = \"managed\"\nca-dir = \"{CA_DIR}\"\n\n[cluster.snapshots]"
            ),
        );
    }
    let gone: Vec<&str> = lab
        .hosts()
        .iter()
        .map(|h| h.name.as_str())
        .filter(|h| !hosts.contains(h))
        .collect();
    crate::scale_down::without_hosts(text, &gone)
}

fn curl(args: &[&str]) -> Output {
    Command::new("curl")
        .args(["-s", "--max-time", "5"])
        .args(args)
        .output()
        .expect("curl runs")
}

/// `host`'s fabric port refuses plain HTTP and a TLS client that trusts `ca_pem` but shows no
/// certificate (judged with curl), and its key is the service user's alone.
fn assert_fabric_closed(lab: &Lab, host: &str, ca_pem: &str) {
    let ip = lab.host(host).address;
    let plain = curl(&[&format!("http://{ip}:5122/health")]);
    assert!(
        !plain.status.success(),
        "{host}: plain HTTP answered: {}",
        printed(&plain)
    );
    let bare = curl(&["--cacert", ca_pem, &format!("https://{ip}:5122/health")]);
    assert!(
        !bare.status.success(),
        "{host}: TLS without a certificate answered: {}",
        printed(&bare)
    );
    let stat = harness::ssh(lab, host, "sudo stat -c '%a %U' /etc/restate/tls/node.key");
    assert_eq!(
        harness::stdout(&stat).trim(),
        "600 restate",
        "{host}: {}",
        printed(&stat)
    );
}

/// restatectl from this machine against `host` over TLS with the tool's own certificate.
fn restatectl_tls(lab: &Lab, ca: &Path, host: &str, args: &[&str]) -> String {
    let restatectl = lab::paths::restatectl().expect("restatectl installed");
    let address = format!("https://{}:5122", lab.host(host).address);
    let out = Command::new(restatectl)
        .args(["--address", &address])
        .args(args)
        .env("RESTATECTL_TLS_CA", ca.join("ca.pem"))
        .env("RESTATECTL_TLS_CERT", ca.join("restate-fleet.pem"))
        .env("RESTATECTL_TLS_KEY", ca.join("restate-fleet.key"))
        .env("NO_COLOR", "1")
        .output()
        .expect("restatectl runs");
    printed(&out)
}

/// `apply` refused, saying each of `says`, with no restate-server started on `hosts` and no TLS
/// file put beside their config; what it printed.
fn assert_refused_before_any_change(lab: &Lab, hosts: &[&str], says: &[&str]) -> String {
    let refused = fleet(lab, &["apply", "--yes"]);
    assert_exit(&refused, 1, &format!("apply refused with {says:?}"));
    let text = printed(&refused);
    assert!(says.iter().all(|s| text.contains(s)), "{text}");
    for host in hosts {
        assert!(
            lab.host(host).restate_pid().is_none(),
            "{host}: started although the run was refused"
        );
        let tls = lab
            .host(host)
            .path("/etc/restate/tls")
            .expect("private path");
        assert!(
            !tls.exists(),
            "{host}: TLS files written although the run was refused"
        );
    }
    text
}

/// Waits up to 60 s until restatectl over TLS (with `ca`'s tool pair) on `host` shows `count`
/// metadata members and no node offline; its last `status`.
fn await_members_over_tls(lab: &Lab, ca: &Path, host: &str, count: usize) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let status = restatectl_tls(lab, ca, host, &["status"]);
        if status.matches("Member").count() == count && !status.contains("offline") {
            return status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not {count} members over TLS, all online:\n{status}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Every private key's body lines, for the check that none was printed or recorded.
fn key_lines(ca: &Path) -> Vec<String> {
    let mut keys = vec![ca.join("ca.key"), ca.join("restate-fleet.key")];
    for entry in std::fs::read_dir(ca.join("nodes")).expect("issued certificates kept") {
        let path = entry.expect("dir entry").path();
        if path.extension().is_some_and(|e| e == "key") {
            keys.push(path);
        }
    }
    keys.iter()
        .flat_map(|k| {
            std::fs::read_to_string(k)
                .expect("key readable here")
                .lines()
                .filter(|l| !l.starts_with("-----") && l.len() > 20)
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// A certificate for `host` from the lab's CA that ends in 9 days and some hours, made with
/// openssl from the host's kept key.
fn short_lived_cert(lab: &Lab, ca: &Path, host: &str) -> String {
    let ip = lab.host(host).address;
    let ext = lab.dir().join("short.ext");
    std::fs::write(
        &ext,
        format!(
            "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n\
             extendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=IP:{ip}\n"
        ),
    )
    .expect("write the extensions");
    let csr = lab.dir().join("short.csr");
    // openssl reads `/` as the start of the next name part unless escaped.
    let common_name = format!("restate-fleet/{}/node/{host}", lab.cluster_name());
    let subject = format!("/CN={}", common_name.replace('/', "\\/"));
    let key = ca.join(format!("nodes/{host}.key"));
    let made = Command::new("openssl")
        .args(["req", "-new", "-key"])
        .arg(&key)
        .args(["-subj", &subject, "-out"])
        .arg(&csr)
        .output()
        .expect("openssl req runs");
    assert!(made.status.success(), "{}", printed(&made));
    let signed = Command::new("openssl")
        .args(["x509", "-req", "-days", "10", "-in"])
        .arg(&csr)
        .arg("-CA")
        .arg(ca.join("ca.pem"))
        .arg("-CAkey")
        .arg(ca.join("ca.key"))
        .arg("-extfile")
        .arg(&ext)
        .output()
        .expect("openssl x509 runs");
    assert!(signed.status.success(), "{}", printed(&signed));
    harness::stdout(&signed)
}

fn end_date(pem: &str) -> String {
    let mut child = Command::new("openssl")
        .args(["x509", "-noout", "-enddate"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("openssl runs");
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(pem.as_bytes())
        .expect("pem to openssl");
    harness::stdout(&child.wait_with_output().expect("openssl ends"))
        .trim()
        .to_string()
}

/// The end date of the certificate `host` serves on its fabric port now.
fn served_end_date(lab: &Lab, ca: &Path, host: &str) -> String {
    let ip = lab.host(host).address;
    let out = Command::new("openssl")
        .args(["s_client", "-connect", &format!("{ip}:5122"), "-CAfile"])
        .arg(ca.join("ca.pem"))
        .arg("-cert")
        .arg(ca.join("restate-fleet.pem"))
        .arg("-key")
        .arg(ca.join("restate-fleet.key"))
        .stdin(std::process::Stdio::null())
        .output()
        .expect("openssl s_client runs");
    let text = harness::stdout(&out);
    match (
        text.find("-----BEGIN CERTIFICATE-----"),
        text.find("-----END CERTIFICATE-----"),
    ) {
        (Some(a), Some(b)) => end_date(&text[a..b + "-----END CERTIFICATE-----".len()]),
        _ => String::new(),
    }
}

fn every_file(dir: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            every_file(&path, out);
        } else if let Ok(text) = std::fs::read(&path) {
            out.push(String::from_utf8_lossy(&text).into_owned());
        }
    }
}

#[test]
fn off_to_require_under_traffic_then_a_node_joins_with_tls() {
    let mut lab = harness::lab(Spec::new(4).with(1, Kind::Existing).all_systemd());
    let three = ["n1", "n2", "n3"];
    set_inventory(&lab, &inventory_of(&lab, &three, false));
    assert_exit(&fleet(&lab, &["apply", "--yes"]), 0, "grow 1 -> 3");
    lab.start_workload("n1")
        .expect("workload service registered");
    let ca = lab.dir().join(CA_DIR);
    let mut said = Vec::new();

    set_inventory(&lab, &inventory_of(&lab, &three, true));
    let plan = fleet(&lab, &["plan"]);
    assert_exit(&plan, 0, "plan of fabric TLS");
    let text = printed(&plan);
    for line in [
        "n1: fabric TLS allow",
        "n3: fabric TLS prefer",
        "n3: fabric TLS require",
        "make the CA in",
    ] {
        assert!(text.contains(line), "plan lacks {line:?}:\n{text}");
    }
    assert!(
        text.find("n3: fabric TLS allow") < text.find("n1: fabric TLS prefer"),
        "every node allows before any prefers:\n{text}"
    );
    assert!(!ca.exists(), "plan made the CA");
    said.push(text);

    under_traffic(&lab, "fabric TLS off -> require", || {
        let out = fleet(&lab, &["apply", "--yes"]);
        assert_exit(&out, 0, "off -> require");
        let text = printed(&out);
        assert!(
            text.contains("fabric port refuses plain text and TLS without a certificate"),
            "{text}"
        );
        said.push(text);
    });

    // An independent client on every node's fabric port: plain HTTP and TLS without a
    // certificate refused, the tool's certificate let in.
    let ca_pem = ca.join("ca.pem").display().to_string();
    let (cert, key) = (
        ca.join("restate-fleet.pem").display().to_string(),
        ca.join("restate-fleet.key").display().to_string(),
    );
    for host in three {
        assert_fabric_closed(&lab, host, &ca_pem);
        let ip = lab.host(host).address;
        let h2 = curl(&[
            "--http2-prior-knowledge",
            &format!("http://{ip}:5122/health"),
        ]);
        assert!(
            !h2.status.success(),
            "{host}: h2c answered: {}",
            printed(&h2)
        );
        let ours = curl(&[
            "--cacert",
            &ca_pem,
            "--cert",
            &cert,
            "--key",
            &key,
            &format!("https://{ip}:5122/health"),
        ]);
        assert!(
            ours.status.success() && printed(&ours).contains("\"Alive\""),
            "{host}: the tool's certificate was refused: {}",
            printed(&ours)
        );
    }
    let nodes = restatectl_tls(&lab, &ca, "n2", &["nodes", "list"]);
    assert_eq!(
        nodes.matches("https://").count(),
        3,
        "every node advertises https:\n{nodes}"
    );
    let plain_ctl = lab.restatectl("n2", &["nodes", "list"]);
    assert!(
        plain_ctl.is_err(),
        "restatectl without TLS got in: {plain_ctl:?}"
    );

    let status = fleet(&lab, &["status"]);
    assert_exit(&status, 0, "status at require");
    assert_eq!(
        printed(&status).matches(" alive ").count(),
        3,
        "{}",
        printed(&status)
    );
    said.push(printed(&status));

    // A node added later joins at require, alongside a rolling change of every member.
    let four = ["n1", "n2", "n3", "n4"];
    let rolled = inventory_of(&lab, &four, true).replace(
        "rocksdb-total-memory-size = \"512 MiB\"",
        "rocksdb-total-memory-size = \"512 MiB\"\nlog-filter = \"warn,restate=info\"",
    );
    set_inventory(&lab, &rolled);
    under_traffic(&lab, "n4 joins with TLS, members roll", || {
        let out = fleet(&lab, &["apply", "--yes"]);
        assert_exit(&out, 0, "n4 joins at require");
        said.push(printed(&out));
    });
    let status = await_members_over_tls(&lab, &ca, "n4", 4);
    assert!(
        status.contains(" n4 "),
        "n4 is no member at require:\n{status}"
    );
    assert_rerun_changes_nothing(&lab, "re-run at require");

    // A certificate 10 days from its end, as kept and on n1: `check` warns, `apply` issues a new
    // one and pushes it without a restart, and n1 serves it once it re-read its files.
    let short = short_lived_cert(&lab, &ca, "n1");
    std::fs::write(ca.join("nodes/n1.pem"), &short).expect("kept certificate replaced");
    std::fs::write(
        lab.host("n1")
            .path("/etc/restate/tls/node.pem")
            .expect("private path"),
        &short,
    )
    .expect("n1's certificate replaced");
    let check = fleet(&lab, &["check"]);
    let text = printed(&check);
    // A CI machine's OpenSSL signed `-days 10` so that 10 whole days were still left when
    // `check` read it, here 9 are: either is the warning an operator needs.
    let days = text
        .split_once("n1: its fabric TLS certificate expires in ")
        .and_then(|(_, rest)| rest.split_once(" day(s)"))
        .and_then(|(days, _)| days.parse::<u32>().ok());
    assert!(matches!(days, Some(9 | 10)), "{text}");
    said.push(text);
    let pids: Vec<Option<u32>> = four.iter().map(|h| lab.host(h).restate_pid()).collect();
    let renewed = fleet(&lab, &["apply", "--yes"]);
    assert_exit(&renewed, 0, "renewal");
    let text = printed(&renewed);
    assert!(
        text.contains("n1: fabric TLS certificate issued by the CA"),
        "{text}"
    );
    said.push(text);
    let after: Vec<Option<u32>> = four.iter().map(|h| lab.host(h).restate_pid()).collect();
    assert_eq!(pids, after, "a renewal restarts nothing");
    let short_end = end_date(&short);
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    loop {
        let served = served_end_date(&lab, &ca, "n1");
        if !served.is_empty() && served != short_end {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "n1 still serves {served}"
        );
        std::thread::sleep(Duration::from_secs(1));
    }

    // Another CA than the cluster's: refused before anything changes, and not made.
    let foreign = inventory_of(&lab, &four, true)
        .replace(&format!("ca-dir = \"{CA_DIR}\""), "ca-dir = \"another-ca\"");
    set_inventory(&lab, &foreign);
    let refused = fleet(&lab, &["plan"]);
    assert_exit(&refused, 1, "plan with another CA");
    let text = printed(&refused);
    assert!(
        text.contains("n1: runs fabric TLS at require with a certificate the CA in"),
        "{text}"
    );
    assert!(!lab.dir().join("another-ca").exists(), "plan made a CA");
    said.push(text);

    // No private key in anything printed or recorded.
    every_file(&lab.state_home(), &mut said);
    for line in key_lines(&ca) {
        assert!(
            !said.iter().any(|text| text.contains(&line)),
            "a private key was printed or recorded"
        );
    }
}

/// Runs openssl in `dir`; its output in the panic when it fails.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl runs");
    assert!(out.status.success(), "openssl {args:?}: {}", printed(&out));
}

/// A P-256 key `<name>.key` and its certificate `<name>.pem` signed by `ca.pem` in `dir`, with
/// CN `cn` and the extensions `ext` (openssl's x509v3 config lines).
fn signed_pair(dir: &Path, name: &str, cn: &str, ext: &str) {
    std::fs::write(dir.join(format!("{name}.ext")), ext).expect("write the extensions");
    let (key, csr) = (format!("{name}.key"), format!("{name}.csr"));
    let subject = format!("/CN={cn}");
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &key,
            "-subj",
            &subject,
            "-out",
            &csr,
        ],
    );
    let (pem, extfile) = (format!("{name}.pem"), format!("{name}.ext"));
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "200",
            "-extfile",
            &extfile,
            "-out",
            &pem,
        ],
    );
}

/// `host`'s pair as an operator's CA would issue it: `nodes/<host>.pem`/`.key` in `pki`, named
/// `<host>.nodes.lab`, and its address when `with_address`.
fn own_node_pair(lab: &Lab, pki: &Path, host: &str, with_address: bool) {
    let cn = format!("{host}.nodes.lab");
    let ip = lab.host(host).address;
    let san = if with_address {
        format!("DNS:{cn},IP:{ip}")
    } else {
        format!("DNS:{cn}")
    };
    let ext = format!(
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n\
         extendedKeyUsage=serverAuth,clientAuth\nsubjectAltName={san}\n"
    );
    // openssl's files for the pair beside the CA's, the pair itself where the inventory says.
    signed_pair(pki, host, &cn, &ext);
    for ext in ["pem", "key"] {
        std::fs::rename(
            pki.join(format!("{host}.{ext}")),
            pki.join(format!("nodes/{host}.{ext}")),
        )
        .expect("the pair in nodes/");
    }
}

/// An operator's PKI in the lab's `pki/`, made with openssl: `ca.pem` (and its key), the
/// tool's client pair `restate-fleet.pem`/`.key`, and an empty `nodes/`.
fn own_pki(lab: &Lab) -> std::path::PathBuf {
    let pki = lab.dir().join("pki");
    std::fs::create_dir_all(pki.join("nodes")).expect("make the PKI folder");
    openssl(
        &pki,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "400",
            "-subj",
            "/CN=Lab Ops CA",
        ],
    );
    signed_pair(
        &pki,
        "restate-fleet",
        "restate-fleet.ops.lab",
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n",
    );
    pki
}

#[test]
fn your_own_ca_is_judged_before_any_change_then_a_cluster_is_made_at_require() {
    let lab = harness::lab(Spec::new(2).all_systemd());
    let hosts = ["n1", "n2"];
    // The operator's PKI, made with openssl: a CA, the tool's client certificate, and one pair
    // per node, n2's first without its address.
    let pki = own_pki(&lab);
    own_node_pair(&lab, &pki, "n1", true);
    own_node_pair(&lab, &pki, "n2", false);
    let inventory = lab.inventory().replace(
        "[cluster.snapshots]",
        "[cluster.tls]\nca = \"own\"\nca-dir = \"pki\"\n\
         allowed-subject-names = [\"*.nodes.lab\", \"restate-fleet.ops.lab\"]\n\n[cluster.snapshots]",
    );
    set_inventory(&lab, &inventory);
    let mut said = Vec::new();

    let text = assert_refused_before_any_change(
        &lab,
        &hosts,
        &[
            "n2: ",
            "nodes/n2.pem and n2.key: not naming the host's advertised address",
        ],
    );
    said.push(text);

    own_node_pair(&lab, &pki, "n2", true);
    let made = fleet(&lab, &["apply", "--yes"]);
    assert_exit(&made, 0, "a cluster made at require with your own CA");
    let text = printed(&made);
    assert!(
        text.contains(
            "n1, n2: write restate.toml with fabric TLS require (certificate, key 0600 <redacted>"
        ) && text.contains("fabric port refuses plain text and TLS without a certificate"),
        "{text}"
    );
    said.push(text);

    let ca_pem = pki.join("ca.pem").display().to_string();
    for host in hosts {
        assert_fabric_closed(&lab, host, &ca_pem);
    }
    // Both nodes let each other in with the names of the inventory: one cluster, alive, https.
    await_members_over_tls(&lab, &pki, "n2", 2);
    let nodes = restatectl_tls(&lab, &pki, "n1", &["nodes", "list"]);
    assert_eq!(nodes.matches("https://").count(), 2, "{nodes}");
    assert_rerun_changes_nothing(&lab, "re-run with your own CA");

    every_file(&lab.state_home(), &mut said);
    for host in hosts {
        let key = std::fs::read_to_string(pki.join(format!("nodes/{host}.key"))).expect("key");
        for line in key
            .lines()
            .filter(|l| !l.starts_with("-----") && l.len() > 20)
        {
            assert!(
                !said.iter().any(|text| text.contains(line)),
                "{host}'s private key was printed or recorded"
            );
        }
    }
}

#[test]
fn your_own_files_already_on_the_hosts_are_judged_where_they_are_and_named_in_place() {
    let lab = harness::lab(Spec::new(2).all_systemd());
    let hosts = ["n1", "n2"];
    // The operator's PKI, and its tooling that put each node's files on its host, the key
    // owned by the service's user: on n2 readable by everyone.
    let pki = own_pki(&lab);
    for host in hosts {
        own_node_pair(&lab, &pki, host, true);
        let dir = lab
            .host(host)
            .path("/etc/pki/restate")
            .expect("private path");
        std::fs::create_dir_all(&dir).expect("make the host's PKI folder");
        for (from, to) in [
            (format!("nodes/{host}.pem"), format!("{host}.pem")),
            (format!("nodes/{host}.key"), format!("{host}.key")),
            ("ca.pem".to_string(), "ca.pem".to_string()),
        ] {
            std::fs::copy(pki.join(from), dir.join(to)).expect("a file on the host");
        }
        let mode = if host == "n2" { "0644" } else { "0600" };
        let placed = harness::ssh(
            &lab,
            host,
            &format!(
                "sudo useradd --system --no-create-home restate && sudo chown restate /etc/pki/restate/{host}.key && sudo chmod {mode} /etc/pki/restate/{host}.key"
            ),
        );
        assert!(placed.status.success(), "{host}: {}", printed(&placed));
    }
    // The laptop keeps only the CA certificate and the tool's pair.
    std::fs::remove_dir_all(pki.join("nodes")).expect("no node pair on the laptop");
    let inventory = lab.inventory().replace(
        "[cluster.snapshots]",
        "[cluster.tls]\nca = \"own\"\nca-dir = \"pki\"\n\
         allowed-subject-names = [\"*.nodes.lab\", \"restate-fleet.ops.lab\"]\n\
         on-hosts = { cert-file = \"/etc/pki/restate/{node}.pem\", key-file = \"/etc/pki/restate/{node}.key\", ca-file = \"/etc/pki/restate/ca.pem\" }\n\n\
         [cluster.snapshots]",
    );
    set_inventory(&lab, &inventory);
    let mut said = Vec::new();

    let text = assert_refused_before_any_change(
        &lab,
        &hosts,
        &["n2: /etc/pki/restate/n2.key: readable by every user on the host (mode 0644)"],
    );
    said.push(text);

    let narrowed = harness::ssh(&lab, "n2", "sudo chmod 0600 /etc/pki/restate/n2.key");
    assert!(narrowed.status.success(), "{}", printed(&narrowed));
    let made = fleet(&lab, &["apply", "--yes"]);
    assert_exit(
        &made,
        0,
        "a cluster made at require with the hosts' own files",
    );
    let text = printed(&made);
    assert!(
        text.contains("fabric port refuses plain text and TLS without a certificate"),
        "{text}"
    );
    said.push(text);
    for host in hosts {
        let config = harness::ssh(&lab, host, "sudo cat /etc/restate/restate.toml");
        let config = harness::stdout(&config);
        assert!(
            config.contains(&format!("cert-file = \"/etc/pki/restate/{host}.pem\""))
                && config.contains(&format!("key-file = \"/etc/pki/restate/{host}.key\"")),
            "{host}: [tls] does not name the host's own files:\n{config}"
        );
        let pushed = lab
            .host(host)
            .path("/etc/restate/tls")
            .expect("private path");
        assert!(
            !pushed.exists(),
            "{host}: files were pushed beside restate.toml"
        );
        let ip = lab.host(host).address;
        let plain = curl(&[&format!("http://{ip}:5122/health")]);
        assert!(!plain.status.success(), "{host}: plain HTTP answered");
    }
    await_members_over_tls(&lab, &pki, "n2", 2);
    assert_rerun_changes_nothing(&lab, "re-run with the hosts' own files");
}
