//! Starts the real `strata` binary on an ephemeral port for a test, and builds clients for it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_s3::Client;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};

/// Root credentials every test server runs with.
pub(crate) const ACCESS_KEY: &str = "STRATATESTACCESSKEY1";
/// Root secret every test server runs with.
pub(crate) const SECRET_KEY: &str = "strata-test-secret-key-0123456789abcdefgh";

/// A running `strata serve` process with its own data directory.
pub(crate) struct Server {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`.
    pub(crate) endpoint: String,
    /// The data directory (kept across restarts).
    pub(crate) data: PathBuf,
    /// The website endpoint, `http://127.0.0.1:PORT`.
    pub(crate) website: String,
    /// The edge's plain HTTP listener, `http://127.0.0.1:PORT`.
    pub(crate) edge_http: String,
    /// The edge's HTTPS listener, `https://127.0.0.1:PORT`.
    pub(crate) edge_https: String,
    /// The edge's admin listener (health, metrics, invalidations), `http://127.0.0.1:PORT`.
    pub(crate) edge_admin: String,
    /// The bearer token of the edge's invalidation API.
    pub(crate) edge_token: String,
    _tmp: Option<tempfile::TempDir>,
}

impl Server {
    /// Starts a server on a fresh data directory.
    pub(crate) fn start() -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data = tmp.path().join("data");
        let mut s = Self::start_on(&data, &[]);
        s._tmp = Some(tmp);
        s
    }

    /// Starts a server on `data` (which may hold a previous run's state) with extra flags.
    pub(crate) fn start_on(data: &Path, extra: &[&str]) -> Self {
        std::fs::create_dir_all(data).expect("data dir");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(data.with_extension("log"))
            .expect("log file");
        let mut child = Command::new(env!("CARGO_BIN_EXE_strata"))
            .arg("serve")
            .arg("--data")
            .arg(data)
            .args([
                "--s3-addr",
                "127.0.0.1:0",
                "--edge-addr",
                "127.0.0.1:0",
                "--edge-tls-addr",
                "127.0.0.1:0",
                "--edge-admin-addr",
                "127.0.0.1:0",
            ])
            .args(["--website-addr", "127.0.0.1:0"])
            .args(extra)
            .env("STRATA_ACCESS_KEY", ACCESS_KEY)
            .env("STRATA_SECRET_KEY", SECRET_KEY)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn strata");
        let stdout = child.stdout.take().expect("stdout");
        let banner = read_banner(stdout, "Edge admin token:").unwrap_or_else(|| {
            let log = std::fs::read_to_string(data.with_extension("log")).unwrap_or_default();
            panic!("strata did not start within 60 s; log:\n{log}")
        });
        Self {
            child: Some(child),
            endpoint: banner
                .s3
                .expect("the S3 API line comes before the edge lines"),
            data: data.to_owned(),
            website: banner.website.unwrap_or_default(),
            edge_http: banner.edge_http,
            edge_https: banner.edge_https,
            edge_admin: banner.edge_admin,
            edge_token: banner.token,
            _tmp: None,
        }
    }

    /// The disk directories of the default 4+2 layout.
    pub(crate) fn disks(&self) -> Vec<PathBuf> {
        (0..6)
            .map(|i| self.data.join("disks").join(format!("disk{i}")))
            .collect()
    }

    /// An SDK client for this server (path-style).
    pub(crate) fn client(&self) -> Client {
        client_for(&self.endpoint, ACCESS_KEY, SECRET_KEY)
    }

    /// Kills the process with SIGKILL and waits for it.
    pub(crate) fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends SIGTERM and waits up to `limit` for a clean exit; returns whether it exited in time.
    pub(crate) fn terminate(&mut self, limit: Duration) -> bool {
        let Some(mut c) = self.child.take() else {
            return true;
        };
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status();
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Ok(Some(_)) = c.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = c.kill();
        let _ = c.wait();
        false
    }

    /// Keeps the data directory alive after this server is dropped (for restarts); returns its owner.
    pub(crate) fn take_tempdir(&mut self) -> Option<tempfile::TempDir> {
        self._tmp.take()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// What `strata serve` or `strata edge` prints on start.
#[derive(Default)]
struct Banner {
    /// `S3 API:` line (serve only).
    s3: Option<String>,
    /// `Website:` line (serve only).
    website: Option<String>,
    edge_http: String,
    edge_https: String,
    edge_admin: String,
    token: String,
}

/// Reads the start-up lines from a child's stdout until the `token_prefix` line (which comes last), within
/// 60 s; the reader keeps draining stdout afterwards so the child never blocks on a full pipe.
fn read_banner(stdout: std::process::ChildStdout, token_prefix: &'static str) -> Option<Banner> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut banner = Banner::default();
        let mut sent = false;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if sent {
                continue;
            }
            if let Some(url) = line.strip_prefix("S3 API:") {
                banner.s3 = Some(url.trim().to_owned());
            } else if let Some(url) = line.strip_prefix("Website:") {
                banner.website = Some(url.trim().to_owned());
            } else if let Some(rest) = line.strip_prefix("Edge:") {
                // `Edge:        http://A  https://B  (admin http://C)`
                let words: Vec<&str> = rest.split_whitespace().collect();
                if let [http, https, "(admin", admin] = words.as_slice() {
                    banner.edge_http = (*http).to_owned();
                    banner.edge_https = (*https).to_owned();
                    banner.edge_admin = admin.trim_end_matches(')').to_owned();
                }
            } else if let Some(token) = line.strip_prefix(token_prefix) {
                banner.token = token.trim().to_owned();
                let _ = tx.send(std::mem::take(&mut banner));
                sent = true;
            }
        }
    });
    let banner = rx.recv_timeout(Duration::from_secs(60)).ok()?;
    assert!(
        !banner.edge_http.is_empty(),
        "no parsable `Edge:` line before the token line"
    );
    Some(banner)
}

/// A running `strata edge --config FILE --state-dir DIR` process. The config file is `DIR/edge.toml` and the
/// process's stderr goes to `DIR/edge.log`; the process is killed on drop.
pub(crate) struct EdgeProcess {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`.
    pub(crate) http: String,
    /// `https://127.0.0.1:PORT`.
    pub(crate) https: String,
    /// `http://127.0.0.1:PORT` of the admin listener.
    pub(crate) admin: String,
    /// The invalidation API's bearer token.
    pub(crate) token: String,
    /// The configuration file.
    pub(crate) config: PathBuf,
    /// The state directory (self-signed certificate, admin token).
    pub(crate) state_dir: PathBuf,
    /// How the last stopped process exited (set by [`EdgeProcess::terminate`]).
    pub(crate) last_exit: Option<std::process::ExitStatus>,
}

impl EdgeProcess {
    /// Writes `config_text` to `state_dir/edge.toml` and starts the edge on it.
    pub(crate) fn start(config_text: &str, state_dir: &Path) -> Self {
        std::fs::create_dir_all(state_dir).expect("state dir");
        let config = state_dir.join("edge.toml");
        std::fs::write(&config, config_text).expect("write edge config");
        let mut e = Self {
            child: None,
            http: String::new(),
            https: String::new(),
            admin: String::new(),
            token: String::new(),
            config,
            state_dir: state_dir.to_owned(),
            last_exit: None,
        };
        e.spawn();
        e
    }

    fn spawn(&mut self) {
        let log_path = self.state_dir.join("edge.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .expect("edge log file");
        let mut child = Command::new(env!("CARGO_BIN_EXE_strata"))
            .arg("edge")
            .arg("--config")
            .arg(&self.config)
            .arg("--state-dir")
            .arg(&self.state_dir)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn strata edge");
        let stdout = child.stdout.take().expect("stdout");
        let Some(banner) = read_banner(stdout, "Admin token:") else {
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            panic!("strata edge did not start within 60 s; log:\n{log}");
        };
        self.http = banner.edge_http;
        self.https = banner.edge_https;
        self.admin = banner.edge_admin;
        self.token = banner.token;
        self.child = Some(child);
    }

    /// `host:port` of the HTTP listener.
    pub(crate) fn http_addr(&self) -> std::net::SocketAddr {
        addr_of(&self.http)
    }

    /// `host:port` of the HTTPS listener.
    pub(crate) fn https_addr(&self) -> std::net::SocketAddr {
        addr_of(&self.https)
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().expect("edge running").id()
    }

    /// Whether the process is still running.
    pub(crate) fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Rewrites the configuration file (takes effect on [`EdgeProcess::reload`]).
    pub(crate) fn write_config(&self, config_text: &str) {
        std::fs::write(&self.config, config_text).expect("write edge config");
    }

    /// Sends SIGHUP: the edge re-reads its configuration file.
    pub(crate) fn reload(&self) {
        let status = Command::new("kill")
            .arg("-HUP")
            .arg(self.pid().to_string())
            .status()
            .expect("kill -HUP");
        assert!(status.success(), "kill -HUP failed");
    }

    /// Sends SIGTERM and waits up to `limit` for a clean exit (the access log is flushed then); returns
    /// whether it exited in time (if not, it is killed).
    pub(crate) fn terminate(&mut self, limit: Duration) -> bool {
        let Some(mut c) = self.child.take() else {
            return true;
        };
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status();
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Ok(Some(status)) = c.try_wait() {
                self.last_exit = Some(status);
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = c.kill();
        self.last_exit = c.wait().ok();
        false
    }

    /// The process's stderr so far (its log), for failure messages.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.state_dir.join("edge.log")).unwrap_or_default()
    }

    /// Stops the process (SIGTERM, then SIGKILL after 30 s) and starts it again on the same configuration
    /// file and state directory. The listeners get new ports.
    pub(crate) fn restart(&mut self) {
        self.terminate(Duration::from_secs(30));
        self.spawn();
    }
}

impl Drop for EdgeProcess {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn addr_of(url: &str) -> std::net::SocketAddr {
    url.split_once("://")
        .map_or(url, |(_, rest)| rest)
        .trim_end_matches('/')
        .parse()
        .unwrap_or_else(|e| panic!("{url}: not host:port: {e}"))
}

/// An SDK client for any endpoint and key pair.
pub(crate) fn client_for(endpoint: &str, access: &str, secret: &str) -> Client {
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new(access, secret, None, None, "strata-tests"))
        .force_path_style(true)
        .build();
    Client::from_conf(conf)
}

/// Deterministic pseudo-random bytes (xorshift), so failures reproduce.
pub(crate) fn pattern(len: usize, seed: u64) -> Vec<u8> {
    // splitmix64 first, so every seed (not just every odd one) gives its own stream.
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    let mut x = (z ^ (z >> 31)).max(1);
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// The HTTP status and S3 error code of a failed SDK call (code empty when there is none, e.g. for HEAD).
pub(crate) fn status_and_code<E>(
    err: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> (u16, String)
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::fmt::Debug,
{
    let status = err.raw_response().map(|r| r.status().as_u16()).unwrap_or(0);
    let code = match err {
        aws_sdk_s3::error::SdkError::ServiceError(s) => {
            s.err().code().unwrap_or_default().to_owned()
        }
        other => panic!("expected a service error, got {other:?}"),
    };
    (status, code)
}

/// Reads a GetObject body whole.
pub(crate) async fn body_of(out: aws_sdk_s3::operation::get_object::GetObjectOutput) -> Vec<u8> {
    out.body
        .collect()
        .await
        .expect("read body")
        .into_bytes()
        .to_vec()
}

/// Puts `data` at `bucket/key` with the SDK and returns the ETag.
pub(crate) async fn put(s3: &Client, bucket: &str, key: &str, data: &[u8]) -> String {
    let out = s3
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(aws_sdk_s3::primitives::ByteStream::from(data.to_vec()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("put {bucket}/{key}: {e:?}"));
    out.e_tag().unwrap_or_default().to_owned()
}

/// Reads `bucket/key` whole with the SDK.
pub(crate) async fn get(s3: &Client, bucket: &str, key: &str) -> Vec<u8> {
    let out = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("get {bucket}/{key}: {e:?}"));
    body_of(out).await
}

/// Every object key in `bucket`, in listing order, paging with ListObjectsV2.
pub(crate) async fn all_keys(s3: &Client, bucket: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..10_000 {
        let out = s3
            .list_objects_v2()
            .bucket(bucket)
            .set_continuation_token(token.clone())
            .send()
            .await
            .expect("list");
        keys.extend(
            out.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_owned)),
        );
        match out.next_continuation_token() {
            Some(t) if out.is_truncated() == Some(true) => token = Some(t.to_owned()),
            _ => return keys,
        }
    }
    panic!("listing did not end");
}
