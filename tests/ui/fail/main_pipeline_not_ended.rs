use wallaroo::prelude::*;

pub struct Summary {
    pub total: u64,
}

#[decoder]
fn decode(payload: &[u8]) -> Result<Summary, DecodeError> {
    Ok(Summary {
        total: payload.len() as u64,
    })
}

#[encoder]
fn encode(s: &Summary) -> String {
    format!("{}\n", s.total)
}

#[wallaroo::main]
fn summaries(args: &Args) -> Application {
    Application::new("Summaries").pipeline("summaries", Source::new(args.input(0), decode))
}
