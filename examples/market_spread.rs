//! Market Spread: two sources, one shared state, and only the alerts as output.
//!
//! Two pipelines feed one state partition, `"symbol data"`, keyed by the stock symbol:
//! - **Market Data** (`--in` #1) keeps the last quote of each symbol, its best bid and best
//!   offer (NBBO). It has no output: the pipeline ends with `.done()`.
//! - **Orders** (`--in` #2) checks each order against its symbol's last quote, and rejects it
//!   with an alert when the spread (offer − bid) is [`MAX_SPREAD`] or wider, or when the
//!   symbol has no quote yet. Accepted orders produce nothing: only alerts reach the sink.
//!
//! A symbol's quotes and orders go to the same worker, which owns the symbol's state, so a
//! check always sees the quotes that reached it before the order. The two sources are read
//! independently: an order checked before its symbol's quote has arrived is rejected for
//! want of a quote, so the commands below send the quotes first, and `--stream` makes each
//! sender end only once the application has applied what it sent.
//!
//! # Wire formats
//!
//! Quotes are binary, as a feed handler sends them: frames with a **2-byte** big-endian
//! length header, and a payload of 20 bytes:
//!
//! | bytes | field |
//! | --- | --- |
//! | 0..4 | symbol, ASCII, padded on the right with spaces (`"F   "`) |
//! | 4..12 | best bid, big-endian `f64` |
//! | 12..20 | best offer, big-endian `f64` |
//!
//! Orders are text, one per line: `ORDER_ID ACCOUNT SYMBOL SIDE QUANTITY PRICE`, with SIDE
//! `buy` or `sell`, e.g. `o-17 1042 AAPL buy 100 150.25`.
//!
//! Alerts are lines: `reject o-17: AAPL buy 100 at 150.25, spread 0.40 (bid 150.00, offer
//! 150.40)`, or `…, no quote` when the symbol has none.
//!
//! ```text
//! cargo build --release --example market_spread --bins
//! target/release/examples/market_spread --in 127.0.0.1:7010,127.0.0.1:7011 --out - &
//! target/release/wallaroo-sender --to 127.0.0.1:7010 --frames examples/data/nbbo.frames --framing header:2 --stream quotes
//! target/release/wallaroo-sender --to 127.0.0.1:7011 --lines examples/data/orders.txt --framing lines --stream orders
//! ```
//!
//! `examples/data/nbbo.frames` quotes AAPL narrow (150.00/150.02), IBM narrow (180.00/180.01),
//! MSFT wide (410.00/410.50), then IBM wide (179.90/180.10); of the five orders of
//! `examples/data/orders.txt`, those on MSFT, IBM and TSLA (never quoted) are rejected:
//!
//! ```text
//! python3 -c 'import struct,sys; sys.stdout.buffer.write(b"".join(struct.pack(">H4sdd", 20, s, b, o) for s, b, o in [(b"AAPL", 150.00, 150.02), (b"IBM ", 180.00, 180.01), (b"MSFT", 410.00, 410.50), (b"IBM ", 179.90, 180.10)]))' > examples/data/nbbo.frames
//! ```

use wallaroo::prelude::*;

/// An order is rejected when its symbol's spread is this wide or wider.
pub const MAX_SPREAD: f64 = 0.05;

/// The best bid and offer of a symbol (NBBO).
#[derive(Debug, Clone, PartialEq)]
pub struct Quote {
    pub symbol: String,
    pub bid: f64,
    pub offer: f64,
}

/// Buy or sell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Buy,
    Sell,
}

/// An order to check.
#[derive(Debug, Clone, PartialEq)]
pub struct Order {
    pub id: String,
    pub account: u32,
    pub symbol: String,
    pub side: Side,
    pub quantity: u32,
    pub price: f64,
}

/// Why an order was rejected.
#[derive(Debug, Clone, PartialEq)]
pub enum Reason {
    /// The symbol has no quote yet.
    NoQuote,
    /// The last quote's spread is too wide.
    WideSpread { bid: f64, offer: f64 },
}

/// A rejected order: the only output.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub order: Order,
    pub reason: Reason,
}

/// What the application knows of one symbol: its last quote, `(bid, offer)`.
#[state]
#[derive(Debug, Default)]
pub struct SymbolData {
    last_quote: Option<(f64, f64)>,
}

/// A 20-byte quote behind a 2-byte length header.
#[decoder(header_length = 2)]
pub fn decode_quote(payload: &[u8]) -> Result<Quote, DecodeError> {
    let wrong_length = || DecodeError::wrong_length(20, payload.len());
    let (symbol, prices) = payload.split_first_chunk::<4>().ok_or_else(wrong_length)?;
    let (bid, offer) = prices.split_first_chunk::<8>().ok_or_else(wrong_length)?;
    let offer: &[u8; 8] = offer.try_into().map_err(|_| wrong_length())?;
    let symbol = std::str::from_utf8(symbol)
        .map_err(|_| DecodeError::new("the symbol is not ASCII"))?
        .trim_end();
    Ok(Quote {
        symbol: symbol.to_owned(),
        bid: f64::from_be_bytes(*bid),
        offer: f64::from_be_bytes(*offer),
    })
}

/// `ORDER_ID ACCOUNT SYMBOL SIDE QUANTITY PRICE`.
#[decoder(lines)]
pub fn decode_order(line: &[u8]) -> Result<Order, DecodeError> {
    let bad = || DecodeError::new("expected ORDER_ID ACCOUNT SYMBOL buy|sell QUANTITY PRICE");
    let line = std::str::from_utf8(line).map_err(|_| bad())?;
    let fields: Vec<&str> = line.split_whitespace().collect();
    let [id, account, symbol, side, quantity, price] = fields[..] else {
        return Err(bad());
    };
    Ok(Order {
        id: id.to_owned(),
        account: account.parse().map_err(|_| bad())?,
        symbol: symbol.to_owned(),
        side: match side {
            "buy" => Side::Buy,
            "sell" => Side::Sell,
            _ => return Err(bad()),
        },
        quantity: quantity.parse().map_err(|_| bad())?,
        price: price.parse().map_err(|_| bad())?,
    })
}

/// Quotes are partitioned by symbol…
#[partition]
pub fn by_quote_symbol(quote: &Quote) -> &str {
    &quote.symbol
}

/// …and so are orders, with the same key type, into the same state partition.
#[partition]
pub fn by_order_symbol(order: &Order) -> &str {
    &order.symbol
}

/// Keeps the symbol's last quote. Nothing to send on: the state changed, that is all.
#[state_computation(name = "update quote")]
pub fn update_quote(quote: Quote, symbol: &mut SymbolData) -> ((), bool) {
    symbol.last_quote = Some((quote.bid, quote.offer));
    ((), true)
}

/// Rejects the order when the symbol has no quote or its spread is too wide; an accepted
/// order sends nothing on (a filter). Reading the state does not change it.
#[state_computation(name = "check order")]
pub fn check_order(order: Order, symbol: &mut SymbolData) -> (Option<Alert>, bool) {
    let reason = match symbol.last_quote {
        None => Some(Reason::NoQuote),
        Some((bid, offer)) if offer - bid >= MAX_SPREAD => Some(Reason::WideSpread { bid, offer }),
        Some(_) => None,
    };
    (reason.map(|reason| Alert { order, reason }), false)
}

/// `"reject o-17: AAPL buy 100 at 150.25, spread 0.40 (bid 150.00, offer 150.40)\n"`.
#[encoder]
pub fn encode_alert(alert: &Alert, out: &mut Vec<u8>) {
    use std::io::Write;
    let order = &alert.order;
    let side = match order.side {
        Side::Buy => "buy",
        Side::Sell => "sell",
    };
    // Writing to a Vec cannot fail.
    let _ = write!(
        out,
        "reject {}: {} {side} {} at {:.2}, ",
        order.id, order.symbol, order.quantity, order.price
    );
    let _ = match alert.reason {
        Reason::NoQuote => writeln!(out, "no quote"),
        Reason::WideSpread { bid, offer } => writeln!(
            out,
            "spread {:.2} (bid {bid:.2}, offer {offer:.2})",
            offer - bid
        ),
    };
}

/// Two pipelines, one state partition: quotes update it, orders are checked against it.
#[wallaroo::main]
pub fn market_spread(args: &Args) -> Application {
    Application::new("Market Spread")
        .pipeline("Market Data", Source::new(args.input(0), decode_quote))
        .to_state_partition(update_quote, "symbol data", by_quote_symbol)
        .done()
        .pipeline("Orders", Source::new(args.input(1), decode_order))
        .to_state_partition(check_order, "symbol data", by_order_symbol)
        .to_sink(Sink::new(args.output(0), encode_alert))
}
