//! The expanded application as data: printed by `--topology json` (a contract,
//! ARCHITECTURE.md §5) and drawn by `--topology dot`.
//!
//! Each sink says where it is attached with `"after"`: the index in its pipeline's `"steps"`
//! of the step whose output it receives, or `null` for a sink fed by the source directly. A
//! pipeline that writes every window average and then the outliers alone,
//! `.to_state_partition(slide, …).also_to_sink(averages).to(outliers).to_sink(alerts)`, has
//! `"sinks": [{…, "encoder": "encode_average", "after": 0}, {…, "encoder": "encode_alert",
//! "after": 1}]`; the DOT draws each sink's edge from that step.

use std::fmt::Write as _;

use serde::Serialize;

use crate::component::{registered, ComponentInfo};

/// The application: its pipelines and the state partitions they use.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Topology {
    /// The application's name.
    pub name: String,
    /// Pipelines in declaration order.
    pub pipelines: Vec<PipelineTopology>,
    /// State partitions, in order of first use.
    pub states: Vec<StateTopology>,
}

/// One pipeline: a source, its steps in order, and its sinks.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct PipelineTopology {
    /// The pipeline's name.
    pub name: String,
    /// Where it reads.
    pub source: SourceTopology,
    /// Its steps, from the source to the sinks.
    pub steps: Vec<StepTopology>,
    /// Where it writes (empty for a pipeline that ends without a sink).
    pub sinks: Vec<SinkTopology>,
}

/// A source.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct SourceTopology {
    /// `tcp`, `file`, `stdin`, `generator`, or `unset` when the command line did not give it.
    pub kind: String,
    /// The address as given (`127.0.0.1:7010`, `file:votes.bin`, `-`).
    pub address: String,
    /// The decoder's name (none for a generator).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decoder: Option<String>,
    /// The message type it produces.
    pub output: String,
    /// How the stream is cut into frames (none for a generator).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub framing: Option<String>,
    /// The largest payload accepted, in bytes (none for a generator).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_frame_length: Option<usize>,
}

/// A step.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct StepTopology {
    /// The step's name (`name = "…"`, or the function's name).
    pub name: String,
    /// `computation`, `state_computation` or `window`.
    pub kind: String,
    /// The message type it takes.
    pub input: String,
    /// The message type it sends on.
    pub output: String,
    /// The state partition's name, for a state computation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// The partition function's name, for a state computation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
    /// Where the step is defined (`file:line`; for a window, its aggregation's).
    pub location: String,
    /// For a step of kind `window`: its windows and its time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<WindowTopology>,
}

/// The windows of a `window` step, and where their time comes from.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct WindowTopology {
    /// `tumbling`, `sliding`, `session`, `count` or `running`.
    pub kind: String,
    /// A tumbling or sliding window's size, in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_ms: Option<i64>,
    /// A count window's size, in messages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// A sliding window's slide, in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slide_ms: Option<i64>,
    /// A session window's gap, in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gap_ms: Option<i64>,
    /// How long a window takes late messages after it fired, in milliseconds.
    pub allowed_lateness_ms: i64,
    /// What becomes of a message too late for its windows: `drop`, `fire_per_message`,
    /// `place_in_oldest_window` or `side_output`.
    pub late: String,
    /// The timestamp function's name, for windows of time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    /// How far behind the largest event time seen the watermark trails, in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub out_of_orderness_ms: Option<i64>,
    /// After how long without a message an input no longer holds the watermark back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_timeout_ms: Option<u64>,
    /// Whether messages are combined per key and window before they cross to the workers
    /// (`TimeWindows::pre_aggregate`).
    pub pre_aggregate: bool,
}

impl WindowTopology {
    pub(crate) fn of(
        spec: &crate::time::runner::Spec,
        time: Option<(&str, crate::time::Watermarks)>,
    ) -> Self {
        use crate::time::Kind;
        let (kind, size_ms, slide_ms, gap_ms, count) = match spec.kind {
            Kind::Tumbling { size } => ("tumbling", Some(size), None, None, None),
            Kind::Sliding { size, slide } => ("sliding", Some(size), Some(slide), None, None),
            Kind::Session { gap } => ("session", None, None, Some(gap), None),
            Kind::Count { size } => ("count", None, None, None, Some(size)),
            Kind::Running => ("running", None, None, None, None),
        };
        WindowTopology {
            kind: kind.to_string(),
            size_ms,
            count,
            slide_ms,
            gap_ms,
            allowed_lateness_ms: spec.lateness,
            late: if spec.side_output {
                "side_output".to_string()
            } else {
                spec.late.as_str().to_string()
            },
            timestamp: time.map(|(name, _)| name.to_string()),
            out_of_orderness_ms: time.map(|(_, w)| w.bound),
            idle_timeout_ms: time
                .and_then(|(_, w)| w.idle)
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            pre_aggregate: spec.pre_aggregate,
        }
    }

    /// One line for a drawing: `tumbling 10000 ms, event_time - 2000 ms`.
    fn describe(&self) -> String {
        let mut text = match (self.size_ms, self.slide_ms, self.gap_ms, self.count) {
            (_, _, _, Some(n)) => format!("count {n}"),
            (Some(size), Some(slide), _, _) => format!("sliding {size} ms every {slide} ms"),
            (_, _, Some(gap), _) => format!("session gap {gap} ms"),
            (Some(size), _, _, _) => format!("{} {size} ms", self.kind),
            (None, _, _, _) => self.kind.clone(),
        };
        if let (Some(ts), Some(bound)) = (&self.timestamp, self.out_of_orderness_ms) {
            let _ = write!(text, ", {ts} - {bound} ms");
        }
        if self.allowed_lateness_ms > 0 {
            let _ = write!(text, ", lateness {} ms", self.allowed_lateness_ms);
        }
        if self.pre_aggregate {
            text.push_str(", pre-aggregated");
        }
        text
    }
}

/// A sink.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct SinkTopology {
    /// `tcp`, `file`, `stdout`, or `unset` when the command line did not give it.
    pub kind: String,
    /// The address as given.
    pub address: String,
    /// The encoder's name.
    pub encoder: String,
    /// The message type it encodes.
    pub input: String,
    /// Where it is attached: the index in the pipeline's `steps` of the step whose output it
    /// receives, or `None` (`null` in the JSON) for a sink that receives the source's
    /// messages, before any step. A sink added with `also_to_sink` is attached after the
    /// step before it, not after the pipeline's last step.
    pub after: Option<usize>,
}

/// A state partition: one state per key, spread over the worker threads.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct StateTopology {
    /// The state partition's name.
    pub name: String,
    /// The state type.
    #[serde(rename = "type")]
    pub state_type: String,
    /// The partition key type.
    pub key: String,
    /// How many keys are declared up front (states built at start).
    pub initial_keys: usize,
    /// Pipelines with a step on this partition.
    pub pipelines: Vec<String>,
}

impl Topology {
    /// The topology JSON of the contract, pretty-printed, fields in a fixed order.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a topology always serializes")
    }

    /// A Graphviz digraph of the same graph: sources and steps as a chain per pipeline,
    /// each sink joined to the step it is attached after (or to the source), state
    /// partitions as cylinders joined to their steps.
    pub fn to_dot(&self) -> String {
        let mut dot = String::new();
        let _ = writeln!(dot, "digraph {} {{", quote(&self.name));
        dot.push_str("  rankdir=LR;\n  node [fontname=\"Helvetica\"];\n");
        for (s, state) in self.states.iter().enumerate() {
            let _ = writeln!(
                dot,
                "  state{s} [shape=cylinder, label={}];",
                quote(&format!(
                    "{}\n{} by {}\n{} keys declared",
                    state.name, state.state_type, state.key, state.initial_keys
                ))
            );
        }
        for (p, pipeline) in self.pipelines.iter().enumerate() {
            let _ = writeln!(dot, "  subgraph cluster_{p} {{");
            let _ = writeln!(dot, "    label={};", quote(&pipeline.name));
            let source = format!("p{p}_source");
            let _ = writeln!(
                dot,
                "    {source} [shape=invhouse, label={}];",
                quote(&format!(
                    "{} source {}\n{} -> {}",
                    pipeline.source.kind,
                    pipeline.source.address,
                    pipeline.source.decoder.as_deref().unwrap_or("generated"),
                    pipeline.source.output
                ))
            );
            let mut previous = source.clone();
            for (i, step) in pipeline.steps.iter().enumerate() {
                let node = format!("p{p}_step{i}");
                let shape = if step.state.is_some() { "box3d" } else { "box" };
                let mut label = format!("{}\n{} -> {}", step.name, step.input, step.output);
                if let Some(window) = &step.window {
                    let _ = write!(label, "\n{}", window.describe());
                }
                let _ = writeln!(dot, "    {node} [shape={shape}, label={}];", quote(&label));
                let _ = writeln!(
                    dot,
                    "    {previous} -> {node} [label={}];",
                    quote(&step.input)
                );
                if let Some(state) = &step.state {
                    if let Some(s) = self.states.iter().position(|st| &st.name == state) {
                        let label = step.partition.as_deref().unwrap_or("");
                        let _ = writeln!(
                            dot,
                            "    {node} -> state{s} [dir=both, style=dashed, label={}];",
                            quote(label)
                        );
                    }
                }
                previous = node;
            }
            for (k, sink) in pipeline.sinks.iter().enumerate() {
                let node = format!("p{p}_sink{k}");
                let _ = writeln!(
                    dot,
                    "    {node} [shape=house, label={}];",
                    quote(&format!(
                        "{} sink {}\n{}",
                        sink.kind, sink.address, sink.encoder
                    ))
                );
                let from = match sink.after {
                    Some(i) => format!("p{p}_step{i}"),
                    None => source.clone(),
                };
                let _ = writeln!(dot, "    {from} -> {node} [label={}];", quote(&sink.input));
            }
            dot.push_str("  }\n");
        }
        dot.push_str("}\n");
        dot
    }

    /// Components registered by the macros that no pipeline of this topology uses.
    pub fn unused_components(&self) -> Vec<&'static ComponentInfo> {
        use crate::component::ComponentKind::*;
        registered()
            .into_iter()
            .filter(|c| match c.kind {
                Computation | StateComputation | Aggregation => !self.pipelines.iter().any(|p| {
                    p.steps.iter().any(|s| {
                        s.name == c.name
                            && (s.kind == c.kind.as_str()
                                || (c.kind == Aggregation && s.window.is_some()))
                    })
                }),
                Decoder => !self
                    .pipelines
                    .iter()
                    .any(|p| p.source.decoder.as_deref() == Some(c.name)),
                Encoder => !self
                    .pipelines
                    .iter()
                    .any(|p| p.sinks.iter().any(|s| s.encoder == c.name)),
                Partition => !self.pipelines.iter().any(|p| {
                    p.steps
                        .iter()
                        .any(|s| s.partition.as_deref() == Some(c.name))
                }),
                State => false,
            })
            .collect()
    }
}

/// A DOT string literal.
fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_quotes_and_escapes() {
        assert_eq!(quote("a \"b\"\nc\\"), r#""a \"b\"\nc\\""#);
    }
}
