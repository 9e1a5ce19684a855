//! The static registry of annotated items.
//!
//! Every attribute macro (`#[state]`, `#[computation]`, …) registers a [`ComponentInfo`]
//! with [`inventory`]. The typed pipeline builder is the source of truth for what runs; the
//! registry describes what the program defines, so that `--topology` can show components
//! that no pipeline uses and tests can check what the macros expanded into.
//!
//! On platforms that `inventory` does not support the registry is empty, and a library
//! crate that the binary never references is not linked, so its registrations are absent.

use std::fmt;

/// What an annotated item is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ComponentKind {
    /// `#[decoder]`: payload bytes to a message.
    Decoder,
    /// `#[encoder]`: a message to output bytes.
    Encoder,
    /// `#[computation]`: a stateless step.
    Computation,
    /// `#[state_computation]`: a step over partitioned state.
    StateComputation,
    /// `#[state]`: a state type.
    State,
    /// `#[partition]`: a partition function, message to key.
    Partition,
    /// `#[aggregation]`: an accumulator over the messages of a window or a key.
    Aggregation,
}

impl ComponentKind {
    /// The name used in the topology JSON (`"state_computation"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            ComponentKind::Decoder => "decoder",
            ComponentKind::Encoder => "encoder",
            ComponentKind::Computation => "computation",
            ComponentKind::StateComputation => "state_computation",
            ComponentKind::State => "state",
            ComponentKind::Partition => "partition",
            ComponentKind::Aggregation => "aggregation",
        }
    }
}

impl fmt::Display for ComponentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A type name, as a function so that it can live in a `static`.
pub type TypeNameFn = fn() -> &'static str;

/// The static description of one annotated item: plain data and `fn` pointers.
#[derive(Clone, Copy, Debug)]
pub struct ComponentInfo {
    /// What the item is.
    pub kind: ComponentKind,
    /// The name shown in the topology: the `name = "…"` argument, or the Rust name.
    pub name: &'static str,
    /// The Rust name of the annotated item.
    pub ident: &'static str,
    /// `module_path!()` where the item is defined.
    pub module_path: &'static str,
    /// `file!()` where the item is defined.
    pub file: &'static str,
    /// `line!()` of the item.
    pub line: u32,
    /// The message type the item takes, if any.
    pub input: Option<TypeNameFn>,
    /// The message (or key) type the item produces, if any.
    pub output: Option<TypeNameFn>,
    /// The state type the item works on, if any.
    pub state: Option<TypeNameFn>,
}

impl ComponentInfo {
    /// Where the item is defined, as `file:line`.
    pub fn location(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }
}

/// One registration, submitted by generated code through `inventory::submit!`.
#[derive(Clone, Copy, Debug)]
pub struct Registered(pub &'static ComponentInfo);

inventory::collect!(Registered);

/// Every component registered in this program, sorted by kind, module and name.
///
/// ```
/// let components = wallaroo_core::component::registered();
/// assert!(components.windows(2).all(|w| {
///     (w[0].kind, w[0].module_path, w[0].name) <= (w[1].kind, w[1].module_path, w[1].name)
/// }));
/// ```
pub fn registered() -> Vec<&'static ComponentInfo> {
    let mut all: Vec<&'static ComponentInfo> = inventory::iter::<Registered>
        .into_iter()
        .map(|r| r.0)
        .collect();
    all.sort_by(|a, b| {
        (a.kind, a.module_path, a.name, a.line).cmp(&(b.kind, b.module_path, b.name, b.line))
    });
    all
}

/// Shortens a Rust type name to what a user writes: `alloc::vec::Vec<alphabet::Vote>` becomes
/// `Vec<Vote>`.
///
/// ```
/// use wallaroo_core::component::short_type_name;
/// assert_eq!(short_type_name("alloc::vec::Vec<alphabet::Vote>"), "Vec<Vote>");
/// assert_eq!(short_type_name("(u8, core::option::Option<&str>)"), "(u8, Option<&str>)");
/// ```
pub fn short_type_name(full: &str) -> String {
    let mut out = String::with_capacity(full.len());
    let mut segment = String::new();
    let mut chars = full.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ':' && chars.peek() == Some(&':') {
            chars.next();
            // A path separator: drop the module path gathered so far.
            segment.clear();
        } else if c.is_alphanumeric() || c == '_' {
            segment.push(c);
        } else {
            out.push_str(&segment);
            segment.clear();
            out.push(c);
        }
    }
    out.push_str(&segment);
    out
}

/// The short name of `T`; see [`short_type_name`].
pub fn type_name_of<T: ?Sized>() -> String {
    short_type_name(std::any::type_name::<T>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_drop_module_paths_everywhere() {
        assert_eq!(short_type_name("u64"), "u64");
        assert_eq!(
            short_type_name("std::collections::hash::map::HashMap<alloc::string::String, u64>"),
            "HashMap<String, u64>"
        );
        assert_eq!(short_type_name("[my::Thing; 4]"), "[Thing; 4]");
        assert_eq!(type_name_of::<Vec<String>>(), "Vec<String>");
    }

    #[test]
    fn kinds_have_contract_names() {
        assert_eq!(
            ComponentKind::StateComputation.as_str(),
            "state_computation"
        );
        assert_eq!(ComponentKind::Computation.to_string(), "computation");
    }
}
