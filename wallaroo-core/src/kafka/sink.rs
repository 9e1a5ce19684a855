//! The Kafka sink: an idempotent producer on the connector API, one record per message,
//! keyed by the key of the state whose computation produced it (unkeyed otherwise).
//!
//! At least once: a record the broker did not acknowledge is retried by the producer (in
//! order, without duplicates, while the producer lives: `enable.idempotence`), and the
//! application does not end before every record is acknowledged or has failed; a record
//! that failed for good (after librdkafka's `message.timeout.ms`) stops the application.

use std::time::Duration;

use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use super::source::wait_for_topic;
use super::{send_waiting, Deliveries, KafkaError, KafkaOptions};
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

impl SinkConnector for KafkaSink {
    fn info(&self) -> ConnectorInfo {
        ConnectorInfo::new("kafka", format!("{} ({})", self.topic, self.options))
    }

    fn wants_keys(&self) -> bool {
        true
    }

    fn run(self: Box<Self>, mut output: SinkOutput) -> Result<(), ConnectorError> {
        // Messages wait in the sink's channel (backpressure) until the brokers answer.
        if wait_for_topic(&self.options, &self.topic, || output.stopping())?.is_none() {
            // Stopped before the brokers answered: an error only if there was output.
            let mut undelivered = 0;
            loop {
                match output.recv(Duration::from_millis(100)) {
                    Received::Batch(batch) => {
                        undelivered += batch.len();
                        output.discard(batch);
                    }
                    Received::Idle => {}
                    Received::Ended => break,
                }
            }
            return match undelivered {
                0 => Ok(()),
                n => Err(ConnectorError::new(format!(
                    "kafka:{}: the brokers never answered; {n} messages were not delivered",
                    self.topic
                ))),
            };
        }
        let producer: BaseProducer<Deliveries> = self
            .options
            .producer_config()
            .create_with_context(Deliveries::default())
            .map_err(|e| ConnectorError::new(KafkaError::Config(e).to_string()))?;
        loop {
            match output.recv(Duration::from_millis(100)) {
                Received::Batch(batch) => {
                    for record in batch.records() {
                        send(&producer, &self.topic, record.key, record.value)?;
                    }
                    output.done(batch);
                    producer.poll(Duration::ZERO);
                }
                Received::Idle => {
                    producer.poll(Duration::ZERO);
                }
                Received::Ended => break,
            }
            producer
                .context()
                .check()
                .map_err(|e| failed(&self.topic, e))?;
        }
        producer.flush(FLUSH_GRACE).map_err(|e| {
            ConnectorError::new(format!(
                "kafka:{}: {} records not acknowledged by the brokers within {} s: {e}",
                self.topic,
                producer.in_flight_count(),
                FLUSH_GRACE.as_secs()
            ))
        })?;
        producer
            .context()
            .check()
            .map_err(|e| failed(&self.topic, e))
    }
}

/// The error of a sink whose records were not delivered.
fn failed(topic: &str, what: String) -> ConnectorError {
    ConnectorError::new(format!("kafka:{topic}: {what}"))
}

/// Hands one record to the producer, waiting while its queue is full; a keyed record goes
/// to the partition of its key, so that a key's outputs stay in order.
fn send(
    producer: &BaseProducer<Deliveries>,
    topic: &str,
    key: Option<&[u8]>,
    value: &[u8],
) -> Result<(), ConnectorError> {
    let record = BaseRecord::<[u8], [u8]>::to(topic).payload(value);
    let record = match key {
        Some(key) => record.key(key),
        None => record,
    };
    send_waiting(producer, record)
        .map_err(|e| ConnectorError::new(format!("kafka:{topic}: cannot produce: {e}")))
}
