//! Pipeline shapes a user builds: steps before and after state computations, two state
//! partitions in one pipeline, several pipelines, and what `--topology` says about them.

mod support;

use std::collections::BTreeMap;

use support::TempDir;
use wallaroo::prelude::*;
use wallaroo::Args;

/// A line of text, and a word of it.
#[derive(Clone, Debug)]
pub struct Word(String);

#[decoder(lines)]
fn read_line(payload: &[u8]) -> Result<String, DecodeError> {
    String::from_utf8(payload.to_vec()).map_err(|_| DecodeError::new("not UTF-8"))
}

#[computation(name = "split")]
fn split(line: String) -> Vec<Word> {
    line.split_whitespace()
        .map(|w| Word(w.to_lowercase()))
        .collect()
}

#[computation(name = "drop short words")]
fn long_only(word: Word) -> Option<Word> {
    (word.0.len() > 2).then_some(word)
}

#[state]
#[derive(Default)]
pub struct Count(u64);

#[partition]
fn by_word(word: &Word) -> String {
    word.0.clone()
}

/// A word's count so far.
#[derive(Clone, Debug)]
pub struct WordCount {
    word: String,
    count: u64,
}

#[state_computation(name = "count words")]
fn count_word(word: Word, count: &mut Count) -> (WordCount, bool) {
    count.0 += 1;
    let out = WordCount {
        word: word.0,
        count: count.0,
    };
    (out, true)
}

#[computation(name = "first seen")]
fn first_seen(count: WordCount) -> Option<WordCount> {
    (count.count == 1).then_some(count)
}

#[partition]
fn by_first_letter(count: &WordCount) -> char {
    count.word.chars().next().unwrap_or(' ')
}

/// How many distinct words start with a letter, so far.
#[derive(Clone, Debug)]
pub struct LetterCount {
    letter: char,
    words: u64,
}

#[state_computation(name = "count distinct words per letter")]
fn count_letter(count: WordCount, letter: &mut Count) -> (LetterCount, bool) {
    letter.0 += 1;
    let letter = LetterCount {
        letter: by_first_letter(&count),
        words: letter.0,
    };
    (letter, true)
}

#[encoder]
fn encode_letter(count: &LetterCount) -> String {
    format!("{} {}\n", count.letter, count.words)
}

#[encoder]
fn encode_word(count: &WordCount) -> String {
    format!("{} {}\n", count.word, count.count)
}

#[encoder]
fn encode_line(line: &String) -> String {
    format!("{line}\n")
}

fn app(args: &Args) -> Application {
    Application::new("words")
        .pipeline("letters", Source::new(args.input(0), read_line))
        .to(split)
        .to(long_only)
        .to_state_partition(count_word, "words", by_word)
        .also_to_sink(Sink::new(args.output(0), encode_word))
        .to(first_seen)
        .to_state_partition(count_letter, "letters", by_first_letter)
        .to_sink(Sink::new(args.output(1), encode_letter))
}

#[test]
fn two_state_partitions_with_steps_around_them() {
    let dir = TempDir::new("api");
    let text = "the cat and the hat\nA cat on a mat\nthe end of the tale\n";
    std::fs::write(dir.0.join("in.txt"), text).unwrap();
    for workers in [1, 3] {
        let args = Args::new()
            .with_input(dir.address("in.txt"))
            .with_output(dir.address("words.txt"))
            .with_output(dir.address("letters.txt"))
            .with_workers(workers);
        app(&args).run(&args, |_| {}).unwrap();

        // Per word, the counts in order; words of two letters or fewer never arrive.
        let mut words: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        for line in dir.read("words.txt").lines() {
            let (word, count) = line.split_once(' ').unwrap();
            words
                .entry(word.into())
                .or_default()
                .push(count.parse().unwrap());
        }
        assert_eq!(words["the"], [1, 2, 3, 4]);
        assert_eq!(words["cat"], [1, 2]);
        assert!(!words.contains_key("a") && !words.contains_key("on"));
        assert_eq!(words.len(), 7, "{words:?}");

        // Per letter, the distinct words seen so far, counted once per word.
        let mut letters: BTreeMap<char, Vec<u64>> = BTreeMap::new();
        for line in dir.read("letters.txt").lines() {
            let (letter, count) = line.split_once(' ').unwrap();
            letters
                .entry(letter.chars().next().unwrap())
                .or_default()
                .push(count.parse().unwrap());
        }
        // t: the, tale; a: and; c: cat; h: hat; m: mat; e: end; o: (none: "of" is short).
        assert_eq!(letters[&'t'], [1, 2]);
        assert_eq!(letters[&'a'], [1]);
        assert_eq!(
            letters.values().map(Vec::len).sum::<usize>(),
            7,
            "{letters:?}"
        );
    }
}

#[test]
fn the_topology_shows_every_step_and_both_state_partitions() {
    let args = Args::new();
    let application = app(&args);
    let topology = application.topology();
    let pipeline = &topology.pipelines[0];
    let steps: Vec<(&str, &str, &str, &str)> = pipeline
        .steps
        .iter()
        .map(|s| {
            (
                s.name.as_str(),
                s.kind.as_str(),
                s.input.as_str(),
                s.output.as_str(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            ("split", "computation", "String", "Word"),
            ("drop short words", "computation", "Word", "Word"),
            ("count words", "state_computation", "Word", "WordCount"),
            ("first seen", "computation", "WordCount", "WordCount"),
            (
                "count distinct words per letter",
                "state_computation",
                "WordCount",
                "LetterCount"
            ),
        ]
    );
    assert_eq!(pipeline.sinks.len(), 2);
    assert_eq!(pipeline.sinks[0].input, "WordCount");
    assert_eq!(pipeline.sinks[1].input, "LetterCount");
    let states: Vec<(&str, &str, &str)> = topology
        .states
        .iter()
        .map(|s| (s.name.as_str(), s.state_type.as_str(), s.key.as_str()))
        .collect();
    assert_eq!(
        states,
        [("words", "Count", "String"), ("letters", "Count", "char")]
    );
    assert!(application.errors().is_empty());
    let dot = topology.to_dot();
    assert_eq!(dot.matches("shape=cylinder").count(), 2);
}

/// Three sinks: one fed by the source before any step, one after the third step (with
/// `also_to_sink`), one at the end.
fn app_with_three_sinks(args: &Args) -> Application {
    Application::new("sinks")
        .pipeline("words", Source::new(args.input(0), read_line))
        .also_to_sink(Sink::new(args.output(0), encode_line))
        .to(split)
        .to(long_only)
        .to_state_partition(count_word, "words", by_word)
        .also_to_sink(Sink::new(args.output(1), encode_word))
        .to(first_seen)
        .to_state_partition(count_letter, "letters", by_first_letter)
        .to_sink(Sink::new(args.output(2), encode_letter))
}

#[test]
fn the_topology_says_where_each_sink_is_attached() {
    let dir = TempDir::new("api-sinks");
    std::fs::write(dir.0.join("in.txt"), "the cat\nthe hat\n").unwrap();
    let args = Args::new()
        .with_input(dir.address("in.txt"))
        .with_output(dir.address("lines.txt"))
        .with_output(dir.address("words.txt"))
        .with_output(dir.address("letters.txt"))
        .with_workers(1);
    let application = app_with_three_sinks(&args);
    let topology = application.topology().clone();

    // The JSON: each sink names the index of the step it receives the output of.
    let json: serde_json::Value = serde_json::from_str(&topology.to_json()).unwrap();
    let pipeline = &json["pipelines"][0];
    let sinks: Vec<(&str, serde_json::Value)> = pipeline["sinks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["encoder"].as_str().unwrap(), s["after"].clone()))
        .collect();
    assert_eq!(
        sinks,
        [
            ("encode_line", serde_json::Value::Null),
            ("encode_word", 2.into()),
            ("encode_letter", 4.into()),
        ]
    );
    assert_eq!(pipeline["steps"][2]["name"], "count words");
    assert_eq!(
        pipeline["steps"][4]["name"],
        "count distinct words per letter"
    );
    // What each sink encodes is what the step it is attached after produces.
    assert_eq!(pipeline["sinks"][0]["input"], pipeline["source"]["output"]);
    assert_eq!(
        pipeline["sinks"][1]["input"],
        pipeline["steps"][2]["output"]
    );
    assert_eq!(
        pipeline["sinks"][2]["input"],
        pipeline["steps"][4]["output"]
    );

    // The DOT: one edge into each sink, from the same place.
    let dot = topology.to_dot();
    let into_sink = |k: usize| -> Vec<&str> {
        dot.lines()
            .filter_map(|line| line.trim().split_once(&format!(" -> p0_sink{k} ")))
            .map(|(from, _)| from)
            .collect()
    };
    assert_eq!(into_sink(0), ["p0_source"], "{dot}");
    assert_eq!(into_sink(1), ["p0_step2"], "{dot}");
    assert_eq!(into_sink(2), ["p0_step4"], "{dot}");

    // And the running application agrees: the first sink gets the lines as read.
    application.run(&args, |_| {}).unwrap();
    assert_eq!(dir.read("lines.txt"), "the cat\nthe hat\n");
    assert_eq!(dir.read("words.txt"), "the 1\ncat 1\nthe 2\nhat 1\n");
    assert_eq!(dir.read("letters.txt"), "t 1\nc 1\nh 1\n");
}

#[test]
fn a_state_name_used_with_another_key_type_is_an_error_before_start() {
    let args = Args::new().with_input("-").with_output("-");
    let application = Application::new("clash")
        .pipeline("one", Source::new(args.input(0), read_line))
        .to(split)
        .to_state_partition(count_word, "counts", by_word)
        .done()
        .pipeline("two", Source::new(args.input(0), read_line))
        .to(split)
        .to_state_partition(count_word, "counts", by_word)
        .to(first_seen)
        .to_state_partition(count_letter, "counts", by_first_letter)
        .done()
        .pipeline("two", Source::new(args.input(0), read_line))
        .done();
    let errors = application.errors().to_vec();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors[0].contains("state partition \"counts\"") && errors[0].contains("key char"),
        "{}",
        errors[0]
    );
    assert!(
        errors[1].contains("two pipelines are named \"two\""),
        "{}",
        errors[1]
    );
    let err = application.start(&args).err().expect("refused");
    assert!(err.to_string().contains("not well formed"), "{err}");
}

/// A line `KEY,TIME_MS` of a timed input.
#[derive(Clone, Debug)]
pub struct Stamp(String, i64);

#[decoder(lines)]
fn read_stamp(payload: &[u8]) -> Result<Stamp, DecodeError> {
    let bad = || DecodeError::new("expected KEY,TIME_MS");
    let line = std::str::from_utf8(payload).map_err(|_| bad())?;
    let (key, time) = line.split_once(',').ok_or_else(bad)?;
    Ok(Stamp(key.to_string(), time.parse().map_err(|_| bad())?))
}

fn stamp_time(stamp: &Stamp) -> i64 {
    stamp.1
}

#[partition]
fn by_stamp_key(stamp: &Stamp) -> &str {
    &stamp.0
}

/// How many stamps a window holds.
#[aggregation]
#[derive(Clone, Default)]
pub struct Tally {
    n: u64,
}

impl Aggregation<Stamp> for Tally {
    type Out = u64;
    fn update(&mut self, _: &Stamp) {
        self.n += 1;
    }
    fn combine(&mut self, other: &Self) {
        self.n += other.n;
    }
    fn output(&self) -> u64 {
        self.n
    }
}

#[encoder]
fn encode_tally(fired: &Fired<String, u64>) -> String {
    let Window { start, end } = fired.window;
    format!("{} [{start},{end}) {}\n", fired.key, fired.value)
}

#[encoder]
fn encode_late_stamp(stamp: &Stamp) -> String {
    format!("late {} {}\n", stamp.0, stamp.1)
}

#[test]
fn a_late_sink_in_a_second_pipeline_gets_its_late_messages_and_its_place_in_the_topology() {
    // The first pipeline's sink is the application's sink 0: the late sink is the
    // application's sink 1, but its pipeline's sink 0.
    let dir = TempDir::new("api-late-sink");
    std::fs::write(dir.0.join("in.txt"), "the cat\n").unwrap();
    // Windows of 10 s, no out-of-orderness: 20 000 closes [0, 10000), so 3 000 is late.
    std::fs::write(dir.0.join("stamps.csv"), "a,1000\na,20000\na,3000\n").unwrap();
    let args = Args::new()
        .with_input(dir.address("in.txt"))
        .with_input(dir.address("stamps.csv"))
        .with_output(dir.address("lines.txt"))
        .with_output(dir.address("late.txt"))
        .with_output(dir.address("tallies.txt"))
        .with_workers(2);
    let application = Application::new("late")
        .pipeline("lines", Source::new(args.input(0), read_line))
        .to_sink(Sink::new(args.output(0), encode_line))
        .pipeline("stamps", Source::new(args.input(1), read_stamp))
        .event_time(stamp_time, Watermarks::bounded(std::time::Duration::ZERO))
        .late_to_sink(Sink::new(args.output(1), encode_late_stamp))
        .to_window(
            Windows::tumbling(std::time::Duration::from_secs(10)),
            Tally::default(),
            "tallies",
            by_stamp_key,
        )
        .to_sink(Sink::new(args.output(2), encode_tally));
    let sinks: Vec<(String, Option<usize>)> = application.topology().pipelines[1]
        .sinks
        .iter()
        .map(|s| (s.encoder.clone(), s.after))
        .collect();
    assert_eq!(
        sinks,
        [
            ("encode_late_stamp".to_string(), Some(0)),
            ("encode_tally".to_string(), Some(0))
        ]
    );
    assert_eq!(application.topology().pipelines[0].sinks[0].after, None);
    application.run(&args, |_| {}).unwrap();
    assert_eq!(dir.read("lines.txt"), "the cat\n");
    assert_eq!(dir.read("late.txt"), "late a 3000\n");
    assert_eq!(
        dir.read("tallies.txt"),
        "a [0,10000) 1\na [20000,30000) 1\n"
    );
}

#[encoder]
fn encode_tally_late(fired: &Fired<String, u64>) -> String {
    let Window { start, end } = fired.window;
    let late = if fired.late { " late" } else { "" };
    format!("{} [{start},{end}) {}{late}\n", fired.key, fired.value)
}

#[test]
fn a_message_within_the_allowed_lateness_that_extends_a_fired_session_fires_it_again() {
    // Sessions of 10 s, kept 5 s after they fire, no out-of-orderness. b's 10 000 closes
    // a's [0, 10000); at watermark 12 000, a's 3 000 (window [3000, 13000)) is within the
    // lateness: a's session becomes [0, 13000) and fires again, with both messages.
    let dir = TempDir::new("api-session-lateness");
    std::fs::write(
        dir.0.join("stamps.csv"),
        "a,0\nb,10000\nb,12000\na,3000\nb,30000\n",
    )
    .unwrap();
    for workers in [1, 2] {
        let args = Args::new()
            .with_input(dir.address("stamps.csv"))
            .with_output(dir.address("out.txt"))
            .with_workers(workers);
        Application::new("lateness")
            .pipeline("stamps", Source::new(args.input(0), read_stamp))
            .event_time(stamp_time, Watermarks::bounded(std::time::Duration::ZERO))
            .to_window(
                Windows::session(std::time::Duration::from_secs(10))
                    .allowed_lateness(std::time::Duration::from_secs(5)),
                Tally::default(),
                "sessions",
                by_stamp_key,
            )
            .to_sink(Sink::new(args.output(0), encode_tally_late))
            .run(&args, |_| {})
            .unwrap();
        let a: Vec<String> = dir
            .read("out.txt")
            .lines()
            .filter(|line| line.starts_with("a "))
            .map(str::to_string)
            .collect();
        assert_eq!(
            a,
            ["a [0,10000) 1", "a [0,13000) 2 late"],
            "{workers} workers"
        );
    }
}
