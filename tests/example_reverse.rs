//! The Reverse Word example: framed words in over loopback TCP and from the shipped file,
//! reversed lines out, empty words and invalid UTF-8 dropped.

#[allow(dead_code)]
#[path = "../examples/reverse.rs"]
mod reverse;
mod support;

use support::{data_file, frame, send_bytes, Receiver, TempDir};
use wallaroo::Args;

#[test]
fn words_sent_over_tcp_come_back_reversed_in_order() {
    let receiver = Receiver::start();
    let args = Args::new()
        .with_input("127.0.0.1:0")
        .with_output(receiver.addr.to_string().as_str());
    let running = reverse::reverse_word(&args).start(&args).unwrap();
    let addr = running.local_addr(0).unwrap();

    let mut bytes = Vec::new();
    for word in ["stream", "", "  ", " padded ", "Ωmega", "a"] {
        bytes.extend_from_slice(&frame(word.as_bytes()));
    }
    // Not UTF-8: the decoder refuses it, the frame is skipped, the connection goes on.
    bytes.extend_from_slice(&frame(&[0xff, 0xfe]));
    bytes.extend_from_slice(&frame(b"last"));
    send_bytes(addr, &bytes);

    let lines = receiver.wait_for(5);
    let counts = support::counts_when(&running, 0, |c| c.messages + c.decode_errors >= 8);
    running.stop().unwrap();
    assert_eq!(lines, ["maerts", "deddap", "agemΩ", "a", "tsal"]);
    assert_eq!(counts.messages, 7, "eight frames, one refused");
    assert_eq!(counts.decode_errors, 1);
}

#[test]
fn a_thousand_words_from_three_connections_each_keep_their_order() {
    let receiver = Receiver::start();
    let args = Args::new()
        .with_input("127.0.0.1:0")
        .with_output(receiver.addr.to_string().as_str());
    let running = reverse::reverse_word(&args).start(&args).unwrap();
    let addr = running.local_addr(0).unwrap();

    std::thread::scope(|s| {
        for conn in 0..3 {
            s.spawn(move || {
                let bytes: Vec<u8> = (0..1000)
                    .flat_map(|i| frame(format!("c{conn}w{i:04}").as_bytes()))
                    .collect();
                send_bytes(addr, &bytes);
            });
        }
    });
    let lines = receiver.wait_for(3000);
    running.stop().unwrap();
    assert_eq!(lines.len(), 3000);
    for conn in 0..3 {
        let mine: Vec<&String> = lines
            .iter()
            .filter(|l| l.ends_with(&format!("{conn}c")))
            .collect();
        let expected: Vec<String> = (0..1000)
            .map(|i| format!("c{conn}w{i:04}").chars().rev().collect())
            .collect();
        assert_eq!(
            mine,
            expected.iter().collect::<Vec<_>>(),
            "connection {conn}"
        );
    }
}

#[test]
fn the_shipped_file_gives_four_reversed_words() {
    let dir = TempDir::new("reverse");
    let args = Args::new()
        .with_input(data_file("words.frames"))
        .with_output(dir.address("out.txt"));
    reverse::reverse_word(&args).run(&args, |_| {}).unwrap();
    assert_eq!(dir.read("out.txt"), "olleh\ndlrow\noorallaw\néfac\n");
}

#[test]
fn the_steps_are_plain_functions_too() {
    use reverse::Word;
    assert_eq!(reverse::reverse(Word("abc".into())), Word("cba".into()));
    assert_eq!(reverse::non_empty(Word(" \t".into())), None);
    assert_eq!(
        reverse::non_empty(Word(" x ".into())),
        Some(Word("x".into()))
    );
}
