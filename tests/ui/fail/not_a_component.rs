use wallaroo::prelude::*;

fn double(x: u64) -> u64 {
    x * 2
}

#[decoder]
fn decode(payload: &[u8]) -> Result<u64, DecodeError> {
    Ok(payload.len() as u64)
}

fn setup(args: &Args) -> Application {
    Application::new("app")
        .pipeline("numbers", Source::new(args.input(0), decode))
        .to(double)
        .done()
}

fn main() {
    let _ = setup;
}
