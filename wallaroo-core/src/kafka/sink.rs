//! The Kafka sink: an idempotent producer on the connector API, one record per message.
//!
//! At least once: a record the broker did not acknowledge is retried by the producer (in
//! order, without duplicates, while the producer lives: `enable.idempotence`), and the
//! application does not end before every record is acknowledged or has failed; a record
//! that failed for good (after librdkafka's `message.timeout.ms`) stops the application.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError as ClientError;
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;

use super::source::wait_for_topic;
use super::{KafkaError, KafkaOptions, Logged};
use crate::endpoint::{ConnectorError, ConnectorInfo};
use crate::sink::connector::{Received, SinkConnector, SinkOutput};

/// How long a stopping application waits for the broker to acknowledge what it was sent.
const FLUSH_GRACE: Duration = Duration::from_secs(60);

/// Produces each message, as its encoder wrote it, as the value of one record of a topic.
pub struct KafkaSink {
    topic: String,
    options: KafkaOptions,
}

impl KafkaSink {
    /// A sink producing to `topic` with `options`.
    pub fn new(topic: String, options: KafkaOptions) -> Self {
        KafkaSink { topic, options }
    }
}

/// The producer's context: counts the records that failed for good.
#[derive(Default)]
struct Deliveries {
    failed: AtomicU64,
    first_failure: Mutex<Option<String>>,
}

impl ClientContext for Deliveries {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        Logged.log(level, facility, message);
    }

    fn error(&self, error: ClientError, reason: &str) {
        Logged.error(error, reason);
    }
}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            if self.failed.fetch_add(1, Ordering::Relaxed) == 0 {
                *self.first_failure.lock().expect("failure lock") = Some(e.to_string());
            }
        }
    }
}

impl Deliveries {
    /// An error if a record failed for good.
    fn check(&self, topic: &str) -> Result<(), ConnectorError> {
        match self.failed.load(Ordering::Relaxed) {
            0 => Ok(()),
            failed => Err(ConnectorError::new(format!(
                "kafka:{topic}: {failed} records were not delivered (the first: {})",
                self.first_failure
                    .lock()
                    .expect("failure lock")
                    .as_deref()
                    .unwrap_or("?")
            ))),
        }
    }
}

impl SinkConnector for KafkaSink {
    fn info(&self) -> ConnectorInfo {
        ConnectorInfo::new("kafka", format!("{} ({})", self.topic, self.options))
    }

    fn run(self: Box<Self>, mut output: SinkOutput) -> Result<(), ConnectorError> {
        // Messages wait in the sink's channel (backpressure) until the brokers answer.
        if wait_for_topic(&self.options, &self.topic, || output.stopping())?.is_none() {
            return Err(ConnectorError::new(format!(
                "kafka:{}: the brokers never answered; the output was not delivered",
                self.topic
            )));
        }
        let producer: BaseProducer<Deliveries> = self
            .options
            .producer_config()
            .create_with_context(Deliveries::default())
            .map_err(|e| ConnectorError::new(KafkaError::Config(e).to_string()))?;
        loop {
            match output.recv(Duration::from_millis(100)) {
                Received::Batch(batch) => {
                    for message in batch.messages() {
                        send(&producer, &self.topic, message)?;
                    }
                    output.done(batch);
                    producer.poll(Duration::ZERO);
                }
                Received::Idle => {
                    producer.poll(Duration::ZERO);
                }
                Received::Ended => break,
            }
            producer.context().check(&self.topic)?;
        }
        producer.flush(FLUSH_GRACE).map_err(|e| {
            ConnectorError::new(format!(
                "kafka:{}: {} records not acknowledged by the brokers within {} s: {e}",
                self.topic,
                producer.in_flight_count(),
                FLUSH_GRACE.as_secs()
            ))
        })?;
        producer.context().check(&self.topic)
    }
}

/// Hands one record to the producer, waiting while its queue is full.
fn send(
    producer: &BaseProducer<Deliveries>,
    topic: &str,
    value: &[u8],
) -> Result<(), ConnectorError> {
    let mut record = BaseRecord::<(), [u8]>::to(topic).payload(value);
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((ClientError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                // Wait for acknowledgements to make room: backpressure up the pipeline.
                producer.poll(Duration::from_millis(100));
                record = back;
            }
            Err((e, _)) => {
                return Err(ConnectorError::new(format!(
                    "kafka:{topic}: cannot produce: {e}"
                )))
            }
        }
    }
}
