//! The Word Count example: text lines in over loopback TCP and from the shipped file, a
//! running count per word out, each word's state created on first sight.

mod support;
#[allow(dead_code)]
#[path = "../examples/word_count.rs"]
mod word_count;

use std::collections::BTreeMap;

use support::{data_file, send_bytes, Receiver, TempDir};
use wallaroo::resilience::SyncPolicy;
use wallaroo::Args;

/// The counts of each word, in the order they arrived.
fn by_word(lines: &[String]) -> BTreeMap<String, Vec<u64>> {
    let mut words: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for line in lines {
        let (word, count) = line
            .split_once(" => ")
            .unwrap_or_else(|| panic!("not a count line: {line:?}"));
        words
            .entry(word.to_string())
            .or_default()
            .push(count.parse().unwrap());
    }
    words
}

const SHIPPED: &str = "\
the => 1
quick => 1
brown => 1
fox => 1
jumps => 1
over => 1
the => 2
lazy => 1
dog => 1
the => 3
dog => 2
sleeps => 1
the => 4
fox => 2
doesn't => 1
a => 1
fox => 3
a => 2
dog => 3
and => 1
the => 5
end => 1
";

#[test]
fn the_shipped_file_with_one_worker_gives_every_count_in_order() {
    let dir = TempDir::new("word-count");
    let args = Args::new()
        .with_input(data_file("words.txt"))
        .with_output(dir.address("out.txt"))
        .with_workers(1);
    word_count::word_count(&args).run(&args, |_| {}).unwrap();
    assert_eq!(dir.read("out.txt"), SHIPPED);
}

#[test]
fn the_shipped_file_with_three_workers_keeps_each_word_in_order() {
    let dir = TempDir::new("word-count");
    let args = Args::new()
        .with_input(data_file("words.txt"))
        .with_output(dir.address("out.txt"))
        .with_workers(3);
    word_count::word_count(&args).run(&args, |_| {}).unwrap();
    let out: Vec<String> = dir.read("out.txt").lines().map(String::from).collect();
    let expected: Vec<String> = SHIPPED.lines().map(String::from).collect();
    // Words on different workers may interleave differently; each word's counts may not.
    assert_eq!(by_word(&out), by_word(&expected));
}

#[test]
fn counts_recovered_after_a_restart_go_on_with_another_number_of_workers() {
    // Words are partitioned by a `&str` borrowed from the message: no key travels with a
    // word, and the recovered states, filed by their `String` keys, must be the ones the
    // borrowed keys find, on whichever worker now owns them.
    let dir = TempDir::new("word-count-recovery");
    std::fs::write(dir.0.join("first.txt"), "the cat saw the dog\n").unwrap();
    std::fs::write(dir.0.join("second.txt"), "the dog\nthe end\n").unwrap();
    let run = |input: &str, output: &str, workers: usize| {
        let args = Args::new()
            .with_input(dir.address(input))
            .with_output(dir.address(output))
            .with_workers(workers)
            .with_resilience(dir.0.join("state"), SyncPolicy::BeforeOutput);
        word_count::word_count(&args).run(&args, |_| {}).unwrap();
        let lines: Vec<String> = dir.read(output).lines().map(String::from).collect();
        by_word(&lines)
    };
    let first = run("first.txt", "first.out", 2);
    assert_eq!(first["the"], [1, 2]);
    let second = run("second.txt", "second.out", 3);
    let expected: BTreeMap<String, Vec<u64>> =
        [("the", vec![3, 4]), ("dog", vec![2]), ("end", vec![1])]
            .into_iter()
            .map(|(word, counts)| (word.to_string(), counts))
            .collect();
    assert_eq!(second, expected);
}

#[test]
fn lines_from_several_connections_are_counted_per_word() {
    let receiver = Receiver::start();
    let args = Args::new()
        .with_input("127.0.0.1:0")
        .with_output(receiver.addr.to_string().as_str())
        .with_workers(2);
    let running = word_count::word_count(&args).start(&args).unwrap();
    let addr = running.local_addr(0).unwrap();

    // Each connection sends 200 lines of "alpha beta gamma w{conn}" and "Alpha!", with
    // Windows line ends, and a last line without one.
    std::thread::scope(|s| {
        for conn in 0..4 {
            s.spawn(move || {
                let mut text = String::new();
                for _ in 0..200 {
                    text.push_str(&format!("alpha beta gamma w{conn}\r\nAlpha!\r\n"));
                }
                text.push_str("omega");
                send_bytes(addr, text.as_bytes());
            });
        }
    });
    let expected_lines = 4 * (200 * 5 + 1);
    let lines = receiver.wait_for(expected_lines);
    running.stop().unwrap();
    assert_eq!(lines.len(), expected_lines);
    let words = by_word(&lines);
    let upto = |n: u64| (1..=n).collect::<Vec<u64>>();
    assert_eq!(words.len(), 8, "alpha, beta, gamma, omega, w0..w3");
    assert_eq!(words["alpha"], upto(1600));
    assert_eq!(words["beta"], upto(800));
    assert_eq!(words["gamma"], upto(800));
    assert_eq!(words["omega"], upto(4));
    for conn in 0..4 {
        assert_eq!(words[&format!("w{conn}")], upto(200));
    }
}

#[test]
fn split_makes_lowercase_words_and_drops_punctuation() {
    use word_count::Word;
    let words = |line: &str| -> Vec<String> {
        word_count::split(line.to_string())
            .into_iter()
            .map(|Word(w)| w)
            .collect()
    };
    assert_eq!(words("It's 'quoted', OK?"), ["it's", "quoted", "ok"]);
    assert_eq!(words("  ... "), Vec::<String>::new());
}
