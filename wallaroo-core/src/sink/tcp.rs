//! The TCP sink: connects to its receiver (which listens first, as in Wallaroo), retrying
//! with backoff until it is up, and reconnecting when it goes away.
//!
//! Output handed to the sink is kept until a write of it succeeds: after a reconnect the
//! batch that failed is written again whole, so the receiver sees whole messages, at least
//! once. While the application stops, the sink keeps trying for [`STOP_GRACE`], then gives
//! up and reports how many bytes it could not deliver.

use std::net::TcpStream;
use std::time::Duration;

use crate::context::{Control, RunError};

/// How long a stopping application waits for an unreachable receiver.
pub(crate) const STOP_GRACE: Duration = Duration::from_secs(10);
const FIRST_BACKOFF: Duration = Duration::from_millis(10);
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// Bytes gathered into one write.
const WRITE_BATCH: usize = 256 * 1024;

pub(super) fn run(
    address: &str,
    rx: &super::ChunkReceiver,
    control: &Control,
) -> Result<(), RunError> {
    let mut conn: Option<TcpStream> = None;
    let mut batch = Vec::new();
    while let Ok(first) = rx.rx.recv() {
        super::gather(first, rx, &mut batch, WRITE_BATCH);
        let mut backoff = FIRST_BACKOFF;
        let mut warned = false;
        loop {
            if conn.is_none() {
                match TcpStream::connect(address) {
                    Ok(stream) => {
                        // Lines are small and latency matters; batching is done above.
                        let _ = stream.set_nodelay(true);
                        tracing::info!("sink {address}: connected");
                        conn = Some(stream);
                    }
                    Err(e) => {
                        if !warned {
                            tracing::warn!("sink {address}: cannot connect ({e}); retrying");
                            warned = true;
                        }
                    }
                }
            }
            if let Some(stream) = conn.as_mut() {
                match super::write_chunks(stream, &batch) {
                    Ok(()) => {
                        super::give_back_all(rx, &mut batch);
                        break;
                    }
                    Err(e) => {
                        tracing::warn!("sink {address}: write failed ({e}); reconnecting to write the batch again");
                        conn = None;
                        continue;
                    }
                }
            }
            if let Some(since) = control.stopping_since() {
                if since.elapsed() > STOP_GRACE {
                    let mut lost: u64 = batch.iter().map(|c| c.len() as u64).sum();
                    while let Ok(chunk) = rx.rx.try_recv() {
                        lost += chunk.len() as u64;
                    }
                    return Err(RunError::Undelivered {
                        output: address.to_string(),
                        bytes: lost,
                    });
                }
            }
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
    Ok(())
}
