//! Access logs in CloudFront's standard (legacy) log format: one line per request, rotated into files and
//! optionally uploaded, gzipped, to an S3 bucket.
//!
//! This module owns the line format ([`format_line`]), the writer task behind [`AccessLog`] and the upload of
//! rotated files through a [`LogSink`]. It does not own the S3 client: the caller passes a sink (e.g. one that
//! signs a PUT to `edge.log.upload`).
//!
//! # Format
//! As the CloudFront developer guide ("Standard logging reference", "Log file fields") describes it: files
//! start with `#Version: 1.0` and a `#Fields:` line naming 33 fields; records are tab-separated, in UTC, with
//! `-` for an empty value. In free-text fields, bytes 0–32 and 127–255 and the characters `< > " # % { } | \
//! ^ ~ [ ] ` '` are percent-encoded (RFC 1738), so no field holds a space, tab or newline. `time-taken` and
//! `time-to-first-byte` are seconds with three decimals.
//!
//! # Files
//! The writer task appends to `dir/{edge_id}.current.log` through a buffer flushed at least every second, and
//! rotates it (renames it to `dir/{edge_id}.{YYYY-MM-DD-HH}.{8 hex}.log`, CloudFront's naming without the
//! distribution id; the hour is the file's first record's, UTC) when it reaches `rotate_bytes`, when it is
//! `rotate_secs` old, at each upload interval, and on shutdown. A file is only created when a record arrives,
//! so an idle edge writes no files. A `current` file left by an earlier run is rotated on start.
//!
//! With `upload` set, an uploader task gzips each rotated file and stores it through the sink as
//! `{prefix}{edge_id}.{YYYY-MM-DD-HH}.{hex}.gz` (a `/` is appended to a non-empty prefix that lacks one, as
//! CloudFront does), deleting the local file once stored; a failed file stays and is retried at the next
//! interval. At most `keep_files` rotated files are kept locally; the oldest go first.
//!
//! # Request path
//! [`AccessLog::record`] never blocks: records go through a bounded channel and are dropped (and counted,
//! [`AccessLog::dropped`]) when it is full. File I/O runs on tokio's blocking pool via `tokio::fs`.

use std::fmt::Write as _;
use std::future::Future;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use anyhow::{Context, bail};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use strata_config::edge::LogConfig;
use tokio::io::{AsyncWriteExt, BufWriter};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, MissedTickBehavior};

use crate::ResultType;

/// The first header line of every log file.
pub const VERSION_LINE: &str = "#Version: 1.0";

/// The second header line: the 33 fields of a record, in order.
pub const FIELDS_LINE: &str = "#Fields: date time x-edge-location sc-bytes c-ip cs-method cs(Host) \
     cs-uri-stem sc-status cs(Referer) cs(User-Agent) cs-uri-query cs(Cookie) x-edge-result-type \
     x-edge-request-id x-host-header cs-protocol cs-bytes time-taken x-forwarded-for ssl-protocol ssl-cipher \
     x-edge-response-result-type cs-protocol-version fle-status fle-encrypted-fields c-port \
     time-to-first-byte x-edge-detailed-result-type sc-content-type sc-content-len sc-range-start \
     sc-range-end";

/// Records waiting for the writer before [`AccessLog::record`] starts dropping them.
const QUEUE_RECORDS: usize = 8192;

/// How often the writer flushes its buffer and checks the age of its file.
const TICK: Duration = Duration::from_secs(1);

/// Bytes percent-encoded in free-text fields: CloudFront's list (RFC 1738). `CONTROLS` covers 0–31 and 127;
/// `utf8_percent_encode` always encodes bytes above 127.
const LOG_ENCODE: &AsciiSet = &{
    let mut set = CONTROLS.add(b' ');
    let listed = b"<>\"#%{}|\\^~[]`'";
    let mut i = 0;
    while i < listed.len() {
        set = set.add(listed[i]);
        i += 1;
    }
    set
};

/// One finished request, as the access log records it.
#[derive(Debug, Clone)]
pub struct LogRecord {
    /// When the response finished (date and time fields, UTC).
    pub time: SystemTime,
    /// The viewer's address (c-ip), after the trusted-proxy rule.
    pub client_ip: IpAddr,
    /// The viewer's TCP port (c-port).
    pub client_port: u16,
    /// Request method (cs-method).
    pub method: String,
    /// Host header (cs(Host) and x-host-header).
    pub host: String,
    /// Path of the request, without the query (cs-uri-stem).
    pub uri_stem: String,
    /// Query string without the `?` (cs-uri-query).
    pub query: Option<String>,
    /// Response status (sc-status).
    pub status: u16,
    /// Bytes sent to the viewer, headers included (sc-bytes).
    pub bytes_sent: u64,
    /// Bytes received from the viewer, headers included (cs-bytes).
    pub bytes_received: u64,
    /// Referer header (cs(Referer)).
    pub referer: Option<String>,
    /// User-Agent header (cs(User-Agent)).
    pub user_agent: Option<String>,
    /// Cookie header (cs(Cookie)).
    pub cookie: Option<String>,
    /// How the request was answered (x-edge-result-type, x-edge-response-result-type,
    /// x-edge-detailed-result-type).
    pub result: ResultType,
    /// The request id also sent to the viewer (x-edge-request-id).
    pub request_id: String,
    /// "http" or "https" (cs-protocol).
    pub scheme: &'static str,
    /// "HTTP/1.1", "HTTP/2.0" (cs-protocol-version).
    pub http_version: &'static str,
    /// Negotiated TLS version, e.g. "TLSv1.3" (ssl-protocol).
    pub tls_version: Option<&'static str>,
    /// Negotiated cipher suite, e.g. "TLS_AES_128_GCM_SHA256" (ssl-cipher).
    pub tls_cipher: Option<String>,
    /// The X-Forwarded-For header as received (x-forwarded-for).
    pub forwarded_for: Option<String>,
    /// From request received to last byte written (time-taken).
    pub time_taken: Duration,
    /// From request received to first byte written (time-to-first-byte).
    pub time_to_first_byte: Duration,
    /// Content-Type of the response (sc-content-type).
    pub content_type: Option<String>,
    /// Content-Length of the response (sc-content-len).
    pub content_len: Option<u64>,
    /// First and last byte of a Content-Range response (sc-range-start, sc-range-end).
    pub range: Option<(u64, u64)>,
}

/// Where rotated log files go, e.g. an S3 bucket.
pub trait LogSink: Send + Sync + 'static {
    /// Stores one finished log file under `key` (e.g. an S3 PUT). Called from a tokio task.
    fn put(
        &self,
        key: String,
        body: Bytes,
    ) -> Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send + '_>>;
}

/// One line of CloudFront's standard log format for `rec`, served by edge `edge_id` (x-edge-location): 33
/// tab-separated fields, no trailing newline.
pub fn format_line(edge_id: &str, rec: &LogRecord) -> String {
    let mut line = String::with_capacity(512);
    let time = DateTime::<Utc>::from(rec.time);
    let _ = write!(
        line,
        "{}\t{}",
        time.format("%Y-%m-%d"),
        time.format("%H:%M:%S")
    );
    text(&mut line, edge_id);
    num(&mut line, Some(rec.bytes_sent));
    raw(&mut line, &rec.client_ip.to_canonical().to_string());
    text(&mut line, &rec.method);
    text(&mut line, &rec.host);
    text(&mut line, &rec.uri_stem);
    num(&mut line, Some(rec.status));
    opt_text(&mut line, rec.referer.as_deref());
    opt_text(&mut line, rec.user_agent.as_deref());
    opt_text(&mut line, rec.query.as_deref());
    opt_text(&mut line, rec.cookie.as_deref());
    raw(&mut line, rec.result.as_str());
    text(&mut line, &rec.request_id);
    text(&mut line, &rec.host);
    text(&mut line, rec.scheme);
    num(&mut line, Some(rec.bytes_received));
    seconds(&mut line, rec.time_taken);
    opt_text(&mut line, rec.forwarded_for.as_deref());
    opt_text(&mut line, rec.tls_version);
    opt_text(&mut line, rec.tls_cipher.as_deref());
    raw(&mut line, rec.result.as_str());
    text(&mut line, rec.http_version);
    raw(&mut line, "-"); // fle-status: no field-level encryption
    raw(&mut line, "-"); // fle-encrypted-fields
    num(&mut line, Some(rec.client_port));
    seconds(&mut line, rec.time_to_first_byte);
    raw(&mut line, rec.result.as_str());
    opt_text(&mut line, rec.content_type.as_deref());
    num(&mut line, rec.content_len);
    num(&mut line, rec.range.map(|r| r.0));
    num(&mut line, rec.range.map(|r| r.1));
    line
}

/// A field known to need no encoding.
fn raw(line: &mut String, value: &str) {
    line.push('\t');
    line.push_str(value);
}

/// A free-text field: percent-encoded, `-` when empty.
fn text(line: &mut String, value: &str) {
    line.push('\t');
    if value.is_empty() {
        line.push('-');
    } else {
        line.extend(utf8_percent_encode(value, LOG_ENCODE));
    }
}

fn opt_text(line: &mut String, value: Option<&str>) {
    text(line, value.unwrap_or(""));
}

fn num(line: &mut String, value: Option<impl std::fmt::Display>) {
    match value {
        Some(v) => {
            let _ = write!(line, "\t{v}");
        }
        None => raw(line, "-"),
    }
}

/// Seconds to the thousandth, rounded: 0.002.
fn seconds(line: &mut String, d: Duration) {
    let millis = d.as_micros().saturating_add(500) / 1000;
    let _ = write!(line, "\t{}.{:03}", millis / 1000, millis % 1000);
}

/// The access log of one edge. Cloning is cheap (an `Arc` inside); every clone feeds the same writer task,
/// which finishes its file when [`AccessLog::shutdown`] is awaited or the last clone is dropped.
#[derive(Clone)]
pub struct AccessLog {
    inner: Arc<Inner>,
}

struct Inner {
    /// `None` when logging is off (`log.dir` unset).
    tx: Option<mpsc::Sender<Msg>>,
    dropped: Arc<AtomicU64>,
    dir: Option<PathBuf>,
}

enum Msg {
    Record(Box<LogRecord>),
    Shutdown(oneshot::Sender<()>),
}

impl std::fmt::Debug for AccessLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessLog")
            .field("dir", &self.inner.dir)
            .field("dropped", &self.dropped())
            .finish()
    }
}

impl AccessLog {
    /// Starts the writer task (call inside a tokio runtime). `cfg.dir == None` → records are dropped cheaply.
    ///
    /// Creates `cfg.dir` when missing and rotates a `current` file left by an earlier run. `sink` is used only
    /// when `cfg.upload` is set. Errors: an `edge_id` that cannot be part of a file name, or a directory that
    /// cannot be created or read.
    pub fn start(
        cfg: &LogConfig,
        edge_id: &str,
        sink: Option<Arc<dyn LogSink>>,
    ) -> anyhow::Result<Self> {
        Self::start_with_tick(cfg, edge_id, sink, TICK)
    }

    /// [`AccessLog::start`] with another flush period, for tests. `tick` is also the resolution of the
    /// `rotate_secs` and upload-interval clocks; a `rotate_secs` or `interval_minutes` of 0 means every tick.
    #[doc(hidden)]
    pub fn start_with_tick(
        cfg: &LogConfig,
        edge_id: &str,
        sink: Option<Arc<dyn LogSink>>,
        tick: Duration,
    ) -> anyhow::Result<Self> {
        let dropped = Arc::new(AtomicU64::new(0));
        let Some(dir) = cfg.dir.clone() else {
            return Ok(Self::disabled(dropped));
        };
        if edge_id.is_empty() || edge_id.contains(['/', '\\']) || edge_id.starts_with('.') {
            bail!("edge_id {edge_id:?} cannot name access log files");
        }
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create the access log directory {}", dir.display()))?;
        let files = Files {
            dir: dir.clone(),
            edge_id: edge_id.to_owned(),
        };
        files.rotate_leftover()?;

        let uploader = match (&cfg.upload, sink) {
            (Some(upload), Some(sink)) => Some(Uploader::spawn(
                files.clone(),
                sink,
                key_prefix(&upload.prefix),
                cfg.keep_files,
            )),
            (Some(_), None) => {
                tracing::warn!(
                    "edge.log.upload is set but no uploader was given: logs stay in {}",
                    dir.display()
                );
                None
            }
            _ => None,
        };
        let upload_every = cfg
            .upload
            .as_ref()
            .filter(|_| uploader.is_some())
            .map(|u| Duration::from_secs(u.interval_minutes.saturating_mul(60)));
        let (tx, rx) = mpsc::channel(QUEUE_RECORDS);
        let writer = Writer {
            files,
            rotate_bytes: cfg.rotate_bytes,
            rotate_after: Duration::from_secs(cfg.rotate_secs),
            keep_files: cfg.keep_files,
            upload_every,
            uploader,
            current: None,
            dropped: dropped.clone(),
            failing: false,
        };
        tokio::spawn(writer.run(rx, tick));
        Ok(Self {
            inner: Arc::new(Inner {
                tx: Some(tx),
                dropped,
                dir: Some(dir),
            }),
        })
    }

    fn disabled(dropped: Arc<AtomicU64>) -> Self {
        Self {
            inner: Arc::new(Inner {
                tx: None,
                dropped,
                dir: None,
            }),
        }
    }

    /// Never blocks the request path: a bounded channel; when full the record is dropped and counted.
    pub fn record(&self, rec: LogRecord) {
        let Some(tx) = &self.inner.tx else {
            return;
        };
        if tx.try_send(Msg::Record(Box::new(rec))).is_err() {
            self.inner.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Records lost so far: queue full, writer stopped, or a write that failed.
    pub fn dropped(&self) -> u64 {
        self.inner.dropped.load(Ordering::Relaxed)
    }

    /// Flushes and closes the current file (rotating it so it is uploaded when a sink is set). Await on shutdown.
    ///
    /// With a sink this includes one last upload pass, so it takes as long as the sink's puts; wrap it in
    /// `tokio::time::timeout` to bound it. Records sent afterwards are dropped. Calling it again does nothing.
    pub async fn shutdown(&self) {
        let Some(tx) = &self.inner.tx else {
            return;
        };
        let (done, finished) = oneshot::channel();
        if tx.send(Msg::Shutdown(done)).await.is_ok() {
            let _ = finished.await;
        }
    }
}

/// `{prefix}` of the upload keys: CloudFront appends a `/` to a non-empty prefix that lacks one.
fn key_prefix(prefix: &str) -> String {
    if prefix.is_empty() || prefix.ends_with('/') {
        prefix.to_owned()
    } else {
        format!("{prefix}/")
    }
}

/// The log directory and the names of the files in it.
#[derive(Clone)]
struct Files {
    dir: PathBuf,
    edge_id: String,
}

impl Files {
    fn current(&self) -> PathBuf {
        self.dir.join(format!("{}.current.log", self.edge_id))
    }

    /// A fresh name `{edge_id}.{YYYY-MM-DD-HH}.{8 hex}.log` for a file whose first record is from `hour`.
    fn rotated(&self, hour: SystemTime) -> PathBuf {
        let hour = DateTime::<Utc>::from(hour).format("%Y-%m-%d-%H");
        loop {
            let path = self.dir.join(format!(
                "{}.{hour}.{:08x}.log",
                self.edge_id,
                rand::random::<u32>()
            ));
            if !path.exists() {
                return path;
            }
        }
    }

    /// The stem `{YYYY-MM-DD-HH}.{hex}` when `name` is one of this edge's rotated files.
    fn rotated_stem<'n>(&self, name: &'n str) -> Option<&'n str> {
        let stem = name
            .strip_prefix(self.edge_id.as_str())?
            .strip_prefix('.')?
            .strip_suffix(".log")?;
        let (hour, hex) = stem.split_once('.')?;
        let hour_ok = hour.len() == 13
            && hour.bytes().enumerate().all(|(i, b)| {
                if matches!(i, 4 | 7 | 10) {
                    b == b'-'
                } else {
                    b.is_ascii_digit()
                }
            });
        let hex_ok = hex.len() == 8 && hex.bytes().all(|b| b.is_ascii_hexdigit());
        (hour_ok && hex_ok).then_some(stem)
    }

    /// This edge's rotated files, oldest first (by modification time, then name).
    async fn list_rotated(&self) -> std::io::Result<Vec<PathBuf>> {
        let mut found = Vec::new();
        let mut entries = tokio::fs::read_dir(&self.dir).await?;
        while let Some(entry) = entries.next_entry().await? {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if self.rotated_stem(name).is_none() {
                continue;
            }
            let modified = match entry.metadata().await {
                Ok(meta) => meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                Err(_) => continue, // deleted meanwhile
            };
            found.push((modified, entry.path()));
        }
        found.sort();
        Ok(found.into_iter().map(|(_, path)| path).collect())
    }

    /// Deletes the oldest rotated files beyond `keep`.
    async fn prune(&self, keep: usize) {
        let files = match self.list_rotated().await {
            Ok(files) => files,
            Err(err) => {
                tracing::warn!(dir = %self.dir.display(), error = %err, "cannot list access logs");
                return;
            }
        };
        let excess = files.len().saturating_sub(keep);
        for path in &files[..excess] {
            match tokio::fs::remove_file(path).await {
                Ok(()) => tracing::debug!(file = %path.display(), "old access log deleted"),
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => {
                    tracing::warn!(file = %path.display(), error = %err, "cannot delete access log")
                }
            }
        }
    }

    /// Rotates a `current` file left by an earlier run (deletes it when it holds nothing). Startup only.
    fn rotate_leftover(&self) -> anyhow::Result<()> {
        let current = self.current();
        let meta = match std::fs::metadata(&current) {
            Ok(meta) => meta,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(err) => {
                return Err(err).with_context(|| format!("cannot inspect {}", current.display()));
            }
        };
        let header_len = (VERSION_LINE.len() + FIELDS_LINE.len() + 2) as u64;
        if meta.len() <= header_len {
            return std::fs::remove_file(&current)
                .with_context(|| format!("cannot delete {}", current.display()));
        }
        let hour = meta
            .created()
            .or_else(|_| meta.modified())
            .unwrap_or_else(|_| SystemTime::now());
        let target = self.rotated(hour);
        std::fs::rename(&current, &target).with_context(|| {
            format!(
                "cannot rotate {} to {}",
                current.display(),
                target.display()
            )
        })?;
        tracing::info!(file = %target.display(), "rotated the access log of an earlier run");
        Ok(())
    }
}

/// The file being written.
struct Current {
    out: BufWriter<tokio::fs::File>,
    bytes: u64,
    opened: Instant,
    first_record: SystemTime,
    dirty: bool,
}

/// The writer task: owns the current file, rotates it, and tells the uploader when to run.
struct Writer {
    files: Files,
    rotate_bytes: u64,
    rotate_after: Duration,
    keep_files: usize,
    /// Set when rotated files are uploaded: the interval of upload passes.
    upload_every: Option<Duration>,
    uploader: Option<mpsc::Sender<UploadCmd>>,
    current: Option<Current>,
    dropped: Arc<AtomicU64>,
    /// The last write failed; suppresses repeated warnings until one succeeds.
    failing: bool,
}

impl Writer {
    async fn run(mut self, mut rx: mpsc::Receiver<Msg>, tick: Duration) {
        let mut ticker = tokio::time::interval(tick);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut last_upload = Instant::now();
        loop {
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(Msg::Record(rec)) => self.write(&rec).await,
                    Some(Msg::Shutdown(done)) => {
                        self.finish().await;
                        let _ = done.send(());
                        return;
                    }
                    None => {
                        self.finish().await;
                        return;
                    }
                },
                _ = ticker.tick() => {
                    self.flush().await;
                    let due = self.upload_every.is_some_and(|every| last_upload.elapsed() >= every);
                    if due {
                        last_upload = Instant::now();
                        self.rotate().await;
                        self.request_upload();
                    } else if self.current.as_ref().is_some_and(|c| c.opened.elapsed() >= self.rotate_after) {
                        self.rotate().await;
                    }
                }
            }
        }
    }

    async fn write(&mut self, rec: &LogRecord) {
        let mut line = format_line(&self.files.edge_id, rec);
        line.push('\n');
        match self.append(rec.time, line.as_bytes()).await {
            Ok(()) => self.failing = false,
            Err(err) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                if !self.failing {
                    tracing::warn!(file = %self.files.current().display(), error = %err,
                        "cannot write the access log; records are dropped until a write succeeds");
                }
                self.failing = true;
                self.current = None; // reopen on the next record
                return;
            }
        }
        if self
            .current
            .as_ref()
            .is_some_and(|c| c.bytes >= self.rotate_bytes)
        {
            self.rotate().await;
        }
    }

    async fn append(&mut self, time: SystemTime, line: &[u8]) -> std::io::Result<()> {
        let current = match self.current.take() {
            Some(current) => current,
            None => self.open(time).await?,
        };
        let current = self.current.insert(current);
        current.out.write_all(line).await?;
        current.bytes += line.len() as u64;
        current.dirty = true;
        Ok(())
    }

    /// Creates the current file with the two header lines.
    async fn open(&self, first_record: SystemTime) -> std::io::Result<Current> {
        let file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.files.current())
            .await?;
        let mut out = BufWriter::with_capacity(64 * 1024, file);
        let header = format!("{VERSION_LINE}\n{FIELDS_LINE}\n");
        out.write_all(header.as_bytes()).await?;
        Ok(Current {
            out,
            bytes: header.len() as u64,
            opened: Instant::now(),
            first_record,
            dirty: true,
        })
    }

    async fn flush(&mut self) {
        let Some(current) = &mut self.current else {
            return;
        };
        if !current.dirty {
            return;
        }
        match current.out.flush().await {
            Ok(()) => current.dirty = false,
            Err(err) => {
                tracing::warn!(error = %err, "cannot flush the access log");
            }
        }
    }

    /// Closes the current file (if any) and gives it its rotated name.
    async fn rotate(&mut self) {
        let Some(mut current) = self.current.take() else {
            return;
        };
        if let Err(err) = current.out.flush().await {
            tracing::warn!(error = %err, "cannot flush the access log before rotating it");
        }
        drop(current.out);
        let from = self.files.current();
        let to = self.files.rotated(current.first_record);
        match tokio::fs::rename(&from, &to).await {
            Ok(()) => tracing::debug!(file = %to.display(), "access log rotated"),
            Err(err) => {
                tracing::warn!(from = %from.display(), to = %to.display(), error = %err,
                    "cannot rotate the access log");
                return;
            }
        }
        if self.uploader.is_none() {
            self.files.prune(self.keep_files).await;
        }
    }

    /// Asks the uploader for a pass; one already waiting is enough.
    fn request_upload(&self) {
        if let Some(uploader) = &self.uploader {
            let _ = uploader.try_send(UploadCmd::Pass);
        }
    }

    /// Rotates the current file and, with an uploader, waits for a last upload pass.
    async fn finish(&mut self) {
        self.rotate().await;
        if let Some(uploader) = self.uploader.take() {
            let (done, finished) = oneshot::channel();
            if uploader.send(UploadCmd::Finish(done)).await.is_ok() {
                let _ = finished.await;
            }
        }
    }
}

enum UploadCmd {
    Pass,
    Finish(oneshot::Sender<()>),
}

/// The uploader task: stores rotated files through the sink, oldest first, then prunes.
struct Uploader {
    files: Files,
    sink: Arc<dyn LogSink>,
    prefix: String,
    keep_files: usize,
}

impl Uploader {
    fn spawn(
        files: Files,
        sink: Arc<dyn LogSink>,
        prefix: String,
        keep_files: usize,
    ) -> mpsc::Sender<UploadCmd> {
        let (tx, rx) = mpsc::channel(1);
        let uploader = Self {
            files,
            sink,
            prefix,
            keep_files,
        };
        tokio::spawn(uploader.run(rx));
        tx
    }

    async fn run(self, mut rx: mpsc::Receiver<UploadCmd>) {
        while let Some(cmd) = rx.recv().await {
            self.pass().await;
            self.files.prune(self.keep_files).await;
            if let UploadCmd::Finish(done) = cmd {
                let _ = done.send(());
                return;
            }
        }
    }

    /// Uploads every rotated file; stops at the first failure (the rest wait for the next pass).
    async fn pass(&self) {
        let files = match self.files.list_rotated().await {
            Ok(files) => files,
            Err(err) => {
                tracing::warn!(dir = %self.files.dir.display(), error = %err, "cannot list access logs");
                return;
            }
        };
        for path in files {
            if let Err(err) = self.upload(&path).await {
                tracing::warn!(file = %path.display(), error = %format!("{err:#}"),
                    "access log upload failed; retrying at the next interval");
                return;
            }
        }
    }

    async fn upload(&self, path: &Path) -> anyhow::Result<()> {
        let Some(stem) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| self.files.rotated_stem(n))
        else {
            return Ok(());
        };
        let key = format!("{}{}.{stem}.gz", self.prefix, self.files.edge_id);
        let body = match gzip_file(path.to_owned()).await {
            Ok(body) => body,
            // Pruned meanwhile.
            Err(err) if is_not_found(&err) => return Ok(()),
            Err(err) => return Err(err),
        };
        self.sink
            .put(key.clone(), body)
            .await
            .with_context(|| format!("storing {key}"))?;
        match tokio::fs::remove_file(path).await {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                tracing::warn!(file = %path.display(), error = %err, "cannot delete an uploaded access log")
            }
            _ => tracing::debug!(file = %path.display(), %key, "access log uploaded"),
        }
        Ok(())
    }
}

fn is_not_found(err: &anyhow::Error) -> bool {
    err.downcast_ref::<std::io::Error>()
        .is_some_and(|e| e.kind() == std::io::ErrorKind::NotFound)
}

/// Reads and gzips a file on the blocking pool.
async fn gzip_file(path: PathBuf) -> anyhow::Result<Bytes> {
    tokio::task::spawn_blocking(move || -> anyhow::Result<Bytes> {
        let data = std::fs::read(&path)?;
        let mut gz = flate2::write::GzEncoder::new(
            Vec::with_capacity(data.len() / 4),
            flate2::Compression::default(),
        );
        std::io::Write::write_all(&mut gz, &data)?;
        Ok(Bytes::from(gz.finish()?))
    })
    .await
    .context("gzip task")?
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::sync::Mutex;
    use std::sync::atomic::AtomicUsize;

    use proptest::prelude::*;
    use strata_config::edge::LogUpload;

    /// The first record of the example log in the CloudFront developer guide.
    fn aws_example() -> LogRecord {
        LogRecord {
            time: SystemTime::UNIX_EPOCH + Duration::from_secs(1_575_493_351),
            client_ip: "192.0.2.100".parse().unwrap(),
            client_port: 11040,
            method: "GET".into(),
            host: "d111111abcdef8.cloudfront.net".into(),
            uri_stem: "/index.html".into(),
            query: None,
            status: 200,
            bytes_sent: 392,
            bytes_received: 23,
            referer: None,
            user_agent: Some(
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
                 Chrome/78.0.3904.108 Safari/537.36"
                    .into(),
            ),
            cookie: None,
            result: ResultType::Hit,
            request_id: "SOX4xwn4XV6Q4rgb7XiVGOHms_BGlTAC4KyHmureZmBNrjGdRLiNIQ==".into(),
            scheme: "https",
            http_version: "HTTP/2.0",
            tls_version: Some("TLSv1.2"),
            tls_cipher: Some("ECDHE-RSA-AES128-GCM-SHA256".into()),
            forwarded_for: None,
            time_taken: Duration::from_micros(1_200),
            time_to_first_byte: Duration::from_micros(700),
            content_type: Some("text/html".into()),
            content_len: Some(78),
            range: None,
        }
    }

    #[test]
    fn header_lists_33_fields() {
        let fields: Vec<&str> = FIELDS_LINE
            .strip_prefix("#Fields: ")
            .unwrap()
            .split(' ')
            .collect();
        assert_eq!(fields.len(), 33);
        assert_eq!(fields[0], "date");
        assert_eq!(fields[32], "sc-range-end");
    }

    #[test]
    fn line_matches_the_aws_example() {
        let expected = "2019-12-04\t21:02:31\tLAX1\t392\t192.0.2.100\tGET\td111111abcdef8.cloudfront.net\t\
            /index.html\t200\t-\tMozilla/5.0%20(Windows%20NT%2010.0;%20Win64;%20x64)%20AppleWebKit/537.36%20\
            (KHTML,%20like%20Gecko)%20Chrome/78.0.3904.108%20Safari/537.36\t-\t-\tHit\t\
            SOX4xwn4XV6Q4rgb7XiVGOHms_BGlTAC4KyHmureZmBNrjGdRLiNIQ==\td111111abcdef8.cloudfront.net\thttps\t23\t\
            0.001\t-\tTLSv1.2\tECDHE-RSA-AES128-GCM-SHA256\tHit\tHTTP/2.0\t-\t-\t11040\t0.001\tHit\ttext/html\t\
            78\t-\t-";
        assert_eq!(format_line("LAX1", &aws_example()), expected);
    }

    #[test]
    fn line_has_33_fields_and_dashes_for_empties() {
        let mut rec = aws_example();
        rec.user_agent = None;
        rec.tls_version = None;
        rec.tls_cipher = None;
        rec.content_type = None;
        rec.content_len = None;
        rec.query = Some(String::new());
        rec.scheme = "http";
        let line = format_line("E1", &rec);
        let fields: Vec<&str> = line.split('\t').collect();
        assert_eq!(fields.len(), 33, "{line}");
        for (i, name) in [
            (9, "cs(Referer)"),
            (10, "cs(User-Agent)"),
            (11, "cs-uri-query"),
            (12, "cs(Cookie)"),
            (19, "x-forwarded-for"),
            (20, "ssl-protocol"),
            (21, "ssl-cipher"),
            (24, "fle-status"),
            (25, "fle-encrypted-fields"),
            (29, "sc-content-type"),
            (30, "sc-content-len"),
            (31, "sc-range-start"),
            (32, "sc-range-end"),
        ] {
            assert_eq!(fields[i], "-", "{name} in {line}");
        }
    }

    #[test]
    fn free_text_is_percent_encoded() {
        let mut rec = aws_example();
        rec.user_agent = Some(
            "curl/8 (x)\there\névil ünïcode \"q\" <a> {b} [c] ~d 'e' `f` #g %h |i \\j ^k".into(),
        );
        rec.uri_stem = "/a b/%20.txt".into();
        rec.query = Some("x=1&y=two words".into());
        rec.forwarded_for = Some("203.0.113.9, 10.0.0.1".into());
        rec.range = Some((0, 99));
        let line = format_line("E1", &rec);
        let fields: Vec<&str> = line.split('\t').collect();
        assert_eq!(fields.len(), 33);
        assert!(line.is_ascii());
        assert!(!line.contains(' ') && !line.contains('\n') && !line.contains('\r'));
        assert_eq!(
            fields[10],
            "curl/8%20(x)%09here%0A%C3%A9vil%20%C3%BCn%C3%AFcode%20%22q%22%20%3Ca%3E%20%7Bb%7D%20%5Bc%5D%20\
             %7Ed%20%27e%27%20%60f%60%20%23g%20%25h%20%7Ci%20%5Cj%20%5Ek"
        );
        assert_eq!(fields[7], "/a%20b/%2520.txt");
        assert_eq!(fields[11], "x=1&y=two%20words");
        assert_eq!(fields[19], "203.0.113.9,%2010.0.0.1");
        assert_eq!((fields[31], fields[32]), ("0", "99"));
    }

    #[test]
    fn times_are_seconds_with_three_decimals() {
        let mut rec = aws_example();
        rec.time_taken = Duration::from_micros(1_234_500);
        rec.time_to_first_byte = Duration::ZERO;
        let line = format_line("E1", &rec);
        let fields: Vec<&str> = line.split('\t').collect();
        assert_eq!(fields[18], "1.235");
        assert_eq!(fields[27], "0.000");
        rec.time_taken = Duration::from_secs(75);
        assert_eq!(format_line("E1", &rec).split('\t').nth(18), Some("75.000"));
    }

    #[test]
    fn ipv6_and_mapped_client_addresses() {
        let mut rec = aws_example();
        rec.client_ip = "2001:db8::7".parse().unwrap();
        assert_eq!(
            format_line("E1", &rec).split('\t').nth(4),
            Some("2001:db8::7")
        );
        rec.client_ip = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(
            format_line("E1", &rec).split('\t').nth(4),
            Some("192.0.2.1")
        );
    }

    proptest! {
        #[test]
        fn any_text_keeps_the_line_shape(ua in any::<String>(), stem in any::<String>(), cookie in any::<String>()) {
            let mut rec = aws_example();
            rec.user_agent = Some(ua);
            rec.uri_stem = stem;
            rec.cookie = Some(cookie);
            let line = format_line("E1", &rec);
            prop_assert_eq!(line.split('\t').count(), 33);
            prop_assert!(line.bytes().all(|b| b > b' ' && b < 127 || b == b'\t'));
        }
    }

    fn config(dir: &Path) -> LogConfig {
        LogConfig {
            dir: Some(dir.to_owned()),
            rotate_bytes: 1 << 30,
            rotate_secs: 3600,
            keep_files: 100,
            upload: None,
        }
    }

    fn upload(prefix: &str, interval_minutes: u64) -> LogUpload {
        LogUpload {
            endpoint: "http://127.0.0.1:1".into(),
            bucket: "logs".into(),
            prefix: prefix.into(),
            region: "us-east-1".into(),
            access_key: "k".into(),
            secret_key: "s".into(),
            interval_minutes,
        }
    }

    fn numbered(i: usize) -> LogRecord {
        let mut rec = aws_example();
        rec.time = SystemTime::now();
        rec.request_id = format!("req-{i:05}");
        rec
    }

    /// (file name, contents) of the rotated files in `dir`, and whether a current file is there.
    fn rotated_files(dir: &Path) -> (Vec<(String, String)>, bool) {
        let mut files = Vec::new();
        let mut current = false;
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().into_string().unwrap();
            if name.ends_with(".current.log") {
                current = true;
            } else {
                files.push((name, std::fs::read_to_string(entry.path()).unwrap()));
            }
        }
        files.sort();
        (files, current)
    }

    fn request_ids(text: &str) -> Vec<String> {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.split('\t').nth(14).unwrap().to_owned())
            .collect()
    }

    fn assert_header(name: &str, text: &str) {
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some(VERSION_LINE), "{name}");
        assert_eq!(lines.next(), Some(FIELDS_LINE), "{name}");
        assert!(lines.all(|l| !l.starts_with('#')), "{name}");
    }

    async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
        tokio::time::timeout(Duration::from_secs(10), fut)
            .await
            .unwrap_or_else(|_| panic!("timed out: {what}"))
    }

    #[tokio::test]
    async fn rotates_by_size_with_headers_in_every_file() {
        let tmp = tempfile::tempdir().unwrap();
        let mut cfg = config(tmp.path());
        cfg.rotate_bytes = 4096;
        let log = AccessLog::start(&cfg, "EDGE1", None).unwrap();
        for i in 0..200 {
            log.record(numbered(i));
            tokio::task::yield_now().await;
        }
        within("shutdown", log.shutdown()).await;
        assert_eq!(log.dropped(), 0);

        let (files, current) = rotated_files(tmp.path());
        assert!(!current, "shutdown rotates the current file");
        assert!(files.len() >= 5, "{} files", files.len());
        let mut ids = Vec::new();
        for (name, text) in &files {
            assert!(
                name.starts_with("EDGE1.") && name.ends_with(".log"),
                "{name}"
            );
            let stem = Files {
                dir: tmp.path().into(),
                edge_id: "EDGE1".into(),
            };
            assert!(stem.rotated_stem(name).is_some(), "{name}");
            assert_header(name, text);
            // A file goes over the limit by at most one line.
            assert!(text.len() < 4096 + 600, "{name}: {} bytes", text.len());
            ids.extend(request_ids(text));
        }
        ids.sort();
        let expected: Vec<String> = (0..200).map(|i| format!("req-{i:05}")).collect();
        assert_eq!(ids, expected);
    }

    #[tokio::test]
    async fn keeps_at_most_keep_files() {
        let tmp = tempfile::tempdir().unwrap();
        let mut cfg = config(tmp.path());
        cfg.rotate_bytes = 1024;
        cfg.keep_files = 3;
        let log = AccessLog::start(&cfg, "EDGE1", None).unwrap();
        for i in 0..100 {
            log.record(numbered(i));
            tokio::task::yield_now().await;
        }
        within("shutdown", log.shutdown()).await;
        let (files, _) = rotated_files(tmp.path());
        assert_eq!(files.len(), 3);
        // The newest survive: the last record is in one of them.
        assert!(files.iter().any(|(_, t)| t.contains("req-00099")));
    }

    #[tokio::test]
    async fn flushes_within_a_tick_and_rotates_by_age() {
        let tmp = tempfile::tempdir().unwrap();
        let mut cfg = config(tmp.path());
        cfg.rotate_secs = 0; // every tick
        let log =
            AccessLog::start_with_tick(&cfg, "EDGE1", None, Duration::from_millis(20)).unwrap();
        log.record(numbered(1));
        within("rotation by age", async {
            loop {
                let (files, _) = rotated_files(tmp.path());
                if files.iter().any(|(_, t)| t.contains("req-00001")) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        // Idle: no empty files appear.
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(rotated_files(tmp.path()).0.len(), 1);
        within("shutdown", log.shutdown()).await;
    }

    #[tokio::test]
    async fn leftover_current_file_is_rotated_on_start() {
        let tmp = tempfile::tempdir().unwrap();
        let old = format!(
            "{VERSION_LINE}\n{FIELDS_LINE}\n{}\n",
            format_line("EDGE1", &numbered(7))
        );
        std::fs::write(tmp.path().join("EDGE1.current.log"), &old).unwrap();
        // Another edge's leftover is not ours to touch.
        std::fs::write(tmp.path().join("OTHER.current.log"), "x").unwrap();
        let log = AccessLog::start(&config(tmp.path()), "EDGE1", None).unwrap();
        let (files, current) = rotated_files(tmp.path());
        assert!(current, "OTHER.current.log stays");
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].1, old);
        log.record(numbered(8));
        within("shutdown", log.shutdown()).await;
        let (files, _) = rotated_files(tmp.path());
        assert_eq!(files.len(), 2);
        assert!(files.iter().any(|(_, t)| request_ids(t) == ["req-00008"]));
    }

    #[tokio::test]
    async fn disabled_log_drops_quietly() {
        let log = AccessLog::start(&LogConfig::default(), "EDGE1", None).unwrap();
        log.record(numbered(1));
        within("shutdown", log.shutdown()).await;
        assert_eq!(log.dropped(), 0);
    }

    #[test]
    fn bad_edge_ids_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _guard = rt.enter();
        for id in ["", "a/b", "..", ".hidden"] {
            assert!(
                AccessLog::start(&config(tmp.path()), id, None).is_err(),
                "{id:?}"
            );
        }
    }

    #[tokio::test]
    async fn full_queue_drops_and_counts() {
        let tmp = tempfile::tempdir().unwrap();
        let log = AccessLog::start(&config(tmp.path()), "EDGE1", None).unwrap();
        // The writer cannot run on this single-threaded runtime until we yield.
        let sent = QUEUE_RECORDS + 100;
        for i in 0..sent {
            log.record(numbered(i));
        }
        assert_eq!(log.dropped(), 100);
        within("shutdown", log.shutdown()).await;
        let (files, _) = rotated_files(tmp.path());
        let lines: usize = files.iter().map(|(_, t)| request_ids(t).len()).sum();
        assert_eq!(lines, QUEUE_RECORDS);
        log.record(numbered(0));
        assert_eq!(log.dropped(), 101, "after shutdown records are dropped");
    }

    /// Collects what it is given; fails the first `fail_first` puts.
    #[derive(Default)]
    struct TestSink {
        fail_first: usize,
        attempts: AtomicUsize,
        stored: Mutex<Vec<(String, Bytes)>>,
    }

    impl LogSink for TestSink {
        fn put(
            &self,
            key: String,
            body: Bytes,
        ) -> Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send + '_>> {
            Box::pin(async move {
                let attempt = self.attempts.fetch_add(1, Ordering::SeqCst);
                if attempt < self.fail_first {
                    bail!("injected failure {attempt}");
                }
                self.stored.lock().unwrap().push((key, body));
                Ok(())
            })
        }
    }

    fn gunzip(body: &[u8]) -> String {
        let mut text = String::new();
        flate2::read::GzDecoder::new(body)
            .read_to_string(&mut text)
            .unwrap();
        text
    }

    fn stored(sink: &TestSink) -> Vec<(String, String)> {
        sink.stored
            .lock()
            .unwrap()
            .iter()
            .map(|(k, b)| (k.clone(), gunzip(b)))
            .collect()
    }

    #[tokio::test]
    async fn uploads_gzipped_files_and_deletes_them() {
        let tmp = tempfile::tempdir().unwrap();
        let mut cfg = config(tmp.path());
        cfg.upload = Some(upload("cf-logs", 0)); // every tick
        let sink = Arc::new(TestSink::default());
        let log = AccessLog::start_with_tick(
            &cfg,
            "EDGE1",
            Some(sink.clone()),
            Duration::from_millis(20),
        )
        .unwrap();
        let records: Vec<LogRecord> = (0..3).map(numbered).collect();
        let hour = DateTime::<Utc>::from(records[0].time)
            .format("%Y-%m-%d-%H")
            .to_string();
        for rec in records {
            log.record(rec);
        }
        within("upload", async {
            while stored(&sink)
                .iter()
                .map(|(_, t)| request_ids(t).len())
                .sum::<usize>()
                < 3
            {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        within("shutdown", log.shutdown()).await;
        assert!(
            rotated_files(tmp.path()).0.is_empty(),
            "uploaded files are deleted"
        );

        // The ticker may rotate between two records, so the three can arrive in one file or several.
        let stored = stored(&sink);
        let mut ids = Vec::new();
        for (key, text) in &stored {
            let name = key.strip_prefix("cf-logs/EDGE1.").expect(key);
            let (file_hour, hex) = name.strip_suffix(".gz").unwrap().split_once('.').unwrap();
            assert_eq!(file_hour, hour, "{key}");
            assert_eq!(hex.len(), 8, "{key}");
            assert_header(key, text);
            ids.extend(request_ids(text));
        }
        assert_eq!(ids, ["req-00000", "req-00001", "req-00002"]);
    }

    #[tokio::test]
    async fn failed_upload_is_retried_at_the_next_interval() {
        let tmp = tempfile::tempdir().unwrap();
        let mut cfg = config(tmp.path());
        cfg.upload = Some(upload("", 0));
        let sink = Arc::new(TestSink {
            fail_first: 2,
            ..TestSink::default()
        });
        let log = AccessLog::start_with_tick(
            &cfg,
            "EDGE1",
            Some(sink.clone()),
            Duration::from_millis(20),
        )
        .unwrap();
        log.record(numbered(1));
        within("first failure", async {
            while sink.attempts.load(Ordering::SeqCst) == 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
        let (files, _) = rotated_files(tmp.path());
        assert!(
            sink.stored.lock().unwrap().len() == 1 || files.len() == 1,
            "a failed file stays until stored"
        );
        within("retry succeeds", async {
            while sink.stored.lock().unwrap().is_empty() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        within("shutdown", log.shutdown()).await;
        assert!(sink.attempts.load(Ordering::SeqCst) >= 3);
        let stored = stored(&sink);
        assert_eq!(stored.len(), 1);
        assert!(stored[0].0.starts_with("EDGE1.") && stored[0].0.ends_with(".gz"));
        assert_eq!(request_ids(&stored[0].1), ["req-00001"]);
        assert!(rotated_files(tmp.path()).0.is_empty());
    }

    #[tokio::test]
    async fn shutdown_uploads_the_last_file() {
        let tmp = tempfile::tempdir().unwrap();
        let mut cfg = config(tmp.path());
        cfg.upload = Some(upload("logs/", 60));
        let sink = Arc::new(TestSink::default());
        let log = AccessLog::start(&cfg, "EDGE1", Some(sink.clone())).unwrap();
        log.record(numbered(5));
        within("shutdown", log.shutdown()).await;
        let stored = stored(&sink);
        assert_eq!(stored.len(), 1);
        assert!(stored[0].0.starts_with("logs/EDGE1."), "{}", stored[0].0);
        assert_eq!(request_ids(&stored[0].1), ["req-00005"]);
        within("second shutdown", log.shutdown()).await;
    }

    #[test]
    fn key_prefix_gets_a_slash() {
        assert_eq!(key_prefix(""), "");
        assert_eq!(key_prefix("logs"), "logs/");
        assert_eq!(key_prefix("logs/"), "logs/");
    }
}
