//! Fault tests: lost disks, corrupt shards, and kill -9 in the middle of writes. Nothing acknowledged may be
//! lost or torn, and corruption must be detected, never served, and repaired.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;

use crate::harness::{Server, pattern};

async fn put(s3: &Client, bucket: &str, key: &str, data: Vec<u8>) {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(data))
        .send()
        .await
        .unwrap();
}

async fn get(s3: &Client, bucket: &str, key: &str) -> Option<Vec<u8>> {
    match s3.get_object().bucket(bucket).key(key).send().await {
        Ok(out) => Some(
            out.body
                .collect()
                .await
                .expect("body streams to the end")
                .into_bytes()
                .to_vec(),
        ),
        Err(e) => {
            let e = e.into_service_error();
            assert!(e.is_no_such_key(), "unexpected error for {key}: {e:?}");
            None
        }
    }
}

/// Every shard file under a disk's data directory.
fn shard_files(disk: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(fans) = std::fs::read_dir(disk.join("data")) else {
        return out;
    };
    for fan in fans.flatten() {
        for f in std::fs::read_dir(fan.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            out.push(f.path());
        }
    }
    out.sort();
    out
}

fn files_in(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

const SIZES: [usize; 5] = [0, 1000, 16 * 1024 + 1, 1024 * 1024, 3 * 1024 * 1024 + 123];

#[tokio::test]
async fn losing_two_disks_loses_nothing() {
    let mut server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("durable").send().await.unwrap();
    for (i, &len) in SIZES.iter().enumerate() {
        put(
            &s3,
            "durable",
            &format!("obj{i}"),
            pattern(len, i as u64 + 1),
        )
        .await;
    }
    // Two whole disk directories vanish under the running server (m = 2).
    let disks = server.disks();
    std::fs::remove_dir_all(&disks[1]).unwrap();
    std::fs::remove_dir_all(&disks[4]).unwrap();
    for (i, &len) in SIZES.iter().enumerate() {
        assert_eq!(
            get(&s3, "durable", &format!("obj{i}")).await.unwrap(),
            pattern(len, i as u64 + 1),
            "live read {i}"
        );
    }
    // And after a restart, which must resync metadata onto the replaced disks.
    let tmp = server.take_tempdir();
    assert!(server.terminate(Duration::from_secs(30)), "clean shutdown");
    let server = Server::start_on(&server.data.clone(), &[]);
    let s3 = server.client();
    for (i, &len) in SIZES.iter().enumerate() {
        assert_eq!(
            get(&s3, "durable", &format!("obj{i}")).await.unwrap(),
            pattern(len, i as u64 + 1),
            "after restart {i}"
        );
    }
    let listed = s3.list_objects_v2().bucket("durable").send().await.unwrap();
    assert_eq!(listed.key_count(), Some(SIZES.len() as i32));
    // Writes keep working on the re-created disks.
    put(&s3, "durable", "after", pattern(2_000_000, 99)).await;
    assert_eq!(
        get(&s3, "durable", "after").await.unwrap(),
        pattern(2_000_000, 99)
    );
    drop(tmp);
}

#[tokio::test]
async fn corrupt_shards_are_detected_never_served_and_repaired() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("bitrot").send().await.unwrap();
    let data = pattern(5 * 1024 * 1024 + 77, 7);
    put(&s3, "bitrot", "victim", data.clone()).await;
    let files: Vec<PathBuf> = server.disks().iter().flat_map(|d| shard_files(d)).collect();
    assert_eq!(files.len(), 6, "one shard file per disk");
    let originals: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    // Corrupt four different shard files: two in block 0, two in block 1. At most two per block (= m), and at
    // least one of the four is a data shard, so the read must notice.
    // The aligned layout of a segment of full blocks (storage/src/layout.rs): a 4 KiB header, then per block a
    // 4 KiB hash slot and the 256 KiB shard.
    let slot = 4096u64;
    let frame = slot + (1024 * 1024 / 4) as u64;
    for (i, f) in files.iter().take(4).enumerate() {
        let mut bytes = std::fs::read(f).unwrap();
        let at = if i < 2 {
            slot + slot + 1000
        } else {
            slot + frame + slot + 1000
        } as usize;
        for b in &mut bytes[at..at + 64] {
            *b ^= 0xA5;
        }
        std::fs::write(f, bytes).unwrap();
    }
    assert_eq!(
        get(&s3, "bitrot", "victim").await.unwrap(),
        data,
        "bit-exact despite corruption"
    );
    let ranged = s3
        .get_object()
        .bucket("bitrot")
        .key("victim")
        .range("bytes=1048000-1049999")
        .send()
        .await
        .unwrap();
    assert_eq!(
        ranged.body.collect().await.unwrap().into_bytes().as_ref(),
        &data[1_048_000..1_050_000]
    );
    // The repair rewrites every corrupt shard; it is deterministic, so the files return to their old bytes.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now: Vec<Vec<u8>> = files
            .iter()
            .map(|f| std::fs::read(f).unwrap_or_default())
            .collect();
        if now == originals {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "shards were not repaired within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn kill_9_during_a_put_storm_keeps_every_acknowledged_write() {
    let mut server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("storm").send().await.unwrap();
    // key -> every content version attempted, and the last acknowledged version.
    let attempted: Arc<Mutex<HashMap<String, Vec<u64>>>> = Arc::default();
    let acked: Arc<Mutex<HashMap<String, u64>>> = Arc::default();
    let sizes = [700usize, 40_000, 1_300_000];
    let mut writers = Vec::new();
    for w in 0..12u64 {
        let (s3, attempted, acked) = (s3.clone(), attempted.clone(), acked.clone());
        writers.push(tokio::spawn(async move {
            for i in 0..400u64 {
                // Every third write overwrites an earlier key of this writer.
                let key = format!("w{w}/k{}", if i % 3 == 2 { i - 2 } else { i });
                let seed = w * 1_000_000 + i + 1;
                let len = sizes[(seed % 3) as usize];
                attempted
                    .lock()
                    .unwrap()
                    .entry(key.clone())
                    .or_default()
                    .push(seed);
                let ok = s3
                    .put_object()
                    .bucket("storm")
                    .key(&key)
                    .body(ByteStream::from(pattern(len, seed)))
                    .send()
                    .await;
                match ok {
                    Ok(_) => {
                        acked.lock().unwrap().insert(key, seed);
                    }
                    Err(_) => return, // the server is gone
                }
            }
        }));
    }
    // Let the storm run, then pull the plug.
    let deadline = Instant::now() + Duration::from_secs(20);
    while acked.lock().unwrap().len() < 60 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.kill9();
    for w in writers {
        let _ = w.await;
    }
    let tmp = server.take_tempdir();
    let server = Server::start_on(&server.data.clone(), &[]);
    let s3 = server.client();
    let attempted = attempted.lock().unwrap().clone();
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 20,
        "the storm acknowledged too little to prove anything: {}",
        acked.len()
    );
    for (key, seeds) in &attempted {
        let got = get(&s3, "storm", key).await;
        let matches =
            |seed: u64| got.as_deref() == Some(&pattern(sizes[(seed % 3) as usize], seed)[..]);
        match acked.get(key) {
            Some(&seed) => {
                // The acknowledged version, or a later attempted one that may have committed before the kill.
                let later: Vec<u64> = seeds.iter().copied().filter(|s| *s >= seed).collect();
                assert!(
                    later.iter().any(|&s| matches(s)),
                    "acknowledged {key} lost or torn"
                );
            }
            None => assert!(
                got.is_none() || seeds.iter().any(|&s| matches(s)),
                "unacknowledged {key} is torn"
            ),
        }
    }
    // The start-up sweep left no staging files behind.
    for d in server.disks() {
        assert_eq!(files_in(&d.join("tmp")), 0, "leftovers in {}", d.display());
    }
    drop(tmp);
}
