//! What every Kafka client of wallaroo shares (cargo feature `kafka`): the `kafka:TOPIC`
//! endpoint form, the brokers and options a user gives (`--brokers`, `--group`,
//! `--kafka-option`), the librdkafka configurations built from them, and the checks made
//! before a client starts: that the brokers answer, and that a topic exists.
//!
//! The clients are rdkafka's synchronous ones ([`rdkafka::consumer::BaseConsumer`],
//! [`rdkafka::producer::BaseProducer`]); librdkafka's own log lines go to `tracing` through
//! [`Logged`], target `librdkafka`.
//!
//! ```no_run
//! use std::time::Duration;
//! use wallaroo_core::kafka::{self, KafkaOptions};
//!
//! let options = KafkaOptions::new(KafkaOptions::parse_brokers("127.0.0.1:9092")?);
//! kafka::wait_for_brokers(&options, Some(Duration::from_secs(10)))?;
//! let partitions = kafka::partition_count(&options, "votes", Duration::from_secs(5))?;
//! # Ok::<(), kafka::KafkaError>(())
//! ```

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError as ClientError;
use rdkafka::message::{DeliveryResult, Message, ToBytes};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;

mod changelog;
mod group;
mod local;
mod sink;
mod source;

/// How often a source measures its consumer's lag.
pub(crate) const LAG_EVERY: Duration = Duration::from_secs(1);

/// Measures the lag of `consumer`'s partitions of `topic` into `lag` (a source's
/// `kafka_lag`), for `/metrics`:
/// per partition assigned, the high watermark less the next offset the application reads
/// (`kafka-consumer-groups`' lag, but from the position read rather than the committed
/// one). Nothing here asks the brokers: the assignment and positions are the consumer's
/// own, and the watermarks are those librdkafka caches from each fetch
/// response (`fetch_watermarks` would be a round trip per partition; the statistics
/// callback would add a JSON document to parse every interval for one number per
/// partition). A partition whose watermark is not known yet (nothing fetched) is left
/// out; one not read from yet counts from its low watermark.
pub(crate) fn measure_lag<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    topic: &str,
    lag: &Mutex<Option<Vec<(i32, i64)>>>,
) {
    let measured = consumer
        .position()
        .map(|positions| {
            positions
                .elements_for_topic(topic)
                .iter()
                .filter_map(|element| {
                    let partition = element.partition();
                    let (low, high) = cached_watermarks(consumer, topic, partition)?;
                    if high < 0 {
                        return None;
                    }
                    let next = match element.offset() {
                        rdkafka::Offset::Offset(next) => next,
                        _ => low.max(0),
                    };
                    Some((partition, high.saturating_sub(next).max(0)))
                })
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    *lag.lock().unwrap_or_else(|e| e.into_inner()) = Some(measured);
}

/// The low and high watermarks of `topic`'s `partition` as librdkafka last saw them in a
/// fetch response (`rd_kafka_get_watermark_offsets`, which rdkafka 0.39 does not wrap): no
/// request to the brokers. `None` if the topic's name has a NUL or the call fails.
fn cached_watermarks<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    topic: &str,
    partition: i32,
) -> Option<(i64, i64)> {
    let name = std::ffi::CString::new(topic).ok()?;
    let (mut low, mut high) = (-1i64, -1i64);
    // SAFETY: the client pointer is the consumer's, alive while it is borrowed; the name is
    // a NUL-terminated string alive for the call; the outputs are two valid i64s.
    // librdkafka only reads its own cache under its own lock.
    let error = unsafe {
        rdkafka::bindings::rd_kafka_get_watermark_offsets(
            consumer.client().native_ptr(),
            name.as_ptr(),
            partition,
            &mut low,
            &mut high,
        )
    };
    (error == rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR)
        .then_some((low, high))
}

/// The stream name of a partition: the same in every run and every process.
pub(crate) fn stream_name(topic: &str, partition: i32) -> String {
    format!("kafka:{topic}/{partition}")
}

/// The Kafka client library, for code that builds its own clients from a [`KafkaOptions`].
pub use rdkafka;
pub use sink::KafkaSink;
pub use source::KafkaSource;

/// The prefix of a Kafka endpoint: `kafka:TOPIC`.
pub const SCHEME: &str = "kafka:";

/// A Kafka client's failure, with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    /// `--brokers` is empty or holds an empty entry.
    #[error("`{0}` is not a list of brokers: give HOST:PORT[,HOST:PORT…], e.g. 127.0.0.1:9092")]
    BadBrokers(String),
    /// A `--kafka-option` without `=`.
    #[error(
        "`{0}` is not a Kafka option: write KEY=VALUE with a librdkafka property, \
         e.g. session.timeout.ms=6000"
    )]
    BadOption(String),
    /// `kafka:` without a topic, or a topic name Kafka rejects.
    #[error(
        "`{0}` is not a Kafka topic: a name of 1 to 249 characters among a-z, A-Z, 0-9, \
         `.`, `_` and `-`, as in kafka:votes"
    )]
    BadTopic(String),
    /// librdkafka refused the configuration (an unknown property, a bad value).
    #[error("the Kafka client cannot be created: {0} (check the --kafka-option values)")]
    Config(#[source] ClientError),
    /// No broker answered within the time allowed.
    #[error(
        "no Kafka broker answered at {brokers} within {:.1} s (last error: {last}); \
         is the broker running, and is --brokers right?",
        waited.as_secs_f64()
    )]
    Unreachable {
        /// The bootstrap brokers.
        brokers: String,
        /// How long it tried.
        waited: Duration,
        /// What the last attempt said.
        last: String,
    },
    /// The topic does not exist on the brokers.
    #[error(
        "topic `{topic}` does not exist on the brokers at {brokers}: create it first, e.g. \
         `kafka-topics.sh --bootstrap-server {brokers} --create --topic {topic} --partitions 8`"
    )]
    NoTopic {
        /// The missing topic.
        topic: String,
        /// The bootstrap brokers.
        brokers: String,
    },
    /// The brokers answered about the topic with an error.
    #[error("the brokers at {brokers} cannot describe topic `{topic}`: {reason}")]
    Metadata {
        /// The topic asked about.
        topic: String,
        /// The bootstrap brokers.
        brokers: String,
        /// What went wrong.
        reason: String,
    },
}

/// The Kafka settings a user gives on the command line: the bootstrap brokers
/// (`--brokers`), the consumer group (`--group`), and librdkafka properties
/// (`--kafka-option KEY=VALUE`, applied last, so that they win over wallaroo's defaults).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KafkaOptions {
    /// `HOST:PORT` of each bootstrap broker.
    pub brokers: Vec<String>,
    /// The consumer group of consumers (`group.id`). librdkafka wants one for any consumer
    /// that reads, even from partitions it assigns itself; without one, a consumer can only
    /// ask for metadata.
    pub group: Option<String>,
    /// librdkafka properties, in the order given.
    pub options: Vec<(String, String)>,
}

impl KafkaOptions {
    /// Options for `brokers`, no group, no extra property.
    pub fn new(brokers: Vec<String>) -> KafkaOptions {
        KafkaOptions {
            brokers,
            group: None,
            options: Vec::new(),
        }
    }

    /// Parses `--brokers HOST:PORT[,HOST:PORT…]`.
    ///
    /// ```
    /// use wallaroo_core::kafka::KafkaOptions;
    /// assert_eq!(KafkaOptions::parse_brokers("a:1, b:2").unwrap(), ["a:1", "b:2"]);
    /// assert!(KafkaOptions::parse_brokers("a:1,,b:2").is_err());
    /// ```
    pub fn parse_brokers(text: &str) -> Result<Vec<String>, KafkaError> {
        let brokers: Vec<String> = text.split(',').map(|b| b.trim().to_string()).collect();
        if brokers
            .iter()
            .any(|b| b.is_empty() || b.contains(char::is_whitespace))
        {
            return Err(KafkaError::BadBrokers(text.to_string()));
        }
        Ok(brokers)
    }

    /// Parses one `--kafka-option KEY=VALUE` (the value may hold `=`, and may be empty).
    ///
    /// ```
    /// use wallaroo_core::kafka::KafkaOptions;
    /// assert_eq!(
    ///     KafkaOptions::parse_option("sasl.password=a=b").unwrap(),
    ///     ("sasl.password".to_string(), "a=b".to_string())
    /// );
    /// assert!(KafkaOptions::parse_option("linger.ms").is_err());
    /// ```
    pub fn parse_option(text: &str) -> Result<(String, String), KafkaError> {
        match text.split_once('=') {
            Some((key, value)) if !key.trim().is_empty() => {
                Ok((key.trim().to_string(), value.to_string()))
            }
            _ => Err(KafkaError::BadOption(text.to_string())),
        }
    }

    /// The brokers as librdkafka's `bootstrap.servers` takes them, comma-separated.
    pub fn bootstrap(&self) -> String {
        self.brokers.join(",")
    }

    /// The configuration of a consumer: in the group if there is one, offsets committed by
    /// the application only (`enable.auto.commit=false`), cooperative rebalancing
    /// (`partition.assignment.strategy=cooperative-sticky`), from the start of a partition
    /// that has no committed offset (`auto.offset.reset=earliest`); then the user's options.
    pub fn consumer_config(&self) -> ClientConfig {
        let mut config = self.common();
        config
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("partition.assignment.strategy", "cooperative-sticky");
        if let Some(group) = &self.group {
            config.set("group.id", group);
        }
        self.apply_user_options(&mut config);
        config
    }

    /// The configuration of a producer: idempotent (`enable.idempotence=true`: no record
    /// written twice or out of order by a retry), all in-sync replicas acknowledging; then
    /// the user's options.
    pub fn producer_config(&self) -> ClientConfig {
        let mut config = self.common();
        config.set("enable.idempotence", "true").set("acks", "all");
        self.apply_user_options(&mut config);
        config
    }

    fn common(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", self.bootstrap())
            .set("client.id", "wallaroo")
            .set_log_level(RDKafkaLogLevel::Info);
        config
    }

    fn apply_user_options(&self, config: &mut ClientConfig) {
        for (key, value) in &self.options {
            config.set(key, value);
        }
    }

    /// A consumer outside any group, for metadata: the user's options apply, the group does
    /// not (a metadata request never joins a group nor creates a topic).
    fn metadata_client(&self) -> Result<BaseConsumer<Logged>, KafkaError> {
        let mut config = KafkaOptions {
            group: None,
            ..self.clone()
        }
        .consumer_config();
        config.remove("group.id");
        config.set("allow.auto.create.topics", "false");
        config
            .create_with_context(Logged)
            .map_err(KafkaError::Config)
    }
}

/// The topic of a `kafka:TOPIC` endpoint; `None` if `endpoint` is not a Kafka endpoint;
/// an error if the topic is not a name Kafka accepts.
///
/// ```
/// use wallaroo_core::kafka::topic_of;
/// assert_eq!(topic_of("kafka:votes").unwrap(), Some("votes"));
/// assert_eq!(topic_of("127.0.0.1:7000").unwrap(), None);
/// assert!(topic_of("kafka:").is_err());
/// assert!(topic_of("kafka:a b").is_err());
/// ```
pub fn topic_of(endpoint: &str) -> Result<Option<&str>, KafkaError> {
    match endpoint.strip_prefix(SCHEME) {
        None => Ok(None),
        Some(topic) if is_topic_name(topic) => Ok(Some(topic)),
        Some(_) => Err(KafkaError::BadTopic(endpoint.to_string())),
    }
}

/// Whether Kafka accepts `name` as a topic name.
fn is_topic_name(name: &str) -> bool {
    (1..=249).contains(&name.len())
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Implements `ClientContext` for a context type by logging as [`Logged`] does.
macro_rules! logged_context {
    ($context:ty) => {
        impl rdkafka::client::ClientContext for $context {
            fn log(&self, level: rdkafka::config::RDKafkaLogLevel, facility: &str, message: &str) {
                rdkafka::client::ClientContext::log(
                    &$crate::kafka::Logged,
                    level,
                    facility,
                    message,
                );
            }

            fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
                rdkafka::client::ClientContext::error(&$crate::kafka::Logged, error, reason);
            }
        }
    };
}
use logged_context;

/// A client context that sends librdkafka's log lines and errors to `tracing` (target
/// `librdkafka`), as the rest of wallaroo logs.
#[derive(Clone, Copy, Debug, Default)]
pub struct Logged;

/// Whether librdkafka's line says that an option of the one list given to every client
/// (`--kafka-option`) does not apply to this kind of client: expected, not worth a warning.
fn other_clients_option(facility: &str, message: &str) -> bool {
    facility == "CONFWARN"
        && (message.contains("is a consumer property and will be ignored by this producer")
            || message.contains("is a producer property and will be ignored by this consumer"))
}

impl ClientContext for Logged {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        if other_clients_option(facility, message) {
            tracing::debug!(target: "librdkafka", "{facility}: {message}");
            return;
        }
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => {
                tracing::error!(target: "librdkafka", "{facility}: {message}")
            }
            RDKafkaLogLevel::Warning => {
                tracing::warn!(target: "librdkafka", "{facility}: {message}")
            }
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(target: "librdkafka", "{facility}: {message}")
            }
            RDKafkaLogLevel::Debug => {
                tracing::debug!(target: "librdkafka", "{facility}: {message}")
            }
        }
    }

    fn error(&self, error: ClientError, reason: &str) {
        // Brokers going away and coming back are reported here; the client reconnects by
        // itself, so this is a warning, not a failure.
        tracing::warn!(target: "librdkafka", "{error}: {reason}");
    }
}

impl ConsumerContext for Logged {}

/// A producer's context: counts the records the brokers acknowledged, keeps the first that
/// failed for good (after librdkafka's `message.timeout.ms`), and logs as [`Logged`] does.
#[derive(Debug, Default)]
pub struct Deliveries {
    acknowledged: AtomicU64,
    bytes: AtomicU64,
    failed: AtomicU64,
    first_failure: Mutex<Option<String>>,
}

impl Deliveries {
    /// Records the brokers acknowledged.
    pub fn acknowledged(&self) -> u64 {
        self.acknowledged.load(Ordering::Relaxed)
    }

    /// Bytes of the values of the records acknowledged.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Whether every record handed to the producer so far was delivered or is still on its
    /// way; else what the first failure was, and how many failed.
    pub fn check(&self) -> Result<(), String> {
        match self.failed.load(Ordering::Relaxed) {
            0 => Ok(()),
            failed => Err(format!(
                "{failed} records were not delivered; the first: {}",
                self.first_failure
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .as_deref()
                    .unwrap_or("?")
            )),
        }
    }
}

logged_context!(Deliveries);

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(record) => {
                self.acknowledged.fetch_add(1, Ordering::Relaxed);
                self.bytes
                    .fetch_add(record.payload_len() as u64, Ordering::Relaxed);
            }
            Err((error, record)) => {
                if self.failed.fetch_add(1, Ordering::Relaxed) == 0 {
                    *self.first_failure.lock().unwrap_or_else(|e| e.into_inner()) = Some(format!(
                        "a record to {} partition {}: {error}",
                        record.topic(),
                        record.partition()
                    ));
                }
            }
        }
    }
}

/// Hands `record` to `producer`, waiting while the producer's queue is full: the brokers'
/// acknowledgements make room (backpressure up the pipeline).
pub(crate) fn send_waiting<K, P>(
    producer: &BaseProducer<Deliveries>,
    mut record: BaseRecord<'_, K, P>,
) -> Result<(), ClientError>
where
    K: ToBytes + ?Sized,
    P: ToBytes + ?Sized,
{
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((ClientError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                producer.poll(Duration::from_millis(100));
                record = back;
            }
            Err((e, _)) => return Err(e),
        }
    }
}

/// Waits until every record handed to `producer` is acknowledged, saying every 10 s that
/// it waits for the brokers (`what` names the records); an error if one failed for good.
pub(crate) fn flush_waiting(producer: &BaseProducer<Deliveries>, what: &str) -> Result<(), String> {
    let start = Instant::now();
    while producer.flush(Duration::from_secs(10)).is_err() {
        producer.context().check()?;
        tracing::warn!(
            "{what}: {} records not acknowledged after {:.0} s; waiting for the brokers",
            producer.in_flight_count(),
            start.elapsed().as_secs_f64()
        );
    }
    producer.context().check()
}

/// The delay before retry number `attempt` (from 0): 100 ms doubling up to 5 s.
fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100u64.saturating_mul(1 << attempt.min(6))).min(Duration::from_secs(5))
}

/// Waits until a broker of `options` answers a metadata request, retrying with backoff and
/// logging (warning) while it waits; gives up with [`KafkaError::Unreachable`] once
/// `timeout` has passed (`None`: never). Returns how long it waited: zero if a broker
/// answered the first request.
pub fn wait_for_brokers(
    options: &KafkaOptions,
    timeout: Option<Duration>,
) -> Result<Duration, KafkaError> {
    let client = options.metadata_client()?;
    let start = Instant::now();
    let mut attempt = 0;
    loop {
        let left = timeout.map(|t| t.saturating_sub(start.elapsed()));
        // One request may take up to 2 s (librdkafka reconnects by itself meanwhile).
        let ask = left.map_or(Duration::from_secs(2), |l| l.min(Duration::from_secs(2)));
        let last = match client.fetch_metadata(None, ask.max(Duration::from_millis(10))) {
            Ok(metadata) if !metadata.brokers().is_empty() => {
                if attempt == 0 {
                    return Ok(Duration::ZERO);
                }
                tracing::info!(
                    "the Kafka brokers at {} answered after {:.1} s",
                    options.bootstrap(),
                    start.elapsed().as_secs_f64()
                );
                return Ok(start.elapsed());
            }
            Ok(_) => "no broker in the cluster's metadata".to_string(),
            Err(e) => e.to_string(),
        };
        let wait = backoff(attempt);
        if timeout.is_some_and(|t| start.elapsed() + wait >= t) {
            return Err(KafkaError::Unreachable {
                brokers: options.bootstrap(),
                waited: start.elapsed(),
                last,
            });
        }
        tracing::warn!(
            "the Kafka brokers at {} do not answer yet ({last}); trying again in {:.1} s",
            options.bootstrap(),
            wait.as_secs_f64()
        );
        std::thread::sleep(wait);
        attempt += 1;
    }
}

/// The number of partitions of `topic`, asked of the brokers of `options` (waiting up to
/// `timeout` for the answer); [`KafkaError::NoTopic`] naming the topic and the brokers if
/// it does not exist. Never creates the topic.
pub fn partition_count(
    options: &KafkaOptions,
    topic: &str,
    timeout: Duration,
) -> Result<usize, KafkaError> {
    let client = options.metadata_client()?;
    partition_count_with(client.client(), &options.bootstrap(), topic, timeout)
}

/// As [`partition_count`], but a topic that does not exist is asked for again, with backoff
/// and a log line, until `timeout` has passed: for brokers that are still starting, whose
/// topics are being created. A zero `timeout` asks once.
pub fn wait_for_topic(
    options: &KafkaOptions,
    topic: &str,
    timeout: Duration,
) -> Result<usize, KafkaError> {
    let client = options.metadata_client()?;
    let start = Instant::now();
    let mut attempt = 0;
    loop {
        let ask = timeout
            .saturating_sub(start.elapsed())
            .max(Duration::from_secs(2));
        match partition_count_with(client.client(), &options.bootstrap(), topic, ask) {
            Err(KafkaError::NoTopic { .. }) if start.elapsed() + backoff(attempt) < timeout => {
                tracing::warn!(
                    "topic `{topic}` does not exist yet at {}; asking again in {:.1} s",
                    options.bootstrap(),
                    backoff(attempt).as_secs_f64()
                );
                std::thread::sleep(backoff(attempt));
                attempt += 1;
            }
            result => return result,
        }
    }
}

/// As [`partition_count`], with a client already made (`brokers` names them in errors).
pub fn partition_count_with<C: ClientContext>(
    client: &rdkafka::client::Client<C>,
    brokers: &str,
    topic: &str,
    timeout: Duration,
) -> Result<usize, KafkaError> {
    let no_topic = || KafkaError::NoTopic {
        topic: topic.to_string(),
        brokers: brokers.to_string(),
    };
    let other = |reason: String| KafkaError::Metadata {
        topic: topic.to_string(),
        brokers: brokers.to_string(),
        reason,
    };
    let metadata = client
        .fetch_metadata(Some(topic), timeout)
        .map_err(|e| match e {
            ClientError::MetadataFetch(RDKafkaErrorCode::UnknownTopicOrPartition) => no_topic(),
            ClientError::MetadataFetch(RDKafkaErrorCode::OperationTimedOut) => {
                KafkaError::Unreachable {
                    brokers: brokers.to_string(),
                    waited: timeout,
                    last: e.to_string(),
                }
            }
            e => other(e.to_string()),
        })?;
    let described = metadata.topics().iter().find(|t| t.name() == topic);
    match described {
        None => Err(no_topic()),
        Some(t) => match t.error() {
            Some(code)
                if RDKafkaErrorCode::from(code) == RDKafkaErrorCode::UnknownTopicOrPartition =>
            {
                Err(no_topic())
            }
            Some(code) => Err(other(RDKafkaErrorCode::from(code).to_string())),
            None if t.partitions().is_empty() => Err(no_topic()),
            None => Ok(t.partitions().len()),
        },
    }
}

impl fmt::Display for KafkaOptions {
    /// `brokers a:1,b:2, group g`, for log lines.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "brokers {}", self.bootstrap())?;
        if let Some(group) = &self.group {
            write!(f, ", group {group}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> KafkaOptions {
        KafkaOptions {
            brokers: vec!["a:1".into(), "b:2".into()],
            group: Some("alphabet".into()),
            options: vec![
                ("enable.auto.commit".into(), "true".into()),
                ("session.timeout.ms".into(), "6000".into()),
            ],
        }
    }

    #[test]
    fn consumers_commit_themselves_and_rebalance_cooperatively_unless_told_otherwise() {
        let config = options().consumer_config();
        assert_eq!(config.get("bootstrap.servers"), Some("a:1,b:2"));
        assert_eq!(config.get("group.id"), Some("alphabet"));
        assert_eq!(
            config.get("partition.assignment.strategy"),
            Some("cooperative-sticky")
        );
        assert_eq!(config.get("auto.offset.reset"), Some("earliest"));
        // The user's options come last and win.
        assert_eq!(config.get("enable.auto.commit"), Some("true"));
        assert_eq!(config.get("session.timeout.ms"), Some("6000"));
        let config = KafkaOptions::new(vec!["a:1".into()]).consumer_config();
        assert_eq!(config.get("enable.auto.commit"), Some("false"));
        assert_eq!(config.get("group.id"), None);
    }

    #[test]
    fn producers_are_idempotent() {
        let mut options = options();
        let config = options.producer_config();
        assert_eq!(config.get("enable.idempotence"), Some("true"));
        assert_eq!(config.get("acks"), Some("all"));
        assert_eq!(config.get("group.id"), None);
        options.options.push(("acks".into(), "1".into()));
        assert_eq!(options.producer_config().get("acks"), Some("1"));
    }

    #[test]
    fn a_bad_option_is_refused_when_the_client_is_made() {
        let mut options = KafkaOptions::new(vec!["127.0.0.1:1".into()]);
        options
            .options
            .push(("no.such.property".into(), "1".into()));
        let err = partition_count(&options, "t", Duration::from_millis(10)).unwrap_err();
        assert!(matches!(err, KafkaError::Config(_)), "{err}");
        assert!(err.to_string().contains("no.such.property"), "{err}");
    }

    #[test]
    fn brokers_options_and_topics_are_checked() {
        assert!(KafkaOptions::parse_brokers("").is_err());
        assert!(KafkaOptions::parse_brokers("a:1,").is_err());
        assert_eq!(KafkaOptions::parse_brokers("h:9092").unwrap(), ["h:9092"]);
        assert!(KafkaOptions::parse_option("=1").is_err());
        assert_eq!(
            KafkaOptions::parse_option("linger.ms=").unwrap(),
            ("linger.ms".to_string(), String::new())
        );
        assert_eq!(topic_of("kafka:a.b_c-9").unwrap(), Some("a.b_c-9"));
        assert!(topic_of("kafka:..").is_err());
        assert!(topic_of(&format!("kafka:{}", "x".repeat(250))).is_err());
        assert_eq!(topic_of("file:kafka:x").unwrap(), None);
        let err = topic_of("kafka:").unwrap_err().to_string();
        assert!(err.contains("as in kafka:votes"), "{err}");
    }

    #[test]
    fn unreachable_brokers_are_an_error_after_the_timeout_not_a_hang() {
        // A port nobody listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let options = KafkaOptions::new(vec![format!("127.0.0.1:{port}")]);
        let start = Instant::now();
        let err = wait_for_brokers(&options, Some(Duration::from_millis(800))).unwrap_err();
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{:?}",
            start.elapsed()
        );
        let text = err.to_string();
        assert!(
            text.contains(&format!("no Kafka broker answered at 127.0.0.1:{port}")),
            "{text}"
        );
    }

    #[test]
    fn an_option_for_the_other_kind_of_client_is_not_a_warning() {
        let lines = std::sync::Arc::new(Mutex::new(Vec::<u8>::new()));
        let writer = {
            let lines = std::sync::Arc::clone(&lines);
            move || Captured(std::sync::Arc::clone(&lines))
        };
        let subscriber = tracing_subscriber::fmt()
            .with_writer(writer)
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            Logged.log(
                RDKafkaLogLevel::Warning,
                "CONFWARN",
                "[thrd:app]: Configuration property session.timeout.ms is a consumer property \
                 and will be ignored by this producer instance",
            );
            Logged.log(RDKafkaLogLevel::Warning, "FAIL", "broker down");
        });
        let text = String::from_utf8(lines.lock().unwrap().clone()).unwrap();
        assert!(!text.contains("session.timeout.ms"), "{text}");
        assert!(
            text.contains("WARN") && text.contains("FAIL: broker down"),
            "{text}"
        );
    }

    /// A writer into a shared buffer, for the test above.
    struct Captured(std::sync::Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn backoff_grows_and_stops_growing() {
        assert_eq!(backoff(0), Duration::from_millis(100));
        assert_eq!(backoff(1), Duration::from_millis(200));
        assert_eq!(backoff(30), Duration::from_secs(5));
    }
}
