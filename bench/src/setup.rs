//! What happens around the measured phase: making sure the buckets exist, uploading the object pool that
//! get, mixed, edge-get, list and delete runs read from (not measured), and deleting everything the run
//! created.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::client::{OpError, S3Client};
use crate::layout::{Layout, Object};
use crate::payload::Payload;
use crate::progress::{Length, Output, PhaseBar};
use crate::stats::Progress;

/// Keys per DeleteObjects request (the S3 maximum).
const DELETE_BATCH: usize = 1000;
/// Parallel DeleteObjects requests during cleanup, at most.
const CLEANUP_PARALLEL: usize = 8;

/// Longest wait for one set-up request (HEAD bucket, CreateBucket): they are small, so a server that has
/// not answered by then is not going to, and a run should say so rather than wait out `--timeout`.
const SETUP_TIMEOUT: Duration = Duration::from_secs(30);

/// Awaits one set-up or cleanup request for at most `limit`, giving up early when the run is interrupted.
async fn within<T>(
    limit: Duration,
    stop: Option<&AtomicBool>,
    request: impl Future<Output = Result<T, OpError>>,
) -> Result<T, Bounded> {
    let interrupted = async {
        match stop {
            Some(stop) => {
                while !stop.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        r = tokio::time::timeout(limit, request) => match r {
            Ok(r) => r.map_err(Bounded::Failed),
            Err(_) => Err(Bounded::Failed(OpError::Timeout)),
        },
        () = interrupted => Err(Bounded::Interrupted),
    }
}

/// Why [`within`] gave no answer.
#[derive(Debug)]
enum Bounded {
    Failed(OpError),
    Interrupted,
}

impl std::fmt::Display for Bounded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Bounded::Failed(e) => e.fmt(f),
            Bounded::Interrupted => f.write_str("interrupted"),
        }
    }
}

impl Bounded {
    fn context(self, what: &str) -> anyhow::Error {
        match self {
            Bounded::Failed(OpError::Timeout) => {
                anyhow::anyhow!("{what}: no answer from the endpoint (timeout)")
            }
            Bounded::Failed(e) => anyhow::Error::new(e).context(what.to_owned()),
            Bounded::Interrupted => anyhow::anyhow!("{what}: interrupted"),
        }
    }
}

/// Creates the bucket when it does not exist; returns whether this run created it.
pub(crate) async fn ensure_bucket(
    client: &S3Client,
    region: &str,
    timeout: Duration,
    stop: &AtomicBool,
) -> anyhow::Result<bool> {
    let limit = setup_limit(timeout);
    match within(limit, Some(stop), client.bucket_exists()).await {
        Ok(true) => return Ok(false),
        Ok(false) => {}
        Err(Bounded::Failed(e @ OpError::Http { status: 403, .. })) => {
            return Err(e).context(
                "HEAD bucket: access denied (check the keys, --region and the bucket's owner)",
            );
        }
        Err(Bounded::Failed(e @ OpError::Http { status: 400, .. })) => {
            return Err(e).context("HEAD bucket: bad request (check --region and the endpoint)");
        }
        Err(e) => return Err(e.context("HEAD bucket")),
    }
    match within(limit, Some(stop), client.create_bucket(region)).await {
        Ok(()) => Ok(true),
        Err(Bounded::Failed(OpError::Http {
            code: Some(code), ..
        })) if code == "BucketAlreadyOwnedByYou" => Ok(false),
        // The request may have landed with its answer lost: the bucket was not there a moment ago, so if it
        // is now, this run made it (and cleanup must remove it).
        Err(Bounded::Failed(e)) if e.unanswered() => {
            match within(limit, Some(stop), client.bucket_exists()).await {
                Ok(true) => Ok(true),
                Ok(false) => Err(Bounded::Failed(e).context("CreateBucket")),
                Err(Bounded::Failed(head)) if head.unanswered() => Err(Bounded::Failed(e).context(
                    "CreateBucket (and HEAD bucket after it got no answer either: the bucket may exist now)",
                )),
                Err(head) => Err(head.context(
                    "HEAD bucket after a CreateBucket that got no answer (the bucket may exist now)",
                )),
            }
        }
        Err(e) => Err(e.context("CreateBucket")),
    }
}

/// Creates every bucket that does not exist; returns, per bucket, whether this run created it. When one
/// fails, the buckets created so far are deleted again (best effort) before the error is returned.
pub(crate) async fn ensure_buckets(
    clients: &[Arc<S3Client>],
    region: &str,
    verbose: bool,
    timeout: Duration,
    stop: &AtomicBool,
) -> anyhow::Result<Vec<bool>> {
    let mut created = Vec::with_capacity(clients.len());
    for client in clients {
        match ensure_bucket(client, region, timeout, stop).await {
            Ok(c) => {
                if c && verbose {
                    eprintln!("created bucket {}", client.bucket());
                }
                created.push(c);
            }
            Err(e) => {
                for (c, _) in clients.iter().zip(&created).filter(|(_, made)| **made) {
                    let _ = within(setup_limit(timeout), None, c.delete_bucket()).await;
                }
                return Err(e).with_context(|| format!("bucket {}", client.bucket()));
            }
        }
    }
    Ok(created)
}

/// The prepare phase: uploads `objects` (each to its bucket, with its size) with `concurrency` parallel
/// PUTs. Fails on the first error.
pub(crate) struct Prepare<'a> {
    pub(crate) clients: &'a [Arc<S3Client>],
    pub(crate) payload: &'a Arc<Payload>,
    pub(crate) objects: &'a Arc<Vec<Object>>,
    pub(crate) concurrency: usize,
    pub(crate) timeout: Duration,
    pub(crate) stop: &'a Arc<AtomicBool>,
    pub(crate) out: Output,
}

impl Prepare<'_> {
    pub(crate) async fn upload_all(&self) -> anyhow::Result<()> {
        let objects = self.objects;
        if objects.is_empty() {
            return Ok(());
        }
        let next = Arc::new(AtomicUsize::new(0));
        let progress = Arc::new(Progress::default());
        let counters = progress.clone();
        let bar = PhaseBar::start(
            self.out,
            "prepare",
            Length::Count(objects.len() as u64),
            Arc::new(move || counters.snapshot()),
        );
        let mut tasks = Vec::with_capacity(self.concurrency);
        for _ in 0..self.concurrency.min(objects.len()) {
            let clients = self.clients.to_vec();
            let (payload, objects) = (self.payload.clone(), objects.clone());
            let (next, progress, stop) = (next.clone(), progress.clone(), self.stop.clone());
            let timeout = self.timeout;
            tasks.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(obj) = objects.get(i) else {
                        return Ok(());
                    };
                    if stop.load(Ordering::Relaxed) {
                        return Ok(());
                    }
                    let (body, hash) = payload.body_sized(i, obj.size);
                    let put = clients[obj.bucket].put_object(&obj.key, body, &hash);
                    let failed = |why: String| {
                        let bucket = clients[obj.bucket].bucket();
                        anyhow::anyhow!("prepare PUT {bucket}/{}: {why}", obj.key)
                    };
                    match tokio::time::timeout(timeout, put).await {
                        Ok(Ok(())) => progress.add(&Ok(obj.size)),
                        Ok(Err(e)) => return Err(failed(e.to_string())),
                        Err(_) => return Err(failed("timeout".into())),
                    };
                }
            }));
        }
        let mut result = Ok(());
        for t in tasks {
            let r = t.await.context("prepare task panicked").and_then(|r| r);
            if result.is_ok() {
                result = r;
            }
        }
        bar.finish();
        result?;
        if self.stop.load(Ordering::Relaxed) {
            bail!("interrupted during prepare");
        }
        if self.out.lines {
            eprintln!("prepare: uploaded {} objects", objects.len());
        }
        Ok(())
    }
}

/// Cleans up every bucket: with `uploads_of` (a multipart run's layout), the uploads the run left in progress;
/// then its `keys[i]`, then the bucket itself when `created[i]`. Goes on after a failure and returns the
/// first error; once the endpoint stopped answering, the buckets left are not tried.
pub(crate) async fn cleanup_all(
    clients: &[Arc<S3Client>],
    keys: Vec<Vec<String>>,
    created: &[bool],
    uploads_of: Option<Layout>,
    timeout: Duration,
    verbose: bool,
) -> anyhow::Result<()> {
    let gone = Arc::new(AtomicBool::new(false));
    let limit = cleanup_limit(timeout);
    let mut first_error = Ok(());
    for ((client, keys), &created) in clients.iter().zip(keys).zip(created) {
        let r = match uploads_of {
            Some(layout) => abort_uploads_left(client, layout, limit, !verbose, &gone).await,
            None => Ok(()),
        };
        let deleted = cleanup(client, keys, created, limit, !verbose, &gone).await;
        if let Err(e) = r.and(deleted) {
            eprintln!("cleanup of bucket {}: {e:#}", client.bucket());
            if first_error.is_ok() {
                first_error = Err(e);
            }
        }
    }
    first_error
}

/// How long one set-up request may take: `--timeout`, but at most [`SETUP_TIMEOUT`].
fn setup_limit(timeout: Duration) -> Duration {
    timeout.min(SETUP_TIMEOUT)
}

/// How long one cleanup request may take: `--timeout`, but never less than [`SETUP_TIMEOUT`] (a
/// DeleteObjects of 1,000 keys on a server that syncs each delete can outlast a timeout chosen for GETs).
fn cleanup_limit(timeout: Duration) -> Duration {
    timeout.max(SETUP_TIMEOUT)
}

/// Deletes `keys` (DeleteObjects in batches of 1,000; per-key DELETE when the server lacks it), then the
/// bucket when `delete_bucket`, each request given at most `limit`. Problems are reported on stderr and
/// returned as an error at the end. `gone` is set once the endpoint stopped answering (see
/// [`delete_batch`]); nothing more is sent then.
pub(crate) async fn cleanup(
    client: &Arc<S3Client>,
    keys: Vec<String>,
    delete_bucket: bool,
    limit: Duration,
    quiet: bool,
    gone: &Arc<AtomicBool>,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let total = keys.len();
    let batches: Arc<Vec<Vec<String>>> =
        Arc::new(keys.chunks(DELETE_BATCH).map(<[String]>::to_vec).collect());
    let next = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..CLEANUP_PARALLEL.min(batches.len()) {
        let (client, batches, next, failed, gone) = (
            client.clone(),
            batches.clone(),
            next.clone(),
            failed.clone(),
            gone.clone(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(batch) = batches.get(i) else { return };
                let n = delete_batch(&client, batch, limit, &gone).await;
                failed.fetch_add(n, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let failed = failed.load(Ordering::Relaxed);
    if gone.load(Ordering::Relaxed) {
        bail!("cleanup: the endpoint stopped answering; {failed} objects were not deleted");
    }
    if !quiet {
        eprintln!(
            "cleanup: deleted {} of {total} objects in {:.1}s",
            total as u64 - failed.min(total as u64),
            started.elapsed().as_secs_f64()
        );
    }
    if failed > 0 {
        bail!("cleanup: {failed} objects could not be deleted");
    }
    if delete_bucket {
        match within(limit, None, client.delete_bucket()).await {
            Ok(()) => {}
            Err(Bounded::Failed(e)) if e.unanswered() => {
                gone.store(true, Ordering::Relaxed);
                return Err(Bounded::Failed(e).context("cleanup: DeleteBucket"));
            }
            Err(e) => return Err(e.context("cleanup: DeleteBucket")),
        }
        if !quiet {
            eprintln!("cleanup: deleted bucket {}", client.bucket());
        }
    }
    Ok(())
}

/// Most pages of ListMultipartUploads read per prefix looking for a run's uploads: a bound on a bucket that
/// holds (or a server that reports) endless uploads of others.
const MAX_UPLOAD_PAGES: usize = 100;
/// Most `--prefixes` whose uploads are listed one prefix at a time; with more, the whole bucket is listed.
const MAX_SWEPT_PREFIXES: usize = 100;

/// Aborts the multipart uploads run `run` left in progress in `client`'s bucket. A failed upload is aborted
/// when it fails, but that abort can fail too, a CreateMultipartUpload that got no answer may have made an
/// upload nobody knows the id of, and a worker that panicked aborted nothing: their parts would stay (and on
/// AWS, be paid for) until a lifecycle rule removes them. A server without ListMultipartUploads is left
/// alone, with a note, and so is one that does not let these credentials list uploads (403), with a warning.
async fn abort_uploads_left(
    client: &S3Client,
    layout: Layout,
    limit: Duration,
    quiet: bool,
    gone: &AtomicBool,
) -> anyhow::Result<()> {
    let run = layout.run;
    // Each prefix `p<i>/` of the run is listed, up to a hundred of them; beyond, the whole bucket, with the
    // run's own picked out.
    let listed = match layout.prefixes {
        n if n <= MAX_SWEPT_PREFIXES => layout.roots(),
        _ => vec![String::new()],
    };
    let (mut aborted, mut failed) = (0u64, 0u64);
    for prefix in &listed {
        let mut marker = None;
        let mut pages = 0;
        loop {
            if gone.load(Ordering::Relaxed) {
                bail!(
                    "cleanup: the endpoint stopped answering; uploads in progress not looked for"
                );
            }
            if pages == MAX_UPLOAD_PAGES {
                eprintln!(
                    "warning: cleanup looked through {MAX_UPLOAD_PAGES} pages of uploads in progress under \
                     {prefix:?} and stopped: any more of run {run}'s were not looked for"
                );
                break;
            }
            pages += 1;
            let listing = answered(limit, || client.list_uploads_page(prefix, marker.as_ref()));
            let page = match listing.await {
                Ok(page) => page,
                Err(Bounded::Failed(OpError::Http {
                    status: 400 | 405 | 501,
                    ..
                })) => {
                    if !quiet {
                        eprintln!(
                            "cleanup: the server lists no multipart uploads; none looked for"
                        );
                    }
                    return Ok(());
                }
                // Credentials without s3:ListBucketMultipartUploads: the run did its work, so it does not fail
                // here, but the uploads it may have left are unknown.
                Err(Bounded::Failed(OpError::Http { status: 403, .. })) => {
                    eprintln!(
                        "warning: cleanup may not list multipart uploads (403); any that run {run} left \
                         were not looked for"
                    );
                    return Ok(());
                }
                Err(Bounded::Failed(e)) if e.unanswered() => {
                    gone.store(true, Ordering::Relaxed);
                    return Err(Bounded::Failed(e).context("cleanup: ListMultipartUploads"));
                }
                Err(e) => return Err(e.context("cleanup: ListMultipartUploads")),
            };
            for (key, id) in page.uploads.iter().filter(|(k, _)| layout.owns(k)) {
                match answered(limit, || client.abort_multipart_upload(key, id)).await {
                    Ok(()) | Err(Bounded::Failed(OpError::Http { status: 404, .. })) => {
                        aborted += 1
                    }
                    Err(Bounded::Failed(e)) if e.unanswered() => {
                        gone.store(true, Ordering::Relaxed);
                        return Err(Bounded::Failed(e).context("cleanup: AbortMultipartUpload"));
                    }
                    Err(_) => failed += 1,
                }
            }
            marker = match page.next {
                // A marker that does not move on would list the same page forever.
                Some(next) if marker.as_ref() != Some(&next) => Some(next),
                _ => break,
            };
        }
    }
    if aborted > 0 && !quiet {
        eprintln!("cleanup: aborted {aborted} multipart upload(s) that run {run} left in progress");
    }
    if failed > 0 {
        bail!(
            "cleanup: {failed} multipart upload(s) that run {run} left in progress could not be aborted"
        );
    }
    Ok(())
}

/// Awaits `request()` for at most `limit`, and when it gets no answer, once more: a keep-alive connection
/// the server closed since its last use fails a request that is not retried for us.
async fn answered<T, F: Future<Output = Result<T, OpError>>>(
    limit: Duration,
    request: impl Fn() -> F,
) -> Result<T, Bounded> {
    match within(limit, None, request()).await {
        Err(Bounded::Failed(e)) if e.unanswered() => within(limit, None, request()).await,
        other => other,
    }
}

/// Deletes one batch; returns how many keys failed. A server that answers with an error gets the keys one by
/// one (400, 405 and 501 are how servers without DeleteObjects refuse it). One that does not answer is asked
/// once more (a keep-alive connection the server closed since its last use fails a request that is not
/// retried for us); if that gets no answer either, `gone` is set and every batch after it fails without a
/// request, so cleanup against a dead server ends after a time limit or two rather than one per key.
async fn delete_batch(
    client: &S3Client,
    batch: &[String],
    limit: Duration,
    gone: &AtomicBool,
) -> u64 {
    if gone.load(Ordering::Relaxed) {
        return batch.len() as u64;
    }
    match answered(limit, || client.delete_objects(batch)).await {
        Ok(errors) => return errors,
        Err(Bounded::Failed(OpError::Http {
            status: 400 | 405 | 501,
            ..
        })) => {}
        Err(Bounded::Failed(e)) if e.unanswered() => {
            if !gone.swap(true, Ordering::Relaxed) {
                eprintln!("cleanup: DeleteObjects got no answer ({e}); giving up");
            }
            return batch.len() as u64;
        }
        Err(e) => eprintln!("cleanup: DeleteObjects failed ({e}); deleting one by one"),
    }
    let mut failed = 0;
    for (i, key) in batch.iter().enumerate() {
        if gone.load(Ordering::Relaxed) {
            return failed + (batch.len() - i) as u64;
        }
        match within(limit, None, client.delete_object(key)).await {
            Ok(()) | Err(Bounded::Failed(OpError::Http { status: 404, .. })) => {}
            Err(Bounded::Failed(e)) if e.unanswered() => {
                gone.store(true, Ordering::Relaxed);
                failed += 1;
            }
            Err(_) => failed += 1,
        }
    }
    failed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::RunId;
    use crate::test_support::{client as test_client, scripted_server};

    /// A server that accepts connections and never answers; counts the connections.
    async fn silent_server() -> (String, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((conn, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::Relaxed);
                held.push(conn);
            }
        });
        (endpoint, accepted)
    }

    /// A server whose CreateBucket gets no answer: it reads the PUT and closes the connection, creating the
    /// bucket first when `lands`. HEAD bucket answers 404 until the bucket exists, 200 after.
    async fn unanswered_create_server(lands: bool) -> String {
        let created = AtomicBool::new(false);
        let addr = scripted_server(move |head| {
            if head.starts_with("PUT ") {
                created.store(lands, Ordering::Relaxed);
                return None; // the connection closes with no answer
            }
            let status = if created.load(Ordering::Relaxed) {
                "200 OK"
            } else {
                "404 Not Found"
            };
            Some(format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\n\r\n"))
        })
        .await;
        format!("http://{addr}")
    }

    #[tokio::test]
    async fn a_create_bucket_that_landed_unanswered_counts_as_created() {
        let stop = AtomicBool::new(false);
        let limit = Duration::from_secs(30);
        let client = test_client(&unanswered_create_server(true).await, 2);
        let created = ensure_bucket(&client, "us-east-1", limit, &stop).await;
        assert!(
            created.expect("the bucket is there"),
            "a bucket this run made must be deleted by its cleanup"
        );
        // One that did not land is the error it was.
        let client = test_client(&unanswered_create_server(false).await, 2);
        let e = ensure_bucket(&client, "us-east-1", limit, &stop)
            .await
            .expect_err("no bucket");
        assert!(format!("{e:#}").starts_with("CreateBucket"), "{e:#}");
    }

    /// Runs the uploads sweep of run 000000ab (with `prefixes`) against a server that answers
    /// ListMultipartUploads with the page `page` picks for the request line, and every other request 204;
    /// the request lines it got.
    async fn sweep(page: fn(&str) -> &'static str, prefixes: usize) -> Vec<String> {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        let addr = scripted_server(move |head| {
            let line = head.lines().next().unwrap_or_default().to_owned();
            let answer = if line.starts_with("GET ") {
                let page = page(&line);
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{page}",
                    page.len()
                )
            } else {
                "HTTP/1.1 204 No Content\r\n\r\n".to_owned()
            };
            log.lock().unwrap().push(line);
            Some(answer)
        })
        .await;
        let client = test_client(&format!("http://{addr}"), 2);
        let layout = Layout {
            buckets: 1,
            prefixes,
            run: RunId(0xab),
        };
        let gone = AtomicBool::new(false);
        abort_uploads_left(&client, layout, Duration::from_secs(30), true, &gone)
            .await
            .unwrap();
        std::mem::take(&mut *seen.lock().unwrap())
    }

    #[tokio::test]
    async fn a_multipart_runs_cleanup_aborts_its_uploads_left_in_progress_and_only_those() {
        let seen = sweep(
            |line| {
                if line.contains("prefix=p1") {
                    "<ListMultipartUploadsResult><IsTruncated>false</IsTruncated>\
                     <Upload><Key>p1/bench/000000ab/1/1</Key><UploadId>u3</UploadId></Upload>\
                     </ListMultipartUploadsResult>"
                } else if line.contains("key-marker=") {
                    "<ListMultipartUploadsResult><IsTruncated>false</IsTruncated>\
                     <Upload><Key>p0/bench/000000ab/2/3</Key><UploadId>u2</UploadId></Upload>\
                     </ListMultipartUploadsResult>"
                } else {
                    "<ListMultipartUploadsResult><IsTruncated>true</IsTruncated>\
                     <NextKeyMarker>p0/bench/000000ab/0/1</NextKeyMarker><NextUploadIdMarker>u1</NextUploadIdMarker>\
                     <Upload><Key>p0/bench/000000ab/0/1</Key><UploadId>u1</UploadId></Upload>\
                     <Upload><Key>p0/bench/000000abc/0/1</Key><UploadId>lookalike</UploadId></Upload>\
                     </ListMultipartUploadsResult>"
                }
            },
            2,
        )
        .await;
        assert_eq!(
            seen,
            [
                // Each prefix of the run is listed, page after page.
                "GET /b?prefix=p0%2Fbench%2F000000ab%2F&uploads= HTTP/1.1",
                "DELETE /b/p0/bench/000000ab/0/1?uploadId=u1 HTTP/1.1",
                "GET /b?key-marker=p0%2Fbench%2F000000ab%2F0%2F1&prefix=p0%2Fbench%2F000000ab%2F&upload-id-marker=u1&uploads= HTTP/1.1",
                "DELETE /b/p0/bench/000000ab/2/3?uploadId=u2 HTTP/1.1",
                "GET /b?prefix=p1%2Fbench%2F000000ab%2F&uploads= HTTP/1.1",
                "DELETE /b/p1/bench/000000ab/1/1?uploadId=u3 HTTP/1.1",
            ]
        );
    }

    #[tokio::test]
    async fn with_many_prefixes_cleanup_lists_the_whole_bucket_and_picks_out_the_runs_uploads() {
        let seen = sweep(
            |line| {
                if line.contains("key-marker=") {
                    "<ListMultipartUploadsResult><IsTruncated>false</IsTruncated>\
                     <Upload><Key>notes/x</Key><UploadId>other</UploadId></Upload>\
                     <Upload><Key>p0/bench/000000ab/1/1</Key><UploadId>u3</UploadId></Upload>\
                     </ListMultipartUploadsResult>"
                } else {
                    "<ListMultipartUploadsResult><IsTruncated>true</IsTruncated>\
                     <NextKeyMarker>p1/bench/000000ab/2/3</NextKeyMarker><NextUploadIdMarker>u2</NextUploadIdMarker>\
                     <Upload><Key>bench/000000ab/0/1</Key><UploadId>u1</UploadId></Upload>\
                     <Upload><Key>bench/deadbeef/0/1</Key><UploadId>theirs</UploadId></Upload>\
                     <Upload><Key>p1/bench/000000ab/2/3</Key><UploadId>u2</UploadId></Upload>\
                     </ListMultipartUploadsResult>"
                }
            },
            MAX_SWEPT_PREFIXES + 1,
        )
        .await;
        assert_eq!(
            seen,
            [
                "GET /b?prefix=&uploads= HTTP/1.1",
                "DELETE /b/bench/000000ab/0/1?uploadId=u1 HTTP/1.1",
                "DELETE /b/p1/bench/000000ab/2/3?uploadId=u2 HTTP/1.1",
                "GET /b?key-marker=p1%2Fbench%2F000000ab%2F2%2F3&prefix=&upload-id-marker=u2&uploads= HTTP/1.1",
                "DELETE /b/p0/bench/000000ab/1/1?uploadId=u3 HTTP/1.1",
            ]
        );
    }

    #[tokio::test]
    async fn a_listing_refused_or_forbidden_leaves_the_run_alone_and_silence_fails_it() {
        let layout = Layout {
            buckets: 1,
            prefixes: 1,
            run: RunId(0xab),
        };
        for status in [
            "501 Not Implemented",
            "405 Method Not Allowed",
            "403 Forbidden",
        ] {
            let addr = scripted_server(move |_| {
                Some(format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\n\r\n"))
            })
            .await;
            let gone = AtomicBool::new(false);
            let client = test_client(&format!("http://{addr}"), 1);
            let r = abort_uploads_left(&client, layout, Duration::from_secs(30), true, &gone).await;
            assert!(r.is_ok(), "{status}: {r:?}");
        }
        let (endpoint, _) = silent_server().await;
        let gone = AtomicBool::new(false);
        let client = test_client(&endpoint, 1);
        let r = abort_uploads_left(&client, layout, Duration::from_millis(200), true, &gone).await;
        assert!(r.is_err() && gone.load(Ordering::Relaxed), "{r:?}");
    }

    #[tokio::test]
    async fn cleanup_gives_up_on_a_server_that_stopped_answering_instead_of_trying_every_key() {
        let (endpoint, accepted) = silent_server().await;
        let client = Arc::new(test_client(&endpoint, CLEANUP_PARALLEL));
        let keys: Vec<String> = (0..20 * DELETE_BATCH).map(|i| format!("k{i}")).collect();
        let gone = Arc::new(AtomicBool::new(false));
        let r = cleanup(&client, keys, true, Duration::from_millis(200), true, &gone).await;
        let e = r.expect_err("nothing was deleted");
        assert!(e.to_string().contains("stopped answering"), "{e:#}");
        assert!(gone.load(Ordering::Relaxed));
        // At most two DeleteObjects per cleanup task (the first and its one retry): no batch after the
        // endpoint was given up on, no key one by one (which took 20,000 requests of one --timeout each).
        let connections = accepted.load(Ordering::Relaxed);
        assert!(
            (1..=2 * CLEANUP_PARALLEL).contains(&connections),
            "{connections} connections"
        );
        // With no keys left to delete, DeleteBucket alone is bounded too.
        let gone = Arc::new(AtomicBool::new(false));
        let r = cleanup(
            &client,
            Vec::new(),
            true,
            Duration::from_millis(200),
            true,
            &gone,
        )
        .await;
        let e = r.expect_err("the bucket was not deleted");
        assert!(format!("{e:#}").contains("DeleteBucket"), "{e:#}");
        assert!(gone.load(Ordering::Relaxed));
    }
}
