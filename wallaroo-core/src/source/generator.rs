//! The in-process generator source, a [`MessageConnector`]: message `i` is `make(i)`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::messages::{MessageConnector, MessageInput};
use crate::endpoint::{ConnectorError, ConnectorInfo};

/// A source that makes its messages in-process: message `i` is `make(i)`, for `i` from 0
/// until `make` returns `None`. For demos, tests and load generation.
///
/// ```
/// use wallaroo_core::app::Generator;
/// // The numbers 0 to 999, at most 10 000 a second.
/// let numbers = Generator::new(|i| (i < 1000).then_some(i)).rate(10_000.0);
/// ```
pub struct Generator<T> {
    pub(crate) make: Arc<dyn Fn(u64) -> Option<T> + Send + Sync>,
    pub(crate) rate: Option<f64>,
}

impl<T: Send + 'static> Generator<T> {
    /// A generator of `make(0)`, `make(1)`, … until `make` returns `None`.
    pub fn new(make: impl Fn(u64) -> Option<T> + Send + Sync + 'static) -> Self {
        Generator {
            make: Arc::new(make),
            rate: None,
        }
    }

    /// Paces the generator to at most `per_second` messages a second.
    pub fn rate(mut self, per_second: f64) -> Self {
        self.rate = (per_second > 0.0).then_some(per_second);
        self
    }
}

/// Messages made between two flushes of the chain (and two checks of the pace), at most.
const STRIDE: u64 = 1024;

impl<T: Send + 'static> MessageConnector<T> for Generator<T> {
    fn info(&self) -> ConnectorInfo {
        match self.rate {
            Some(rate) => ConnectorInfo::new("generator", format!("in-process, {rate} msg/s")),
            None => ConnectorInfo::new("generator", "in-process"),
        }
    }

    fn run(self: Box<Self>, mut input: MessageInput<T>) -> Result<(), ConnectorError> {
        // A paced generator flushes about every millisecond, so its output is smooth.
        let stride = self
            .rate
            .map_or(STRIDE, |rate| ((rate / 1000.0) as u64).clamp(1, STRIDE));
        let interval = self
            .rate
            .map(|rate| Duration::from_secs_f64(stride as f64 / rate));
        let make = &*self.make;
        let start = Instant::now();
        let mut i = 0u64;
        'made: while !input.stopping() {
            for _ in 0..stride {
                match make(i) {
                    Some(msg) => input.push(msg),
                    None => break 'made,
                }
                i += 1;
            }
            input.flush();
            if let Some(interval) = interval {
                let due = start + interval.mul_f64((i / stride) as f64);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
        }
        input.flush();
        tracing::info!("the generator made {i} messages");
        Ok(())
    }
}
