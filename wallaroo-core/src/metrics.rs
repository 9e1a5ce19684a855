//! The metrics of a running application, written in the Prometheus text format (version
//! 0.0.4) when scraped.
//!
//! Nothing here is on the hot path: the components count into atomics of their own once per
//! read, batch, round or chunk ([`SourceStats`], [`WorkerStats`], [`SinkStats`]; a
//! worker's state log per commit, sync and snapshot, recovery once at start:
//! [`RecoveryStats`]), and a scrape reads them. A worker's queue depth is read from its channel, through a weak
//! sender that does not keep the worker alive.

use std::fmt::Write as _;
use std::sync::Arc;

use crate::context::WorkerMsg;
use crate::latency::{HistogramSnapshot, BUCKETS};
use crate::link::FlowCounts;
use crate::resilience::stats::RecoveryStats;
use crate::sink::SinkStats;
use crate::source::SourceStats;
use crate::worker::{KeyParser, WorkerStats};

/// What a pipeline counts: its source and its sinks.
pub(crate) struct PipelineMetrics {
    /// The pipeline's name.
    pub(crate) name: String,
    /// Its source's counters.
    pub(crate) source: Arc<SourceStats>,
    /// Its sinks' counters.
    pub(crate) sinks: Vec<Arc<SinkStats>>,
    /// Its stateless steps' counts and its source's waits on full worker channels.
    pub(crate) flow: Arc<FlowCounts>,
}

/// One worker of a state partition, as the metrics and state queries see it.
pub(crate) struct WorkerHandle {
    /// What the worker publishes.
    pub(crate) stats: Arc<WorkerStats>,
    /// Its channel, without keeping it open.
    pub(crate) tx: flume::WeakSender<WorkerMsg>,
}

/// A state partition: its workers, and how to read its keys.
pub(crate) struct StateMetrics {
    /// The state partition's name.
    pub(crate) name: String,
    /// Its workers, by index.
    pub(crate) workers: Vec<WorkerHandle>,
    /// Reads a key of the partition's type from JSON.
    pub(crate) keys: Arc<dyn KeyParser>,
    /// What recovery at start did (nothing without a resilience directory).
    pub(crate) recovery: Arc<RecoveryStats>,
}

/// Every counter of a running application.
pub(crate) struct Metrics {
    /// Per pipeline, in declaration order.
    pub(crate) pipelines: Vec<PipelineMetrics>,
    /// Per state partition, in declaration order.
    pub(crate) states: Vec<StateMetrics>,
}

/// The counters of a pipeline's sinks, added up.
#[derive(Default)]
struct SinkSums {
    messages: u64,
    bytes: u64,
    blocked_nanos: u64,
    connections: u64,
    latency: HistogramSnapshot,
}

/// Writes one of a pipeline's sink sums.
type SumOf = fn(&SinkSums) -> String;

/// Reads one counter of a source's counts.
type CountOf = fn(&crate::source::SourceCounts) -> u64;

/// A label value, escaped as the text format wants (`\\`, `\"`, `\n`).
fn label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Writes the `# HELP` and `# TYPE` lines of a metric family.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

impl Metrics {
    /// The metrics now, in the Prometheus text format.
    pub(crate) fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let sources: Vec<_> = self
            .pipelines
            .iter()
            .map(|p| (label(&p.name), p.source.snapshot()))
            .collect();
        let source_counters: [(&str, &str, CountOf); 6] = [
            (
                "wallaroo_source_messages_total",
                "Messages decoded by the pipeline's source.",
                |c| c.messages,
            ),
            (
                "wallaroo_source_decode_errors_total",
                "Frames or payloads the decoder refused (skipped).",
                |c| c.decode_errors,
            ),
            (
                "wallaroo_source_framing_errors_total",
                "Streams closed on a framing error (an oversized frame, a stream ending inside a frame).",
                |c| c.framing_errors,
            ),
            (
                "wallaroo_source_bytes_total",
                "Bytes read from framed streams.",
                |c| c.bytes,
            ),
            (
                "wallaroo_source_connections_total",
                "Connections accepted.",
                |c| c.connections,
            ),
            (
                "wallaroo_source_refused_connections_total",
                "Connections closed as they were accepted, over --max-connections.",
                |c| c.refused,
            ),
        ];
        for (name, help, value) in source_counters {
            family(&mut out, name, "counter", help);
            for (pipeline, counts) in &sources {
                let _ = writeln!(out, "{name}{{pipeline=\"{pipeline}\"}} {}", value(counts));
            }
        }
        family(
            &mut out,
            "wallaroo_source_open_connections",
            "gauge",
            "Connections open now.",
        );
        for (pipeline, counts) in &sources {
            let open = counts.connections.saturating_sub(counts.closed);
            let _ = writeln!(
                out,
                "wallaroo_source_open_connections{{pipeline=\"{pipeline}\"}} {open}"
            );
        }
        self.render_flow(&mut out);
        self.render_kafka(&mut out);

        let sinks: Vec<_> = self
            .pipelines
            .iter()
            .map(|p| {
                let mut sums = SinkSums::default();
                // Zero buckets for a pipeline without sinks, too.
                sums.latency.merge(&HistogramSnapshot::default());
                for sink in &p.sinks {
                    let read = |counter: &std::sync::atomic::AtomicU64| {
                        counter.load(std::sync::atomic::Ordering::Relaxed)
                    };
                    sums.messages += read(&sink.messages);
                    sums.bytes += read(&sink.bytes);
                    sums.blocked_nanos += read(&sink.blocked_nanos);
                    sums.connections += read(&sink.connections);
                    sums.latency.merge(&sink.latency.snapshot());
                }
                (label(&p.name), sums)
            })
            .collect();
        let sink_counters: [(&str, &str, SumOf); 4] = [
            (
                "wallaroo_sink_messages_total",
                "Messages encoded and handed to the pipeline's sinks.",
                |s| s.messages.to_string(),
            ),
            (
                "wallaroo_sink_bytes_total",
                "Bytes encoded and handed to the pipeline's sinks.",
                |s| s.bytes.to_string(),
            ),
            (
                "wallaroo_sink_blocked_seconds_total",
                "Time producers waited for room in the channel of a pipeline's sink (backpressure).",
                |s| (s.blocked_nanos as f64 / 1e9).to_string(),
            ),
            (
                "wallaroo_sink_connections_total",
                "Connections the pipeline's TCP sinks made to their receivers (the first included: more is a reconnect).",
                |s| s.connections.to_string(),
            ),
        ];
        for (name, help, value) in sink_counters {
            family(&mut out, name, "counter", help);
            for (pipeline, sums) in &sinks {
                let _ = writeln!(out, "{name}{{pipeline=\"{pipeline}\"}} {}", value(sums));
            }
        }
        family(
            &mut out,
            "wallaroo_state_keys",
            "gauge",
            "Keys with a state in the state partition.",
        );
        for state in &self.states {
            let keys: u64 = state
                .workers
                .iter()
                .map(|w| w.stats.keys.load(std::sync::atomic::Ordering::Relaxed))
                .sum();
            let _ = writeln!(
                out,
                "wallaroo_state_keys{{state=\"{}\"}} {keys}",
                label(&state.name)
            );
        }
        family(
            &mut out,
            "wallaroo_worker_messages_total",
            "counter",
            "Messages of the batches a worker took.",
        );
        for state in &self.states {
            for (index, worker) in state.workers.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "wallaroo_worker_messages_total{{state=\"{}\",worker=\"{index}\"}} {}",
                    label(&state.name),
                    worker
                        .stats
                        .messages
                        .load(std::sync::atomic::Ordering::Relaxed)
                );
            }
        }
        family(
            &mut out,
            "wallaroo_worker_busy_seconds_total",
            "counter",
            "Time a worker spent on its rounds of batches (waits on a full sink channel included), not waiting for a batch.",
        );
        for state in &self.states {
            for (index, worker) in state.workers.iter().enumerate() {
                let nanos = worker
                    .stats
                    .busy_nanos
                    .load(std::sync::atomic::Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "wallaroo_worker_busy_seconds_total{{state=\"{}\",worker=\"{index}\"}} {}",
                    label(&state.name),
                    nanos as f64 / 1e9
                );
            }
        }
        family(
            &mut out,
            "wallaroo_worker_blocked_seconds_total",
            "counter",
            "Time a worker waited for room in a full sink channel (backpressure), part of its busy time.",
        );
        for state in &self.states {
            for (index, worker) in state.workers.iter().enumerate() {
                let nanos = worker
                    .stats
                    .blocked_nanos
                    .load(std::sync::atomic::Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "wallaroo_worker_blocked_seconds_total{{state=\"{}\",worker=\"{index}\"}} {}",
                    label(&state.name),
                    nanos as f64 / 1e9
                );
            }
        }
        family(
            &mut out,
            "wallaroo_worker_queue_depth",
            "gauge",
            "Batches waiting in a worker's channel.",
        );
        for state in &self.states {
            for (index, worker) in state.workers.iter().enumerate() {
                let depth = worker.tx.upgrade().map_or(0, |tx| tx.len());
                let _ = writeln!(
                    out,
                    "wallaroo_worker_queue_depth{{state=\"{}\",worker=\"{index}\"}} {depth}",
                    label(&state.name)
                );
            }
        }

        family(
            &mut out,
            "wallaroo_latency_seconds",
            "histogram",
            "From a message's read to its output's write by the sink (per chunk of output, from the read of its first message).",
        );
        for (pipeline, sums) in &sinks {
            let latency = &sums.latency;
            for (bound, count) in BUCKETS.iter().zip(&latency.cumulative) {
                let _ = writeln!(
                    out,
                    "wallaroo_latency_seconds_bucket{{pipeline=\"{pipeline}\",le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "wallaroo_latency_seconds_bucket{{pipeline=\"{pipeline}\",le=\"+Inf\"}} {}",
                latency.count()
            );
            let _ = writeln!(
                out,
                "wallaroo_latency_seconds_sum{{pipeline=\"{pipeline}\"}} {}",
                latency.sum
            );
            let _ = writeln!(
                out,
                "wallaroo_latency_seconds_count{{pipeline=\"{pipeline}\"}} {}",
                latency.count()
            );
        }
        self.render_resilience(&mut out);
        out
    }

    /// Writes the resilience families: per worker, its log's bytes, syncs and snapshots;
    /// per state partition, its recovery at start. Only the state partitions kept in a
    /// resilience directory are written, and without one the families are left out
    /// altogether (no `# HELP` either): a zero would claim a log that does not exist.
    fn render_resilience(&self, out: &mut String) {
        let kept: Vec<_> = self
            .states
            .iter()
            .filter(|s| s.recovery.done.load(std::sync::atomic::Ordering::Acquire))
            .map(|s| (label(&s.name), s))
            .collect();
        if kept.is_empty() {
            return;
        }
        let read = |counter: &std::sync::atomic::AtomicU64| {
            counter.load(std::sync::atomic::Ordering::Relaxed)
        };
        type LogOf = fn(&crate::resilience::stats::LogStats) -> String;
        let log_counters: [(&str, &str, LogOf); 4] = [
            (
                "wallaroo_log_bytes_total",
                "Bytes appended to a worker's state log segments (their headers included).",
                |l| l.bytes.load(std::sync::atomic::Ordering::Relaxed).to_string(),
            ),
            (
                "wallaroo_snapshots_total",
                "Worker snapshots written by compacting a worker's state log.",
                |l| l.snapshots.load(std::sync::atomic::Ordering::Relaxed).to_string(),
            ),
            (
                "wallaroo_snapshot_seconds_total",
                "Time spent writing a worker's snapshots (and removing the log segments they replace), on the compaction thread.",
                |l| {
                    (l.snapshot_nanos.load(std::sync::atomic::Ordering::Relaxed) as f64 / 1e9)
                        .to_string()
                },
            ),
            (
                "wallaroo_snapshot_bytes_total",
                "Bytes of the worker snapshots written.",
                |l| {
                    l.snapshot_bytes
                        .load(std::sync::atomic::Ordering::Relaxed)
                        .to_string()
                },
            ),
        ];
        for (name, help, value) in log_counters {
            family(out, name, "counter", help);
            for (state, metrics) in &kept {
                for (index, worker) in metrics.workers.iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "{name}{{state=\"{state}\",worker=\"{index}\"}} {}",
                        value(&worker.stats.log)
                    );
                }
            }
        }
        family(
            out,
            "wallaroo_log_sync_seconds",
            "histogram",
            "How long each fdatasync of a worker's state log took.",
        );
        for (state, metrics) in &kept {
            for (index, worker) in metrics.workers.iter().enumerate() {
                let syncs = worker.stats.log.syncs.snapshot();
                let series = format!("state=\"{state}\",worker=\"{index}\"");
                for (bound, count) in BUCKETS.iter().zip(&syncs.cumulative) {
                    let _ = writeln!(
                        out,
                        "wallaroo_log_sync_seconds_bucket{{{series},le=\"{bound}\"}} {count}"
                    );
                }
                let _ = writeln!(
                    out,
                    "wallaroo_log_sync_seconds_bucket{{{series},le=\"+Inf\"}} {}",
                    syncs.count()
                );
                let _ = writeln!(
                    out,
                    "wallaroo_log_sync_seconds_sum{{{series}}} {}",
                    syncs.sum
                );
                let _ = writeln!(
                    out,
                    "wallaroo_log_sync_seconds_count{{{series}}} {}",
                    syncs.count()
                );
            }
        }
        family(
            out,
            "wallaroo_recovery_seconds",
            "gauge",
            "How long recovery at start took: reading the last run's files and writing this run's snapshot.",
        );
        for (state, metrics) in &kept {
            let _ = writeln!(
                out,
                "wallaroo_recovery_seconds{{state=\"{state}\"}} {}",
                read(&metrics.recovery.nanos) as f64 / 1e9
            );
        }
        family(
            out,
            "wallaroo_recovered_keys",
            "gauge",
            "Keys whose states recovery at start read back from the last run.",
        );
        for (state, metrics) in &kept {
            let _ = writeln!(
                out,
                "wallaroo_recovered_keys{{state=\"{state}\"}} {}",
                read(&metrics.recovery.keys)
            );
        }
    }
}

impl Metrics {
    /// Writes the lag of each Kafka source's partitions, as its thread last measured it;
    /// nothing when no pipeline reads Kafka.
    fn render_kafka(&self, out: &mut String) {
        let lags: Vec<_> = self
            .pipelines
            .iter()
            .filter_map(|p| {
                let lag = p
                    .source
                    .kafka_lag
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone()?;
                Some((label(&p.name), lag))
            })
            .collect();
        if lags.is_empty() {
            return;
        }
        family(
            out,
            "wallaroo_source_kafka_lag",
            "gauge",
            "Records between a partition's high watermark and the next offset the source reads, per partition this process holds.",
        );
        for (pipeline, mut partitions) in lags {
            partitions.sort_unstable();
            for (partition, lag) in partitions {
                let _ = writeln!(
                    out,
                    "wallaroo_source_kafka_lag{{pipeline=\"{pipeline}\",partition=\"{partition}\"}} {lag}"
                );
            }
        }
    }

    /// Writes the flow's counters: each source's waits on full worker channels, and each
    /// stateless step's messages in and out.
    fn render_flow(&self, out: &mut String) {
        let read = |counter: &std::sync::atomic::AtomicU64| {
            counter.load(std::sync::atomic::Ordering::Relaxed)
        };
        family(
            out,
            "wallaroo_source_blocked_seconds_total",
            "counter",
            "Time the source waited for room in a full channel to a worker of its first state partition (backpressure).",
        );
        for p in &self.pipelines {
            let _ = writeln!(
                out,
                "wallaroo_source_blocked_seconds_total{{pipeline=\"{}\"}} {}",
                label(&p.name),
                read(&p.flow.source_blocked_nanos) as f64 / 1e9
            );
        }
        let steps: [(&str, &str, CountOfStep); 2] = [
            (
                "wallaroo_step_messages_in_total",
                "Messages a stateless step took.",
                |c| &c.taken,
            ),
            (
                "wallaroo_step_messages_out_total",
                "Messages a stateless step passed on (fewer when it filters, more when it fans out).",
                |c| &c.given,
            ),
        ];
        for (name, help, value) in steps {
            family(out, name, "counter", help);
            for p in &self.pipelines {
                for (step, counts) in &p.flow.steps {
                    let _ = writeln!(
                        out,
                        "{name}{{pipeline=\"{}\",step=\"{}\"}} {}",
                        label(&p.name),
                        label(step),
                        read(value(counts))
                    );
                }
            }
        }
        if self.pipelines.iter().any(|p| !p.flow.windows.is_empty()) {
            family(
                out,
                "wallaroo_window_late_total",
                "counter",
                "Messages that came after every window they belong to had closed, dropped (or placed in no window).",
            );
            for p in &self.pipelines {
                for (state, dropped) in &p.flow.windows {
                    let _ = writeln!(
                        out,
                        "wallaroo_window_late_total{{pipeline=\"{}\",state=\"{}\"}} {}",
                        label(&p.name),
                        label(state),
                        read(dropped)
                    );
                }
            }
        }
    }
}

/// Reads one counter of a stateless step's counts.
type CountOfStep = fn(&crate::link::StepCounts) -> &std::sync::atomic::AtomicU64;

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    #[test]
    fn kafka_lag_is_written_per_partition_in_order_and_only_for_kafka_sources() {
        let pipeline = |name: &str, lag: Option<Vec<(i32, i64)>>| {
            let source = Arc::new(SourceStats::default());
            *source.kafka_lag.lock().unwrap() = lag;
            PipelineMetrics {
                name: name.into(),
                source,
                sinks: Vec::new(),
                flow: Arc::new(FlowCounts::default()),
            }
        };
        let tcp = Metrics {
            pipelines: vec![pipeline("tcp", None)],
            states: Vec::new(),
        };
        assert!(!tcp.render().contains("wallaroo_source_kafka_lag"));
        let kafka = Metrics {
            pipelines: vec![
                pipeline("tcp", None),
                pipeline("k", Some(vec![(2, 5), (0, 0)])),
            ],
            states: Vec::new(),
        };
        let text = kafka.render();
        assert!(text.contains(
            "# TYPE wallaroo_source_kafka_lag gauge\n\
             wallaroo_source_kafka_lag{pipeline=\"k\",partition=\"0\"} 0\n\
             wallaroo_source_kafka_lag{pipeline=\"k\",partition=\"2\"} 5\n"
        ));
        assert!(!text.contains("pipeline=\"tcp\",partition"));
    }

    #[test]
    fn counters_are_written_with_their_labels_escaped() {
        let source = Arc::new(SourceStats::default());
        source.messages.store(7, Ordering::Relaxed);
        source.connections.store(3, Ordering::Relaxed);
        source.closed.store(1, Ordering::Relaxed);
        let sink = Arc::new(SinkStats::default());
        sink.chunk(5, 40);
        sink.latency.observe(30_000, 5);
        let step = Arc::new(crate::link::StepCounts::default());
        step.taken.store(4, Ordering::Relaxed);
        step.given.store(9, Ordering::Relaxed);
        let flow = FlowCounts {
            source_blocked_nanos: Arc::new(1_500_000_000.into()),
            steps: vec![("split \\ it".into(), step)],
            windows: vec![("sensor windows".into(), Arc::new(3.into()))],
        };
        let metrics = Metrics {
            pipelines: vec![PipelineMetrics {
                name: "say \"hi\"".into(),
                source,
                sinks: vec![sink],
                flow: Arc::new(flow),
            }],
            states: Vec::new(),
        };
        let text = metrics.render();
        assert!(text.contains("wallaroo_source_messages_total{pipeline=\"say \\\"hi\\\"\"} 7\n"));
        assert!(text.contains("wallaroo_source_open_connections{pipeline=\"say \\\"hi\\\"\"} 2\n"));
        assert!(text.contains("wallaroo_sink_messages_total{pipeline=\"say \\\"hi\\\"\"} 5\n"));
        assert!(text.contains("wallaroo_sink_bytes_total{pipeline=\"say \\\"hi\\\"\"} 40\n"));
        assert!(text.contains(
            "wallaroo_latency_seconds_bucket{pipeline=\"say \\\"hi\\\"\",le=\"0.00005\"} 5\n"
        ));
        assert!(text.contains("wallaroo_latency_seconds_count{pipeline=\"say \\\"hi\\\"\"} 5\n"));
        assert!(text.contains("# TYPE wallaroo_latency_seconds histogram\n"));
        assert!(text
            .contains("wallaroo_source_blocked_seconds_total{pipeline=\"say \\\"hi\\\"\"} 1.5\n"));
        assert!(text.contains(
            "wallaroo_step_messages_in_total{pipeline=\"say \\\"hi\\\"\",step=\"split \\\\ it\"} 4\n"
        ));
        assert!(text.contains(
            "wallaroo_step_messages_out_total{pipeline=\"say \\\"hi\\\"\",step=\"split \\\\ it\"} 9\n"
        ));
        assert!(text.contains("# TYPE wallaroo_step_messages_out_total counter\n"));
        assert!(text.contains(
            "wallaroo_window_late_total{pipeline=\"say \\\"hi\\\"\",state=\"sensor windows\"} 3\n"
        ));
        // No state kept in a resilience directory: no resilience family at all.
        assert!(!text.contains("wallaroo_log_"), "{text}");
        assert!(!text.contains("wallaroo_recovery_seconds"), "{text}");
    }

    /// Keys are never parsed here.
    struct NoKeys;

    impl KeyParser for NoKeys {
        fn parse(
            &self,
            _json: &str,
            _workers: usize,
        ) -> Result<(usize, Box<dyn std::any::Any + Send>), String> {
            Err("no keys".into())
        }
    }

    #[test]
    fn resilience_is_written_per_worker_and_per_state_once_recovered() {
        let (tx, _rx) = flume::unbounded::<WorkerMsg>();
        let stats = Arc::new(WorkerStats::default());
        stats.log.bytes.store(1234, Ordering::Relaxed);
        stats.log.syncs.observe(2_000_000, 1);
        stats
            .log
            .snapshot(10, std::time::Duration::from_millis(500));
        let state = |name: &str| StateMetrics {
            name: name.into(),
            workers: vec![WorkerHandle {
                stats: Arc::clone(&stats),
                tx: tx.downgrade(),
            }],
            keys: Arc::new(NoKeys),
            recovery: Arc::default(),
        };
        let (kept, not_kept) = (state("kept"), state("not kept"));
        kept.recovery
            .finished(3, std::time::Duration::from_millis(250));
        let metrics = Metrics {
            pipelines: Vec::new(),
            states: vec![kept, not_kept],
        };
        let text = metrics.render();
        let w = "{state=\"kept\",worker=\"0\"}";
        assert!(
            text.contains(&format!("wallaroo_log_bytes_total{w} 1234\n")),
            "{text}"
        );
        assert!(text.contains(&format!("wallaroo_snapshots_total{w} 1\n")));
        assert!(text.contains(&format!("wallaroo_snapshot_seconds_total{w} 0.5\n")));
        assert!(text.contains(&format!("wallaroo_snapshot_bytes_total{w} 10\n")));
        assert!(text.contains(
            "wallaroo_log_sync_seconds_bucket{state=\"kept\",worker=\"0\",le=\"0.001\"} 0\n"
        ));
        assert!(text.contains(
            "wallaroo_log_sync_seconds_bucket{state=\"kept\",worker=\"0\",le=\"0.0025\"} 1\n"
        ));
        assert!(text.contains(&format!("wallaroo_log_sync_seconds_count{w} 1\n")));
        assert!(text.contains(&format!("wallaroo_log_sync_seconds_sum{w} 0.002\n")));
        assert!(text.contains("wallaroo_recovery_seconds{state=\"kept\"} 0.25\n"));
        assert!(text.contains("wallaroo_recovered_keys{state=\"kept\"} 3\n"));
        assert!(text.contains("# TYPE wallaroo_log_sync_seconds histogram\n"));
        // A state without a resilience directory is left out.
        let resilience = &text[text.find("# HELP wallaroo_log_bytes_total").unwrap()..];
        assert!(!resilience.contains("not kept"), "{resilience}");
    }
}
