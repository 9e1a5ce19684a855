//! Durable state: with `--resilience-dir DIR`, every state change a state computation
//! reports is logged, and the states are restored when the application starts again.
//!
//! ```text
//! DIR/LOCK                                   held by the running process
//! DIR/<partition>/snapshot-<gen>.wal         every state of the partition when run <gen> began
//! DIR/<partition>/w<worker>-<gen>-<seq>.log  states as worker <worker> changed them
//! DIR/<partition>/w<worker>-<gen>-<seq>.snap that worker's states when segment <seq> began
//! ```
//!
//! Each start is a new generation: recovery loads the last generation (its snapshot, then
//! per worker the newest worker snapshot and the log segments after it), spreads the states
//! over the workers of this run, writes them as the new generation's snapshot, and removes
//! the old generation. A worker whose log segment outgrows its last snapshot writes a new
//! worker snapshot on a background thread and drops the segments before it, so disk use and
//! start-up time stay proportional to the state, not to how long the application ran.
//!
//! Every state record carries the origin of the message that changed it (for sources that
//! can replay): recovery restores, per key, the last origin applied per stream, and a
//! replayed message that a key has already applied is skipped — exactly once.

pub(crate) mod log;
pub(crate) mod progress;
pub(crate) mod record;
pub(crate) mod recovery;
pub(crate) mod stats;

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// When logged state changes are made durable (`fdatasync`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncPolicy {
    /// At most this long after they are written, by a background thread (group commit);
    /// outputs do not wait, so after a crash the recovered state can be behind outputs
    /// already sent (`--sync-interval`).
    Interval(Duration),
    /// Before the outputs of the messages that made them leave the worker, once per batch:
    /// a restart never recovers a state behind an output (the command line's default).
    BeforeOutput,
}

/// Where and how state is kept durable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resilience {
    /// The resilience directory.
    pub dir: PathBuf,
    /// When changes are synced.
    pub sync: SyncPolicy,
}

/// Why the resilience directory cannot be used; the application does not start, and no
/// data is dropped or overwritten.
#[derive(Debug, thiserror::Error)]
pub enum ResilienceError {
    /// Another process uses the directory.
    #[error("{} is in use by another process (it holds {}); one directory serves one process", dir.display(), lock.display())]
    Locked {
        /// The directory.
        dir: PathBuf,
        /// Its lock file.
        lock: PathBuf,
    },
    /// A file or directory cannot be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A record fails its checksum with data after it.
    #[error("{}: damaged record at byte {offset} (checksum mismatch) with data after it; refusing to start so that nothing is lost — move the file away to start without it", path.display())]
    Damaged {
        /// The file.
        path: PathBuf,
        /// The record's offset.
        offset: u64,
    },
    /// A file written by another state type or version, or not a resilience file at all.
    #[error("{}: {reason}", path.display())]
    Incompatible {
        /// The file.
        path: PathBuf,
        /// What does not match.
        reason: String,
    },
    /// A state's changelog (in the brokers of a Kafka consumer group) cannot be written or
    /// read.
    #[error("state \"{state}\": changelog: {reason}")]
    Changelog {
        /// The state partition.
        state: String,
        /// Why.
        reason: String,
    },
}

pub(crate) fn io_error(path: &Path) -> impl FnOnce(io::Error) -> ResilienceError + '_ {
    move |source| ResilienceError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The lock on a resilience directory, held while the application runs.
pub(crate) struct DirLock {
    _file: File,
}

impl DirLock {
    /// Creates the directory if needed and takes its lock, or says who holds it.
    pub(crate) fn take(dir: &Path) -> Result<DirLock, ResilienceError> {
        fs::create_dir_all(dir).map_err(io_error(dir))?;
        let lock = dir.join("LOCK");
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock)
            .map_err(io_error(&lock))?;
        match file.try_lock() {
            Ok(()) => Ok(DirLock { _file: file }),
            Err(fs::TryLockError::WouldBlock) => Err(ResilienceError::Locked {
                dir: dir.to_path_buf(),
                lock,
            }),
            Err(fs::TryLockError::Error(source)) => Err(ResilienceError::Io { path: lock, source }),
        }
    }
}

/// The directory of a state partition: its name made safe for a file name.
pub(crate) fn partition_dir(root: &Path, partition: &str) -> PathBuf {
    let safe: String = partition
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    root.join(safe)
}

/// Writes `bytes` to `path` atomically and durably: a temporary file, synced, renamed, and
/// the directory synced.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), ResilienceError> {
    let tmp = path.with_extension("tmp");
    {
        let mut file = File::create(&tmp).map_err(io_error(&tmp))?;
        io::Write::write_all(&mut file, bytes).map_err(io_error(&tmp))?;
        file.sync_all().map_err(io_error(&tmp))?;
    }
    fs::rename(&tmp, path).map_err(io_error(path))?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// Makes a directory's entries (created, renamed, removed files) durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), ResilienceError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error(dir))
}

/// A file of a partition directory, by its name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum FileName {
    /// `snapshot-<gen>.wal`
    Snapshot { generation: u64 },
    /// `w<worker>-<gen>-<seq>.snap`
    WorkerSnapshot {
        generation: u64,
        worker: usize,
        seq: u64,
    },
    /// `w<worker>-<gen>-<seq>.log`
    Log {
        generation: u64,
        worker: usize,
        seq: u64,
    },
}

impl FileName {
    pub(crate) fn to_name(&self) -> String {
        match self {
            FileName::Snapshot { generation } => format!("snapshot-{generation:08}.wal"),
            FileName::WorkerSnapshot {
                generation,
                worker,
                seq,
            } => {
                format!("w{worker:03}-{generation:08}-{seq:08}.snap")
            }
            FileName::Log {
                generation,
                worker,
                seq,
            } => format!("w{worker:03}-{generation:08}-{seq:08}.log"),
        }
    }

    pub(crate) fn parse(name: &str) -> Option<FileName> {
        if let Some(generation) = name
            .strip_prefix("snapshot-")
            .and_then(|r| r.strip_suffix(".wal"))
        {
            return Some(FileName::Snapshot {
                generation: generation.parse().ok()?,
            });
        }
        let (stem, ext) = name.strip_prefix('w')?.rsplit_once('.')?;
        let mut parts = stem.split('-');
        let worker = parts.next()?.parse().ok()?;
        let generation = parts.next()?.parse().ok()?;
        let seq = parts.next()?.parse().ok()?;
        if parts.next().is_some() {
            return None;
        }
        match ext {
            "snap" => Some(FileName::WorkerSnapshot {
                generation,
                worker,
                seq,
            }),
            "log" => Some(FileName::Log {
                generation,
                worker,
                seq,
            }),
            _ => None,
        }
    }

    pub(crate) fn generation(&self) -> u64 {
        match self {
            FileName::Snapshot { generation }
            | FileName::WorkerSnapshot { generation, .. }
            | FileName::Log { generation, .. } => *generation,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_round_trip() {
        for name in [
            FileName::Snapshot { generation: 7 },
            FileName::WorkerSnapshot {
                generation: 3,
                worker: 1,
                seq: 12,
            },
            FileName::Log {
                generation: 3,
                worker: 0,
                seq: 0,
            },
        ] {
            assert_eq!(FileName::parse(&name.to_name()), Some(name));
        }
        assert_eq!(FileName::parse("LOCK"), None);
        assert_eq!(FileName::parse("w001-00000003-00000012.tmp"), None);
    }

    #[test]
    fn partition_names_become_safe_directory_names() {
        assert_eq!(
            partition_dir(Path::new("/d"), "running vote totals"),
            PathBuf::from("/d/running_vote_totals")
        );
        assert_eq!(
            partition_dir(Path::new("/d"), "../x"),
            PathBuf::from("/d/___x")
        );
    }

    #[test]
    fn a_second_lock_on_a_directory_is_refused() {
        let dir = std::env::temp_dir().join(format!("wallaroo-lock-{}", std::process::id()));
        let first = DirLock::take(&dir).unwrap();
        let err = DirLock::take(&dir).err().expect("locked");
        assert!(
            err.to_string().contains("in use by another process"),
            "{err}"
        );
        drop(first);
        DirLock::take(&dir).expect("free again");
        fs::remove_dir_all(&dir).unwrap();
    }
}
