//! The in-process generator source: a thread that makes messages and feeds the chain.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{AnySource, SourceHandle, SourceStats};
use crate::app::Generator;
use crate::link::Downstream;
use crate::runtime::{Control, Ctx, Event, RunError};
use crate::step::Emit;

/// Messages made between two flushes of the chain (and two checks of the pace), at most.
const STRIDE: u64 = 1024;

pub(crate) struct GeneratorRuntime<T> {
    pipeline: String,
    generator: Generator<T>,
    down: Downstream<T>,
}

impl<T: Send + 'static> GeneratorRuntime<T> {
    pub(crate) fn new(pipeline: String, generator: Generator<T>, down: Downstream<T>) -> Self {
        GeneratorRuntime {
            pipeline,
            generator,
            down,
        }
    }
}

impl<T: Send + 'static> AnySource for GeneratorRuntime<T> {
    fn pipeline(&self) -> &str {
        &self.pipeline
    }

    fn missing_input(&self) -> Option<usize> {
        // A generator needs no --in.
        None
    }

    fn start(
        self: Box<Self>,
        ctx: Arc<Ctx>,
        control: Arc<Control>,
    ) -> Result<SourceHandle, RunError> {
        let mut chain = (self.down)(&ctx);
        drop(ctx);
        let stats = Arc::new(SourceStats::default());
        let counters = Arc::clone(&stats);
        let make = self.generator.make;
        // A paced generator flushes about every millisecond, so its output is smooth.
        let stride = self
            .generator
            .rate
            .map_or(STRIDE, |rate| ((rate / 1000.0) as u64).clamp(1, STRIDE));
        let interval = self
            .generator
            .rate
            .map(|rate| Duration::from_secs_f64(stride as f64 / rate));
        let pipeline = self.pipeline;
        let thread = std::thread::Builder::new()
            .name("wallaroo-gen".into())
            .spawn(move || {
                let start = Instant::now();
                let mut i = 0u64;
                'made: while !control.stopping() {
                    for _ in 0..stride {
                        match make(i) {
                            Some(msg) => chain.emit(msg),
                            None => break 'made,
                        }
                        i += 1;
                    }
                    chain.flush();
                    counters
                        .messages
                        .store(i, std::sync::atomic::Ordering::Relaxed);
                    if let Some(interval) = interval {
                        let due = start + interval.mul_f64((i / stride) as f64);
                        if let Some(wait) = due.checked_duration_since(Instant::now()) {
                            std::thread::sleep(wait);
                        }
                    }
                }
                chain.flush();
                counters
                    .messages
                    .store(i, std::sync::atomic::Ordering::Relaxed);
                tracing::info!("pipeline \"{pipeline}\": the generator made {i} messages");
                drop(chain);
                control.send(Event::SourceDone);
            })
            .expect("cannot spawn a generator thread");
        Ok(SourceHandle {
            thread,
            wake: None,
            local_addr: None,
            stats,
        })
    }
}
