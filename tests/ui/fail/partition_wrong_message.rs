use wallaroo::prelude::*;

#[derive(Debug, Clone, Copy)]
pub struct Vote {
    pub letter: u8,
    pub count: u64,
}

#[state]
#[derive(Default)]
pub struct Total {
    votes: u64,
}

#[decoder]
fn decode(payload: &[u8]) -> Result<Vote, DecodeError> {
    Ok(Vote {
        letter: payload[0],
        count: 1,
    })
}

#[state_computation]
fn add_votes(v: Vote, total: &mut Total) -> (Vote, bool) {
    total.votes += v.count;
    (v, true)
}

#[partition]
fn by_number(n: &u64) -> u64 {
    *n % 8
}

fn setup(args: &Args) -> Application {
    Application::new("app")
        .pipeline("votes", Source::new(args.input(0), decode))
        .to_state_partition(add_votes, "totals", by_number)
        .done()
}

fn main() {
    let _ = setup;
}
