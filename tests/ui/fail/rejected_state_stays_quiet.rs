// A rejected #[state] still stands for a state: the state computation and the pipeline
// that use it report nothing more.
use wallaroo::prelude::*;

#[state]
#[derive(Default)]
pub enum Mode {
    #[default]
    Quiet,
    Loud,
}

#[decoder]
fn decode(payload: &[u8]) -> Result<u64, DecodeError> {
    Ok(payload.len() as u64)
}

#[state_computation]
fn toggle(n: u64, mode: &mut Mode) -> (u64, bool) {
    *mode = if n > 10 { Mode::Loud } else { Mode::Quiet };
    (n, true)
}

#[partition]
fn by_parity(n: &u64) -> u64 {
    n % 2
}

#[wallaroo::main]
fn modes(args: &Args) -> Application {
    Application::new("Modes")
        .pipeline("numbers", Source::new(args.input(0), decode))
        .to_state_partition(toggle, "modes", by_parity)
        .done()
}
