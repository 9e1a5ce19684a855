//! The runtime of wallaroo.
//!
//! Users depend on the `wallaroo` facade, which re-exports this crate and the attribute
//! macros. The data path mirrors the module layout:
//!
//! ```text
//! source (tcp, file) -> decode -> stateless steps -> routing by key
//!   -> worker threads owning the state of their keys -> stateless steps -> sink (tcp, file, stdout)
//! ```
//!
//! [`app`] holds the typed builder ([`Application`], [`Pipeline`]), [`runtime`] runs what
//! it built, and [`topology`] describes it as JSON or Graphviz DOT.

#![warn(missing_docs)]

pub mod app;
pub mod args;
mod cache;
mod chunk;
pub mod codec;
pub mod component;
mod context;
pub mod endpoint;
pub mod flags;
mod gather;
mod guard;
mod http;
#[cfg(feature = "kafka")]
pub mod kafka;
mod latency;
mod link;
pub mod main_entry;
mod metrics;
#[doc(hidden)]
pub mod misuse;
mod poison;
mod pool;
pub mod resilience;
mod routing;
pub mod runtime;
mod shard;
pub mod sink;
pub mod source;
pub mod state;
pub mod step;
mod summary;
#[cfg(test)]
mod testing;
pub mod time;
pub mod topology;
mod worker;

/// Connectors: sources and sinks for systems that wallaroo ships none for, written by the
/// user (see [`source::connector`] and [`sink::connector`]).
pub mod connector {
    pub use crate::endpoint::{ConnectorError, ConnectorInfo};
    pub use crate::sink::connector::{
        Messages, Received, Record, Records, SinkBatch, SinkConnector, SinkOutput,
    };
    pub use crate::source::connector::{ResumePoints, SourceConnector, SourceInput, StreamId};
    pub use crate::source::messages::{MessageConnector, MessageInput, MessageSource};
}

pub use app::{Application, Generator, Pipeline, PipelineSource, Sink, Source, Timed};
pub use args::{Args, DeadLetter, OnError, TcpLimits, UsageError};
pub use codec::{DecodeError, Decoder, Encoder, Framing, PushText};
pub use endpoint::{Input, Output};
pub use runtime::{RunError, Running};
pub use state::{Key, Partition, State};
pub use step::{Computation, Emit, StateComputation};
pub use topology::Topology;

/// Crates that the `wallaroo` facade re-exports for generated code.
#[doc(hidden)]
pub mod __private {
    pub use inventory;
    pub use postcard;
    pub use serde;
}
