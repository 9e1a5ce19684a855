use wallaroo::clap;
use wallaroo::prelude::*;

#[derive(clap::Args)]
struct Flags {
    #[arg(long, default_value_t = 5)]
    threshold: u32,
}

#[wallaroo::main]
fn setup(args: &Args, flags: &mut Flags) -> Application {
    flags.threshold += 1;
    let _ = args;
    Application::new("app")
}
