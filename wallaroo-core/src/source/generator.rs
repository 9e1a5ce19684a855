//! The in-process generator source, a [`MessageConnector`]: message `i` is `make(i)`.

use std::time::{Duration, Instant};

use super::messages::{MessageConnector, MessageInput};
use crate::app::Generator;
use crate::endpoint::{ConnectorError, ConnectorInfo};

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
