//! Chooses the disks' I/O backend from `storage.io`: io_uring where asked for and the kernel allows it, the
//! portable backend otherwise, with one log line saying why io_uring was not used.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use strata_config::IoBackend;

use crate::disk::{Disk, PortableDisk};
use crate::uring::{UringDisk, UringOpenError};

/// Opens every disk with the requested backend; returns the disks and the backend actually in use.
pub(crate) fn open_disks(
    requested: IoBackend,
    paths: &[PathBuf],
) -> io::Result<(Vec<Arc<dyn Disk>>, IoBackend)> {
    let opened = open_disks_with(requested, paths, UringDisk::open)?;
    tracing::info!(backend = ?opened.1, disks = paths.len(), "disks opened");
    Ok(opened)
}

/// [`open_disks`] with the io_uring opener given, so a refusing kernel can be stood in for in tests.
fn open_disks_with(
    requested: IoBackend,
    paths: &[PathBuf],
    open_uring: impl Fn(usize, &Path) -> Result<UringDisk, UringOpenError>,
) -> io::Result<(Vec<Arc<dyn Disk>>, IoBackend)> {
    if requested == IoBackend::Uring {
        let mut disks: Vec<Arc<dyn Disk>> = Vec::with_capacity(paths.len());
        for (i, path) in paths.iter().enumerate() {
            match open_uring(i, path) {
                Ok(d) => disks.push(Arc::new(d)),
                Err(UringOpenError::Disk(e)) => return Err(e),
                Err(UringOpenError::Ring(e)) => {
                    tracing::warn!(error = %e, "io_uring unavailable, using the portable disk backend");
                    return Ok((open_portable(paths)?, IoBackend::Portable));
                }
            }
        }
        return Ok((disks, IoBackend::Uring));
    }
    Ok((open_portable(paths)?, IoBackend::Portable))
}

fn open_portable(paths: &[PathBuf]) -> io::Result<Vec<Arc<dyn Disk>>> {
    paths
        .iter()
        .enumerate()
        .map(|(i, p)| Ok(Arc::new(PortableDisk::open(i, p)?) as Arc<dyn Disk>))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(dir: &Path) -> Vec<PathBuf> {
        (0..3).map(|i| dir.join(format!("d{i}"))).collect()
    }

    #[test]
    fn a_refused_ring_falls_back_to_portable() {
        let dir = tempfile::tempdir().unwrap();
        let refuse = |_: usize, _: &Path| {
            Err(UringOpenError::Ring(io::Error::from_raw_os_error(
                libc::EPERM,
            )))
        };
        let (disks, used) = open_disks_with(IoBackend::Uring, &paths(dir.path()), refuse).unwrap();
        assert_eq!(used, IoBackend::Portable);
        assert_eq!(disks.len(), 3);
        assert!(disks.iter().all(|d| d.root().join("tmp").is_dir()));
    }

    #[test]
    fn an_unusable_disk_is_an_error_not_a_fallback() {
        let dir = tempfile::tempdir().unwrap();
        let broken = |_: usize, _: &Path| {
            Err(UringOpenError::Disk(io::Error::from_raw_os_error(
                libc::EACCES,
            )))
        };
        let err = open_disks_with(IoBackend::Uring, &paths(dir.path()), broken)
            .err()
            .expect("a broken disk is an error");
        assert_eq!(err.raw_os_error(), Some(libc::EACCES));
    }

    #[test]
    fn each_setting_gets_its_backend_here() {
        // This kernel allows io_uring (the storage tests need it to test that backend at all).
        let dir = tempfile::tempdir().unwrap();
        let (_, used) = open_disks(IoBackend::Uring, &paths(dir.path())).unwrap();
        assert_eq!(used, IoBackend::Uring);
        let (_, used) = open_disks(IoBackend::Portable, &paths(dir.path())).unwrap();
        assert_eq!(used, IoBackend::Portable);
    }
}
