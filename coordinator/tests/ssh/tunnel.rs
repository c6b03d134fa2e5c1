use std::process::{Command, Stdio};
use std::time::Duration;

use restate_fleet_proto::admin::NodeCtlSvcClient;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::{Guarded, closed_port, connected, free_port, wait_until};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_flow_through_direct_tcpip() {
    let (_sshd, session) = connected().await;
    let echo = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = echo.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = echo.accept().await {
            tokio::spawn(async move {
                let (mut read, mut write) = socket.split();
                let _ = tokio::io::copy(&mut read, &mut write).await;
            });
        }
    });
    let mut stream = session.open_direct_tcpip("127.0.0.1", port).await.unwrap();
    let payload: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    let (mut read, mut write) = tokio::io::split(&mut stream);
    let expected = payload.clone();
    let writer = async move {
        write.write_all(&payload).await.unwrap();
    };
    let reader = async move {
        let mut got = vec![0u8; expected.len()];
        read.read_exact(&mut got).await.unwrap();
        assert!(got == expected);
    };
    tokio::join!(writer, reader);

    let (closed, _held) = closed_port();
    let err = session
        .open_direct_tcpip("127.0.0.1", closed)
        .await
        .err()
        .unwrap();
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{closed}")),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_and_http_to_a_real_restate_server_through_the_tunnel() {
    let (_sshd, session) = connected().await;
    let data = tempfile::tempdir().unwrap();
    let fabric = free_port();
    let config = data.path().join("restate.toml");
    std::fs::write(
        &config,
        format!(
            "cluster-name = \"ssh-tunnel-test\"\nnode-name = \"t1\"\nbase-dir = \"{base}\"\n\
             bind-address = \"127.0.0.1:{fabric}\"\nadvertised-address = \"http://127.0.0.1:{fabric}/\"\n\
             rocksdb-total-memory-size = \"256 MiB\"\n\
             [admin]\nbind-address = \"127.0.0.1:{admin}\"\n\
             [ingress]\nbind-address = \"127.0.0.1:{ingress}\"\n",
            base = data.path().join("data").display(),
            admin = free_port(),
            ingress = free_port(),
        ),
    )
    .unwrap();
    let log = std::fs::File::create(data.path().join("server.log")).unwrap();
    let _server = Guarded(
        Command::new(lab::paths::restate_server().expect("restate-server"))
            .arg("--config-file")
            .arg(&config)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_until("restate-server fabric port", || {
        std::net::TcpStream::connect(("127.0.0.1", fabric)).is_ok()
    });

    // HTTP/1.1 through a raw channel.
    let mut stream = session
        .open_direct_tcpip("127.0.0.1", fabric)
        .await
        .unwrap();
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response))
        .await
        .unwrap()
        .unwrap();
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");

    // GetIdent with the generated client, over tonic's connector.
    let channel = session
        .grpc_channel(&format!("http://127.0.0.1:{fabric}"))
        .await
        .unwrap();
    let mut node_ctl = NodeCtlSvcClient::new(channel);
    let ident = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match node_ctl.get_ident(()).await {
                // 1 = NodeStatus ALIVE.
                Ok(ident) if ident.get_ref().status == 1 => break ident.into_inner(),
                _ => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(ident.cluster_name, "ssh-tunnel-test");
}
