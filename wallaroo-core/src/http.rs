//! `--http HOST:PORT`: the metrics, the topology and the states of a running application,
//! served over HTTP from a thread of its own.
//!
//! | path | answer |
//! | --- | --- |
//! | `GET /` | the live page (`http/page.html`, one file with its CSS and JavaScript): the topology drawn, each component's rate, latency and queue depth, read from `/topology` once and `/metrics` every second |
//! | `GET /metrics` | the Prometheus text format ([`crate::metrics`]) |
//! | `GET /topology` | the topology JSON, as `--topology json` prints it |
//! | `GET /state/STATE?key=JSON` | the state of one key as JSON; 404 for a key without state or an unknown state, 400 for a key that is not JSON of the key type |
//!
//! Any other path is a 404 and any other method a 405, each with a JSON error. The server
//! (`tiny_http`) reads requests on threads of its own, so a client that connects and sends
//! nothing holds none of the answers up. A state query goes to the worker that owns the key,
//! through the worker's own channel, beside the batches: the states take no lock. Waiting
//! on a worker is bounded ([`QUERY_TIMEOUT`]), so a stalled worker costs a 503, not the
//! server.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::metrics::{Exposition, Metrics};
use crate::worker::{StateQuery, QUERY};

/// How long a state query waits for room in the worker's channel, and then for its answer.
const QUERY_TIMEOUT: Duration = Duration::from_secs(2);

/// A started HTTP server: its address, and how to stop it.
pub(crate) struct HttpServer {
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
    addr: SocketAddr,
}

/// What the server answers from.
pub(crate) struct Served {
    /// The topology JSON.
    pub(crate) topology: String,
    /// The counters and the workers.
    pub(crate) metrics: Metrics,
}

/// [`Served`], with the registry that /metrics encodes.
struct Answers {
    topology: String,
    metrics: Arc<Metrics>,
    exposition: Exposition,
}

impl Answers {
    fn new(served: Served) -> Answers {
        let metrics = Arc::new(served.metrics);
        Answers {
            topology: served.topology,
            exposition: Exposition::new(Arc::clone(&metrics)),
            metrics,
        }
    }
}

/// Binds `addr`, before the application starts: a bad address is a usage error.
pub(crate) fn bind(addr: &str) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr)
}

impl HttpServer {
    /// Serves `served` on `listener` from a thread of its own.
    pub(crate) fn start(listener: TcpListener, served: Served) -> std::io::Result<HttpServer> {
        let served = Answers::new(served);
        let addr = listener.local_addr()?;
        let server = tiny_http::Server::from_listener(listener, None)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let server = Arc::new(server);
        let serving = Arc::clone(&server);
        let thread = std::thread::Builder::new()
            .name("wallaroo-http".into())
            .spawn(move || {
                // `recv` fails once the server is unblocked: the application stops.
                while let Ok(request) = serving.recv() {
                    let (status, content_type, body) = answer(&served, &request);
                    let response = tiny_http::Response::from_string(body)
                        .with_status_code(status)
                        .with_header(header("Content-Type", content_type));
                    let response = if status == 405 {
                        response.with_header(header("Allow", "GET"))
                    } else {
                        response
                    };
                    // A client that went away is its own loss.
                    let _ = request.respond(response);
                }
            })?;
        tracing::info!("serving the live page, /metrics, /topology and /state on http://{addr}");
        Ok(HttpServer {
            server,
            thread: Some(thread),
            addr,
        })
    }

    /// The address it listens on.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn header(name: &str, value: &str) -> tiny_http::Header {
    tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes())
        .expect("the server's own headers are valid")
}

const JSON: &str = "application/json";

/// The live page: one HTML file that needs nothing from outside the process.
const PAGE: &str = include_str!("http/page.html");

/// `{"error": message}`.
fn error(status: u16, message: &str) -> (u16, &'static str, String) {
    (
        status,
        JSON,
        serde_json::json!({ "error": message }).to_string(),
    )
}

/// The status, content type and body for `request`.
fn answer(served: &Answers, request: &tiny_http::Request) -> (u16, &'static str, String) {
    let url = request.url();
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    if *request.method() != tiny_http::Method::Get {
        return error(
            405,
            &format!("method {} is not allowed: only GET", request.method()),
        );
    }
    match path {
        "/" => (200, "text/html; charset=utf-8", PAGE.to_string()),
        "/metrics" => (
            200,
            crate::metrics::CONTENT_TYPE,
            served.exposition.render(),
        ),
        "/topology" => (200, JSON, served.topology.clone()),
        _ => match path.strip_prefix("/state/") {
            Some(state) => state_of(served, &percent_decode(state), query),
            None => error(
                404,
                &format!(
                    "no such path: {path} (try /, /metrics, /topology or /state/STATE?key=JSON)"
                ),
            ),
        },
    }
}

/// `GET /state/STATE?key=JSON`.
fn state_of(served: &Answers, name: &str, query: &str) -> (u16, &'static str, String) {
    let Some(state) = served.metrics.states.iter().find(|s| s.name == name) else {
        let names: Vec<_> = served.metrics.states.iter().map(|s| &s.name).collect();
        return error(
            404,
            &format!("no state partition named {name:?} (there are {names:?})"),
        );
    };
    let Some(key) = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("key="))
        .map(percent_decode)
    else {
        return error(
            400,
            "missing ?key=JSON (97 for the u8 letter a, \"the\" for a string)",
        );
    };
    let (worker, parsed) = match state.keys.parse(&key, state.workers.len()) {
        Ok(parsed) => parsed,
        Err(e) => return error(400, &format!("malformed key {key}: {e}")),
    };
    let unavailable = || {
        error(
            503,
            "the worker that owns the key is not answering (stopped or busy); try again",
        )
    };
    let Some(tx) = state.workers.get(worker).and_then(|w| w.tx.upgrade()) else {
        return unavailable();
    };
    let (reply, answer) = flume::bounded(1);
    let query = StateQuery { key: parsed, reply };
    if tx
        .send_timeout((QUERY, Box::new(query)), QUERY_TIMEOUT)
        .is_err()
    {
        return unavailable();
    }
    // Not kept while waiting: the worker ends when its senders are gone.
    drop(tx);
    match answer.recv_timeout(QUERY_TIMEOUT) {
        Ok(Ok(Some(value))) => (200, JSON, value.to_string()),
        Ok(Ok(None)) => error(404, &format!("key {key} has no state in {name:?}")),
        Ok(Err(e)) => error(
            500,
            &format!("the state of key {key} cannot be written as JSON: {e}"),
        ),
        Err(_) => unavailable(),
    }
}

/// Decodes `%XX` escapes and `+` (a space in a query); an escape that is not one stays as is.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_are_decoded_and_broken_ones_kept() {
        assert_eq!(percent_decode("%22the%22"), "\"the\"");
        assert_eq!(percent_decode("a+b"), "a b");
        assert_eq!(percent_decode("97"), "97");
        assert_eq!(percent_decode("%2"), "%2");
        assert_eq!(percent_decode("%zz1"), "%zz1");
        assert_eq!(percent_decode("%41"), "A");
    }
}
