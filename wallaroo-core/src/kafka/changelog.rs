//! A state's changelog topic: where the workers write each change of a key's state, and
//! where a process given a partition reads its states back.
//!
//! One topic per state, `GROUP-STATE-changelog`, partitioned like the state topic (the
//! input topic whose partitions are the state's shards), compacted where the broker keeps
//! only the last record of a key. Record key: the state's key (postcard); value: the
//! state's version and layout, the state, and the per-stream positions it reflects. A
//! record with an empty key is a fence: where a restore's read ended.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Message, Offset, TopicPartitionList};

use super::local::Copy;
use super::{
    flush_waiting, partition_count, send_waiting, Deliveries, KafkaError, KafkaOptions, Logged,
};
use crate::shard::{ChangelogHeader, ChangelogWriter};

/// How long a changelog read may go without a record before it gives up.
const READ_STALL: Duration = Duration::from_secs(60);
/// How often a flush that waits for the brokers says so.
const FLUSH_NOTE: Duration = Duration::from_secs(10);

/// Runs a future of the admin client to its end on this thread (the client has its own
/// thread that completes it).
fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Arc::new(Unpark(std::thread::current())).into();
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::park();
    }
}

/// Creates `topic` with `partitions` partitions (`compact`: keeping only the last record
/// of a key), unless it exists; an existing topic must have as many partitions (a state's
/// shards are the input's partitions).
pub(crate) fn ensure_topic(
    options: &KafkaOptions,
    topic: &str,
    partitions: usize,
    compact: bool,
) -> Result<(), String> {
    let mut config = options.producer_config();
    config.remove("enable.idempotence");
    config.remove("acks");
    let admin: AdminClient<DefaultClientContext> = config
        .create()
        .map_err(|e| KafkaError::Config(e).to_string())?;
    let count = i32::try_from(partitions).map_err(|_| "too many partitions".to_string())?;
    let mut new = NewTopic::new(topic, count, TopicReplication::Fixed(-1));
    if compact {
        new = new.set("cleanup.policy", "compact");
    }
    let wait = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let created = block_on(admin.create_topics([&new], &wait))
        .map_err(|e| format!("cannot create topic `{topic}`: {e}"))?;
    for result in created {
        match result {
            Ok(_) => tracing::info!("created topic `{topic}` ({partitions} partitions)"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((_, code)) => return Err(format!("cannot create topic `{topic}`: {code}")),
        }
    }
    let found =
        partition_count(options, topic, Duration::from_secs(10)).map_err(|e| e.to_string())?;
    if found != partitions {
        return Err(format!(
            "topic `{topic}` has {found} partitions, the input {partitions}: a changelog is \
             partitioned like its input; delete it (its states are lost) or give the input as \
             many partitions"
        ));
    }
    Ok(())
}

/// A record's key that marks where a read of a changelog partition ends (no state's key
/// is empty: postcard writes at least one byte).
const FENCE: &[u8] = b"";

/// A producer's context that keeps the offset of the last record delivered to each
/// partition.
#[derive(Default)]
struct Fences {
    offsets: Mutex<HashMap<i32, Result<i64, String>>>,
}

super::logged_context!(Fences);

impl ProducerContext for Fences {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        let (partition, offset) = match result {
            Ok(record) => (record.partition(), Ok(record.offset())),
            Err((error, record)) => (record.partition(), Err(error.to_string())),
        };
        self.offsets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(partition, offset);
    }
}

/// Writes a fence record to each of `partitions` of `topic`; returns the offset of each.
/// Every record acknowledged before the fence is before it: a read up to the fence has
/// them all, whatever the brokers say of a partition's end (tansu's high watermark leaves
/// out the tail of the last batch).
pub(crate) fn fence(
    options: &KafkaOptions,
    topic: &str,
    partitions: &[i32],
) -> Result<HashMap<i32, i64>, String> {
    let producer: BaseProducer<Fences> = options
        .producer_config()
        .create_with_context(Fences::default())
        .map_err(|e| KafkaError::Config(e).to_string())?;
    for &partition in partitions {
        let record = BaseRecord::<[u8], [u8]>::to(topic)
            .partition(partition)
            .key(FENCE)
            .payload(&[]);
        producer
            .send(record)
            .map_err(|(e, _)| format!("cannot write to `{topic}`: {e}"))?;
    }
    let start = Instant::now();
    while producer.flush(FLUSH_NOTE).is_err() {
        tracing::warn!(
            "`{topic}`: a fence not acknowledged after {:.0} s; waiting for the brokers",
            start.elapsed().as_secs_f64()
        );
    }
    let offsets = std::mem::take(&mut *producer.context().offsets.lock().expect("offsets"));
    offsets
        .into_iter()
        .map(|(partition, offset)| {
            offset
                .map(|o| (partition, o))
                .map_err(|e| format!("cannot write to `{topic}` partition {partition}: {e}"))
        })
        .collect()
}

/// A changelog partition's records, one per key, as `(key, value)`.
pub(crate) use crate::shard::ShardRecords as Records;

/// What a restore read of a changelog partition: the record of each key written under the
/// highest epoch (the last of those), and the epoch of this reader's ownership (the offset
/// of its fence).
pub(crate) struct Restored {
    pub(crate) epoch: u64,
    pub(crate) records: Records,
}

/// The epoch a changelog value was written under (0 if it does not say).
fn epoch_of(value: &[u8]) -> u64 {
    postcard::take_from_bytes::<ChangelogHeader>(value).map_or(0, |(header, _)| header.epoch)
}

/// Per key, the epoch and value of the record a restore takes.
type Kept = HashMap<Vec<u8>, (u64, Vec<u8>)>;

/// Takes the record of `key` read next (`None`: a tombstone, the key has no state), unless
/// a record of a later owner was taken already: a record of an earlier owner, written late
/// by a process that had lost the shard without knowing, does not override it.
fn take(kept: &mut Kept, key: &[u8], value: Option<&[u8]>) {
    match value {
        Some(value) => {
            let epoch = epoch_of(value);
            if kept.get(key).is_none_or(|(taken, _)| epoch >= *taken) {
                kept.insert(key.to_vec(), (epoch, value.to_vec()));
            }
        }
        None => {
            kept.remove(key);
        }
    }
}

/// Reads partitions `partitions` of `topic` up to a fence written now, from their start or,
/// for a partition with a local copy in `copies`, from the copy's checkpoint on top of its
/// records; returns, per partition, what a restore takes ([`Restored`]).
pub(crate) fn read_partitions(
    options: &KafkaOptions,
    topic: &str,
    partitions: &[i32],
    mut copies: HashMap<i32, Copy>,
) -> Result<HashMap<i32, Restored>, String> {
    // A group for librdkafka to accept the assignment; it is never joined (no subscription)
    // and nothing is committed under it.
    let mut config = options.consumer_config();
    config.set("group.id", format!("{topic}-reader"));
    let consumer: BaseConsumer<Logged> = config
        .create_with_context(Logged)
        .map_err(|e| KafkaError::Config(e).to_string())?;
    // Per partition still to read, the offset of its fence.
    let mut ends = fence(options, topic, partitions)?;
    let mut list = TopicPartitionList::new();
    let epochs: HashMap<i32, u64> = ends
        .iter()
        .map(|(p, fence)| (*p, u64::try_from(*fence).unwrap_or(0)))
        .collect();
    // Per partition and key: the epoch and value of the record kept.
    let mut last: HashMap<i32, Kept> = HashMap::new();
    for &partition in partitions {
        let mut kept = Kept::new();
        let mut from = Offset::Beginning;
        if let Some(copy) = copies.remove(&partition) {
            match ends.get(&partition) {
                Some(&end) if copy.checkpoint < end => {
                    for (key, value) in copy.records {
                        kept.insert(key, (epoch_of(&value), value));
                    }
                    from = Offset::Offset(copy.checkpoint);
                }
                _ => tracing::warn!(
                    "`{topic}` partition {partition} ends before the local copy's checkpoint \
                     {}: the topic was made again; the copy is left aside",
                    copy.checkpoint
                ),
            }
        }
        last.insert(partition, kept);
        list.add_partition_offset(topic, partition, from)
            .map_err(|e| e.to_string())?;
    }
    tracing::debug!("reading `{topic}` partitions up to {ends:?}");
    consumer.assign(&list).map_err(|e| e.to_string())?;
    let mut progress = Instant::now();
    while !ends.is_empty() {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(record)) => {
                progress = Instant::now();
                let (partition, offset) = (record.partition(), record.offset());
                let Some(&end) = ends.get(&partition) else {
                    continue;
                };
                match (record.key(), last.get_mut(&partition)) {
                    (Some(FENCE) | None, _) | (_, None) => {}
                    (Some(key), Some(keys)) => take(keys, key, record.payload()),
                }
                if offset >= end {
                    ends.remove(&partition);
                }
            }
            Some(Err(e)) => tracing::warn!("reading `{topic}`: {e}"),
            None if progress.elapsed() > READ_STALL => {
                return Err(format!(
                    "reading `{topic}`: no record for {} s, partitions {:?} not read to their end",
                    READ_STALL.as_secs(),
                    ends.keys().collect::<Vec<_>>()
                ))
            }
            None => {}
        }
    }
    Ok(last
        .into_iter()
        .map(|(partition, keys)| {
            let restored = Restored {
                epoch: epochs.get(&partition).copied().unwrap_or(0),
                records: keys.into_iter().map(|(k, (_, v))| (k, v)).collect(),
            };
            (partition, restored)
        })
        .collect())
}

/// A worker's writer to a changelog topic: an idempotent producer.
pub(crate) struct KafkaChangelog {
    topic: String,
    producer: BaseProducer<Deliveries>,
}

impl KafkaChangelog {
    pub(crate) fn new(options: &KafkaOptions, topic: &str) -> Result<Self, String> {
        let producer = options
            .producer_config()
            .create_with_context(Deliveries::default())
            .map_err(|e| KafkaError::Config(e).to_string())?;
        Ok(KafkaChangelog {
            topic: topic.to_string(),
            producer,
        })
    }
}

impl ChangelogWriter for KafkaChangelog {
    fn put(&mut self, shard: u32, key: &[u8], value: &[u8]) -> Result<(), String> {
        let partition = i32::try_from(shard).map_err(|e| e.to_string())?;
        let record = BaseRecord::<[u8], [u8]>::to(&self.topic)
            .partition(partition)
            .key(key)
            .payload(value);
        send_waiting(&self.producer, record)
            .map_err(|e| format!("`{}`: cannot produce: {e}", self.topic))
    }

    fn flush(&mut self) -> Result<(), String> {
        flush_waiting(&self.producer, &format!("changelog `{}`", self.topic))
            .map_err(|e| format!("`{}`: {e}", self.topic))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(epoch: u64, state: u8) -> Vec<u8> {
        let header = ChangelogHeader {
            epoch,
            version: 0,
            layout: "",
        };
        let mut value = postcard::to_allocvec(&header).unwrap();
        value.push(state);
        value
    }

    #[test]
    fn a_late_record_of_an_earlier_owner_does_not_override_a_later_owners() {
        let mut kept = Kept::new();
        take(&mut kept, b"a", Some(&value(5, 1)));
        take(&mut kept, b"a", Some(&value(9, 2)));
        // Written late by the owner of epoch 5, after the owner of epoch 9 wrote.
        take(&mut kept, b"a", Some(&value(5, 3)));
        assert_eq!(kept[&b"a"[..]], (9, value(9, 2)));
        // The same owner's later record is taken.
        take(&mut kept, b"a", Some(&value(9, 4)));
        assert_eq!(kept[&b"a"[..]].1, value(9, 4));
        // A record of an earlier owner for a key the later one never wrote is taken.
        take(&mut kept, b"b", Some(&value(5, 7)));
        assert_eq!(kept[&b"b"[..]].0, 5);
        take(&mut kept, b"b", None);
        assert!(!kept.contains_key(&b"b"[..]));
    }
}
