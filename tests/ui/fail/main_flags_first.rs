use wallaroo::clap;
use wallaroo::prelude::*;

#[derive(clap::Args)]
struct Flags {
    #[arg(long, default_value_t = 5)]
    threshold: u32,
}

#[wallaroo::main]
fn setup(flags: &Flags) -> Application {
    let _ = flags.threshold;
    Application::new("app")
}
