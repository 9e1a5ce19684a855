//! The periodic one-line summary (`--stats-interval`): messages in and out, their rates,
//! and the p99 latency over the last interval, logged from a thread of its own, so that a
//! run without `--http` can still be watched.

use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::latency::{HistogramSnapshot, BUCKETS};
use crate::metrics::PipelineMetrics;

/// What the summary reads at one moment.
#[derive(Clone, Debug, Default, PartialEq)]
struct Reading {
    /// Messages decoded by the sources.
    read: u64,
    /// Messages handed to the sinks.
    written: u64,
    /// The latency of what was written, all sinks together.
    latency: HistogramSnapshot,
}

impl Reading {
    fn take(pipelines: &[PipelineMetrics]) -> Reading {
        let mut reading = Reading::default();
        reading.latency.merge(&HistogramSnapshot::default());
        for pipeline in pipelines {
            reading.read += pipeline.source.messages.load(Ordering::Relaxed);
            for sink in &pipeline.sinks {
                reading.written += sink.messages.load(Ordering::Relaxed);
                reading.latency.merge(&sink.latency.snapshot());
            }
        }
        reading
    }
}

/// The upper bound of the bucket that holds the 99th percentile of the observations made
/// between `before` and `now`, or `None` without any (`Some(f64::INFINITY)` past the last
/// bound).
fn p99(before: &HistogramSnapshot, now: &HistogramSnapshot) -> Option<f64> {
    let at = |h: &HistogramSnapshot, i: usize| h.cumulative.get(i).copied().unwrap_or(0);
    let count = now.count().saturating_sub(before.count());
    if count == 0 {
        return None;
    }
    // The smallest bucket that holds at least 99 % of the interval's observations.
    let wanted = count - count / 100;
    (0..=BUCKETS.len())
        .find(|&i| at(now, i).saturating_sub(at(before, i)) >= wanted)
        .map(|i| BUCKETS.get(i).copied().unwrap_or(f64::INFINITY))
}

/// A duration in seconds, for a log line: `250 µs`, `2.5 ms`, `1 s`.
fn seconds(s: f64) -> String {
    if s.is_infinite() {
        format!("> {} s", BUCKETS[BUCKETS.len() - 1])
    } else if s < 0.001 {
        format!("{} µs", (s * 1e6).round())
    } else if s < 1.0 {
        format!("{} ms", s * 1e3)
    } else {
        format!("{s} s")
    }
}

/// The line for the interval from `before` to `now`, `elapsed` long.
fn line(before: &Reading, now: &Reading, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64().max(1e-9);
    let rate = |now: u64, before: u64| (now.saturating_sub(before) as f64 / secs).round();
    let p99 = match p99(&before.latency, &now.latency) {
        Some(p99) => format!("p99 <= {}", seconds(p99)),
        None => "p99 -".to_string(),
    };
    format!(
        "in {} messages ({}/s), out {} ({}/s), {p99} over the last {:.1} s",
        now.read,
        rate(now.read, before.read),
        now.written,
        rate(now.written, before.written),
        secs
    )
}

/// The thread that logs the summary; it stops when dropped.
pub(crate) struct Summary {
    stop: Option<flume::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Summary {
    /// Logs a line about `pipelines` every `interval`.
    pub(crate) fn start(interval: Duration, pipelines: Vec<PipelineMetrics>) -> Summary {
        let (stop, stopped) = flume::bounded::<()>(0);
        let thread = std::thread::Builder::new()
            .name("wallaroo-summary".into())
            .spawn(move || {
                let mut before = Reading::take(&pipelines);
                let mut since = Instant::now();
                while let Err(flume::RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
                    let now = Reading::take(&pipelines);
                    tracing::info!("stats: {}", line(&before, &now, since.elapsed()));
                    (before, since) = (now, Instant::now());
                }
            })
            .map_err(|e| tracing::warn!("cannot start the --stats-interval thread: {e}"))
            .ok();
        Summary {
            stop: Some(stop),
            thread,
        }
    }
}

impl Drop for Summary {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::latency::Histogram;

    #[test]
    fn the_p99_is_the_bound_of_the_bucket_that_holds_99_percent_of_the_interval() {
        let h = Histogram::default();
        let before = h.snapshot();
        h.observe(40_000, 98); // 40 µs: the first bucket (50 µs)
        h.observe(2_000_000, 1); // 2 ms: the bucket of 2.5 ms
        h.observe(20_000_000, 1); // 20 ms: the bucket of 25 ms
        let now = h.snapshot();
        // 99 of 100 are within 2.5 ms.
        assert_eq!(p99(&before, &now), Some(0.002_5));
        // Only what came in the interval counts.
        h.observe(40_000, 10_000);
        assert_eq!(p99(&now, &h.snapshot()), Some(0.000_05));
        assert_eq!(p99(&now, &now), None);
        h.observe(20_000_000_000, 1_000_000);
        assert_eq!(p99(&now, &h.snapshot()), Some(f64::INFINITY));
    }

    #[test]
    fn the_line_gives_totals_rates_and_the_p99() {
        let h = Histogram::default();
        let before = Reading {
            read: 100,
            written: 90,
            latency: h.snapshot(),
        };
        h.observe(300_000, 1000); // 300 µs: the bucket of 500 µs
        let now = Reading {
            read: 2100,
            written: 1090,
            latency: h.snapshot(),
        };
        assert_eq!(
            line(&before, &now, Duration::from_secs(2)),
            "in 2100 messages (1000/s), out 1090 (500/s), p99 <= 500 µs over the last 2.0 s"
        );
        assert_eq!(
            line(&now, &now, Duration::from_secs(1)),
            "in 2100 messages (0/s), out 1090 (0/s), p99 - over the last 1.0 s"
        );
        assert_eq!(seconds(0.002_5), "2.5 ms");
        assert_eq!(seconds(2.5), "2.5 s");
        assert_eq!(seconds(f64::INFINITY), "> 10 s");
    }
}
