//! What the resilience machinery counts, for the metrics: per worker, the bytes appended to
//! its log, its syncs and its snapshots; per state partition, how long recovery took.
//!
//! Each counter is a relaxed atomic added to where the work already happens — once per
//! committed group of records, per sync, per snapshot — never per message, and under no
//! lock.

use std::fs::File;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::latency::Histogram;

/// The counters of one worker's log.
#[derive(Debug, Default)]
pub(crate) struct LogStats {
    /// Bytes written to the worker's log segments (their headers included).
    pub(crate) bytes: AtomicU64,
    /// How long each `fdatasync` of a log segment took, one observation a sync.
    pub(crate) syncs: Histogram,
    /// Worker snapshots written by compaction.
    pub(crate) snapshots: AtomicU64,
    /// Nanoseconds the compaction thread spent writing them (and removing the segments
    /// they replace).
    pub(crate) snapshot_nanos: AtomicU64,
    /// Bytes of the worker snapshots written.
    pub(crate) snapshot_bytes: AtomicU64,
}

impl LogStats {
    /// Syncs `file`'s data, timing it into [`LogStats::syncs`].
    pub(crate) fn sync(&self, file: &File) -> io::Result<()> {
        let start = Instant::now();
        let result = file.sync_data();
        self.syncs.observe(nanos(start.elapsed()), 1);
        result
    }

    /// Counts a worker snapshot of `bytes` bytes that took `took` to write.
    pub(crate) fn snapshot(&self, bytes: u64, took: Duration) {
        self.snapshots.fetch_add(1, Ordering::Relaxed);
        self.snapshot_nanos
            .fetch_add(nanos(took), Ordering::Relaxed);
        self.snapshot_bytes.fetch_add(bytes, Ordering::Relaxed);
    }
}

/// What recovery at start did for one state partition.
#[derive(Debug, Default)]
pub(crate) struct RecoveryStats {
    /// Whether the partition was recovered (there is a resilience directory and recovery
    /// has finished).
    pub(crate) done: AtomicBool,
    /// Nanoseconds recovery took: reading the last run's files and writing this run's
    /// snapshot.
    pub(crate) nanos: AtomicU64,
    /// Keys whose states were read back from the last run.
    pub(crate) keys: AtomicU64,
}

impl RecoveryStats {
    /// Records a recovery of `keys` keys that took `took`.
    pub(crate) fn finished(&self, keys: u64, took: Duration) {
        self.nanos.store(nanos(took), Ordering::Relaxed);
        self.keys.store(keys, Ordering::Relaxed);
        self.done.store(true, Ordering::Release);
    }
}

/// A duration in whole nanoseconds, saturating.
fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sync_is_one_observation_and_a_snapshot_adds_its_time_and_bytes() {
        let path = std::env::temp_dir().join(format!("wallaroo-stats-{}", std::process::id()));
        let file = File::create(&path).unwrap();
        let stats = LogStats::default();
        stats.sync(&file).unwrap();
        stats.sync(&file).unwrap();
        let syncs = stats.syncs.snapshot();
        assert_eq!(syncs.count(), 2);
        assert!(syncs.sum > 0.0, "{syncs:?}");
        stats.snapshot(100, Duration::from_millis(3));
        stats.snapshot(50, Duration::from_millis(2));
        assert_eq!(stats.snapshots.load(Ordering::Relaxed), 2);
        assert_eq!(stats.snapshot_bytes.load(Ordering::Relaxed), 150);
        assert_eq!(stats.snapshot_nanos.load(Ordering::Relaxed), 5_000_000);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn recovery_is_done_once_recorded() {
        let stats = RecoveryStats::default();
        assert!(!stats.done.load(Ordering::Acquire));
        stats.finished(7, Duration::from_micros(1500));
        assert!(stats.done.load(Ordering::Acquire));
        assert_eq!(stats.keys.load(Ordering::Relaxed), 7);
        assert_eq!(stats.nanos.load(Ordering::Relaxed), 1_500_000);
    }
}
