//! A worker's log: state changes appended in groups, synced by policy, and compacted into
//! worker snapshots written on a background thread.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::Serialize;

use super::record::{self, FileHeader, Origin};
use super::recovery::LogRecordRef;
use super::stats::LogStats;
use super::{io_error, FileName, ResilienceError, SyncPolicy};

/// A segment is compacted once it is larger than this and than twice the last snapshot.
const MIN_SEGMENT: u64 = 64 * 1024 * 1024;

/// Syncs the current segment every interval, when something was written.
struct Syncer {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

/// A worker snapshot to write, and the files it makes obsolete.
struct Compaction {
    path: PathBuf,
    bytes: Vec<u8>,
    obsolete: Vec<PathBuf>,
}

/// The log of one worker of one state partition.
pub(crate) struct WorkerLog {
    dir: PathBuf,
    worker: usize,
    generation: u64,
    seq: u64,
    header: FileHeader,
    file: File,
    /// The current segment, shared with the syncer.
    shared: Arc<Mutex<File>>,
    dirty: Arc<AtomicBool>,
    buf: Vec<u8>,
    segment_bytes: u64,
    snapshot_bytes: u64,
    policy: SyncPolicy,
    syncer: Option<Syncer>,
    compactor: Option<(flume::Sender<Compaction>, JoinHandle<()>)>,
    compacting: Arc<AtomicBool>,
    min_segment: u64,
    /// What the metrics read: bytes written, syncs, snapshots.
    stats: Arc<LogStats>,
}

fn segment_path(dir: &Path, worker: usize, generation: u64, seq: u64) -> PathBuf {
    dir.join(
        FileName::Log {
            generation,
            worker,
            seq,
        }
        .to_name(),
    )
}

fn open_segment(path: &Path, header: &FileHeader) -> Result<(File, u64), ResilienceError> {
    let mut file = fs::OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(path)
        .map_err(io_error(path))?;
    let mut bytes = Vec::new();
    record::append(&mut bytes, header).expect("a header serializes");
    file.write_all(&bytes).map_err(io_error(path))?;
    Ok((file, bytes.len() as u64))
}

impl WorkerLog {
    /// Starts segment 0 of `worker` in generation `generation`.
    pub(crate) fn open(
        dir: &Path,
        worker: usize,
        generation: u64,
        header: FileHeader,
        policy: SyncPolicy,
        stats: Arc<LogStats>,
    ) -> Result<WorkerLog, ResilienceError> {
        let path = segment_path(dir, worker, generation, 0);
        let (file, written) = open_segment(&path, &header)?;
        stats.bytes.fetch_add(written, Ordering::Relaxed);
        let shared = Arc::new(Mutex::new(file.try_clone().map_err(io_error(&path))?));
        let dirty = Arc::new(AtomicBool::new(true));
        let syncer = match policy {
            SyncPolicy::Interval(interval) => Some(spawn_syncer(
                interval,
                Arc::clone(&shared),
                Arc::clone(&dirty),
                Arc::clone(&stats),
            )),
            SyncPolicy::BeforeOutput => None,
        };
        let compacting = Arc::new(AtomicBool::new(false));
        let (tx, rx) = flume::unbounded::<Compaction>();
        let busy = Arc::clone(&compacting);
        let counts = Arc::clone(&stats);
        let compactor = std::thread::Builder::new()
            .name("wallaroo-compact".into())
            .spawn(move || {
                for job in rx {
                    let start = std::time::Instant::now();
                    match compact(&job) {
                        Ok(()) => {
                            counts.snapshot(job.bytes.len() as u64, start.elapsed());
                            tracing::debug!(
                                "{}: written; older log segments removed",
                                job.path.display()
                            );
                        }
                        // The log segments stay; the next compaction tries again.
                        Err(e) => tracing::error!("compaction failed: {e}"),
                    }
                    busy.store(false, Ordering::Release);
                }
            })
            .map_err(io_error(dir))?;
        Ok(WorkerLog {
            dir: dir.to_path_buf(),
            worker,
            generation,
            seq: 0,
            header,
            file,
            shared,
            dirty,
            buf: Vec::with_capacity(64 * 1024),
            segment_bytes: written,
            snapshot_bytes: 0,
            policy,
            syncer,
            compactor: Some((tx, compactor)),
            compacting,
            min_segment: MIN_SEGMENT,
            stats,
        })
    }

    /// Compacts once segments pass `bytes` (tests use small values).
    #[cfg(test)]
    pub(crate) fn with_min_segment(mut self, bytes: u64) -> Self {
        self.min_segment = bytes;
        self
    }

    /// Appends a state change to the group being gathered.
    #[inline]
    pub(crate) fn put<K: Serialize, S: Serialize>(&mut self, key: &K, state: &S, origin: Origin) {
        let put = LogRecordRef::Put {
            key,
            state,
            origin: origin.is_some().then_some(origin),
        };
        record::append(&mut self.buf, &put)
            .expect("a state and key that serde serializes also serialize with postcard");
    }

    /// Appends a marker: every message of `stream` up to `seq` routed to this worker has
    /// been applied.
    pub(crate) fn marker<K: Serialize, S: Serialize>(&mut self, stream: u64, seq: u64) {
        let marker: LogRecordRef<'_, K, S> = LogRecordRef::Marker { stream, seq };
        record::append(&mut self.buf, &marker).expect("integers serialize");
    }

    /// Writes the gathered group (one write), and syncs it if the policy says so. Called
    /// before the outputs of the group's messages are flushed.
    pub(crate) fn commit(&mut self) -> Result<(), ResilienceError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let path = self.path();
        self.file.write_all(&self.buf).map_err(io_error(&path))?;
        self.segment_bytes += self.buf.len() as u64;
        self.stats
            .bytes
            .fetch_add(self.buf.len() as u64, Ordering::Relaxed);
        self.buf.clear();
        match self.policy {
            SyncPolicy::BeforeOutput => self.stats.sync(&self.file).map_err(io_error(&path))?,
            SyncPolicy::Interval(_) => self.dirty.store(true, Ordering::Release),
        }
        Ok(())
    }

    /// Whether the segment has grown enough to be compacted into a worker snapshot.
    pub(crate) fn wants_snapshot(&self) -> bool {
        self.segment_bytes > self.min_segment.max(2 * self.snapshot_bytes)
            && !self.compacting.load(Ordering::Acquire)
    }

    /// The header for this worker's snapshots.
    pub(crate) fn snapshot_header(&self) -> FileHeader {
        FileHeader {
            kind: record::FileKind::Snapshot,
            ..self.header.clone()
        }
    }

    /// Starts a new segment whose starting states are `snapshot` (the bytes of a snapshot
    /// of every state this worker owns, taken after the last commit), and hands the snapshot
    /// to the background thread, which writes it and then removes the older segments.
    pub(crate) fn rotate(&mut self, snapshot: Vec<u8>) -> Result<(), ResilienceError> {
        let old = self.path();
        // The old segment must be durable before the snapshot replaces it.
        self.stats.sync(&self.file).map_err(io_error(&old))?;
        let next = self.seq + 1;
        let path = segment_path(&self.dir, self.worker, self.generation, next);
        let (file, written) = open_segment(&path, &self.header)?;
        self.stats.bytes.fetch_add(written, Ordering::Relaxed);
        *self.shared.lock().expect("log file lock") = file.try_clone().map_err(io_error(&path))?;
        self.file = file;
        self.seq = next;
        self.segment_bytes = written;
        self.snapshot_bytes = snapshot.len() as u64;
        let mut obsolete = Vec::new();
        for seq in 0..next {
            obsolete.push(segment_path(&self.dir, self.worker, self.generation, seq));
            obsolete.push(
                self.dir.join(
                    FileName::WorkerSnapshot {
                        generation: self.generation,
                        worker: self.worker,
                        seq,
                    }
                    .to_name(),
                ),
            );
        }
        let job = Compaction {
            path: self.dir.join(
                FileName::WorkerSnapshot {
                    generation: self.generation,
                    worker: self.worker,
                    seq: next,
                }
                .to_name(),
            ),
            bytes: snapshot,
            obsolete,
        };
        self.compacting.store(true, Ordering::Release);
        if let Some((tx, _)) = &self.compactor {
            let _ = tx.send(job);
        }
        Ok(())
    }

    fn path(&self) -> PathBuf {
        segment_path(&self.dir, self.worker, self.generation, self.seq)
    }

    /// Writes what is gathered, syncs, and waits for a compaction under way.
    pub(crate) fn close(mut self) -> Result<(), ResilienceError> {
        self.commit()?;
        let path = self.path();
        self.stats.sync(&self.file).map_err(io_error(&path))?;
        self.finish_threads();
        Ok(())
    }

    fn finish_threads(&mut self) {
        if let Some(syncer) = self.syncer.take() {
            syncer.stop.store(true, Ordering::Release);
            syncer.thread.thread().unpark();
            let _ = syncer.thread.join();
        }
        if let Some((tx, thread)) = self.compactor.take() {
            drop(tx);
            let _ = thread.join();
        }
    }
}

impl Drop for WorkerLog {
    fn drop(&mut self) {
        self.finish_threads();
    }
}

fn spawn_syncer(
    interval: Duration,
    file: Arc<Mutex<File>>,
    dirty: Arc<AtomicBool>,
    stats: Arc<LogStats>,
) -> Syncer {
    let stop = Arc::new(AtomicBool::new(false));
    let stopping = Arc::clone(&stop);
    let thread = std::thread::Builder::new()
        .name("wallaroo-sync".into())
        .spawn(move || {
            while !stopping.load(Ordering::Acquire) {
                std::thread::park_timeout(interval);
                if dirty.swap(false, Ordering::AcqRel) {
                    if let Err(e) = stats.sync(&file.lock().expect("log file lock")) {
                        tracing::error!("cannot sync a state log: {e}");
                    }
                }
            }
        })
        .expect("cannot spawn the log sync thread");
    Syncer { stop, thread }
}

fn compact(job: &Compaction) -> Result<(), ResilienceError> {
    super::write_atomically(&job.path, &job.bytes)?;
    for path in &job.obsolete {
        match fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(ResilienceError::Io {
                    path: path.clone(),
                    source,
                })
            }
        }
    }
    super::sync_dir(job.path.parent().unwrap_or(Path::new(".")))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Deserialize;

    use super::*;
    use crate::component::ComponentInfo;
    use crate::resilience::record::FileKind;
    use crate::resilience::recovery::{self, encode_snapshot, Progress};
    use crate::state::State;

    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
    struct Total(u64);

    impl State for Total {
        fn info() -> &'static ComponentInfo {
            unimplemented!("not used here")
        }
        fn build() -> Self {
            Total(0)
        }
    }

    /// A worker log of `Total`s in a new generation under a temporary directory named
    /// after `name`: the directory, the generation's, the log's counters and the log.
    fn test_log(name: &str, policy: SyncPolicy) -> (PathBuf, PathBuf, Arc<LogStats>, WorkerLog) {
        let root = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let dir = recovery::start_generation::<u8, Total>(
            &root,
            "p",
            1,
            std::iter::empty(),
            std::iter::empty(),
        )
        .unwrap();
        let header = recovery::header::<u8, Total>("p", FileKind::Log);
        let stats = Arc::new(LogStats::default());
        let log = WorkerLog::open(&dir, 0, 1, header, policy, Arc::clone(&stats)).unwrap();
        (root, dir, stats, log)
    }

    #[test]
    fn compaction_keeps_the_latest_states_and_drops_older_segments() {
        let (root, dir, stats, log) = test_log("wallaroo-compact", SyncPolicy::BeforeOutput);
        let mut log = log.with_min_segment(300);
        let mut table: BTreeMap<u8, Total> = BTreeMap::new();
        let none = Progress::default();
        let mut rotations = 0u64;
        for i in 0..2_000u64 {
            let key = (i % 10) as u8;
            let total = table.entry(key).or_default();
            total.0 += i;
            log.put(&key, &*total, Origin::NONE);
            if i % 25 == 0 {
                log.commit().unwrap();
                if log.wants_snapshot() {
                    let bytes = encode_snapshot::<u8, Total>(
                        &log.snapshot_header(),
                        table.iter().map(|(k, v)| (k, v, &none)),
                        std::iter::empty(),
                    );
                    log.rotate(bytes).unwrap();
                    rotations += 1;
                }
            }
        }
        log.close().unwrap();
        assert!(rotations > 5, "{rotations} rotations");
        // Every rotation's snapshot was written and counted (close waits for the thread).
        assert_eq!(stats.snapshots.load(Ordering::Relaxed), rotations);
        assert!(stats.snapshot_nanos.load(Ordering::Relaxed) > 0);
        // One sync a commit (the last one's at close), one a rotation, one at close.
        assert_eq!(
            stats.syncs.snapshot().count(),
            2_000 / 25 + 1 + rotations + 1
        );
        let mut names: Vec<String> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        // The generation's snapshot, the newest worker snapshot, and the segment after it.
        assert_eq!(names.len(), 3, "{names:?}");
        assert!(names[0].starts_with("snapshot-"));
        let recovered = recovery::recover::<u8, Total>(&root, "p").unwrap();
        assert_eq!(recovered.generation, 1);
        let states: BTreeMap<u8, Total> = recovered
            .states
            .into_iter()
            .map(|(k, (s, _))| (k, s))
            .collect();
        assert_eq!(states, table);
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn bytes_are_counted_as_written_and_the_interval_syncer_times_its_syncs() {
        let (root, dir, stats, mut log) = test_log(
            "wallaroo-logstats",
            SyncPolicy::Interval(Duration::from_millis(1)),
        );
        let segment = dir.join(
            FileName::Log {
                generation: 1,
                worker: 0,
                seq: 0,
            }
            .to_name(),
        );
        for i in 0..10u8 {
            log.put(&i, &Total(u64::from(i)), Origin::NONE);
        }
        log.commit().unwrap();
        let written = fs::metadata(&segment).unwrap().len();
        assert!(written > 0);
        assert_eq!(stats.bytes.load(Ordering::Relaxed), written);
        // The commit does not sync: the syncer thread does, within its interval.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while stats.syncs.snapshot().count() == 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(stats.syncs.snapshot().count() >= 1);
        log.close().unwrap();
        assert_eq!(stats.bytes.load(Ordering::Relaxed), written);
        fs::remove_dir_all(&root).unwrap();
    }
}
