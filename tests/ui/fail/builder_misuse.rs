// Parts given to the builder in the wrong place: each error is at the user's call.
use wallaroo::prelude::*;

#[decoder]
fn decode(payload: &[u8]) -> Result<u64, DecodeError> {
    Ok(payload.len() as u64)
}

#[encoder]
fn encode(n: &u64) -> String {
    format!("{n}\n")
}

#[computation]
fn double(n: u64) -> u64 {
    n * 2
}

fn encoder_as_source(args: &Args) -> Application {
    Application::new("app")
        .pipeline("numbers", Source::new(args.input(0), encode))
        .done()
}

fn decoder_as_sink(args: &Args) -> Application {
    Application::new("app")
        .pipeline("numbers", Source::new(args.input(0), decode))
        .to_sink(Sink::new(args.output(0), decode))
}

fn step_as_source(args: &Args) -> Application {
    let _ = args;
    Application::new("app").pipeline("numbers", double).done()
}

fn main() {
    let _ = (encoder_as_source, decoder_as_sink, step_as_source);
}
