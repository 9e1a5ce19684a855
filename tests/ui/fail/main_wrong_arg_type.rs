use wallaroo::prelude::*;

#[wallaroo::main]
fn setup(args: Args) -> Application {
    let _ = args;
    Application::new("app")
}
