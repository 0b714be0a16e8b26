//! Background upkeep: start-up recovery of staged files, garbage collection of retired shards, and repair of
//! shards found missing or corrupt.
//!
//! - Start-up: a staged file whose data id is referenced by its object's record was committed before a crash
//!   and is published (rolled forward); any other staged file, and every unfinished repair file, is deleted.
//! - GC: data retired by an overwrite or delete is queued in the metadata commit itself; a worker deletes the
//!   files after a grace period (so readers that just looked up the old record can still open them) and then
//!   forgets the queue entry.
//! - Repair: rebuilds every block of a segment and rewrites the shards that failed to verify.

use std::sync::Arc;
use std::time::Duration;

use crate::disk::{DataId, Disk};
use crate::engine::Engine;
use crate::error::Result;
use crate::layout::ShardHeader;
use crate::meta::{MetaStore, ObjectData, Op};
use crate::read::SegmentReader;
use crate::write::DiskWriter;

/// Retired data is kept this long before its files are deleted.
const GC_GRACE_MS: i64 = 10_000;

/// Rolls staged files forward or deletes them. Runs before the engine serves anything.
pub(crate) fn recover_staged(
    disks: &[Arc<dyn Disk>],
    meta: &dyn MetaStore,
    fsync: bool,
) -> Result<()> {
    for disk in disks {
        let foreign = disk.sweep_foreign()?;
        let mut rolled = 0usize;
        let mut removed = 0usize;
        for (id, repair) in disk.staged()? {
            if !repair && is_referenced(disk.as_ref(), meta, id) {
                disk.publish(id, false, fsync)?;
                rolled += 1;
            } else {
                // Unreferenced staging or an interrupted repair: remove just the staged file.
                let path = disk.root().join("tmp").join(if repair {
                    format!("{}.repair", id.to_hex())
                } else {
                    id.to_hex()
                });
                std::fs::remove_file(path)?;
                removed += 1;
            }
        }
        if rolled + removed + foreign > 0 {
            tracing::info!(
                disk = disk.index(),
                rolled,
                removed,
                foreign,
                "start-up sweep of staged files"
            );
        }
    }
    Ok(())
}

fn is_referenced(disk: &dyn Disk, meta: &dyn MetaStore, id: DataId) -> bool {
    let Ok(src) = disk.open(id) else { return false };
    let Ok((header, _)) = ShardHeader::read(src.as_ref()) else {
        return false;
    };
    let version = match header.version_id.as_deref() {
        None => meta.null_version(&header.bucket, &header.key),
        Some(v) => match crate::meta::VersionKey::from_id(v) {
            Some(v) => meta.version(&header.bucket, &header.key, v),
            None => Ok(None),
        },
    };
    if let Ok(Some(record)) = version
        && record.data_ids().contains(&id)
    {
        return true;
    }
    // Parts are written before their object's version exists: the current record may hold them.
    if let Ok(Some(record)) = meta.object(&header.bucket, &header.key)
        && record.data_ids().contains(&id)
    {
        return true;
    }
    // A part of an upload still in progress.
    header.upload_id.is_some_and(|upload| {
        meta.parts(&upload, header.part.saturating_sub(1), 1)
            .ok()
            .and_then(|p| p.into_iter().next())
            .is_some_and(|(n, part)| n == header.part && part.segment.data_id == id)
    })
}

/// Deletes retired data forever, every couple of seconds.
pub(crate) async fn gc_loop(engine: Arc<Engine>) {
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    loop {
        tick.tick().await;
        if let Err(e) = gc_once(&engine, GC_GRACE_MS).await {
            tracing::warn!(error = %e, "garbage collection pass failed");
        }
    }
}

/// One GC pass over entries older than `grace_ms`; returns how many data ids were deleted.
pub(crate) async fn gc_once(engine: &Arc<Engine>, grace_ms: i64) -> Result<usize> {
    let now = chrono::Utc::now().timestamp_millis();
    let due: Vec<DataId> = engine
        .read_meta(|m| m.gc_pending(256))
        .await?
        .into_iter()
        .filter(|(_, at)| now - at >= grace_ms)
        .map(|(id, _)| id)
        .collect();
    if due.is_empty() {
        return Ok(0);
    }
    let disks = engine.disks().to_vec();
    let ids = due.clone();
    tokio::task::spawn_blocking(move || {
        for d in &disks {
            for id in &ids {
                if let Err(e) = d.remove(*id) {
                    tracing::warn!(disk = d.index(), error = %e, "gc remove failed; retried next pass");
                }
            }
        }
    })
    .await
    .map_err(|e| crate::Error::Meta(e.to_string()))?;
    let n = due.len();
    engine.commit(vec![Op::GcDone { ids: due }]).await?;
    Ok(n)
}

/// A request to rebuild the shards of one segment.
#[derive(Debug, Clone)]
pub(crate) struct RepairJob {
    pub(crate) bucket: String,
    pub(crate) key: String,
    pub(crate) data_id: DataId,
}

/// Serves repair requests one at a time (repairs are rare and must not starve foreground I/O).
pub(crate) async fn repair_loop(
    engine: Arc<Engine>,
    mut jobs: tokio::sync::mpsc::UnboundedReceiver<RepairJob>,
) {
    while let Some(job) = jobs.recv().await {
        match repair_segment(&engine, &job).await {
            Ok(n) if n > 0 => tracing::info!(
                bucket = job.bucket,
                key = job.key,
                shards = n,
                "repaired shards"
            ),
            Ok(_) => {}
            Err(e) => {
                tracing::error!(bucket = job.bucket, key = job.key, error = %e, "repair failed")
            }
        }
    }
}

/// Rewrites every shard of the segment that is missing or fails verification; returns how many were rewritten.
pub(crate) async fn repair_segment(engine: &Arc<Engine>, job: &RepairJob) -> Result<usize> {
    let (b, k) = (job.bucket.clone(), job.key.clone());
    let record = engine.lookup_meta(move |m| m.object(&b, &k)).await?;
    let Some(record) = record else { return Ok(0) };
    let ObjectData::Segments(segments) = &record.data else {
        return Ok(0);
    };
    let Some(seg) = segments.iter().find(|s| s.data_id == job.data_id) else {
        return Ok(0);
    };
    let mut reader = SegmentReader::open(engine, seg).await?;
    let blocks = seg.size.div_ceil(u64::from(seg.block_size));
    // First pass finds every bad slot (reading all shards, parity included).
    let bad = reader.scan_all(blocks).await?;
    if bad.is_empty() {
        return Ok(0);
    }
    let geometry = seg.geometry;
    let fsync = engine.settings().fsync;
    // As the segment's other files are (the write path's choice, or compact for a segment written before the
    // aligned layout), so that a repaired file is the one that was lost and an older build still reads it.
    let layout = reader.layout();
    let mut writers = Vec::new();
    for &slot in &bad {
        let disk = engine.disk_for(seg.rotation, slot);
        let header = ShardHeader {
            data_id: seg.data_id,
            bucket: job.bucket.clone(),
            key: job.key.clone(),
            version_id: record.version_id.clone(),
            part: seg.part_number,
            upload_id: None,
            shard_index: slot as u8,
            geometry,
            block_size: seg.block_size,
            size: seg.size,
        }
        .encode(layout);
        let writer = DiskWriter::spawn(disk.clone(), seg.data_id, true, header, layout, fsync);
        writers.push((slot, disk, writer));
    }
    let fed: Result<()> = async {
        for block in 0..blocks {
            let shards = reader.all_shards(block).await?;
            for (slot, _, writer) in writers.iter_mut() {
                let shard = shards[*slot].clone();
                // A writer that stopped reports its error when finished, below.
                writer
                    .send_now(vec![(*blake3::hash(&shard).as_bytes(), shard)])
                    .await;
            }
        }
        Ok(())
    }
    .await;
    // Every writer is finished or abandoned, and waited for, before this returns: a later repair of the same
    // segment reuses the `.repair` names, and nothing may still be writing to them then. Finished side by side,
    // so the repaired shards' tail writes and syncs overlap as a PUT's do.
    if let Err(e) = fed {
        futures_util::future::join_all(writers.into_iter().map(|(_, _, w)| w.abandon())).await;
        return Err(e);
    }
    let finished = futures_util::future::join_all(
        writers
            .into_iter()
            .map(|(_, disk, w)| async move { (disk, w.finish().await) }),
    )
    .await;
    // Each shard that was written whole is published, even if another failed: it is good, and the failed
    // one's `.repair` file is started afresh by the next repair (or swept at start).
    let mut repaired = 0;
    let mut failure = None;
    for (disk, finish) in finished {
        let id = seg.data_id;
        let published = match finish {
            Ok(()) => tokio::task::spawn_blocking(move || disk.publish(id, true, fsync))
                .await
                .map_err(|e| crate::Error::Meta(e.to_string()))
                .and_then(|r| r.map_err(crate::Error::from)),
            Err(e) => Err(e.into()),
        };
        match published {
            Ok(()) => repaired += 1,
            Err(e) => {
                failure.get_or_insert(e);
            }
        }
    }
    failure.map_or(Ok(repaired), Err)
}
