use wallaroo::prelude::*;

#[computation]
fn identity<T: Send + 'static>(x: T) -> T {
    x
}

#[computation]
fn first(x: Vec<u64>) -> Option<u64>
where
    u64: Copy,
{
    x.first().copied()
}

fn main() {}
