//! `--stats-interval`: a one-line summary in the log, so that a run without `--http` can be
//! watched.

mod support;

use std::io::Write;

use support::app::App;
use support::{vote_frame, Receiver};

#[test]
fn the_summary_counts_what_came_in_and_went_out() {
    let receiver = Receiver::start();
    let mut app = App::start(&receiver, &["--stats-interval", "1"]);
    let mut conn = support::connect(app.addr);
    let votes: Vec<u8> = (0..100)
        .flat_map(|i| vote_frame(b"abc"[i % 3], 1))
        .collect();
    conn.write_all(&votes).unwrap();
    assert_eq!(receiver.wait_for(100).len(), 100);
    // A later line has every vote in and every total out, with rates and a p99.
    let line = app.wait_log(&["stats: in 100 messages", "out 100 ("]);
    assert!(line.contains("/s)"), "{line}");
    assert!(line.contains("over the last"), "{line}");
    // Nothing came since: the next line's rates are 0.
    app.wait_log(&["stats: in 100 messages (0/s), out 100 (0/s), p99 -"]);
}

#[test]
fn without_the_flag_there_is_no_summary() {
    let receiver = Receiver::start();
    let mut app = App::start(&receiver, &[]);
    let mut conn = support::connect(app.addr);
    conn.write_all(&vote_frame(b'a', 1)).unwrap();
    assert_eq!(receiver.wait_for(1), ["a => 1"]);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert!(!app.saw("stats:"), "a summary without --stats-interval");
}
