use wallaroo::prelude::*;

#[derive(Clone, Copy)]
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

#[computation]
fn double(v: Vote) -> Vote {
    Vote {
        count: v.count * 2,
        ..v
    }
}

#[partition]
fn by_letter(v: &Vote) -> u8 {
    v.letter
}

fn setup(args: &Args) -> Application {
    Application::new("app")
        .pipeline("votes", Source::new(args.input(0), decode))
        .to(add_votes)
        .done()
}

fn setup_the_other_way(args: &Args) -> Application {
    Application::new("app")
        .pipeline("votes", Source::new(args.input(0), decode))
        .to_state_partition(double, "totals", by_letter)
        .done()
}

fn main() {
    let _ = (setup, setup_the_other_way);
}
