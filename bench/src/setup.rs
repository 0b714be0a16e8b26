//! What happens around the measured phase: making sure the bucket exists, uploading the object pool that
//! get, mixed, list and delete runs read from (not measured), and deleting everything the run created.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::client::{OpError, S3Client};
use crate::payload::Payload;

/// Keys per DeleteObjects request (the S3 maximum).
const DELETE_BATCH: usize = 1000;
/// Parallel DeleteObjects requests during cleanup, at most.
const CLEANUP_PARALLEL: usize = 8;

/// Creates the bucket when it does not exist; returns whether this run created it.
pub(crate) async fn ensure_bucket(client: &S3Client, region: &str) -> anyhow::Result<bool> {
    match client.bucket_exists().await {
        Ok(true) => return Ok(false),
        Ok(false) => {}
        Err(e @ OpError::Http { status: 403, .. }) => {
            return Err(e).context(
                "HEAD bucket: access denied (check the keys, --region and the bucket's owner)",
            );
        }
        Err(e) => return Err(e).context("HEAD bucket"),
    }
    match client.create_bucket(region).await {
        Ok(()) => Ok(true),
        Err(OpError::Http {
            code: Some(code), ..
        }) if code == "BucketAlreadyOwnedByYou" => Ok(false),
        Err(e) => Err(e).context("CreateBucket"),
    }
}

/// Uploads `keys` with `concurrency` parallel PUTs (the prepare phase). Fails on the first error.
pub(crate) async fn upload_all(
    client: &Arc<S3Client>,
    payload: &Arc<Payload>,
    keys: &Arc<Vec<String>>,
    concurrency: usize,
    timeout: Duration,
    stop: &Arc<AtomicBool>,
    quiet: bool,
) -> anyhow::Result<()> {
    if keys.is_empty() {
        return Ok(());
    }
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let progress = (!quiet).then(|| {
        let (done, total) = (done.clone(), keys.len());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            loop {
                tick.tick().await;
                eprintln!(
                    "prepare: uploaded {}/{total} objects",
                    done.load(Ordering::Relaxed)
                );
            }
        })
    });
    let mut tasks = Vec::with_capacity(concurrency);
    for _ in 0..concurrency.min(keys.len()) {
        let (client, payload, keys) = (client.clone(), payload.clone(), keys.clone());
        let (next, done, stop) = (next.clone(), done.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= keys.len() || stop.load(Ordering::Relaxed) {
                    return Ok(());
                }
                let (body, hash) = payload.body(i);
                let put = client.put_object(&keys[i], body, hash);
                match tokio::time::timeout(timeout, put).await {
                    Ok(Ok(())) => done.fetch_add(1, Ordering::Relaxed),
                    Ok(Err(e)) => return Err(anyhow::anyhow!("prepare PUT {}: {e}", keys[i])),
                    Err(_) => return Err(anyhow::anyhow!("prepare PUT {}: timeout", keys[i])),
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
    if let Some(p) = progress {
        p.abort();
    }
    result?;
    if stop.load(Ordering::Relaxed) {
        bail!("interrupted during prepare");
    }
    Ok(())
}

/// Deletes `keys` (DeleteObjects in batches of 1,000; per-key DELETE when the server lacks it), then the
/// bucket when `delete_bucket`. Problems are reported on stderr and returned as an error at the end.
pub(crate) async fn cleanup(
    client: &Arc<S3Client>,
    keys: Vec<String>,
    delete_bucket: bool,
    timeout: Duration,
    quiet: bool,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let total = keys.len();
    let batches: Arc<Vec<Vec<String>>> =
        Arc::new(keys.chunks(DELETE_BATCH).map(<[String]>::to_vec).collect());
    let next = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..CLEANUP_PARALLEL.min(batches.len()) {
        let (client, batches, next, failed) = (
            client.clone(),
            batches.clone(),
            next.clone(),
            failed.clone(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(batch) = batches.get(i) else { return };
                let n = delete_batch(&client, batch, timeout).await;
                failed.fetch_add(n, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let failed = failed.load(Ordering::Relaxed);
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
        client
            .delete_bucket()
            .await
            .context("cleanup: DeleteBucket")?;
        if !quiet {
            eprintln!("cleanup: deleted bucket");
        }
    }
    Ok(())
}

/// Deletes one batch; returns how many keys failed.
async fn delete_batch(client: &S3Client, batch: &[String], timeout: Duration) -> u64 {
    match tokio::time::timeout(timeout, client.delete_objects(batch)).await {
        Ok(Ok(errors)) => return errors,
        Ok(Err(OpError::Http {
            status: 400 | 405 | 501,
            ..
        })) => {}
        Ok(Err(e)) => {
            eprintln!("cleanup: DeleteObjects failed ({e}); deleting one by one");
        }
        Err(_) => eprintln!("cleanup: DeleteObjects timed out; deleting one by one"),
    }
    let mut failed = 0;
    for key in batch {
        match tokio::time::timeout(timeout, client.delete_object(key)).await {
            Ok(Ok(())) | Ok(Err(OpError::Http { status: 404, .. })) => {}
            _ => failed += 1,
        }
    }
    failed
}
