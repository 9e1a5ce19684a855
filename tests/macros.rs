//! Behaviour of the attribute macros' expansions: the annotated functions still call as
//! written, the generated trait impls produce the right outputs, keys and framing, every
//! annotated item is in the registry with the right kind, name, location and types, and the
//! generated code names everything by absolute path.

use std::any::type_name;

use wallaroo::component::{registered, ComponentInfo, ComponentKind};
use wallaroo::prelude::*;
use wallaroo::{Computation, Decoder, Encoder, Partition, State, StateComputation};

// ---------------------------------------------------------------------------------------
// Components. `*_LINE` constants hold the line of the item each macro annotates.
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vote {
    pub letter: u8,
    pub count: u64,
}

/// The components live in a module, so that visibility and `module_path!` are exercised.
pub mod alphabet {
    use super::Vote;
    use wallaroo::prelude::*;

    pub const TOTAL_LINE: u32 = line!() + 4;
    /// One running total per letter.
    #[state]
    #[derive(Debug, Default, PartialEq)]
    pub struct Total {
        pub votes: u64,
    }

    pub const DECODE_LINE: u32 = line!() + 3;
    /// One letter and a big-endian u32.
    #[decoder]
    pub fn decode(payload: &[u8]) -> Result<Vote, DecodeError> {
        match payload {
            [letter, a, b, c, d] => Ok(Vote {
                letter: *letter,
                count: u32::from_be_bytes([*a, *b, *c, *d]).into(),
            }),
            _ => Err(DecodeError::wrong_length(5, payload.len())),
        }
    }

    pub const ENCODE_LINE: u32 = line!() + 2;
    #[encoder]
    pub fn encode(v: &Vote, out: &mut Vec<u8>) {
        out.extend_from_slice(format!("{} => {}\n", v.letter as char, v.count).as_bytes());
    }

    pub const BY_LETTER_LINE: u32 = line!() + 2;
    #[partition(keys = b'a'..=b'z')]
    pub fn by_letter(v: &Vote) -> u8 {
        v.letter
    }

    pub const ADD_VOTES_LINE: u32 = line!() + 2;
    #[state_computation(name = "add votes")]
    pub fn add_votes(v: Vote, total: &mut Total) -> (Vote, bool) {
        total.votes += v.count;
        (
            Vote {
                letter: v.letter,
                count: total.votes,
            },
            true,
        )
    }
}

use alphabet::{add_votes, by_letter, decode, encode, Total};

const DOUBLE_LINE: u32 = line!() + 3;
/// Doubles a count.
#[computation]
pub fn double(x: u64) -> u64 {
    x * 2
}

#[computation(name = "keep even")]
fn keep_even(x: u64) -> Option<u64> {
    x.is_multiple_of(2).then_some(x)
}

#[computation]
fn digits(x: u64) -> std::vec::Vec<u8> {
    x.to_string().bytes().map(|b| b - b'0').collect()
}

/// A state computation that filters: it emits only when the count crosses a hundred.
#[state_computation]
fn crossed_hundred(v: Vote, total: &mut Total) -> (Option<Vote>, bool) {
    let before = total.votes;
    total.votes += v.count;
    let crossed = before < 100 && total.votes >= 100;
    (crossed.then_some(v), v.count > 0)
}

/// A state computation that fans out and never changes its state.
#[state_computation]
fn repeat(v: Vote, _total: &mut Total) -> (Vec<u8>, bool) {
    (vec![v.letter; v.count as usize], false)
}

#[state(builder = Window::new)]
pub struct Window(Vec<u64>, usize);

impl Window {
    fn new() -> Self {
        Window(Vec::new(), 3)
    }
}

/// A unit state with a closure as its builder.
#[state(builder = || Marker)]
#[derive(Debug, PartialEq)]
pub struct Marker;

/// A state that already derives serde's traits, through the facade's serde.
#[state]
#[derive(
    Default, wallaroo::__private::serde::Serialize, wallaroo::__private::serde::Deserialize,
)]
#[serde(crate = "wallaroo::__private::serde")]
pub struct SelfDerived {
    #[serde(rename = "n")]
    count: u32,
}

/// A 2-byte header.
#[decoder(header_length = 2)]
fn decode_short(payload: &[u8]) -> Result<u16, DecodeError> {
    <[u8; 2]>::try_from(payload)
        .map(u16::from_le_bytes)
        .map_err(|_| DecodeError::wrong_length(2, payload.len()))
}

/// A 3-byte header whose first byte is a tag and whose last two are a little-endian length.
fn tagged_length(header: &[u8]) -> usize {
    usize::from(u16::from_le_bytes([header[1], header[2]]))
}

#[decoder(header_length = 3, payload_length = tagged_length)]
fn decode_tagged(payload: &[u8]) -> Result<Vec<u8>, DecodeError> {
    Ok(payload.to_vec())
}

/// Lines of text, decoded into numbers; the error type is `io::Error` through an alias.
#[decoder(lines)]
fn decode_line(line: &[u8]) -> std::io::Result<u64> {
    let text = std::str::from_utf8(line).map_err(std::io::Error::other)?;
    text.trim().parse().map_err(std::io::Error::other)
}

/// An encoder that returns its bytes.
#[encoder]
fn encode_number(n: &u64) -> String {
    format!("{n}\n")
}

/// An encoder that returns `impl AsRef<[u8]>`: no function pointer can name that, so it is
/// called as `encode_bytes::call`.
#[encoder]
fn encode_bytes(bytes: &Vec<u8>) -> impl AsRef<[u8]> {
    bytes.clone()
}

#[partition(keys = ["eu", "us"])]
fn by_region(order: &(String, u32)) -> String {
    order.0.clone()
}

/// Attributes other than docs stay on the function: `#[inline]` and `#[must_use]` would
/// not compile on a struct.
#[computation]
#[inline]
#[must_use]
#[allow(clippy::needless_pass_by_value)]
fn shout(s: String) -> String {
    s.to_uppercase()
}

/// A `#[cfg]` after the macro removes everything it generates.
#[computation]
#[cfg(any())]
fn never_compiled(x: DoesNotExist) -> DoesNotExist {
    x
}

/// Recursion goes through the same `Deref` as any other call.
#[computation]
fn factorial(n: u64) -> u64 {
    if n <= 1 {
        1
    } else {
        n * factorial(n - 1)
    }
}

// ---------------------------------------------------------------------------------------
// The annotated functions still call as written.
// ---------------------------------------------------------------------------------------

#[test]
fn annotated_functions_still_call_as_written() {
    assert_eq!(double(21), 42);
    assert_eq!(keep_even(3), None);
    assert_eq!(digits(507), vec![5, 0, 7]);
    assert_eq!(factorial(5), 120);
    assert_eq!(shout("hi".to_owned()), "HI");

    let mut total = Total::default();
    let v = Vote {
        letter: b'a',
        count: 3,
    };
    assert_eq!(add_votes(v, &mut total), (v, true));
    assert_eq!(add_votes(v, &mut total).0.count, 6);
    assert_eq!(total.votes, 6);

    assert_eq!(
        decode(&[b'x', 0, 0, 1, 0]),
        Ok(Vote {
            letter: b'x',
            count: 256
        })
    );
    assert!(decode(&[1, 2]).is_err());
    let mut out = Vec::new();
    encode(&v, &mut out);
    assert_eq!(out, b"a => 3\n");
    assert_eq!(by_letter(&v), b'a');
    assert_eq!(encode_number(&7), "7\n");
    assert_eq!(encode_bytes::call(&vec![1, 2]).as_ref(), &[1, 2]);

    // `call` is the function itself; the unit struct is a function pointer by `Deref`.
    assert_eq!(double::call(4), 8);
    let as_pointer: fn(u64) -> u64 = *double;
    assert_eq!(as_pointer(5), 10);
    assert_eq!([1, 2, 3].map(*double), [2, 4, 6]);
    // The unit struct is a plain value.
    let copy = double;
    assert_eq!(format!("{copy:?}"), "double");
}

// ---------------------------------------------------------------------------------------
// The trait impls.
// ---------------------------------------------------------------------------------------

#[test]
fn computations_emit_one_none_or_many() {
    let mut out = Vec::new();
    double.compute(5, &mut out);
    assert_eq!(out, vec![10]);

    let mut out = Vec::new();
    keep_even.compute(3, &mut out);
    keep_even.compute(4, &mut out);
    assert_eq!(out, vec![4]);

    let mut out: Vec<u8> = Vec::new();
    digits.compute(1024, &mut out);
    assert_eq!(out, vec![1, 0, 2, 4]);

    // `Emit` is implemented for boxed emitters too.
    let mut boxed: Box<Vec<u64>> = Box::default();
    double.compute(1, &mut boxed);
    assert_eq!(*boxed, vec![2]);
}

#[test]
fn state_computations_emit_and_say_whether_the_state_changed() {
    let mut total = Total::build();
    assert_eq!(total, Total { votes: 0 });
    let v = Vote {
        letter: b'q',
        count: 60,
    };

    let mut out = Vec::new();
    assert!(add_votes.compute(v, &mut total, &mut out));
    assert_eq!(
        out,
        vec![Vote {
            letter: b'q',
            count: 60
        }]
    );

    let mut out = Vec::new();
    assert!(crossed_hundred.compute(v, &mut total, &mut out));
    assert_eq!((out, total.votes), (vec![v], 120));
    let mut out = Vec::new();
    assert!(crossed_hundred.compute(v, &mut total, &mut out));
    assert!(out.is_empty());

    let mut out = Vec::new();
    let changed = repeat.compute(
        Vote {
            letter: b'z',
            count: 3,
        },
        &mut total,
        &mut out,
    );
    assert!(!changed);
    assert_eq!(out, b"zzz");
}

#[test]
fn states_build_with_default_or_their_builder_and_round_trip() {
    assert_eq!(Total::build(), Total::default());
    let window = Window::build();
    assert_eq!((window.0.len(), window.1), (0, 3));
    assert_eq!(Marker::build(), Marker);
    assert_eq!(SelfDerived::build().count, 0);

    // The derived serde impls save and restore the state (as the runtime does, with postcard).
    let postcard = wallaroo::__private::postcard::to_allocvec::<Total>;
    let saved = postcard(&Total { votes: 300 }).expect("serializes");
    let restored: Total = wallaroo::__private::postcard::from_bytes(&saved).expect("deserializes");
    assert_eq!(restored.votes, 300);
    let saved =
        wallaroo::__private::postcard::to_allocvec(&Window(vec![1, 2], 9)).expect("serializes");
    let restored: Window = wallaroo::__private::postcard::from_bytes(&saved).expect("deserializes");
    assert_eq!((restored.0, restored.1), (vec![1, 2], 9));
}

#[test]
fn decoders_decode_and_describe_their_framing() {
    assert!(matches!(
        decode.framing(),
        Framing::LengthPrefixed {
            header_length: 4,
            payload_length: None
        }
    ));
    assert_eq!(
        decode.decode(&[b'b', 0, 0, 0, 9]),
        Ok(Vote {
            letter: b'b',
            count: 9
        })
    );
    assert_eq!(
        decode.decode(&[1]).unwrap_err().to_string(),
        "expected a payload of 5 bytes, got 1"
    );

    assert!(matches!(
        decode_short.framing(),
        Framing::LengthPrefixed {
            header_length: 2,
            payload_length: None
        }
    ));
    assert_eq!(decode_short.decode(&[1, 1]), Ok(257));

    match decode_tagged.framing() {
        Framing::LengthPrefixed {
            header_length: 3,
            payload_length: Some(length),
        } => assert_eq!(length(&[b'T', 5, 1]), 261),
        other => panic!("unexpected framing {other:?}"),
    }
    assert_eq!(decode_tagged.decode(b"abc"), Ok(b"abc".to_vec()));

    assert!(matches!(decode_line.framing(), Framing::Lines));
    assert_eq!(decode_line.decode(b" 42 ").unwrap(), 42);
    assert!(decode_line.decode(b"forty-two").is_err());
}

#[test]
fn encoders_append_to_the_buffer() {
    let mut out = b"> ".to_vec();
    encode.encode(
        &Vote {
            letter: b'c',
            count: 1,
        },
        &mut out,
    );
    encode_number.encode(&12, &mut out);
    encode_bytes.encode(&vec![b'!'], &mut out);
    assert_eq!(out, b"> c => 1\n12\n!");
}

#[test]
fn partitions_give_keys_and_initial_keys() {
    let v = Vote {
        letter: b'k',
        count: 1,
    };
    assert_eq!(by_letter.key(&v), b'k');
    assert_eq!(by_letter.initial_keys(), (b'a'..=b'z').collect::<Vec<u8>>());
    assert_eq!(by_region.key(&("eu".to_owned(), 3)), "eu");
    assert_eq!(
        by_region.initial_keys(),
        vec!["eu".to_owned(), "us".to_owned()]
    );

    #[partition]
    fn no_initial_keys(n: &u64) -> u64 {
        *n % 7
    }
    assert_eq!(no_initial_keys.key(&15), 1);
    assert!(no_initial_keys.initial_keys().is_empty());
}

// ---------------------------------------------------------------------------------------
// The registry.
// ---------------------------------------------------------------------------------------

fn find(kind: ComponentKind, name: &str) -> &'static ComponentInfo {
    let found: Vec<_> = registered()
        .into_iter()
        .filter(|c| c.kind == kind && c.name == name)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one {kind} named {name:?} in {:#?}",
        registered()
    );
    found[0]
}

fn names(t: Option<fn() -> &'static str>) -> Option<&'static str> {
    t.map(|f| f())
}

#[test]
fn the_registry_sees_every_component_with_its_kind_name_place_and_types() {
    let module = concat!(module_path!(), "::alphabet");

    let total = find(ComponentKind::State, "Total");
    assert_eq!((total.ident, total.module_path), ("Total", module));
    assert_eq!((total.file, total.line), (file!(), alphabet::TOTAL_LINE));
    assert_eq!(names(total.state), Some(type_name::<Total>()));
    assert_eq!((names(total.input), names(total.output)), (None, None));
    assert!(std::ptr::eq(Total::info(), total));

    let dec = find(ComponentKind::Decoder, "decode");
    assert_eq!((dec.module_path, dec.line), (module, alphabet::DECODE_LINE));
    assert_eq!(names(dec.output), Some(type_name::<Vote>()));
    assert!(std::ptr::eq(decode.info(), dec));

    let enc = find(ComponentKind::Encoder, "encode");
    assert_eq!((enc.module_path, enc.line), (module, alphabet::ENCODE_LINE));
    assert_eq!(
        (names(enc.input), names(enc.output)),
        (Some(type_name::<Vote>()), None)
    );
    assert!(std::ptr::eq(Encoder::<Vote>::info(&encode), enc));

    let part = find(ComponentKind::Partition, "by_letter");
    assert_eq!(
        (part.module_path, part.line),
        (module, alphabet::BY_LETTER_LINE)
    );
    assert_eq!(names(part.input), Some(type_name::<Vote>()));
    assert_eq!(names(part.output), Some("u8"));

    // `name = "…"` sets the name; `ident` keeps the Rust name.
    let add = find(ComponentKind::StateComputation, "add votes");
    assert_eq!(
        (add.ident, add.module_path, add.line),
        ("add_votes", module, alphabet::ADD_VOTES_LINE)
    );
    assert_eq!(names(add.input), Some(type_name::<Vote>()));
    assert_eq!(names(add.output), Some(type_name::<Vote>()));
    assert_eq!(names(add.state), Some(type_name::<Total>()));
    assert!(std::ptr::eq(add_votes.info(), add));

    let dbl = find(ComponentKind::Computation, "double");
    assert_eq!(
        (dbl.module_path, dbl.file, dbl.line),
        (module_path!(), file!(), DOUBLE_LINE)
    );
    assert_eq!(
        (names(dbl.input), names(dbl.output), names(dbl.state)),
        (Some("u64"), Some("u64"), None)
    );

    // The output of a filter or a fan-out is the message type, not the Option or Vec.
    assert_eq!(
        names(find(ComponentKind::Computation, "keep even").output),
        Some("u64")
    );
    assert_eq!(
        names(find(ComponentKind::Computation, "digits").output),
        Some("u8")
    );
    assert_eq!(
        names(find(ComponentKind::StateComputation, "repeat").output),
        Some("u8")
    );
    assert_eq!(
        names(find(ComponentKind::Decoder, "decode_line").output),
        Some("u64")
    );

    // Components defined inside functions and shadowing modules are registered too; items
    // under a false `#[cfg]` are not.
    find(ComponentKind::Partition, "no_initial_keys");
    find(ComponentKind::StateComputation, "shadowed_step");
    assert!(registered().iter().all(|c| c.name != "never_compiled"));

    let kinds: Vec<ComponentKind> = registered().iter().map(|c| c.kind).collect();
    for kind in [
        ComponentKind::Decoder,
        ComponentKind::Encoder,
        ComponentKind::Computation,
        ComponentKind::StateComputation,
        ComponentKind::State,
        ComponentKind::Partition,
    ] {
        assert!(kinds.contains(&kind), "no {kind} registered");
    }
}

// ---------------------------------------------------------------------------------------
// A whole application built from the expansions, run on files.
// ---------------------------------------------------------------------------------------

#[test]
fn an_application_of_annotated_components_runs() {
    let dir = std::env::temp_dir().join(format!("wallaroo-macros-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (input, output) = (dir.join("in.bin"), dir.join("out.txt"));
    let mut frames = Vec::new();
    for (letter, count) in [(b'a', 1u32), (b'b', 5), (b'a', 2)] {
        frames.extend_from_slice(&5u32.to_be_bytes());
        frames.push(letter);
        frames.extend_from_slice(&count.to_be_bytes());
    }
    std::fs::write(&input, frames).expect("write input");

    let args = Args::new()
        .with_input(format!("file:{}", input.display()))
        .with_output(format!("file:{}", output.display()));
    let app = Application::new("Alphabet")
        .pipeline("Alphabet", Source::new(args.input(0), decode))
        .to_state_partition(add_votes, "running vote totals", by_letter)
        .to_sink(Sink::new(args.output(0), encode));
    assert!(app.errors().is_empty(), "{:?}", app.errors());
    app.run(&args, |_| {})
        .expect("runs to the end of its input");

    let written = std::fs::read_to_string(&output).expect("output written");
    let mut lines: Vec<&str> = written.lines().collect();
    lines.sort_unstable();
    assert_eq!(lines, ["a => 1", "a => 3", "b => 5"]);
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------------------------------
// Generated code must not depend on what names are in scope where the macro is used.
// ---------------------------------------------------------------------------------------

#[allow(
    dead_code,
    non_camel_case_types,
    unused_macros,
    clippy::upper_case_acronyms
)]
mod shadowing {
    // Everything generated code could name without a leading `::`, shadowed by junk.
    struct Result;
    struct Option;
    struct Ok;
    struct Err;
    struct Some;
    struct None;
    struct Vec;
    struct String;
    struct Box;
    trait Default {}
    trait Clone {}
    trait Copy {}
    trait Debug {}
    trait Send {}
    trait Sync {}
    trait Sized {}
    trait Into {}
    trait IntoIterator {}
    trait Iterator {}
    trait Fn {}
    trait FnOnce {}
    trait AsRef {}
    trait Deref {}
    trait Serialize {}
    trait Deserialize {}
    struct INFO;
    mod core {}
    mod std {}
    mod alloc {}
    mod serde {}
    mod postcard {}
    mod inventory {}
    mod wallaroo {}
    macro_rules! line {
        () => {
            compile_error!("a shadowed line!")
        };
    }
    macro_rules! file {
        () => {
            compile_error!("a shadowed file!")
        };
    }
    macro_rules! module_path {
        () => {
            compile_error!("a shadowed module_path!")
        };
    }
    macro_rules! env {
        ($($t:tt)*) => {
            compile_error!("a shadowed env!")
        };
    }

    use ::wallaroo::state;

    // serde's derives name primitive types as `u8`, `str`, … so states are defined here,
    // and the functions in `primitives` below, where those are shadowed too.
    #[state]
    #[derive(::core::default::Default)]
    pub struct ShadowedState {
        n: ::core::primitive::u64,
    }

    #[state(builder = ShadowedBuilt::make)]
    pub struct ShadowedBuilt(::core::primitive::u64);

    impl ShadowedBuilt {
        fn make() -> Self {
            ShadowedBuilt(7)
        }
    }

    mod primitives {
        struct bool;
        struct u8;
        struct usize;
        struct str;
        struct Result;
        struct Option;
        struct Vec;
        trait Default {}
        mod core {}
        mod std {}
        mod wallaroo {}

        use super::ShadowedState;
        use ::wallaroo::{computation, decoder, encoder, partition, state_computation};

        pub type Bytes = ::std::vec::Vec<::core::primitive::u8>;
        type Flag = ::core::primitive::bool;

        #[decoder(header_length = 1, payload_length = one_byte)]
        pub fn shadowed_decode(
            payload: &[::core::primitive::u8],
        ) -> ::core::result::Result<Bytes, ::wallaroo::DecodeError> {
            ::core::result::Result::Ok(payload.to_vec())
        }

        fn one_byte(header: &[::core::primitive::u8]) -> ::core::primitive::usize {
            header[0].into()
        }

        #[decoder(lines)]
        pub fn shadowed_lines(
            payload: &[::core::primitive::u8],
        ) -> ::core::result::Result<Bytes, ::wallaroo::DecodeError> {
            ::core::result::Result::Ok(payload.to_vec())
        }

        #[computation]
        pub fn shadowed_one(b: Bytes) -> Bytes {
            b
        }

        #[computation]
        pub fn shadowed_filter(b: Bytes) -> ::core::option::Option<Bytes> {
            ::core::option::Option::Some(b)
        }

        #[computation]
        pub fn shadowed_fan_out(b: Bytes) -> ::std::vec::Vec<::core::primitive::u8> {
            b
        }

        #[state_computation]
        pub fn shadowed_step(b: Bytes, s: &mut ShadowedState) -> (Bytes, Flag) {
            s.n += 1;
            (b, true)
        }

        #[partition(keys = [1u8, 2])]
        pub fn shadowed_partition(b: &Bytes) -> ::core::primitive::u8 {
            b[0]
        }

        #[encoder]
        pub fn shadowed_encode(b: &Bytes, out: &mut Bytes) {
            out.extend_from_slice(b);
        }

        #[encoder]
        pub fn shadowed_encode_returning(b: &Bytes) -> Bytes {
            b.clone()
        }
    }

    use primitives::*;

    #[test]
    fn expansions_use_absolute_paths() {
        use ::wallaroo::{Computation, Decoder, Encoder, Partition, State, StateComputation};

        let bytes: Bytes = ::std::vec![3, 4];
        let mut out: ::std::vec::Vec<Bytes> = ::std::vec::Vec::new();
        shadowed_one.compute(bytes.clone(), &mut out);
        shadowed_filter.compute(bytes.clone(), &mut out);
        ::core::assert_eq!(out, [bytes.clone(), bytes.clone()]);
        let mut fanned: Bytes = ::std::vec::Vec::new();
        shadowed_fan_out.compute(bytes.clone(), &mut fanned);
        ::core::assert_eq!(fanned, bytes);

        let mut state = ShadowedState::build();
        let mut steps: ::std::vec::Vec<Bytes> = ::std::vec::Vec::new();
        ::core::assert!(shadowed_step.compute(bytes.clone(), &mut state, &mut steps));
        ::core::assert_eq!(state.n, 1);
        ::core::assert_eq!(ShadowedBuilt::build().0, 7);

        ::core::assert_eq!(shadowed_partition.key(&bytes), 3);
        ::core::assert_eq!(shadowed_partition.initial_keys(), [1, 2]);
        ::core::assert!(::core::matches!(
            shadowed_decode.framing(),
            ::wallaroo::Framing::LengthPrefixed {
                header_length: 1,
                payload_length: ::core::option::Option::Some(_)
            }
        ));
        ::core::assert!(::core::matches!(
            shadowed_lines.framing(),
            ::wallaroo::Framing::Lines
        ));
        ::core::assert_eq!(
            shadowed_decode.decode(&[9]).ok(),
            ::core::option::Option::Some(::std::vec![9])
        );

        let mut encoded: Bytes = ::std::vec::Vec::new();
        shadowed_encode.encode(&bytes, &mut encoded);
        shadowed_encode_returning.encode(&bytes, &mut encoded);
        ::core::assert_eq!(encoded, [3, 4, 3, 4]);
        ::core::assert_eq!(shadowed_one(::std::vec![1]), [1]);
    }
}
