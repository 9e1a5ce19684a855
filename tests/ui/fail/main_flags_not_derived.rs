use wallaroo::prelude::*;

struct Flags {
    threshold: u32,
}

#[wallaroo::main]
fn setup(args: &Args, flags: &Flags) -> Application {
    let _ = (args, flags.threshold);
    Application::new("app")
}
