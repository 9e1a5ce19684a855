//! The Kafka source: a consumer in the application's group, on the connector API.
//!
//! Each partition of the topic is a stream of its own (`kafka:TOPIC/PARTITION`), each
//! record at its offset: the state partitions apply every record once, and a partition given
//! to this process (at start, or by a rebalance) is read from where its records were
//! applied, not from the group's committed offset, when the state knows better. The
//! committed offsets follow what was applied, so that lag tools see progress.
//!
//! A pipeline that feeds a state partition reads through the group's shards instead
//! ([`super::group`]): every process of the group holds some of the state's shards.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{Message, Offset, TopicPartitionList};

use super::{stream_name, wait_for_brokers, KafkaError, KafkaOptions};
use crate::endpoint::{ConnectorError, ConnectorInfo};
use crate::source::connector::{ResumePoints, SourceConnector, SourceInput, StreamId};

/// Records handed on between two flushes of the pipeline, at most.
const RECORDS_PER_FLUSH: usize = 1024;
/// How often the applied positions are committed as the group's offsets.
const COMMIT_EVERY: Duration = Duration::from_secs(1);
/// How long one poll waits for a record.
const POLL: Duration = Duration::from_millis(100);

/// Consumes a topic: each record's value is one message for the pipeline's decoder.
pub struct KafkaSource {
    topic: String,
    options: KafkaOptions,
    /// The state partition the pipeline feeds first: its index and name.
    state: Option<(usize, String)>,
    /// Whether the records' keys are the state's keys ([`crate::Source::co_partitioned`]).
    co_partitioned: bool,
    /// The resilience directory, for local copies of the state's shards.
    local: Option<std::path::PathBuf>,
}

impl KafkaSource {
    /// A source consuming `topic` with `options` (the application's group by default).
    pub fn new(topic: String, options: KafkaOptions) -> Self {
        KafkaSource {
            topic,
            options,
            state: None,
            co_partitioned: false,
            local: None,
        }
    }

    /// Has the pipeline feed state partition `index`, named `name`, whose shards the
    /// processes of the group share; `co_partitioned` when the records' keys are its keys;
    /// its shards copied to `local`, a resilience directory, when given up.
    pub(crate) fn sharding(
        mut self,
        index: usize,
        name: &str,
        co_partitioned: bool,
        local: Option<std::path::PathBuf>,
    ) -> Self {
        self.state = Some((index, name.to_string()));
        self.co_partitioned = co_partitioned;
        self.local = local;
        self
    }
}

/// How long a topic may be missing on brokers that were only just starting.
const TOPIC_GRACE: Duration = Duration::from_secs(10);

/// Waits for the brokers until they answer, then asks for `topic`'s partition count: once,
/// or for up to [`TOPIC_GRACE`] if the brokers were only just starting (their topics may be
/// being created). `None` if the application stops first.
pub(super) fn wait_for_topic(
    options: &KafkaOptions,
    topic: &str,
    stopping: impl Fn() -> bool,
) -> Result<Option<usize>, ConnectorError> {
    let mut waited = false;
    loop {
        match wait_for_brokers(options, Some(Duration::from_secs(5))) {
            Ok(wait) => {
                waited |= !wait.is_zero();
                break;
            }
            Err(KafkaError::Unreachable { .. }) if !stopping() => waited = true,
            Err(KafkaError::Unreachable { .. }) => return Ok(None),
            Err(e) => return Err(ConnectorError::new(e.to_string())),
        }
    }
    let grace = if waited { TOPIC_GRACE } else { Duration::ZERO };
    super::wait_for_topic(options, topic, grace)
        .map(Some)
        .map_err(|e| ConnectorError::new(e.to_string()))
}

impl SourceConnector for KafkaSource {
    fn info(&self) -> ConnectorInfo {
        ConnectorInfo::new("kafka", format!("{} ({})", self.topic, self.options))
    }

    fn run(self: Box<Self>, mut input: SourceInput) -> Result<(), ConnectorError> {
        let Some(partitions) = wait_for_topic(&self.options, &self.topic, || input.stopping())?
        else {
            return Ok(());
        };
        if let Some((index, state)) = &self.state {
            let group = super::group::Group::new(
                &self.options,
                &self.topic,
                partitions,
                *index,
                state,
                self.co_partitioned,
                self.local.as_deref(),
            )?;
            return group.run(input);
        }
        let context = Rebalance {
            topic: self.topic.clone(),
            points: input.resume_points(),
        };
        let consumer: BaseConsumer<Rebalance> = self
            .options
            .consumer_config()
            .create_with_context(context)
            .map_err(|e| ConnectorError::new(KafkaError::Config(e).to_string()))?;
        consumer
            .subscribe(&[&self.topic])
            .map_err(|e| ConnectorError::new(format!("cannot subscribe: {e}")))?;
        tracing::info!(
            "kafka:{}: {partitions} partitions; joining group {}",
            self.topic,
            self.options.group.as_deref().unwrap_or("(none)")
        );
        let mut streams: HashMap<i32, StreamId> = HashMap::new();
        let mut committed: HashMap<i32, u64> = HashMap::new();
        let mut last_commit = Instant::now();
        let mut last_lag = Instant::now();
        let mut unflushed = 0;
        let mut errors = 0u64;
        while !input.stopping() {
            match consumer.poll(POLL) {
                Some(Ok(record)) => {
                    let partition = record.partition();
                    let stream = streams
                        .entry(partition)
                        .or_insert_with(|| input.stream(&stream_name(&self.topic, partition)));
                    let offset = u64::try_from(record.offset()).unwrap_or(0);
                    input.push_at(stream, offset, record.payload().unwrap_or(&[]));
                    unflushed += 1;
                    if unflushed >= RECORDS_PER_FLUSH {
                        input.flush();
                        unflushed = 0;
                    }
                }
                Some(Err(e)) => {
                    errors += 1;
                    if errors <= 10 || errors.is_multiple_of(1000) {
                        tracing::warn!("kafka:{}: {e} ({errors} so far)", self.topic);
                    }
                }
                None => {
                    input.flush();
                    unflushed = 0;
                }
            }
            if last_commit.elapsed() >= COMMIT_EVERY {
                input.flush();
                unflushed = 0;
                commit(
                    &consumer,
                    &self.topic,
                    &streams,
                    &mut committed,
                    &input,
                    CommitMode::Async,
                );
                last_commit = Instant::now();
            }
            if last_lag.elapsed() >= super::LAG_EVERY {
                super::measure_lag(&consumer, &self.topic, &input.stats().kafka_lag);
                last_lag = Instant::now();
            }
        }
        input.flush();
        commit(
            &consumer,
            &self.topic,
            &streams,
            &mut committed,
            &input,
            CommitMode::Sync,
        );
        Ok(())
    }
}

/// Commits, as the group's offset of each partition read, the position its records were
/// applied up to, where it moved since the last commit.
fn commit(
    consumer: &BaseConsumer<Rebalance>,
    topic: &str,
    streams: &HashMap<i32, StreamId>,
    committed: &mut HashMap<i32, u64>,
    input: &SourceInput,
    mode: CommitMode,
) {
    let Ok(assigned) = consumer.assignment() else {
        return;
    };
    let mut offsets = TopicPartitionList::new();
    for element in assigned.elements_for_topic(topic) {
        let partition = element.partition();
        let Some(stream) = streams.get(&partition) else {
            continue;
        };
        let applied = input.resume_from(stream);
        if applied > 0 && committed.get(&partition) != Some(&applied) {
            let at = Offset::Offset(i64::try_from(applied).unwrap_or(i64::MAX));
            if offsets.add_partition_offset(topic, partition, at).is_ok() {
                committed.insert(partition, applied);
            }
        }
    }
    if offsets.count() > 0 {
        if let Err(e) = consumer.commit(&offsets, mode) {
            tracing::warn!("kafka:{topic}: cannot commit offsets: {e}; the next commit will");
        }
    }
}

/// The consumer's context: partitions given to this process start where their records
/// were applied.
struct Rebalance {
    topic: String,
    points: ResumePoints,
}

super::logged_context!(Rebalance);

impl ConsumerContext for Rebalance {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        partitions: &mut TopicPartitionList,
    ) {
        let list = |partitions: &TopicPartitionList| {
            partitions
                .elements()
                .iter()
                .map(|e| e.partition().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        // Cooperative unless the user asked for another assignment strategy.
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        let result = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let mut resumed = Vec::new();
                for partition in partitions.elements_for_topic(&self.topic) {
                    let p = partition.partition();
                    let from = self
                        .points
                        .resume_from(&self.points.stream(&stream_name(&self.topic, p)));
                    if from > 0 {
                        resumed.push((p, from));
                    }
                }
                for (p, from) in &resumed {
                    let at = Offset::Offset(i64::try_from(*from).unwrap_or(i64::MAX));
                    let _ = partitions.set_partition_offset(&self.topic, *p, at);
                }
                tracing::info!(
                    "kafka:{}: assigned partitions [{}]{}",
                    self.topic,
                    list(partitions),
                    if resumed.is_empty() {
                        String::new()
                    } else {
                        let at: Vec<String> =
                            resumed.iter().map(|(p, o)| format!("{p} at {o}")).collect();
                        format!(", resuming where applied: {}", at.join(", "))
                    }
                );
                if cooperative {
                    consumer.incremental_assign(partitions)
                } else {
                    consumer.assign(partitions)
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                tracing::info!(
                    "kafka:{}: revoked partitions [{}]",
                    self.topic,
                    list(partitions)
                );
                if cooperative {
                    consumer.incremental_unassign(partitions)
                } else {
                    consumer.unassign()
                }
            }
            other => {
                tracing::error!("kafka:{}: rebalance failed: {other:?}", self.topic);
                Ok(())
            }
        };
        if let Err(e) = result {
            tracing::error!(
                "kafka:{}: cannot take the rebalance's partitions: {e}",
                self.topic
            );
        }
    }
}
