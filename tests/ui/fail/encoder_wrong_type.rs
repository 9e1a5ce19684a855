use wallaroo::prelude::*;

#[decoder]
fn decode(payload: &[u8]) -> Result<u64, DecodeError> {
    Ok(payload.len() as u64)
}

#[encoder]
fn encode(s: &String, out: &mut Vec<u8>) {
    out.extend_from_slice(s.as_bytes());
}

fn setup(args: &Args) -> Application {
    Application::new("app")
        .pipeline("numbers", Source::new(args.input(0), decode))
        .to_sink(Sink::new(args.output(0), encode))
}

fn main() {
    let _ = setup;
}
