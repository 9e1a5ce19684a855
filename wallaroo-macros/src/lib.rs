//! The attribute macros of [wallaroo](https://docs.rs/wallaroo): `#[state]`, `#[data]`,
//! `#[computation]`, `#[state_computation]`, `#[decoder]`, `#[encoder]`, `#[partition]` and
//! `#[wallaroo::main]`.
//!
//! Use them through the `wallaroo` crate (`use wallaroo::prelude::*;`), not directly:
//! generated code names the runtime as `::wallaroo::__private::…`.
//!
//! # What the function macros generate
//!
//! A function macro replaces `fn foo` with a zero-sized struct `foo` of the same visibility,
//! carrying the function's docs, and a constant `foo` of that type (so `foo` is still a
//! value you can pass around). The struct implements the runtime trait (`Computation`,
//! `Decoder`, …) by calling the original body, kept as the associated function `foo::call`.
//! `foo` also dereferences to a function pointer, so `foo(x)` still calls the function,
//! recursion included (except when its return type is `impl Trait`, which a function
//! pointer cannot name: call `foo::call(x)` then). Attributes on the function go where they
//! apply: docs and `#[deprecated]` on the struct, `#[cfg]` and lint levels on everything,
//! the rest (`#[inline]`, `#[must_use]`, other attribute macros) on `foo::call`.
//!
//! Every annotated item is registered with `inventory`, so that
//! `wallaroo::component::registered()` lists it with its kind, name, location (the line of
//! its name) and types. A library crate that the binary never references is not linked, so
//! its registrations are absent: the typed pipeline builder, not the registry, decides what
//! runs.
//!
//! A misused macro reports every problem it finds, each at the offending tokens, and leaves
//! a stand-in for the item (its unit struct, the function as written, and the runtime trait
//! implemented for any message type) so that the rest of the crate still type-checks
//! against it and reports nothing more.
//!
//! Set `WALLAROO_MACROS_DEBUG=1` when compiling to print each expansion.

mod attr;
mod component;
mod computation;
mod ctxt;
mod data;
mod decoder;
mod dummy;
mod encoder;
mod entry;
mod expand;
mod partition;
mod paths;
mod serial;
mod signature;
mod state;
mod state_computation;

use proc_macro::TokenStream;

/// Makes a struct the per-key state of a state partition.
///
/// Accepts a struct with named fields, tuple fields or none, without generic parameters.
/// Generates:
/// - `#[derive(Serialize, Deserialize)]` through wallaroo's own serde (so the crate needs no
///   serde dependency), unless the struct already derives them: the state is saved with
///   postcard, so every field must be serializable;
/// - an implementation of `State` whose `build()` makes the state of a key seen for the first
///   time: with `Default` (derive or implement it), or with `builder = path`, a `fn() -> Self`;
/// - the layout of the saved form, the fields' names and types as written, which resilience
///   files record: a state whose fields change is refused, not misread.
///
/// A field whose type is not serializable is reported at that field: annotate its type with
/// `#[data]`. `version = N` (default 0) numbers the saved form; `upgrade = path` names a
/// `fn(Previous) -> Self` from the state of an earlier version (itself a `#[state]`, with a
/// lower version), so that files saved by that version are read and upgraded.
///
/// ```
/// # use wallaroo::prelude::*;
/// #[state]
/// #[derive(Default)]
/// pub struct Total { votes: u64 }
///
/// #[state(builder = Window::new)]
/// pub struct Window { last: Vec<u64>, size: usize }
/// impl Window { fn new() -> Self { Window { last: Vec::new(), size: 10 } } }
/// #[state]
/// #[derive(Default)]
/// pub struct AverageV0 { sum: f64 }
///
/// #[state(version = 1, upgrade = average_from_v0)]
/// #[derive(Default)]
/// pub struct Average { sum: f64, count: u64 }
///
/// fn average_from_v0(old: AverageV0) -> Average { Average { sum: old.sum, count: 1 } }
/// # use wallaroo::State;
/// # assert_eq!(Average::LAYOUT, "{ sum: f64, count: u64 }");
/// # assert_eq!(Window::build().size, 10);
/// # assert_eq!(Total::build().votes, 0);
/// ```
#[proc_macro_attribute]
pub fn state(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::finish(
        "#[state]",
        expand::state(args.into(), item.clone().into()),
        || dummy::state(item.into()),
    )
    .into()
}

/// Makes a struct the accumulator of an aggregation over windows (see
/// `wallaroo::time::Aggregation`).
///
/// Does what `#[state]` does (serializable through wallaroo's serde, so that window contents
/// are saved with a resilience directory; `version = N` and `upgrade = path` as for a state),
/// names the struct in the topology as an aggregation, and implements
/// `wallaroo::time::Accumulator`, which `Aggregation` requires. Implement
/// `Aggregation<In>` for it (`update`, `combine`, `output`); the initial accumulator is the
/// value given to `.to_window(…)`, so derive `Clone` and usually `Default`.
///
/// ```
/// use wallaroo::prelude::*;
///
/// /// How many messages a window held.
/// #[aggregation]
/// #[derive(Clone, Default)]
/// pub struct Count { n: u64 }
///
/// impl<In> Aggregation<In> for Count {
///     type Out = u64;
///     fn update(&mut self, _: &In) { self.n += 1 }
///     fn combine(&mut self, other: &Self) { self.n += other.n }
///     fn output(&self) -> u64 { self.n }
/// }
/// ```
#[proc_macro_attribute]
pub fn aggregation(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::finish(
        "#[aggregation]",
        expand::aggregation(args.into(), item.clone().into()),
        || dummy::aggregation(item.into()),
    )
    .into()
}

/// Makes a struct or an enum serializable through wallaroo's serde, so that a state can keep
/// it in a field (and the application needs no serde dependency of its own).
///
/// Derives `Serialize` and `Deserialize` (those the item does not derive already) with
/// `#[serde(crate = …)]` pointing at the serde that wallaroo re-exports; serde's own field
/// attributes (`#[serde(skip)]`, …) work as usual after it. A field whose type is not
/// serializable is one error at that field, saying what to write.
///
/// ```
/// # use wallaroo::prelude::*;
/// #[data]
/// #[derive(Debug, Clone, Default, PartialEq)]
/// pub struct Reading { pub sensor: String, pub celsius: f64 }
///
/// #[data]
/// #[derive(Debug, Clone, Default, PartialEq)]
/// pub enum Trend { #[default] Flat, Rising(f64), Falling { by: f64 } }
///
/// /// The last reading of a sensor and where it is heading.
/// #[state]
/// #[derive(Default)]
/// pub struct Sensor { last: Option<Reading>, trend: Trend }
/// ```
#[proc_macro_attribute]
pub fn data(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::finish(
        "#[data]",
        expand::data(args.into(), item.clone().into()),
        || dummy::data(item.into()),
    )
    .into()
}

/// Makes a function a stateless step of a pipeline.
///
/// Accepts `fn(msg: In) -> Out`; return `Option<Out>` to filter (`None` sends nothing) or
/// `Vec<Out>` to fan out (each element is sent on, in order). The shape is read from the
/// return type as written: `Option<…>` and `Vec<…>` by their last path segment.
/// `name = "…"` sets the name shown in the topology (the function's name by default).
///
/// Generates the unit struct `step` (see the crate docs) implementing `Computation<In>`
/// with `type Out = Out`.
///
/// ```
/// # use wallaroo::prelude::*;
/// # #[derive(Debug, PartialEq)]
/// # struct Order { quantity: u32 }
/// #[computation(name = "keep big orders")]
/// fn keep_big(order: Order) -> Option<Order> {
///     (order.quantity > 100).then_some(order)
/// }
/// assert_eq!(keep_big(Order { quantity: 5 }), None);
/// ```
#[proc_macro_attribute]
pub fn computation(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::finish(
        "#[computation]",
        expand::computation(args.into(), item.clone().into()),
        || dummy::function(dummy::Kind::Computation, item.into()),
    )
    .into()
}

/// Makes a function a step over partitioned state.
///
/// Accepts `fn(msg: In, state: &mut S) -> (R, bool)`, where `S` is a `#[state]` type and `R`
/// is `Out`, `Option<Out>` or `Vec<Out>` as for `#[computation]`. The `bool` says whether the
/// state changed and must be saved. `name = "…"` sets the name shown in the topology.
///
/// Generates the unit struct `step` implementing `StateComputation<In>` with
/// `type Out = Out` and `type State = S`. A pipeline places it with
/// `.to_state_partition(step, "state name", partition)`.
///
/// ```
/// # use wallaroo::prelude::*;
/// # #[derive(Debug, PartialEq)]
/// # struct Vote { letter: u8, count: u64 }
/// # #[state]
/// # #[derive(Default)]
/// # struct Total { votes: u64 }
/// #[state_computation(name = "add votes")]
/// fn add_votes(v: Vote, total: &mut Total) -> (Vote, bool) {
///     total.votes += v.count;
///     (Vote { letter: v.letter, count: total.votes }, true)
/// }
/// let mut total = Total::default();
/// add_votes(Vote { letter: b'a', count: 2 }, &mut total);
/// assert_eq!(add_votes(Vote { letter: b'a', count: 3 }, &mut total), (Vote { letter: b'a', count: 5 }, true));
/// ```
#[proc_macro_attribute]
pub fn state_computation(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::finish(
        "#[state_computation]",
        expand::state_computation(args.into(), item.clone().into()),
        || dummy::function(dummy::Kind::StateComputation, item.into()),
    )
    .into()
}

/// Makes a function the decoder of a source: one frame's payload to one message.
///
/// Accepts `fn(payload: &[u8]) -> Result<Message, E>` where `E: Display` (any alias of
/// `Result`, such as `io::Result<T>`, works). The arguments set how the byte stream is cut
/// into frames:
/// - `header_length = N`: a length header of `N` bytes, 1 to 8 (default 4), read as a
///   big-endian unsigned integer;
/// - `payload_length = path`: a `fn(&[u8]) -> usize` that reads the payload length from the
///   header instead;
/// - `lines`: newline-delimited text, each line (without `\n` or `\r\n`) one payload; it
///   cannot be combined with the other two.
///
/// Generates the unit struct `decode` implementing `Decoder` with the message type as `Out`.
///
/// ```
/// # use wallaroo::prelude::*;
/// #[decoder(lines)]
/// fn parse(line: &[u8]) -> Result<u64, DecodeError> {
///     std::str::from_utf8(line).ok().and_then(|s| s.trim().parse().ok())
///         .ok_or_else(|| DecodeError::new("not a number"))
/// }
/// assert_eq!(parse(b" 42"), Ok(42));
/// ```
#[proc_macro_attribute]
pub fn decoder(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::finish(
        "#[decoder]",
        expand::decoder(args.into(), item.clone().into()),
        || dummy::function(dummy::Kind::Decoder, item.into()),
    )
    .into()
}

/// Makes a function the encoder of a sink: one message to bytes.
///
/// Accepts `fn(msg: &T, out: &mut Vec<u8>)`, which appends to `out`, or `fn(msg: &T) -> R`
/// with `R: AsRef<[u8]>` (`Vec<u8>`, `String`, `&'static str`, …), whose bytes are appended.
/// Takes no arguments.
///
/// Generates the unit struct `encode` implementing `Encoder<T>`.
///
/// ```
/// # use wallaroo::prelude::*;
/// # struct Vote { letter: u8, count: u64 }
/// #[encoder]
/// fn encode(v: &Vote) -> String {
///     format!("{} => {}\n", v.letter as char, v.count)
/// }
/// let mut out = Vec::new();
/// wallaroo::Encoder::encode(&encode, &Vote { letter: b'a', count: 3 }, &mut out);
/// assert_eq!(out, b"a => 3\n");
/// ```
#[proc_macro_attribute]
pub fn encoder(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::finish(
        "#[encoder]",
        expand::encoder(args.into(), item.clone().into()),
        || dummy::function(dummy::Kind::Encoder, item.into()),
    )
    .into()
}

/// Makes a function the partition function of a state partition: a message to its key.
///
/// Accepts `fn(msg: &In) -> Key`, where the key is hashable, comparable, cloneable and
/// serializable (integers, `String`, `char`, tuples of them, …), or `fn(msg: &In) -> &Q`,
/// a borrow of the key from the message (`&str` for a `String` key), whose key type is
/// `Q::Owned`. A borrowed key makes nothing per message: only the key's hash travels to the
/// worker, which borrows the key from the message again to find its state, and the owned
/// key is made once, for a key seen the first time. `keys = expr` names keys whose state is
/// built when the application starts: any `IntoIterator` whose items convert
/// `Into<Key>`, such as `b'a'..=b'z'` or `["eu", "us"]`.
///
/// Generates the unit struct `by_key` implementing `Partition<In>` with `type Key = Key`.
///
/// ```
/// # use wallaroo::prelude::*;
/// # struct Vote { letter: u8 }
/// #[partition(keys = b'a'..=b'z')]
/// fn by_letter(v: &Vote) -> u8 { v.letter }
/// assert_eq!(by_letter(&Vote { letter: b'q' }), b'q');
/// assert_eq!(wallaroo::Partition::<Vote>::initial_keys(&by_letter).len(), 26);
///
/// # struct Word(String);
/// #[partition]
/// fn by_word(w: &Word) -> &str { &w.0 }
/// let key: String = wallaroo::Partition::<Word>::key(&by_word, &Word("ant".into()));
/// assert_eq!(key, "ant");
/// ```
#[proc_macro_attribute]
pub fn partition(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::finish(
        "#[partition]",
        expand::partition(args.into(), item.clone().into()),
        || dummy::function(dummy::Kind::Partition, item.into()),
    )
    .into()
}

/// Makes a function the application's setup, and generates `main`.
///
/// Accepts `fn setup(args: &Args, flags: &Flags) -> Application`,
/// `fn setup(args: &Args) -> Application` or `fn setup() -> Application`, not named `main`,
/// and takes no arguments. Keeps the function as written and adds `fn main() -> ExitCode`,
/// which parses the command line, calls `setup`, and runs the application until its sources
/// end or the process is interrupted.
///
/// `Flags`, any name, is the application's own flags: a struct that derives `clap::Args`
/// (`use wallaroo::clap;` brings the clap that wallaroo uses). They are parsed with
/// wallaroo's flags, listed by `--help` after them, and a bad value is a usage error (one
/// line naming the flag, exit status 2). A flag that takes a name or an id of wallaroo's
/// (`--workers`, a field named `out`, `-h`) is refused on every run, `--help` included,
/// with an error naming both and exit status 1.
///
/// `--help` starts with the function's doc comment: `-h` shows its first paragraph,
/// `--help` all of it, the lines of each paragraph joined. Without one it says "A wallaroo
/// stream-processing application."
///
/// ```no_run
/// # use wallaroo::prelude::*;
/// # #[derive(Clone, Copy)]
/// # pub struct Vote { letter: u8, count: u64 }
/// # #[state]
/// # #[derive(Default)]
/// # pub struct Total { votes: u64 }
/// # #[decoder]
/// # fn decode(p: &[u8]) -> Result<Vote, DecodeError> { Ok(Vote { letter: p[0], count: 1 }) }
/// # #[encoder]
/// # fn encode(v: &Vote) -> String { format!("{} => {}\n", v.letter as char, v.count) }
/// # #[partition]
/// # fn by_letter(v: &Vote) -> u8 { v.letter }
/// # #[state_computation(name = "add votes")]
/// # fn add_votes(v: Vote, t: &mut Total) -> (Vote, bool) { t.votes += v.count; (Vote { count: t.votes, ..v }, true) }
/// use wallaroo::clap;
///
/// #[derive(clap::Args)]
/// struct Flags {
///     /// The application's name in the topology
///     #[arg(long, default_value = "Alphabet")]
///     name: String,
/// }
///
/// /// Running vote totals per letter.
/// #[wallaroo::main]
/// fn alphabet(args: &Args, flags: &Flags) -> Application {
///     Application::new(flags.name.as_str())
///         .pipeline("Alphabet", Source::new(args.input(0), decode))
///         .to_state_partition(add_votes, "running vote totals", by_letter)
///         .to_sink(Sink::new(args.output(0), encode))
/// }
/// ```
#[proc_macro_attribute]
pub fn main(args: TokenStream, item: TokenStream) -> TokenStream {
    let item = proc_macro2::TokenStream::from(item);
    expand::finish(
        "#[wallaroo::main]",
        expand::main(args.into(), item.clone()),
        || expand::main_fallback(item),
    )
    .into()
}
