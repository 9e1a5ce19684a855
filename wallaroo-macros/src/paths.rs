//! The one table of paths that generated code names.
//!
//! Generated code reaches the runtime only through `::wallaroo::__private` (a hidden module of
//! the facade), and the standard library only through absolute `::core` / `::std` paths, so
//! that a user module which shadows `Result`, `Option`, `Vec`, `u8`, … cannot change what an
//! expansion means, and user crates need no direct dependency on serde or inventory.
//!
//! Every path takes the span it is emitted at: a path spanned at the user's tokens makes the
//! compiler's error about it (an unmet bound, a mismatched type) point at those tokens.

use proc_macro2::{Span, TokenStream};
use quote::quote_spanned;

/// The serde crate as `#[serde(crate = "…")]` names it: the path of [`serde`].
pub(crate) const SERDE_CRATE: &str = "::wallaroo::__private::serde";

macro_rules! paths {
    ($($(#[$doc:meta])* $name:ident => { $($path:tt)+ })*) => {
        $(
            $(#[$doc])*
            pub(crate) fn $name(span: Span) -> TokenStream {
                quote_spanned!(span=> $($path)+)
            }
        )*
    };
}

paths! {
    // The runtime, through the facade's hidden module.
    /// `ComponentInfo`: the registry entry of an annotated item.
    component_info => { ::wallaroo::__private::ComponentInfo }
    /// `ComponentKind`: what an annotated item is.
    component_kind => { ::wallaroo::__private::ComponentKind }
    /// `Registered`: what `inventory::submit!` submits.
    registered => { ::wallaroo::__private::Registered }
    /// The `inventory` crate.
    inventory => { ::wallaroo::__private::inventory }
    /// The `serde` crate (its traits and derive macros).
    serde => { ::wallaroo::__private::serde }
    /// The `State` trait.
    state_trait => { ::wallaroo::__private::State }
    /// The `Accumulator` trait, which `#[aggregation]` implements beside `State`.
    accumulator_trait => { ::wallaroo::__private::Accumulator }
    /// `read_upgraded(saved, reader, upgrade)`: `State::read_saved` of a state with an
    /// upgrade function.
    read_upgraded => { ::wallaroo::__private::read_upgraded }
    /// The `ReadSaved<S>` trait.
    read_saved => { ::wallaroo::__private::ReadSaved }
    /// `SavedVersion`: the version and layout a file was saved with.
    saved_version => { ::wallaroo::__private::SavedVersion }
    /// `VersionMismatch`: why saved states cannot be read.
    version_mismatch => { ::wallaroo::__private::VersionMismatch }
    /// `default_state::<S>()`: builds a state with its `Default`.
    default_state => { ::wallaroo::__private::default_state }
    /// The `Computation<In>` trait.
    computation_trait => { ::wallaroo::__private::Computation }
    /// The `StateComputation<In>` trait.
    state_computation_trait => { ::wallaroo::__private::StateComputation }
    /// The `Emit<T>` trait.
    emit => { ::wallaroo::__private::Emit }
    /// `emit_one(out, msg)`.
    emit_one => { ::wallaroo::__private::emit_one }
    /// `emit_option(out, Option<msg>)`.
    emit_option => { ::wallaroo::__private::emit_option }
    /// `emit_many(out, msgs)`.
    emit_many => { ::wallaroo::__private::emit_many }
    /// The `Decoder` trait.
    decoder_trait => { ::wallaroo::__private::Decoder }
    /// The `DecodeResult` trait: what a decoder function may return.
    decode_result => { ::wallaroo::__private::DecodeResult }
    /// The `Framing` enum.
    framing => { ::wallaroo::__private::Framing }
    /// The `Encoder<T>` trait.
    encoder_trait => { ::wallaroo::__private::Encoder }
    /// `append_bytes(out, bytes)`: appends what a returning encoder returned.
    append_bytes => { ::wallaroo::__private::append_bytes }
    /// The `Partition<In>` trait.
    partition_trait => { ::wallaroo::__private::Partition }
    /// `route_owned(partition, msg, hasher)`: the hash of a returned key, and the key to
    /// carry.
    route_owned => { ::wallaroo::__private::route_owned }
    /// `is_owned_key::<P, In>(carried, key)`: whether a carried key is the key.
    is_owned_key => { ::wallaroo::__private::is_owned_key }
    /// `route_borrowed(key, hasher)`: the hash of a borrowed key; nothing to carry.
    route_borrowed => { ::wallaroo::__private::route_borrowed }
    /// `is_borrowed_key(key, borrowed)`: whether an owned key is the borrowed one.
    is_borrowed_key => { ::wallaroo::__private::is_borrowed_key }
    /// The `ToOwned` trait.
    to_owned => { ::std::borrow::ToOwned }
    /// The `BuildHasher` trait.
    build_hasher => { ::core::hash::BuildHasher }
    /// `collect_keys(keys)`: the `keys = …` of a partition as a `Vec<Key>`.
    collect_keys => { ::wallaroo::__private::collect_keys }
    /// `run_application(name, version, doc, setup)`: the generated `main`'s one call.
    run_application => { ::wallaroo::__private::run_application }
    /// `is_command_line::<T>()`: compiles when `T` is `Args`.
    is_command_line => { ::wallaroo::__private::is_command_line }
    /// `NoFlags`: the flags of a setup function that takes none.
    no_flags => { ::wallaroo::__private::NoFlags }
    /// The `Args` of the command line.
    args => { ::wallaroo::__private::Args }
    /// The `Application` a setup function returns.
    application => { ::wallaroo::__private::Application }
    /// `IntoApplication::into_application`: what a setup function's result passes through.
    into_application => { ::wallaroo::__private::IntoApplication::into_application }
    /// The bound under which a state computation would be a stateless step; never met.
    use_to_state_partition => { ::wallaroo::__private::UseToStatePartition }
    /// The bound under which a stateless step would be a state computation; never met.
    use_to => { ::wallaroo::__private::UseTo }
    /// The state type of a rejected state computation whose state is not known.
    unknown_state => { ::wallaroo::__private::UnknownState }
    /// `DecodeResult::Ok`'s stand-in for a rejected decoder: `Infallible`.
    infallible => { ::core::convert::Infallible }
    /// `unreachable!()`: the body of a method that is never run.
    unreachable => { ::core::unreachable!() }

    // The standard library, by absolute path.
    /// `Option::Some`.
    some => { ::core::option::Option::Some }
    /// `Option::None`.
    none => { ::core::option::Option::None }
    /// `Result`.
    result => { ::core::result::Result }
    /// `Vec`.
    vec => { ::std::vec::Vec }
    /// `u8`.
    u8 => { ::core::primitive::u8 }
    /// `u64`.
    u64 => { ::core::primitive::u64 }
    /// `usize`.
    usize => { ::core::primitive::usize }
    /// `bool`.
    bool => { ::core::primitive::bool }
    /// `type_name::<T>`.
    type_name => { ::core::any::type_name }
    /// The `Deref` trait.
    deref => { ::core::ops::Deref }
    /// `module_path!`.
    module_path => { ::core::module_path! }
    /// `file!`.
    file => { ::core::file! }
    /// `concat!`.
    concat => { ::core::concat! }
    /// `env!`.
    env => { ::core::env! }
    /// `ExitCode`, what the generated `main` returns.
    exit_code => { ::std::process::ExitCode }
    /// The derives of the unit struct that replaces an annotated function.
    unit_derives => { ::core::clone::Clone, ::core::marker::Copy, ::core::fmt::Debug, ::core::default::Default }
}
