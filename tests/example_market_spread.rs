//! The Market Spread example: binary quotes and text orders from two sources into one state
//! partition by symbol, only alerts out.
//!
//! The two sources are read by different threads, so nothing orders a quote against an
//! order sent on the other source. The tests make that order: after the quotes, they send
//! a probe order on a symbol whose quote was the last one sent, and wait until the probe is
//! rejected for its spread rather than for a missing quote. With one worker, every quote
//! before that one has then been applied (one worker, one queue, in arrival order).

#[allow(dead_code)]
#[path = "../examples/market_spread.rs"]
mod market_spread;
mod support;

use std::net::SocketAddr;

use support::{send_bytes, Receiver};
use wallaroo::{Args, Running};

/// A quote frame: 2-byte length header, 4-byte symbol, bid and offer as big-endian f64.
fn quote(symbol: &str, bid: f64, offer: f64) -> Vec<u8> {
    let mut frame = 20u16.to_be_bytes().to_vec();
    frame.extend_from_slice(format!("{symbol:<4}").as_bytes());
    frame.extend_from_slice(&bid.to_be_bytes());
    frame.extend_from_slice(&offer.to_be_bytes());
    frame
}

struct App {
    receiver: Receiver,
    running: Running,
    quotes: SocketAddr,
    orders: SocketAddr,
}

fn start() -> App {
    let receiver = Receiver::start();
    let args = Args::new()
        .with_input("127.0.0.1:0")
        .with_input("127.0.0.1:0")
        .with_output(receiver.addr.to_string().as_str())
        .with_workers(1);
    let running = market_spread::market_spread(&args).start(&args).unwrap();
    App {
        quotes: running.local_addr(0).expect("the market data source"),
        orders: running.local_addr(1).expect("the orders source"),
        receiver,
        running,
    }
}

impl App {
    /// Sends probe orders on `symbol` until one is rejected for its spread: the quote of
    /// `symbol`, and every quote sent before it, have then been applied. Returns the number of
    /// lines received so far.
    fn wait_for_quotes(&self, symbol: &str) -> usize {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let before = self.receiver.lines().len();
            send_bytes(
                self.orders,
                format!("probe 0 {symbol} buy 1 1.00\n").as_bytes(),
            );
            let lines = self.receiver.wait_for(before + 1);
            let last = lines.last().expect("the probe is rejected");
            assert!(last.starts_with("reject probe:"), "{last}");
            if last.contains("spread") {
                return lines.len();
            }
            assert!(last.ends_with("no quote"), "{last}");
            assert!(
                std::time::Instant::now() < deadline,
                "the quotes never arrived"
            );
        }
    }

    /// Sends `orders` and returns the alerts they cause, waiting for `expected` of them; a
    /// final order on a symbol never quoted marks the end.
    fn alerts(&self, orders: &str, expected: usize) -> Vec<String> {
        let before = self.receiver.lines().len();
        send_bytes(
            self.orders,
            format!("{orders}end 0 NONE buy 1 1.00\n").as_bytes(),
        );
        let lines = self.receiver.wait_for(before + expected + 1);
        assert_eq!(
            lines.last().map(String::as_str),
            Some("reject end: NONE buy 1 at 1.00, no quote"),
            "{lines:#?}"
        );
        lines[before..lines.len() - 1].to_vec()
    }
}

#[test]
fn the_shipped_quotes_and_orders_reject_three_orders() {
    let app = start();
    let nbbo = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/data/nbbo.frames"
    ))
    .unwrap();
    send_bytes(app.quotes, &nbbo);
    // The shipped file's last quote is IBM's wide one.
    app.wait_for_quotes("IBM");
    let orders = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/data/orders.txt"
    ))
    .unwrap();
    let alerts = app.alerts(&orders, 3);
    let quotes = app.running.source_counts(0).unwrap();
    app.running.stop().unwrap();
    assert_eq!(
        alerts,
        [
            "reject o-2: MSFT sell 50 at 410.25, spread 0.50 (bid 410.00, offer 410.50)",
            "reject o-3: IBM buy 10 at 180.00, spread 0.20 (bid 179.90, offer 180.10)",
            "reject o-4: TSLA buy 5 at 250.00, no quote",
        ]
    );
    assert_eq!(quotes.messages, 4);
}

#[test]
fn new_quotes_change_which_orders_are_rejected() {
    let app = start();
    // Phase 1: 40 symbols, the even ones narrow, the odd ones wide.
    let symbols: Vec<String> = (0..40).map(|i| format!("S{i:02}")).collect();
    let mut quotes = Vec::new();
    for (i, symbol) in symbols.iter().enumerate() {
        let spread = if i % 2 == 0 { 0.01 } else { 0.25 };
        quotes.extend(quote(symbol, 100.0, 100.0 + spread));
    }
    quotes.extend(quote("P1", 10.0, 11.0));
    send_bytes(app.quotes, &quotes);
    app.wait_for_quotes("P1");

    let orders: String = symbols
        .iter()
        .map(|s| format!("{s}-a 7 {s} sell 10 100.00\n"))
        .collect();
    let alerts = app.alerts(&orders, 20);
    let expected: Vec<String> = symbols
        .iter()
        .skip(1)
        .step_by(2)
        .map(|s| {
            format!("reject {s}-a: {s} sell 10 at 100.00, spread 0.25 (bid 100.00, offer 100.25)")
        })
        .collect();
    assert_eq!(alerts, expected);

    // Phase 2: every symbol quoted again, now the odd ones narrow and the even ones wide;
    // a malformed quote in the middle is skipped.
    let mut quotes = Vec::new();
    for (i, symbol) in symbols.iter().enumerate() {
        let spread = if i % 2 == 0 { 0.5 } else { 0.02 };
        quotes.extend(quote(symbol, 99.0, 99.0 + spread));
        if i == 20 {
            quotes.extend_from_slice(&[0, 3, b'B', b'A', b'D']);
        }
    }
    quotes.extend(quote("P2", 10.0, 11.0));
    send_bytes(app.quotes, &quotes);
    app.wait_for_quotes("P2");

    let orders: String = symbols
        .iter()
        .map(|s| format!("{s}-b 7 {s} buy 1 99.00\nnot an order\n"))
        .collect();
    let alerts = app.alerts(&orders, 20);
    let expected: Vec<String> = symbols
        .iter()
        .step_by(2)
        .map(|s| format!("reject {s}-b: {s} buy 1 at 99.00, spread 0.50 (bid 99.00, offer 99.50)"))
        .collect();
    assert_eq!(alerts, expected);

    let quote_counts = app.running.source_counts(0).unwrap();
    let order_counts = app.running.source_counts(1).unwrap();
    app.running.stop().unwrap();
    assert_eq!(quote_counts.messages, 82);
    assert_eq!(quote_counts.decode_errors, 1);
    assert_eq!(order_counts.decode_errors, 40);
}

#[test]
fn the_decoders_read_the_documented_formats() {
    use market_spread::{Order, Quote, Side};
    assert_eq!(
        market_spread::decode_quote::call(&quote("F", 12.5, 12.75)[2..]).unwrap(),
        Quote {
            symbol: "F".into(),
            bid: 12.5,
            offer: 12.75
        }
    );
    assert!(market_spread::decode_quote::call(&[0; 19]).is_err());
    assert_eq!(
        market_spread::decode_order::call(b"o-17 1042 AAPL buy 100 150.25").unwrap(),
        Order {
            id: "o-17".into(),
            account: 1042,
            symbol: "AAPL".into(),
            side: Side::Buy,
            quantity: 100,
            price: 150.25,
        }
    );
    assert!(market_spread::decode_order::call(b"o-17 1042 AAPL hold 100 150.25").is_err());
}
