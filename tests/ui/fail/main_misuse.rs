use wallaroo::prelude::*;

#[wallaroo::main(threads = 4)]
async fn main(args: &Args) {
    let _ = args;
}
