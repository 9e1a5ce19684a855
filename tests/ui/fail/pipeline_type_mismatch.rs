use wallaroo::prelude::*;

#[decoder]
fn decode(payload: &[u8]) -> Result<u64, DecodeError> {
    Ok(payload.len() as u64)
}

#[computation]
fn shout(s: String) -> String {
    s.to_uppercase()
}

#[encoder]
fn encode(s: &String) -> String {
    s.clone()
}

fn setup(args: &Args) -> Application {
    Application::new("app")
        .pipeline("numbers", Source::new(args.input(0), decode))
        .to(shout)
        .to_sink(Sink::new(args.output(0), encode))
}

fn main() {
    let _ = setup;
}
