//! How far each replayable stream has been applied, per state partition and worker: what
//! the resumable TCP source tells a sender that reconnects.

use std::collections::HashMap;
use std::sync::Mutex;

/// Per stream, per (partition, worker), the sequence number up to which every message of
/// the stream routed there has been applied.
#[derive(Debug, Default)]
pub(crate) struct StreamProgress {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    streams: HashMap<u64, HashMap<(usize, usize), u64>>,
    workers: HashMap<usize, usize>,
}

impl StreamProgress {
    /// Declares a partition's worker count, and what recovery found for its streams.
    pub(crate) fn recovered(&self, partition: usize, workers: usize, streams: &HashMap<u64, u64>) {
        let mut inner = self.inner.lock().expect("stream progress lock");
        inner.workers.insert(partition, workers);
        for (&stream, &seq) in streams {
            let table = inner.streams.entry(stream).or_default();
            for worker in 0..workers {
                table.insert((partition, worker), seq);
            }
        }
    }

    /// A worker has applied every message of `stream` up to `seq` routed to it.
    pub(crate) fn publish(&self, partition: usize, worker: usize, stream: u64, seq: u64) {
        let mut inner = self.inner.lock().expect("stream progress lock");
        let at = inner
            .streams
            .entry(stream)
            .or_default()
            .entry((partition, worker))
            .or_insert(0);
        *at = (*at).max(seq);
    }

    /// The sequence number up to which every message of `stream` has been applied
    /// wherever it was routed (0 for a stream never seen).
    pub(crate) fn applied(&self, stream: u64) -> u64 {
        let inner = self.inner.lock().expect("stream progress lock");
        let Some(table) = inner.streams.get(&stream) else {
            return 0;
        };
        let mut partitions: Vec<usize> = table.keys().map(|(p, _)| *p).collect();
        partitions.sort_unstable();
        partitions.dedup();
        partitions
            .into_iter()
            .map(|p| {
                let workers = inner.workers.get(&p).copied().unwrap_or(1);
                (0..workers)
                    .map(|w| table.get(&(p, w)).copied().unwrap_or(0))
                    .min()
                    .unwrap_or(0)
            })
            .min()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_is_as_far_as_its_slowest_worker() {
        let p = StreamProgress::default();
        p.recovered(0, 2, &HashMap::from([(7, 10)]));
        p.recovered(1, 3, &HashMap::new());
        assert_eq!(p.applied(7), 10);
        assert_eq!(p.applied(8), 0);
        p.publish(0, 0, 7, 20);
        assert_eq!(p.applied(7), 10, "worker 1 is behind");
        p.publish(0, 1, 7, 15);
        assert_eq!(p.applied(7), 15);
        // The stream reaches partition 1 too: only worker 0 of 3 has said how far.
        p.publish(1, 0, 7, 30);
        assert_eq!(p.applied(7), 0);
        p.publish(1, 1, 7, 30);
        p.publish(1, 2, 7, 12);
        assert_eq!(p.applied(7), 12);
    }
}
