//! The metrics of a running application, written in the Prometheus text format (version
//! 0.0.4) when scraped, by the `prometheus-client` crate.
//!
//! Nothing here is on the hot path: the components count into atomics of their own once per
//! read, batch, round or chunk ([`SourceStats`], [`WorkerStats`], [`SinkStats`]; a
//! worker's state log per commit, sync and snapshot, recovery once at start:
//! [`RecoveryStats`]), and a scrape reads them. A worker's queue depth is read from its
//! channel, through a weak sender that does not keep the worker alive.
//!
//! So `prometheus-client` is used for its format only, not for its metric types: a
//! [`Collector`] ([`Metrics`]'s) is asked for every family at each scrape and hands the
//! values it reads to the crate's encoder as constant counters, gauges and histograms
//! (`ConstCounter`, `ConstGauge`, `encode_histogram`). No value is kept twice, and the
//! components count with plain atomics, as before.
//!
//! The names are the contract's (`../shared/ARCHITECTURE.md` §8): the encoder adds `_total`
//! to a counter's name itself, so a counter's family is named here without it, and
//! [`counter`] takes the name as it is exported and strips the suffix. What the crate writes
//! differently from the hand-written text it replaced, sample for sample: a float that is a
//! whole number keeps its `.0` (`0.0` for `0`), a very small one is written with an exponent
//! (`1e-9`), and the `le` label of a histogram's bucket is written as Go's client writes it,
//! so the first latency bucket is `le="5e-05"` (it was `"0.00005"`): the same numbers to
//! Prometheus (which reads `le` as a number) and to the live page (`Number()`).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeCounterValue, EncodeGaugeValue, EncodeLabelSet, EncodeMetric,
    NoLabelSet,
};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::context::WorkerMsg;
use crate::latency::{HistogramSnapshot, BUCKETS};
use crate::link::FlowCounts;
use crate::resilience::stats::RecoveryStats;
use crate::sink::SinkStats;
use crate::source::SourceStats;
use crate::worker::{KeyParser, WorkerStats};

/// The `Content-Type` of what [`Exposition::render`] writes: the Prometheus text format,
/// version 0.0.4 (not OpenMetrics: no `# EOF`, and counters' HELP and TYPE lines name the
/// `_total` samples, as the hand-written text did).
pub(crate) const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

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

/// The registry a scrape encodes: one collector, the application's [`Metrics`].
pub(crate) struct Exposition {
    registry: Registry,
}

impl Exposition {
    /// A registry of `metrics` alone: no prefix, no constant label, nothing of the crate's
    /// own (no process metrics), so /metrics shows what it showed before the crate.
    pub(crate) fn new(metrics: Arc<Metrics>) -> Exposition {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(metrics));
        Exposition { registry }
    }

    /// The metrics now, in the Prometheus text format ([`CONTENT_TYPE`]).
    pub(crate) fn render(&self) -> String {
        let mut out = String::with_capacity(8192);
        // Writing to a String fails only if a collector does, and ours never does.
        prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
            .expect("the metrics are written to a String");
        out
    }
}

/// Only what a collector must be (`Collector: Debug`): the counters are read at a scrape.
impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics")
            .field("pipelines", &self.pipelines.len())
            .field("states", &self.states.len())
            .finish()
    }
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

/// A pipeline's label.
type ByPipeline<'a> = [(&'static str, &'a str); 1];

/// A worker's labels: its state partition and its index.
type ByWorker<'a> = ([(&'static str, &'a str); 1], [(&'static str, usize); 1]);

/// A relaxed read of a counter: a scrape needs no order with the components' other writes.
fn read(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

/// Nanoseconds as the seconds Prometheus counts in.
fn seconds(nanos: u64) -> f64 {
    nanos as f64 / 1e9
}

/// Writes a counter family, `name` as exported (with its `_total`, which the encoder adds
/// back), and one sample per label set.
fn counter<L: EncodeLabelSet, V: EncodeCounterValue>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (L, V)>,
) -> fmt::Result {
    let family = name
        .strip_suffix("_total")
        .expect("a counter's name ends in _total");
    let mut metric = encoder.encode_descriptor(family, help, None, MetricType::Counter)?;
    for (labels, value) in samples {
        ConstCounter::new(value).encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

/// Writes a gauge family and one sample per label set.
fn gauge<L: EncodeLabelSet, V: EncodeGaugeValue>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (L, V)>,
) -> fmt::Result {
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, value) in samples {
        ConstGauge::new(value).encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

/// Writes a histogram family over [`BUCKETS`], one histogram per label set.
fn histogram<'h, L: EncodeLabelSet + 'h>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (L, &'h HistogramSnapshot)>,
) -> fmt::Result {
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Histogram)?;
    for (labels, snapshot) in samples {
        // The encoder adds the buckets up itself; a snapshot holds them added up already.
        let mut below = 0;
        let buckets: Vec<(f64, u64)> = BUCKETS
            .iter()
            .zip(&snapshot.cumulative)
            .map(|(&bound, &cumulative)| {
                let inside = cumulative - below;
                below = cumulative;
                (bound, inside)
            })
            .collect();
        metric
            .encode_family(&labels)?
            .encode_histogram::<NoLabelSet>(snapshot.sum, snapshot.count(), &buckets, None)?;
    }
    Ok(())
}

/// Reads one counter of a source's counts.
type CountOf = fn(&crate::source::SourceCounts) -> u64;

impl Collector for Metrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let out = &mut encoder;
        let sources: Vec<_> = self
            .pipelines
            .iter()
            .map(|p| (p.name.as_str(), p.source.snapshot()))
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
            let samples = sources
                .iter()
                .map(|(pipeline, counts)| ([("pipeline", *pipeline)], value(counts)));
            counter(out, name, help, samples)?;
        }
        gauge(
            out,
            "wallaroo_source_open_connections",
            "Connections open now.",
            sources.iter().map(|(pipeline, counts)| {
                let open = counts.connections.saturating_sub(counts.closed);
                ([("pipeline", *pipeline)], open)
            }),
        )?;
        self.encode_flow(out)?;
        self.encode_kafka(out)?;

        let sinks: Vec<(ByPipeline, SinkSums)> = self
            .pipelines
            .iter()
            .map(|p| {
                let mut sums = SinkSums::default();
                // Zero buckets for a pipeline without sinks, too.
                sums.latency.merge(&HistogramSnapshot::default());
                for sink in &p.sinks {
                    sums.messages += read(&sink.messages);
                    sums.bytes += read(&sink.bytes);
                    sums.blocked_nanos += read(&sink.blocked_nanos);
                    sums.connections += read(&sink.connections);
                    sums.latency.merge(&sink.latency.snapshot());
                }
                ([("pipeline", p.name.as_str())], sums)
            })
            .collect();
        let by_sink = |value: fn(&SinkSums) -> u64| {
            sinks
                .iter()
                .map(move |(labels, sums)| (*labels, value(sums)))
        };
        counter(
            out,
            "wallaroo_sink_messages_total",
            "Messages encoded and handed to the pipeline's sinks.",
            by_sink(|s| s.messages),
        )?;
        counter(
            out,
            "wallaroo_sink_bytes_total",
            "Bytes encoded and handed to the pipeline's sinks.",
            by_sink(|s| s.bytes),
        )?;
        counter(
            out,
            "wallaroo_sink_blocked_seconds_total",
            "Time producers waited for room in the channel of a pipeline's sink (backpressure).",
            by_sink(|s| s.blocked_nanos).map(|(labels, nanos)| (labels, seconds(nanos))),
        )?;
        counter(
            out,
            "wallaroo_sink_connections_total",
            "Connections the pipeline's TCP sinks made to their receivers (the first included: more is a reconnect).",
            by_sink(|s| s.connections),
        )?;
        gauge(
            out,
            "wallaroo_state_keys",
            "Keys with a state in the state partition.",
            self.states.iter().map(|state| {
                let keys: u64 = state.workers.iter().map(|w| read(&w.stats.keys)).sum();
                ([("state", state.name.as_str())], keys)
            }),
        )?;
        counter(
            out,
            "wallaroo_worker_messages_total",
            "Messages of the batches a worker took.",
            self.workers()
                .map(|(labels, w)| (labels, read(&w.stats.messages))),
        )?;
        counter(
            out,
            "wallaroo_worker_busy_seconds_total",
            "Time a worker spent on its rounds of batches (waits on a full sink channel included), not waiting for a batch.",
            self.workers()
                .map(|(labels, w)| (labels, seconds(read(&w.stats.busy_nanos)))),
        )?;
        counter(
            out,
            "wallaroo_worker_blocked_seconds_total",
            "Time a worker waited for room in a full sink channel (backpressure), part of its busy time.",
            self.workers()
                .map(|(labels, w)| (labels, seconds(read(&w.stats.blocked_nanos)))),
        )?;
        gauge(
            out,
            "wallaroo_worker_queue_depth",
            "Batches waiting in a worker's channel.",
            self.workers().map(|(labels, w)| {
                let depth = w.tx.upgrade().map_or(0, |tx| tx.len());
                (labels, depth as u64)
            }),
        )?;
        histogram(
            out,
            "wallaroo_latency_seconds",
            "From a message's read to its output's write by the sink (per chunk of output, from the read of its first message).",
            sinks.iter().map(|(labels, sums)| (*labels, &sums.latency)),
        )?;
        self.encode_resilience(out)
    }
}

impl Metrics {
    /// Every worker of every state partition, with its labels.
    fn workers(&self) -> impl Iterator<Item = (ByWorker<'_>, &WorkerHandle)> {
        self.states.iter().flat_map(|state| {
            state
                .workers
                .iter()
                .enumerate()
                .map(move |(index, w)| (([("state", state.name.as_str())], [("worker", index)]), w))
        })
    }

    /// Writes the resilience families: per worker, its log's bytes, syncs and snapshots;
    /// per state partition, its recovery at start. Only the state partitions kept in a
    /// resilience directory are written, and without one the families are left out
    /// altogether (no `# HELP` either): a zero would claim a log that does not exist.
    fn encode_resilience(&self, out: &mut DescriptorEncoder) -> fmt::Result {
        let kept: Vec<_> = self
            .states
            .iter()
            .filter(|s| s.recovery.done.load(Ordering::Acquire))
            .collect();
        if kept.is_empty() {
            return Ok(());
        }
        let workers = || {
            kept.iter().flat_map(|state| {
                state.workers.iter().enumerate().map(move |(index, w)| {
                    let labels: ByWorker = ([("state", state.name.as_str())], [("worker", index)]);
                    (labels, &w.stats.log)
                })
            })
        };
        counter(
            out,
            "wallaroo_log_bytes_total",
            "Bytes appended to a worker's state log segments (their headers included).",
            workers().map(|(labels, log)| (labels, read(&log.bytes))),
        )?;
        counter(
            out,
            "wallaroo_snapshots_total",
            "Worker snapshots written by compacting a worker's state log.",
            workers().map(|(labels, log)| (labels, read(&log.snapshots))),
        )?;
        counter(
            out,
            "wallaroo_snapshot_seconds_total",
            "Time spent writing a worker's snapshots (and removing the log segments they replace), on the compaction thread.",
            workers().map(|(labels, log)| (labels, seconds(read(&log.snapshot_nanos)))),
        )?;
        counter(
            out,
            "wallaroo_snapshot_bytes_total",
            "Bytes of the worker snapshots written.",
            workers().map(|(labels, log)| (labels, read(&log.snapshot_bytes))),
        )?;
        let syncs: Vec<_> = workers()
            .map(|(labels, log)| (labels, log.syncs.snapshot()))
            .collect();
        histogram(
            out,
            "wallaroo_log_sync_seconds",
            "How long each fdatasync of a worker's state log took.",
            syncs.iter().map(|(labels, snapshot)| (*labels, snapshot)),
        )?;
        gauge(
            out,
            "wallaroo_recovery_seconds",
            "How long recovery at start took: reading the last run's files and writing this run's snapshot.",
            kept.iter().map(|state| {
                (
                    [("state", state.name.as_str())],
                    seconds(read(&state.recovery.nanos)),
                )
            }),
        )?;
        gauge(
            out,
            "wallaroo_recovered_keys",
            "Keys whose states recovery at start read back from the last run.",
            kept.iter()
                .map(|state| ([("state", state.name.as_str())], read(&state.recovery.keys))),
        )
    }

    /// Writes the lag of each Kafka source's partitions, as its thread last measured it;
    /// nothing when no pipeline reads Kafka.
    fn encode_kafka(&self, out: &mut DescriptorEncoder) -> fmt::Result {
        let lags: Vec<_> = self
            .pipelines
            .iter()
            .filter_map(|p| {
                let mut lag = p
                    .source
                    .kafka_lag
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone()?;
                lag.sort_unstable();
                Some((p.name.as_str(), lag))
            })
            .collect();
        if lags.is_empty() {
            return Ok(());
        }
        gauge(
            out,
            "wallaroo_source_kafka_lag",
            "Records between a partition's high watermark and the next offset the source reads, per partition this process holds.",
            lags.iter().flat_map(|(pipeline, partitions)| {
                partitions.iter().map(move |&(partition, lag)| {
                    (([("pipeline", *pipeline)], [("partition", partition)]), lag)
                })
            }),
        )
    }

    /// Writes the flow's counters: each source's waits on full worker channels, and each
    /// stateless step's messages in and out.
    fn encode_flow(&self, out: &mut DescriptorEncoder) -> fmt::Result {
        counter(
            out,
            "wallaroo_source_blocked_seconds_total",
            "Time the source waited for room in a full channel to a worker of its first state partition (backpressure).",
            self.pipelines.iter().map(|p| {
                (
                    [("pipeline", p.name.as_str())],
                    seconds(read(&p.flow.source_blocked_nanos)),
                )
            }),
        )?;
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
            let samples = self.pipelines.iter().flat_map(|p| {
                p.flow.steps.iter().map(move |(step, counts)| {
                    let labels: [(&str, &str); 2] =
                        [("pipeline", p.name.as_str()), ("step", step.as_str())];
                    (labels, read(value(counts)))
                })
            });
            counter(out, name, help, samples)?;
        }
        if self.pipelines.iter().any(|p| !p.flow.windows.is_empty()) {
            counter(
                out,
                "wallaroo_window_late_total",
                "Messages that came after every window they belong to had closed, dropped (or placed in no window).",
                self.pipelines.iter().flat_map(|p| {
                    p.flow.windows.iter().map(move |(state, dropped)| {
                        let labels: [(&str, &str); 2] =
                            [("pipeline", p.name.as_str()), ("state", state.as_str())];
                        (labels, read(dropped))
                    })
                }),
            )?;
        }
        Ok(())
    }
}

/// Reads one counter of a stateless step's counts.
type CountOfStep = fn(&crate::link::StepCounts) -> &AtomicU64;

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
        assert!(!Exposition::new(Arc::new(tcp))
            .render()
            .contains("wallaroo_source_kafka_lag"));
        let kafka = Metrics {
            pipelines: vec![
                pipeline("tcp", None),
                pipeline("k", Some(vec![(2, 5), (0, 0)])),
            ],
            states: Vec::new(),
        };
        let text = Exposition::new(Arc::new(kafka)).render();
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
        let text = Exposition::new(Arc::new(metrics)).render();
        assert!(text.contains("wallaroo_source_messages_total{pipeline=\"say \\\"hi\\\"\"} 7\n"));
        assert!(text.contains("wallaroo_source_open_connections{pipeline=\"say \\\"hi\\\"\"} 2\n"));
        assert!(text.contains("wallaroo_sink_messages_total{pipeline=\"say \\\"hi\\\"\"} 5\n"));
        assert!(text.contains("wallaroo_sink_bytes_total{pipeline=\"say \\\"hi\\\"\"} 40\n"));
        assert!(text.contains(
            "wallaroo_latency_seconds_bucket{pipeline=\"say \\\"hi\\\"\",le=\"5e-05\"} 5\n"
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
        // The Prometheus text format, not OpenMetrics: HELP and TYPE name a counter's
        // `_total` samples, as the hand-written text did, and nothing closes the body.
        assert!(text.contains(
            "# HELP wallaroo_source_messages_total Messages decoded by the pipeline's source.\n\
             # TYPE wallaroo_source_messages_total counter\n"
        ));
        assert!(!text.contains("# EOF"), "{text}");
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
        let text = Exposition::new(Arc::new(metrics)).render();
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
