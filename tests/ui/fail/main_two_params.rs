use wallaroo::prelude::*;

#[wallaroo::main]
fn setup(args: &Args, name: &str) -> Application {
    let _ = args;
    Application::new(name)
}
