use std::marker::PhantomData;

use wallaroo::prelude::*;

/// Each key's state is owned by one worker thread, so it must be `Send`.
#[state]
#[derive(Default)]
struct Cache {
    count: u64,
    not_send: PhantomData<*const u8>,
}

fn main() {}
