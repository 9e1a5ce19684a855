//! A pipeline's source as the builder declares it: what it reads, its decoder and its
//! limits.

use super::connector::SourceConnector;
use super::framing::{DEFAULT_MAX_FRAME, DEFAULT_MEMORY_BUDGET};
use crate::codec::Decoder;
use crate::endpoint::Input;

/// Where a pipeline reads: an [`Input`] or a [`SourceConnector`], and a decoder.
///
/// ```no_run
/// # use wallaroo_core::{Source, Input};
/// # fn with<D: wallaroo_core::Decoder>(decode: D) {
/// let source = Source::new("127.0.0.1:7010", decode).max_frame_length(1 << 20);
/// # }
/// ```
pub struct Source<D> {
    pub(crate) from: ReadFrom,
    pub(crate) decoder: D,
    pub(crate) max_frame_length: usize,
    pub(crate) memory_budget: usize,
    pub(crate) co_partitioned: bool,
}

/// What a [`Source`] reads.
pub(crate) enum ReadFrom {
    /// An endpoint of the command line.
    Input(Input),
    /// A connector of the user's.
    Connector(Box<dyn SourceConnector>),
}

impl<D: Decoder> Source<D> {
    /// A source reading `input` (usually `args.input(i)`), decoding with `decoder`.
    pub fn new(input: impl Into<Input>, decoder: D) -> Self {
        Source {
            from: ReadFrom::Input(input.into()),
            decoder,
            max_frame_length: DEFAULT_MAX_FRAME,
            memory_budget: DEFAULT_MEMORY_BUDGET,
            co_partitioned: false,
        }
    }

    /// A source reading what `connector` hands it, decoding with `decoder`: for a system
    /// that wallaroo ships no source for (see [`crate::connector`]).
    pub fn from_connector(connector: impl SourceConnector, decoder: D) -> Self {
        Source {
            from: ReadFrom::Connector(Box::new(connector)),
            decoder,
            max_frame_length: DEFAULT_MAX_FRAME,
            memory_budget: DEFAULT_MEMORY_BUDGET,
            co_partitioned: false,
        }
    }

    /// Declares that the input is partitioned as the state the pipeline feeds first: each
    /// record's key is the state key of its messages, so that every message of a key is in
    /// one partition (a topic that another application keyed by the same key, or one
    /// wallaroo wrote keyed). For a Kafka source shared by a consumer group, the records are
    /// then applied where they are read, without the hop through the repartition topic,
    /// and partition `q` of the input holds shard `q` of the state. Other sources ignore it.
    ///
    /// A key whose messages come from two partitions is logged as an error: its state
    /// follows the last.
    pub fn co_partitioned(mut self) -> Self {
        self.co_partitioned = true;
        self
    }

    /// Refuses frames whose payload is longer than `bytes` (default 16 MiB): the connection
    /// that sent one is closed with a logged error.
    pub fn max_frame_length(mut self, bytes: usize) -> Self {
        self.max_frame_length = bytes;
        self
    }

    /// Bounds the memory of the source's connections' frames together: each connection has
    /// a 64 KiB buffer, and frames larger than that take from a budget of `bytes` (default
    /// 256 MiB) that they share; a connection whose frame would take more than is left is
    /// closed with a logged error, and the others go on.
    pub fn memory_budget(mut self, bytes: usize) -> Self {
        self.memory_budget = bytes;
        self
    }
}
