//! Message connectors: sources that make a pipeline's messages themselves, as values, with
//! no payload to decode (a Rust client library's records, a simulation, the
//! generator of `Generator::new`).
//!
//! ```
//! use wallaroo_core::connector::{ConnectorError, ConnectorInfo, MessageConnector, MessageInput};
//!
//! /// The numbers 0 to 999 as readings of three sensors; each reading at its number, so
//! /// that after a restart the ones applied are skipped.
//! struct Sensors;
//!
//! impl MessageConnector<(u8, u64)> for Sensors {
//!     fn info(&self) -> ConnectorInfo {
//!         ConnectorInfo::new("sensors", "simulated")
//!     }
//!
//!     fn run(self: Box<Self>, mut input: MessageInput<(u8, u64)>) -> Result<(), ConnectorError> {
//!         let stream = input.stream("sensors");
//!         for i in input.resume_from(&stream)..1000 {
//!             input.push_at(&stream, i, ((i % 3) as u8, i));
//!         }
//!         input.flush();
//!         Ok(())
//!     }
//! }
//! ```

use std::sync::Arc;

use super::connector::{spawn, Shared, StreamId};
use super::outlet::Outlet;
use super::{AnySource, SourceHandle, SourceStats};
use crate::context::{Control, Ctx, RunError};
use crate::endpoint::{ConnectorError, ConnectorInfo};
use crate::link::Downstream;

/// A source that makes its messages of type `T` itself. `run` is called once, on a thread
/// of its own, when the application starts; when it returns, the source has ended.
///
/// Use it with `MessageSource::new(connector)`.
pub trait MessageConnector<T>: Send + 'static {
    /// What the connector reads, for the topology and log lines.
    fn info(&self) -> ConnectorInfo;
    /// Makes messages, until its input ends or the application stops.
    fn run(self: Box<Self>, input: MessageInput<T>) -> Result<(), ConnectorError>;
}

/// A pipeline's source made by a [`MessageConnector`].
pub struct MessageSource<T> {
    pub(crate) connector: Box<dyn MessageConnector<T>>,
}

impl<T: Send + 'static> MessageSource<T> {
    /// A source of the messages `connector` makes.
    pub fn new(connector: impl MessageConnector<T>) -> Self {
        MessageSource {
            connector: Box::new(connector),
        }
    }
}

/// Where a message connector hands its messages: each is sent down the pipeline. Owned by
/// one thread; [`MessageInput::fork`] gives another thread its own.
pub struct MessageInput<T> {
    out: Outlet<T>,
    down: Downstream<T>,
    shared: Arc<Shared>,
}

impl<T: Send + 'static> MessageInput<T> {
    fn new(down: Downstream<T>, shared: Arc<Shared>) -> Self {
        MessageInput {
            out: Outlet::new(down(&shared.ctx)),
            down,
            shared,
        }
    }

    /// Sends `msg` on: a message without a position (it is not recognised if it is made
    /// again).
    #[inline]
    pub fn push(&mut self, msg: T) {
        self.out.send(None, msg);
    }

    /// Sends `msg`, the message at `position` of `stream`, on. Positions increase along a
    /// stream; a message whose position was applied already is skipped by the state
    /// partitions.
    ///
    /// A stream is pushed from one thread, in order: a position pushed after a higher one
    /// of its stream counts as applied already.
    #[inline]
    pub fn push_at(&mut self, stream: &StreamId, position: u64, msg: T) {
        self.out.send(Some(stream.origin(position)), msg);
    }

    /// Sends on what was pushed: call it when there is nothing more at hand, so that output
    /// does not wait for a full batch.
    pub fn flush(&mut self) {
        let sent = self.out.flush();
        if sent > 0 {
            self.shared
                .stats
                .messages
                .fetch_add(sent, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Whether the application is stopping: return from `run` soon (after
    /// [`MessageInput::flush`]).
    pub fn stopping(&self) -> bool {
        self.shared.stopping()
    }

    /// Has `wake` called once when the application stops, to end a wait that blocks.
    pub fn on_stop(&self, wake: impl FnOnce() + Send + 'static) {
        self.shared.on_stop(wake);
    }

    /// Names a stream that can be made again; see [`super::connector::SourceInput::stream`].
    pub fn stream(&self, name: &str) -> StreamId {
        self.shared.stream(name)
    }

    /// The position to make `stream` from: every message before it has been applied by
    /// every state partition it reaches (0 when none has).
    pub fn resume_from(&self, stream: &StreamId) -> u64 {
        self.shared.resume_from(stream)
    }

    /// Another input for another thread of the same source: it sends down a chain of its
    /// own.
    pub fn fork(&self) -> MessageInput<T> {
        MessageInput::new(Arc::clone(&self.down), Arc::clone(&self.shared))
    }
}

impl<T> Drop for MessageInput<T> {
    fn drop(&mut self) {
        let sent = self.out.flush();
        self.shared
            .stats
            .messages
            .fetch_add(sent, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A message connector with the chain it feeds, as the runtime starts it.
pub(crate) struct MessageRuntime<T> {
    pipeline: String,
    connector: Box<dyn MessageConnector<T>>,
    down: Downstream<T>,
}

impl<T: Send + 'static> MessageRuntime<T> {
    pub(crate) fn new(
        pipeline: String,
        connector: Box<dyn MessageConnector<T>>,
        down: Downstream<T>,
    ) -> Self {
        MessageRuntime {
            pipeline,
            connector,
            down,
        }
    }
}

impl<T: Send + 'static> AnySource for MessageRuntime<T> {
    fn pipeline(&self) -> &str {
        &self.pipeline
    }

    fn missing_input(&self) -> Option<usize> {
        // It reads no --in.
        None
    }

    fn start(
        self: Box<Self>,
        ctx: Arc<Ctx>,
        control: Arc<Control>,
    ) -> Result<SourceHandle, RunError> {
        let shared = Shared::new(
            self.pipeline,
            ctx,
            control,
            Arc::new(SourceStats::default()),
        );
        let input = MessageInput::new(self.down, Arc::clone(&shared));
        let connector = self.connector;
        Ok(spawn(&shared, connector.info(), move || {
            connector.run(input)
        }))
    }
}
