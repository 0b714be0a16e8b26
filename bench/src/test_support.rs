//! Unit-test helpers: clients with test credentials, and a scripted HTTP/1.1 server standing in for an S3
//! endpoint (keep-alive, request heads only: the tests that use it send no bodies).

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::Addressing;
use crate::client::{ClientConfig, S3Client};
use crate::transport::TlsOptions;

/// Plain HTTP, the default trust.
static NO_TLS: TlsOptions = TlsOptions {
    insecure: false,
    ca_cert: None,
};

/// Settings for a client of bucket `b` at `endpoint`.
pub(crate) fn config(endpoint: &str, addressing: Addressing, pool_size: usize) -> ClientConfig<'_> {
    ClientConfig {
        endpoint,
        addressing,
        access_key: "AKIDEXAMPLE",
        secret_key: "secret",
        region: "us-east-1",
        bucket: "b",
        unsigned_payload: false,
        pool_size,
        tls: &NO_TLS,
    }
}

/// A path-style client of bucket `b` at `endpoint`.
pub(crate) fn client(endpoint: &str, pool_size: usize) -> S3Client {
    S3Client::new(&config(endpoint, Addressing::Path, pool_size)).expect("a valid test endpoint")
}

/// A server on 127.0.0.1 that gives each request head (request line and headers, no CRLF CRLF) to `answer`
/// and writes back what it returns, a whole response; `None` closes the connection without an answer.
pub(crate) async fn scripted_server(
    answer: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let answer = Arc::new(answer);
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let answer = answer.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                loop {
                    let mut chunk = [0u8; 4096];
                    match conn.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                        buf.drain(..end + 4);
                        let Some(response) = answer(&head) else {
                            return;
                        };
                        if conn.write_all(response.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    addr
}
