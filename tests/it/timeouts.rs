//! Slow clients are cut off: a client that never finishes its headers, and one that stalls mid-body, do not
//! hold a connection (or an upload) forever. The server runs with a 2-second client timeout for these tests.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::harness::Server;
use crate::sigv4::{Signer, host_of};

fn server_with_short_timeout() -> (Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("strata.toml");
    std::fs::write(&cfg, "[server]\nclient_timeout_secs = 2\n").unwrap();
    let server = Server::start_on(
        &dir.path().join("data"),
        &["--config", cfg.to_str().unwrap()],
    );
    (server, dir)
}

/// Reads until the server closes the connection (or 20 s pass); returns what it sent and how long it took.
fn read_until_closed(stream: &mut TcpStream) -> (String, Duration) {
    let start = Instant::now();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                panic!("server kept a stalled connection open for 20 s")
            }
            Err(_) => break, // reset
        }
    }
    (String::from_utf8_lossy(&out).into_owned(), start.elapsed())
}

#[test]
fn a_client_that_never_finishes_its_headers_is_disconnected() {
    let (server, _dir) = server_with_short_timeout();
    let mut s = TcpStream::connect(host_of(&server.endpoint)).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        .unwrap();
    let (_, took) = read_until_closed(&mut s);
    assert!(
        took < Duration::from_secs(15),
        "disconnected only after {took:?}"
    );
}

#[tokio::test]
async fn a_client_that_stalls_mid_body_gets_request_timeout_and_nothing_is_stored() {
    let (server, _dir) = server_with_short_timeout();
    let s3 = server.client();
    s3.create_bucket().bucket("slow").send().await.unwrap();
    let host = host_of(&server.endpoint);
    let signer = Signer::default();
    let headers = vec![
        ("host".to_string(), host.clone()),
        (
            "x-amz-content-sha256".to_string(),
            "UNSIGNED-PAYLOAD".to_string(),
        ),
        ("x-amz-date".to_string(), signer.amz_date()),
    ];
    let signed = signer.sign("PUT", "/slow/stalled", "", &headers, "UNSIGNED-PAYLOAD");
    let mut s = TcpStream::connect(&host).unwrap();
    let head = format!(
        "PUT /slow/stalled HTTP/1.1\r\nHost: {host}\r\nx-amz-content-sha256: UNSIGNED-PAYLOAD\r\nx-amz-date: {}\r\n\
         Authorization: {}\r\nContent-Length: 100000\r\n\r\n",
        signer.amz_date(),
        signed.authorization
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(&[7u8; 1000]).unwrap();
    let (reply, took) = read_until_closed(&mut s);
    assert!(
        took < Duration::from_secs(15),
        "stall noticed only after {took:?}"
    );
    assert!(reply.starts_with("HTTP/1.1 400"), "reply: {reply}");
    assert!(
        reply.contains("<Code>RequestTimeout</Code>"),
        "reply: {reply}"
    );
    let err = s3
        .head_object()
        .bucket("slow")
        .key("stalled")
        .send()
        .await
        .unwrap_err();
    assert!(
        err.into_service_error().is_not_found(),
        "the stalled upload must not exist"
    );
    let listed = s3.list_objects_v2().bucket("slow").send().await.unwrap();
    assert_eq!(listed.key_count(), Some(0));
}
