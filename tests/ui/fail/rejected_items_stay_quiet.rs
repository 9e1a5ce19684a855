// Each macro rejects its item; the pipeline that uses them all reports nothing more.
use wallaroo::prelude::*;

pub struct Vote {
    pub letter: u8,
    pub count: u64,
}

#[state(buildr = Total::new)]
#[derive(Default)]
pub struct Total {
    votes: u64,
}

#[decoder]
fn decode(payload: Vec<u8>) -> Result<Vote, DecodeError> {
    Ok(Vote {
        letter: payload[0],
        count: 1,
    })
}

#[computation]
fn double(v: &Vote) -> Vote {
    Vote {
        letter: v.letter,
        count: v.count * 2,
    }
}

#[state_computation]
fn add_votes(v: Vote, total: &Total) -> (Vote, bool) {
    (
        Vote {
            letter: v.letter,
            count: total.votes + v.count,
        },
        false,
    )
}

#[partition]
fn by_letter(v: Vote) -> u8 {
    v.letter
}

#[encoder]
fn encode(v: Vote) -> String {
    format!("{} => {}\n", v.letter as char, v.count)
}

#[wallaroo::main]
fn alphabet(args: &Args) -> Application {
    Application::new("Alphabet")
        .pipeline("Alphabet", Source::new(args.input(0), decode))
        .to(double)
        .to_state_partition(add_votes, "running vote totals", by_letter)
        .to_sink(Sink::new(args.output(0), encode))
}
