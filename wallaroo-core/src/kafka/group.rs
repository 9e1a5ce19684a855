//! A Kafka source that feeds a state partition: the processes of the consumer group share
//! the state's shards, and a shard's states follow it from process to process.
//!
//! Two hops, as Kafka Streams repartitions a stream:
//!
//! 1. **Repartition.** A consumer of the input topic runs each record through the
//!    pipeline without effect ([`ShardMode::probe`]) to learn the shards of the keys it
//!    reaches, and forwards the record, unchanged but for where it came from (input
//!    partition and offset, before the value), to those partitions of the internal topic
//!    `GROUP-STATE-repartition`. Input offsets are committed once what was forwarded is
//!    acknowledged: a crash forwards again what was not, never less.
//! 2. **Apply.** A consumer of the repartition topic (partition `q` is shard `q`) feeds the
//!    pipeline, routing only the messages of shard `q` ([`ShardMode::only`]), each with its
//!    origin in the input: a record forwarded twice is applied once (the per-key origins
//!    of the state partitions). Every change is written to `GROUP-STATE-changelog`; a
//!    partition given to this process is read back from the changelog before any of its
//!    records is read, and a partition taken away is released (what was read of it is
//!    applied and in the changelog, its offset committed) before it is given up. Offsets
//!    are committed only after the workers said that what came before is in the changelog.
//!
//! A source declared co-partitioned with the state (its records' keys are the state's keys,
//! so that each key's records are in one partition) skips hop 1: hop 2 reads the input
//! itself, in the group `--group`, and partition `q` of the input is shard `q`. A key's
//! shard is then the partition its records come from, not its hash.
//!
//! Rebalances of the second consumer are carried out on its thread between two polls, not
//! in librdkafka's callback, since they wait for the workers.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError as ClientError;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{Message, Offset, TopicPartitionList};

use super::changelog::{ensure_topic, fence, read_partitions, KafkaChangelog, Records};
use super::local::{Copy, LocalCopies};
use super::{flush_waiting, send_waiting, stream_name, Deliveries, KafkaError, KafkaOptions};
use crate::endpoint::ConnectorError;
use crate::routing::{set_shard_mode, take_probed, ShardMode, WorkerMsg};
use crate::shard::{internal_topic, ShardBy, ShardControl, CONTROL};
use crate::source::connector::{Probe, SourceInput, StreamId};

/// How often offsets are committed.
const COMMIT_EVERY: Duration = Duration::from_secs(1);
/// How long one poll waits for a record.
const POLL: Duration = Duration::from_millis(100);
/// Records handed on between two flushes of the pipeline, at most.
const RECORDS_PER_FLUSH: usize = 1024;
/// Bytes before a repartitioned record's value: the input partition (i32) and offset (i64),
/// big-endian.
const ORIGIN_BYTES: usize = 12;

/// A Kafka source feeding a state partition whose shards a consumer group shares.
pub(super) struct Group {
    options: KafkaOptions,
    /// The input topic.
    topic: String,
    /// How many shards: the input's partition count.
    shards: u32,
    /// The state partition: its index and name.
    index: usize,
    state: String,
    changelog: String,
    repartition: String,
    /// Whether the input is co-partitioned with the state: no repartition hop.
    co_partitioned: bool,
    /// The topic hop 2 reads: the repartition topic, or the input when co-partitioned.
    applied: String,
    /// Where shards given up are copied, with a resilience directory.
    copies: Option<LocalCopies>,
}

impl Group {
    /// Makes sure the internal topics exist, with as many partitions as the input.
    pub(super) fn new(
        options: &KafkaOptions,
        topic: &str,
        partitions: usize,
        index: usize,
        state: &str,
        co_partitioned: bool,
        local: Option<&std::path::Path>,
    ) -> Result<Group, ConnectorError> {
        let group = options.group.clone().unwrap_or_default();
        let changelog = internal_topic(&group, state, "changelog");
        let repartition = internal_topic(&group, state, "repartition");
        let error = |e: String| ConnectorError::new(format!("state \"{state}\": {e}"));
        ensure_topic(options, &changelog, partitions, true).map_err(error)?;
        if co_partitioned {
            tracing::info!(
                "kafka:{topic}: state \"{state}\" is shared by group {group} in {partitions} shards, \
                 one per partition of the input (co-partitioned); its changes go to `{changelog}`"
            );
        } else {
            ensure_topic(options, &repartition, partitions, false).map_err(error)?;
            tracing::info!(
                "kafka:{topic}: state \"{state}\" is shared by group {group} in {partitions} shards, \
                 through `{repartition}`; its changes go to `{changelog}`"
            );
        }
        Ok(Group {
            options: options.clone(),
            topic: topic.to_string(),
            shards: u32::try_from(partitions).map_err(|e| error(e.to_string()))?,
            index,
            state: state.to_string(),
            applied: if co_partitioned {
                topic.to_string()
            } else {
                repartition.clone()
            },
            repartition,
            co_partitioned,
            copies: local.map(|dir| LocalCopies::new(dir, &changelog)),
            changelog,
        })
    }

    fn error(&self, e: impl std::fmt::Display) -> ConnectorError {
        ConnectorError::new(format!("state \"{}\": {e}", self.state))
    }

    /// Runs both hops until the application stops.
    pub(super) fn run(self, mut input: SourceInput) -> Result<(), ConnectorError> {
        let workers = input.ctx().partitions[self.index].clone();
        for worker in &workers {
            let changelog =
                KafkaChangelog::new(&self.options, &self.changelog).map_err(|e| self.error(e))?;
            let by = if self.co_partitioned {
                ShardBy::Stream(
                    (0..self.shards)
                        .map(|shard| {
                            let partition = i32::try_from(shard).expect("shards fit an i32");
                            (
                                input.stream(&stream_name(&self.topic, partition)).id(),
                                shard,
                            )
                        })
                        .collect(),
                )
            } else {
                ShardBy::Hash
            };
            let attach = ShardControl::Attach {
                changelog: Box::new(changelog),
                shards: self.shards,
                by,
            };
            if worker.send((CONTROL, Box::new(attach))).is_err() {
                return Err(self.error("its workers stopped"));
            }
        }
        if self.co_partitioned {
            return Apply {
                group: &self,
                workers,
            }
            .run(&mut input, None);
        }
        // Set when hop 2 gives up, so that hop 1 does not wait for the application to stop.
        let quit = Arc::new(AtomicBool::new(false));
        let forward = {
            let probe = input.probe();
            let (options, topic) = (self.options.clone(), self.topic.clone());
            let (repartition, shards) = (self.repartition.clone(), self.shards);
            let quit = Arc::clone(&quit);
            std::thread::Builder::new()
                .name("wallaroo-repartition".into())
                .spawn(move || forward(&options, &topic, &repartition, shards, probe, &quit))
                .expect("cannot spawn a thread")
        };
        let applied = Apply {
            group: &self,
            workers,
        }
        .run(&mut input, Some(&forward));
        quit.store(true, Ordering::Release);
        let forwarded = forward
            .join()
            .unwrap_or_else(|_| Err(ConnectorError::new("the repartition thread panicked")));
        applied.and(forwarded)
    }
}

/// Hop 1: forwards each record of the input to the repartition topic's partitions of the
/// shards its messages reach.
fn forward(
    options: &KafkaOptions,
    topic: &str,
    repartition: &str,
    shards: u32,
    mut probe: Probe,
    quit: &AtomicBool,
) -> Result<(), ConnectorError> {
    // A record given up after a time (`message.timeout.ms`) while later ones are written
    // would leave a gap that the next forwarder fills after them, out of order: never.
    let producer: BaseProducer<Deliveries> = options
        .producer_config()
        .set("message.timeout.ms", "0")
        .create_with_context(Deliveries::default())
        .map_err(|e| ConnectorError::new(KafkaError::Config(e).to_string()))?;
    let context = Forwarding {
        topic: topic.to_string(),
        producer,
        read: (0..shards).map(|_| AtomicI64::new(NOTHING)).collect(),
    };
    let consumer: BaseConsumer<Forwarding> = options
        .consumer_config()
        .create_with_context(context)
        .map_err(|e| ConnectorError::new(KafkaError::Config(e).to_string()))?;
    consumer
        .subscribe(&[topic])
        .map_err(|e| ConnectorError::new(format!("cannot subscribe: {e}")))?;
    let context = consumer.context();
    let failed = |e: String| ConnectorError::new(format!("`{repartition}`: {e}"));
    let mut streams: HashMap<i32, StreamId> = HashMap::new();
    let mut reached = Vec::new();
    let mut value = Vec::new();
    let mut last_commit = Instant::now();
    let mut last_lag = Instant::now();
    set_shard_mode(ShardMode::probe(shards));
    while !probe.input.stopping() && !quit.load(Ordering::Acquire) {
        if let Some(polled) = consumer.poll(POLL) {
            match polled {
                Ok(record) => {
                    let partition = record.partition();
                    if usize::try_from(partition).map_or(true, |p| p >= context.read.len()) {
                        return Err(ConnectorError::new(format!(
                            "kafka:{topic} has more partitions than the {shards} it had at start: \
                             the state's shards are its partitions, and its changelog has {shards}"
                        )));
                    }
                    let input = &mut probe.input;
                    let stream = streams
                        .entry(partition)
                        .or_insert_with(|| input.stream(&stream_name(topic, partition)));
                    let payload = record.payload().unwrap_or(&[]);
                    let offset = record.offset();
                    input.push_at(stream, u64::try_from(offset).unwrap_or(0), payload);
                    take_probed(&mut reached);
                    value.clear();
                    value.extend_from_slice(&partition.to_be_bytes());
                    value.extend_from_slice(&offset.to_be_bytes());
                    value.extend_from_slice(payload);
                    for &shard in &reached {
                        let to = i32::try_from(shard).expect("shards fit an i32");
                        send(&context.producer, repartition, to, &value).map_err(failed)?;
                    }
                    context.forwarded(partition, offset + 1);
                }
                Err(e) => tracing::warn!("kafka:{topic}: {e}"),
            }
        }
        context.producer.poll(Duration::ZERO);
        context.producer.context().check().map_err(failed)?;
        if last_commit.elapsed() >= COMMIT_EVERY {
            probe.input.flush();
            probe.drain();
            context
                .commit(&consumer, None, CommitMode::Async)
                .map_err(failed)?;
            last_commit = Instant::now();
        }
        // Hop 1 reads the input topic: its lag is the source's.
        if last_lag.elapsed() >= super::LAG_EVERY {
            super::measure_lag(&consumer, topic, &probe.input.stats().kafka_lag);
            last_lag = Instant::now();
        }
    }
    context
        .commit(&consumer, None, CommitMode::Sync)
        .map_err(failed)
}

/// No record of a partition forwarded since the last commit.
const NOTHING: i64 = -1;

/// The forwarding consumer's context: what was forwarded of each input partition, to
/// commit once the producer has it acknowledged, and a revoked partition's records all
/// acknowledged and committed before it is given up, so that the process given it next
/// forwards its records after these, never among them (the state applies a stream's
/// records in order).
struct Forwarding {
    topic: String,
    producer: BaseProducer<Deliveries>,
    /// Per input partition, the offset after the last record forwarded since the last
    /// commit, or [`NOTHING`]. Atomics so that the callback can read them; written by the
    /// consumer's thread only.
    read: Vec<AtomicI64>,
}

impl Forwarding {
    fn forwarded(&self, partition: i32, next: i64) {
        if let Some(read) = usize::try_from(partition)
            .ok()
            .and_then(|p| self.read.get(p))
        {
            read.store(next, Ordering::Relaxed);
        }
    }

    /// Waits until every record forwarded is acknowledged, then commits the offsets after
    /// them, of `only` these partitions or of all.
    fn commit<C: ConsumerContext>(
        &self,
        consumer: &BaseConsumer<C>,
        only: Option<&[i32]>,
        mode: CommitMode,
    ) -> Result<(), String> {
        let mut offsets = TopicPartitionList::new();
        for (partition, read) in self.read.iter().enumerate() {
            let partition = i32::try_from(partition).expect("partitions fit an i32");
            if only.is_some_and(|only| !only.contains(&partition)) {
                continue;
            }
            let next = read.swap(NOTHING, Ordering::Relaxed);
            if next != NOTHING {
                let _ = offsets.add_partition_offset(&self.topic, partition, Offset::Offset(next));
            }
        }
        if offsets.count() == 0 {
            return Ok(());
        }
        flush_waiting(&self.producer, &format!("kafka:{} forwarded", self.topic))?;
        if let Err(e) = consumer.commit(&offsets, mode) {
            // A partition given to another process meanwhile: it forwards again from the
            // last commit; the state applies each record once.
            tracing::warn!(
                "kafka:{}: cannot commit offsets: {e}; the next commit will",
                self.topic
            );
        }
        Ok(())
    }
}

super::logged_context!(Forwarding);

impl ConsumerContext for Forwarding {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(list) = rebalance {
            let partitions: Vec<i32> = list
                .elements_for_topic(&self.topic)
                .iter()
                .map(|e| e.partition())
                .collect();
            if let Err(e) = self.commit(consumer, Some(&partitions), CommitMode::Sync) {
                tracing::error!(
                    "kafka:{}: giving partitions {partitions:?} up: {e}",
                    self.topic
                );
            }
        }
    }
}

/// Hands one record to the producer, to partition `partition`, waiting while its queue is
/// full.
fn send(
    producer: &BaseProducer<Deliveries>,
    topic: &str,
    partition: i32,
    value: &[u8],
) -> Result<(), String> {
    let record = BaseRecord::<(), [u8]>::to(topic)
        .partition(partition)
        .payload(value);
    send_waiting(producer, record).map_err(|e| format!("cannot produce: {e}"))
}

/// Hop 2: the repartition topic's partitions held by this process (or the input's, when
/// co-partitioned), applied.
struct Apply<'a> {
    group: &'a Group,
    workers: Vec<flume::Sender<WorkerMsg>>,
}

/// What the applying consumer holds.
#[derive(Default)]
struct Held {
    /// The offset after the last record read of each partition (shard) held.
    read: HashMap<i32, i64>,
    /// Partitions held.
    partitions: Vec<i32>,
}

impl Apply<'_> {
    fn run(
        &self,
        input: &mut SourceInput,
        forward: Option<&JoinHandle<Result<(), ConnectorError>>>,
    ) -> Result<(), ConnectorError> {
        let group = self.group;
        let context = Deferred {
            topic: group.applied.clone(),
            closing: AtomicBool::new(false),
            pending: AtomicBool::new(false),
            events: Mutex::new(Vec::new()),
        };
        // A group of its own, named after the topic: the group of the input's consumers
        // subscribes to another topic, and a group whose members subscribe to different
        // topics is one that brokers handle least well (tansu left restarts unassigned).
        // A co-partitioned input is read in the group `--group` itself.
        let mut config = group.options.consumer_config();
        if !group.co_partitioned {
            config.set("group.id", &group.repartition);
        }
        let consumer: BaseConsumer<Deferred> = config
            .create_with_context(context)
            .map_err(|e| ConnectorError::new(KafkaError::Config(e).to_string()))?;
        // However this ends, the consumer gives its partitions up at once when it closes.
        let _closing = Closing(&consumer);
        consumer
            .subscribe(&[&group.applied])
            .map_err(|e| ConnectorError::new(format!("cannot subscribe: {e}")))?;
        let mut held = Held::default();
        // The stream of each input partition, as the state's origins name it.
        let mut streams: HashMap<i32, StreamId> = HashMap::new();
        let mut records = 0u64;
        let mut unflushed = 0;
        let mut last_commit = Instant::now();
        let mut last_lag = Instant::now();
        let result = loop {
            if input.stopping() {
                break Ok(());
            }
            if forward.is_some_and(JoinHandle::is_finished) {
                // Hop 1 ended before the application stopped: its error is reported.
                break Ok(());
            }
            let polled = consumer.poll(POLL);
            if consumer.context().pending.swap(false, Ordering::AcqRel) {
                let events =
                    std::mem::take(&mut *consumer.context().events.lock().expect("events lock"));
                for event in events {
                    self.rebalance(&consumer, event, input, &mut held)?;
                }
            }
            match polled {
                Some(Ok(record)) => {
                    let shard = record.partition();
                    let value = record.payload().unwrap_or(&[]);
                    let (from, offset, payload) = if group.co_partitioned {
                        if u32::try_from(shard).map_or(true, |s| s >= group.shards) {
                            break Err(group.error(format!(
                                "kafka:{} has more partitions than the {} it had at start: the \
                                 state's shards are its partitions, and its changelog has {}",
                                group.topic, group.shards, group.shards
                            )));
                        }
                        (shard, record.offset(), value)
                    } else {
                        let Some((origin, payload)) = value.split_at_checked(ORIGIN_BYTES) else {
                            tracing::warn!(
                                "`{}` partition {shard} offset {}: not a repartitioned record; skipped",
                                group.repartition,
                                record.offset()
                            );
                            continue;
                        };
                        let from = i32::from_be_bytes(origin[..4].try_into().expect("4 bytes"));
                        let offset = i64::from_be_bytes(origin[4..].try_into().expect("8 bytes"));
                        (from, offset, payload)
                    };
                    let stream = streams
                        .entry(from)
                        .or_insert_with(|| input.stream(&stream_name(&group.topic, from)));
                    records += 1;
                    if !group.co_partitioned {
                        set_shard_mode(ShardMode::only(
                            u32::try_from(shard).unwrap_or(0),
                            group.shards,
                            records,
                        ));
                    }
                    input.push_at(stream, u64::try_from(offset).unwrap_or(0), payload);
                    held.read.insert(shard, record.offset() + 1);
                    unflushed += 1;
                    if unflushed >= RECORDS_PER_FLUSH {
                        input.flush();
                        unflushed = 0;
                    }
                }
                Some(Err(e)) => tracing::warn!("`{}`: {e}", group.applied),
                None => {
                    input.flush();
                    unflushed = 0;
                }
            }
            if last_commit.elapsed() >= COMMIT_EVERY && !held.read.is_empty() {
                input.flush();
                unflushed = 0;
                // What was read is applied and in the changelog before it is committed.
                self.ask(|done| ShardControl::Sync { done })?;
                commit(&consumer, &group.applied, &mut held.read, CommitMode::Async);
                last_commit = Instant::now();
            }
            // A co-partitioned input is read here (otherwise hop 1 measures it).
            if group.co_partitioned && last_lag.elapsed() >= super::LAG_EVERY {
                super::measure_lag(&consumer, &group.topic, &input.stats().kafka_lag);
                last_lag = Instant::now();
            }
        };
        // Every partition held is released as a revocation would, so that the process
        // given it next reads every change from the changelog.
        let partitions = held.partitions.clone();
        self.release(&consumer, &partitions, input, &mut held, false)?;
        result
    }

    /// Sends `control` (made per worker, answering on the channel it is given) to every
    /// worker and waits for their answers; the sum of what they counted.
    fn ask(
        &self,
        control: impl Fn(flume::Sender<Result<usize, String>>) -> ShardControl,
    ) -> Result<usize, ConnectorError> {
        let (tx, rx) = flume::unbounded();
        for worker in &self.workers {
            if worker
                .send((CONTROL, Box::new(control(tx.clone()))))
                .is_err()
            {
                return Err(self.group.error("its workers stopped"));
            }
        }
        drop(tx);
        let mut total = 0;
        for _ in &self.workers {
            match rx.recv() {
                Ok(Ok(n)) => total += n,
                Ok(Err(e)) => return Err(self.group.error(e)),
                Err(_) => return Err(self.group.error("a worker stopped before it answered")),
            }
        }
        Ok(total)
    }

    /// Carries out a rebalance that librdkafka's callback left to this thread.
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Deferred>,
        event: Event,
        input: &mut SourceInput,
        held: &mut Held,
    ) -> Result<(), ConnectorError> {
        let topic = &self.group.applied;
        let take = |result: Result<(), ClientError>| {
            result.map_err(|e| {
                ConnectorError::new(format!(
                    "`{topic}`: cannot take the rebalance's partitions: {e}"
                ))
            })
        };
        let partitions = |list: &TopicPartitionList| -> Vec<i32> {
            list.elements_for_topic(topic)
                .iter()
                .map(|e| e.partition())
                .collect()
        };
        match event {
            Event::Assign(list) => {
                self.restore(&partitions(&list), held)?;
                take(consumer.incremental_assign(&list))
            }
            Event::Revoke(list, lost) => {
                self.release(consumer, &partitions(&list), input, held, lost)?;
                take(consumer.incremental_unassign(&list))
            }
        }
    }

    /// Reads the states of shards `partitions` back from the changelog into the workers.
    fn restore(&self, partitions: &[i32], held: &mut Held) -> Result<(), ConnectorError> {
        if partitions.is_empty() {
            return Ok(());
        }
        let group = self.group;
        let start = Instant::now();
        // A copy is taken (its file gone) before the shard's records are applied.
        let copies: HashMap<i32, Copy> = match &group.copies {
            Some(copies) => partitions
                .iter()
                .filter_map(|&p| copies.take(p).map(|copy| (p, copy)))
                .collect(),
            None => HashMap::new(),
        };
        let warm: Vec<i32> = copies.keys().copied().collect();
        let read = read_partitions(&group.options, &group.changelog, partitions, copies)
            .map_err(|e| group.error(e))?;
        let (mut states, mut bytes) = (0, 0);
        for (partition, restored) in read {
            let records = restored.records;
            bytes += records
                .iter()
                .map(|(k, v)| k.len() + v.len())
                .sum::<usize>();
            let records = Arc::new(records);
            states += self.ask(|done| ShardControl::Restore {
                shard: u32::try_from(partition).unwrap_or(0),
                epoch: restored.epoch,
                records: Arc::clone(&records),
                done,
            })?;
            held.partitions.push(partition);
        }
        let local = if warm.is_empty() {
            String::new()
        } else {
            format!("; shards {warm:?} from their local copy and the changelog after it")
        };
        tracing::info!(
            "state \"{}\": shards {partitions:?} taken, {states} states restored from `{}` ({bytes} bytes) in {:.0} ms{local}",
            group.state,
            group.changelog,
            start.elapsed().as_secs_f64() * 1e3
        );
        Ok(())
    }

    /// Gives shards up: what was read of them is applied and in the changelog, their
    /// offsets are committed, the workers drop their keys. Shards `lost` (the group gave
    /// them to another process already, this one having stalled past its session) are
    /// dropped without a word more to the changelog or the offsets.
    fn release(
        &self,
        consumer: &BaseConsumer<Deferred>,
        partitions: &[i32],
        input: &mut SourceInput,
        held: &mut Held,
        lost: bool,
    ) -> Result<(), ConnectorError> {
        if partitions.is_empty() {
            return Ok(());
        }
        // What was read is routed before the workers are asked: they answer after it.
        input.flush();
        let mut dropped = 0;
        // The records of each shard, for its local copy.
        let mut copied: Vec<(i32, Records)> = Vec::new();
        for &partition in partitions {
            let (tx, rx) = flume::unbounded();
            let copy = (self.group.copies.is_some() && !lost).then_some(tx);
            dropped += self.ask(|done| ShardControl::Release {
                shard: u32::try_from(partition).unwrap_or(0),
                lost,
                copy: copy.clone(),
                done,
            })?;
            // The workers sent their records before they answered. (A shard held has no
            // copy on disk: it was taken when the shard was.)
            if copy.is_some() {
                copied.push((partition, rx.drain().flatten().collect()));
            }
            held.partitions.retain(|p| *p != partition);
        }
        let mut released: HashMap<i32, i64> = partitions
            .iter()
            .filter_map(|p| held.read.remove(p).map(|next| (*p, next)))
            .collect();
        if lost {
            tracing::warn!(
                "state \"{}\": shards {partitions:?} were lost (this process stalled past its session) and dropped",
                self.group.state
            );
            return Ok(());
        }
        commit(
            consumer,
            &self.group.applied,
            &mut released,
            CommitMode::Sync,
        );
        self.save_copies(&copied);
        tracing::info!(
            "state \"{}\": shards {partitions:?} released ({dropped} states)",
            self.group.state
        );
        Ok(())
    }
}

impl Apply<'_> {
    /// Writes the local copy of each shard given up, as of a fence written after every
    /// change of it: a failure costs the next restore of the shard its warm start, nothing
    /// more.
    fn save_copies(&self, copied: &[(i32, Records)]) {
        let Some(copies) = &self.group.copies else {
            return;
        };
        if copied.is_empty() {
            return;
        }
        let partitions: Vec<i32> = copied.iter().map(|(p, _)| *p).collect();
        let fences = match fence(&self.group.options, &self.group.changelog, &partitions) {
            Ok(fences) => fences,
            Err(e) => {
                tracing::warn!(
                    "state \"{}\": no local copy of shards {partitions:?}: {e}",
                    self.group.state
                );
                return;
            }
        };
        for (partition, records) in copied {
            let Some(&checkpoint) = fences.get(partition) else {
                continue;
            };
            if let Err(e) = copies.save(*partition, checkpoint, records) {
                tracing::warn!(
                    "state \"{}\": no local copy of shard {partition}: {e}",
                    self.group.state
                );
            }
        }
    }
}

/// Commits the offsets of `read`, and forgets them.
fn commit(
    consumer: &BaseConsumer<Deferred>,
    topic: &str,
    read: &mut HashMap<i32, i64>,
    mode: CommitMode,
) {
    let mut offsets = TopicPartitionList::new();
    for (partition, next) in read.drain() {
        let _ = offsets.add_partition_offset(topic, partition, Offset::Offset(next));
    }
    if offsets.count() > 0 {
        if let Err(e) = consumer.commit(&offsets, mode) {
            tracing::warn!("`{topic}`: cannot commit offsets: {e}; the next commit will");
        }
    }
}

/// A rebalance left to the consumer's thread.
enum Event {
    Assign(TopicPartitionList),
    /// Partitions to give up, and whether the group took them already.
    Revoke(TopicPartitionList, bool),
}

/// The applying consumer's context: rebalances are queued as [`Event`]s for its thread.
struct Deferred {
    topic: String,
    /// The consumer is closing: partitions are given up at once.
    closing: AtomicBool,
    /// Whether `events` has something.
    pending: AtomicBool,
    events: Mutex<Vec<Event>>,
}

super::logged_context!(Deferred);

impl ConsumerContext for Deferred {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        partitions: &mut TopicPartitionList,
    ) {
        let closing = self.closing.load(Ordering::Acquire);
        let result = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS if !closing => {
                self.defer(Event::Assign(partitions.clone()));
                Ok(())
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS if !closing => {
                self.defer(Event::Revoke(
                    partitions.clone(),
                    consumer.assignment_lost(),
                ));
                Ok(())
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => Ok(()),
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                consumer.incremental_unassign(partitions)
            }
            other => {
                tracing::error!("`{}`: rebalance failed: {other:?}", self.topic);
                Ok(())
            }
        };
        if let Err(e) = result {
            tracing::error!("`{}`: cannot give partitions up: {e}", self.topic);
        }
    }
}

impl Deferred {
    fn defer(&self, event: Event) {
        self.events.lock().expect("events lock").push(event);
        self.pending.store(true, Ordering::Release);
    }
}

/// Sets the consumer's context closing when dropped, before the consumer is.
struct Closing<'a>(&'a BaseConsumer<Deferred>);

impl Drop for Closing<'_> {
    fn drop(&mut self) {
        self.0.context().closing.store(true, Ordering::Release);
    }
}
