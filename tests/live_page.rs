//! `GET /`, the live page, as a person sees it: the Alphabet application runs with `--http`,
//! headless Chromium opens the page, votes flow, and the numbers on the page follow them.
//!
//! Chromium is driven over the DevTools protocol (a WebSocket; the few lines of client are
//! below), so the page runs in real time, with its own refresh every second. A screenshot
//! is written to `target/live-page.png`. Where no Chromium is on the `PATH` (nor named by
//! `WALLAROO_CHROMIUM`), the test installs Debian's `chromium` with apt-get; where it
//! cannot, it fails, saying so.

#[allow(dead_code)]
#[path = "../examples/alphabet.rs"]
mod alphabet;
mod support;
#[allow(dead_code)]
#[path = "../examples/word_count.rs"]
mod word_count;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{send_bytes, vote_frame, Receiver};
use wallaroo::Args;

/// The Chromium to run: `WALLAROO_CHROMIUM`, or `chromium` (Debian) or `chromium-browser`
/// on the `PATH`; where there is none, Debian's `chromium` is installed with apt-get (as
/// root, or with sudo), as the Kafka tests install their broker.
fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("WALLAROO_CHROMIUM") {
        return PathBuf::from(path);
    }
    if let Some(found) = on_path() {
        return found;
    }
    eprintln!("no Chromium on the PATH: installing Debian's chromium with apt-get");
    let sudo = !Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    let apt = |args: &[&str]| {
        let mut command = if sudo {
            let mut c = Command::new("sudo");
            c.arg("apt-get");
            c
        } else {
            Command::new("apt-get")
        };
        command
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success())
    };
    let installed = apt(&["update", "-q"])
        && apt(&["install", "-y", "-q", "--no-install-recommends", "chromium"]);
    match on_path() {
        Some(found) if installed => found,
        _ => panic!(
            "tests/live_page.rs opens the live page in headless Chromium, and there is no \
             `chromium` or `chromium-browser` on the PATH, nor could apt-get install one: \
             install it (Debian: `sudo apt-get install -y chromium`), or set \
             WALLAROO_CHROMIUM to its path"
        ),
    }
}

/// `chromium` or `chromium-browser` on the `PATH`.
fn on_path() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    ["chromium", "chromium-browser"].iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    })
}

/// A headless Chromium with its own profile directory, killed and removed on drop.
struct Browser {
    child: Child,
    dir: PathBuf,
}

impl Browser {
    /// Starts Chromium on `url`, and returns it with the DevTools port it listens on.
    fn open(url: &str) -> (Browser, u16) {
        let dir = std::env::temp_dir().join(format!(
            "wallaroo-live-page-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let log = std::fs::File::create(dir.join("chromium.log")).unwrap();
        let child = Command::new(chromium())
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--hide-scrollbars",
                "--window-size=1280,860",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", dir.display()))
            .arg(url)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", chromium().display()));
        let browser = Browser { child, dir };
        // Chromium writes the port it chose into the profile directory.
        let port = browser.wait("Chromium's DevTools port", Duration::from_secs(60), || {
            // The port, then the browser's path: both lines, or the file is still being written.
            let text = std::fs::read_to_string(browser.dir.join("DevToolsActivePort")).ok()?;
            let mut lines = text.lines();
            let port = lines.next()?.trim().parse().ok()?;
            lines.next()?.starts_with("/devtools/").then_some(port)
        });
        (browser, port)
    }

    /// Polls `ready` until it gives a value; panics after `limit` with Chromium's log.
    fn wait<T>(&self, what: &str, limit: Duration, mut ready: impl FnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(value) = ready() {
                return value;
            }
            if Instant::now() > deadline {
                let log =
                    std::fs::read_to_string(self.dir.join("chromium.log")).unwrap_or_default();
                panic!("waited {limit:?} for {what}; Chromium's log:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `GET path` on loopback, the body of a 200 (read by its length: Chromium's DevTools
/// server keeps the connection open).
fn http_get(port: u16, path: &str) -> Option<String> {
    let stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let mut stream = BufReader::new(stream);
    write!(
        stream.get_mut(),
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut status = String::new();
    stream.read_line(&mut status).ok()?;
    let mut length = None;
    loop {
        let mut line = String::new();
        stream.read_line(&mut line).ok()?;
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().ok();
            }
        }
    }
    let mut body = vec![0u8; length?];
    stream.read_exact(&mut body).ok()?;
    status
        .starts_with("HTTP/1.1 200")
        .then(|| String::from_utf8(body).ok())
        .flatten()
}

/// A DevTools protocol connection to one page: a WebSocket client (RFC 6455) of the few
/// frames the protocol uses, text frames out (masked) and in (perhaps fragmented).
struct Page {
    stream: BufReader<TcpStream>,
    next_id: u64,
}

impl Page {
    fn connect(port: u16, ws_url: &str) -> Page {
        let path = ws_url
            .split_once(&format!("127.0.0.1:{port}"))
            .map(|(_, path)| path.to_string())
            .unwrap_or_else(|| panic!("unexpected DevTools address {ws_url}"));
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut stream = BufReader::new(stream);
        write!(
            stream.get_mut(),
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: d2FsbGFyb28gbGl2ZSBwYWdl\r\n\
             Sec-WebSocket-Version: 13\r\n\r\n"
        )
        .unwrap();
        let mut status = String::new();
        stream.read_line(&mut status).unwrap();
        assert!(status.contains(" 101 "), "no WebSocket upgrade: {status}");
        loop {
            let mut line = String::new();
            stream.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
        }
        Page { stream, next_id: 1 }
    }

    fn send(&mut self, text: &str) {
        let payload = text.as_bytes();
        let mut frame = vec![0x81u8];
        match payload.len() {
            n if n < 126 => frame.push(0x80 | n as u8),
            n if n <= 0xffff => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        let mask = [0x57, 0x61, 0x6c, 0x6c];
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.stream.get_mut().write_all(&frame).unwrap();
    }

    /// The next whole text message.
    fn receive(&mut self) -> String {
        let mut message = Vec::new();
        loop {
            let mut head = [0u8; 2];
            self.stream.read_exact(&mut head).unwrap();
            let (fin, opcode) = (head[0] & 0x80 != 0, head[0] & 0x0f);
            let len = match head[1] & 0x7f {
                126 => {
                    let mut b = [0u8; 2];
                    self.stream.read_exact(&mut b).unwrap();
                    u16::from_be_bytes(b) as usize
                }
                127 => {
                    let mut b = [0u8; 8];
                    self.stream.read_exact(&mut b).unwrap();
                    u64::from_be_bytes(b) as usize
                }
                n => n as usize,
            };
            assert_eq!(head[1] & 0x80, 0, "a server's frames are not masked");
            let mut payload = vec![0u8; len];
            self.stream.read_exact(&mut payload).unwrap();
            match opcode {
                0 | 1 => message.extend_from_slice(&payload),
                8 => panic!("Chromium closed the DevTools connection"),
                _ => continue, // pings: Chromium sends none to a client that sends none
            }
            if fin {
                return String::from_utf8(message).unwrap();
            }
        }
    }

    /// Sends a command and returns its result (or its error), skipping the events in
    /// between.
    fn try_call(&mut self, method: &str, params: Value) -> Result<Value, String> {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({ "id": id, "method": method, "params": params }).to_string());
        loop {
            let message: Value = serde_json::from_str(&self.receive()).unwrap();
            if message["id"] == id {
                if let Some(error) = message.get("error") {
                    return Err(format!("{method}: {error}"));
                }
                return Ok(message["result"].clone());
            }
        }
    }

    fn call(&mut self, method: &str, params: Value) -> Value {
        self.try_call(method, params)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// The value of a JavaScript expression in the page, or why there is none (the page
    /// is still loading, or the expression threw).
    fn try_eval(&mut self, expression: &str) -> Result<Value, String> {
        let result = self.try_call(
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true }),
        )?;
        match result.get("exceptionDetails") {
            Some(exception) => Err(format!("{expression}: {exception}")),
            None => Ok(result["result"]["value"].clone()),
        }
    }

    fn eval(&mut self, expression: &str) -> Value {
        self.try_eval(expression).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The number in the `data-value` of the element `id`, once the page has set it.
    fn number(&mut self, id: &str) -> Option<f64> {
        let value = self
            .try_eval(&format!(
                "document.getElementById({id:?}).getAttribute('data-value')"
            ))
            .ok()?;
        value.as_str().and_then(|v| v.parse().ok())
    }

    fn refreshes(&mut self) -> u64 {
        self.try_eval("Number(document.body.dataset.refreshes)")
            .ok()
            .and_then(|v| v.as_f64())
            .unwrap_or(0.0) as u64
    }
}

/// Standard base64, as `Page.captureScreenshot` returns the PNG.
fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let bytes: Vec<u8> = text.bytes().filter(|&c| c != b'=').collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= u32::from(value(c)) << (18 - 6 * i);
        }
        out.extend_from_slice(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}

/// Sends votes for `a`..`z` at about 20 000 a second until `stop`, counting them.
fn vote_steadily(addr: SocketAddr, stop: Arc<AtomicBool>, sent: Arc<AtomicU64>) {
    let mut stream = support::connect(addr);
    let mut burst = Vec::new();
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        burst.clear();
        for _ in 0..400 {
            burst.extend_from_slice(&vote_frame(b'a' + (n % 26) as u8, 1));
            n += 1;
        }
        stream.write_all(&burst).unwrap();
        sent.fetch_add(400, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Where the screenshot goes: `target/live-page.png`.
fn screenshot_path() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("CARGO_TARGET_TMPDIR is target/tmp")
        .join("live-page.png")
}

/// Headless Chromium on the live page of the application serving `--http` at `http`, and
/// the DevTools connection to that page.
fn open_page(http: SocketAddr) -> (Browser, Page) {
    let (browser, port) = Browser::open(&format!("http://{http}/"));
    let target = browser.wait(
        "the page's DevTools target",
        Duration::from_secs(30),
        || {
            let list: Value = serde_json::from_str(&http_get(port, "/json/list")?).ok()?;
            list.as_array()?
                .iter()
                .find(|t| {
                    t["type"] == "page"
                        && t["url"].as_str().is_some_and(|u| u.starts_with("http://"))
                })
                .and_then(|t| t["webSocketDebuggerUrl"].as_str().map(String::from))
        },
    );
    let page = Page::connect(port, &target);
    (browser, page)
}

#[test]
fn the_live_page_draws_the_topology_and_follows_the_votes() {
    let started = Instant::now();
    let receiver = Receiver::start();
    let args = Args::new()
        .with_input("127.0.0.1:0")
        .with_output(receiver.addr.to_string().as_str())
        .with_workers(2)
        .with_http("127.0.0.1:0");
    let running = alphabet::alphabet(&args).start(&args).unwrap();
    let http = running.http_addr().unwrap();
    let input = running.local_addr(0).unwrap();

    let (browser, mut page) = open_page(http);
    page.call(
        "Emulation.setDeviceMetricsOverride",
        json!({ "width": 1280, "height": 860, "deviceScaleFactor": 1, "mobile": false }),
    );
    let wait = |page: &mut Page, what: &str, ready: &mut dyn FnMut(&mut Page) -> bool| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !ready(page) {
            assert!(Instant::now() < deadline, "waited 30 s for {what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };

    // The topology is drawn, and the page has refreshed from /metrics.
    wait(&mut page, "two refreshes", &mut |p| p.refreshes() >= 2);
    let graph = page.eval("document.getElementById('graph').textContent");
    let graph = graph.as_str().unwrap();
    for name in [
        "Alphabet",
        "add votes",
        "running vote totals",
        "by_letter",
        "decode",
    ] {
        assert!(graph.contains(name), "{name:?} is not drawn: {graph}");
    }
    assert_eq!(
        page.eval("document.getElementById('app-name').textContent"),
        "Alphabet"
    );
    assert_eq!(
        page.eval("document.querySelectorAll('#graph [data-kind]').length"),
        4,
        "a source, a step, a sink and a state"
    );
    // Nothing loaded from anywhere but the application.
    assert_eq!(
        page.eval(
            "performance.getEntriesByType('resource')\
             .filter(e => !e.name.startsWith(location.origin)).map(e => e.name)"
        ),
        json!([])
    );
    assert_eq!(
        page.eval("document.querySelectorAll('script[src], link[href], img, iframe').length"),
        0
    );
    assert_eq!(page.number("p0-source-total"), Some(0.0));

    // Votes flow: the totals grow between two observations, and the rates show.
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let sender = {
        let (stop, sent) = (Arc::clone(&stop), Arc::clone(&sent));
        std::thread::spawn(move || vote_steadily(input, stop, sent))
    };
    wait(&mut page, "a rate of votes in and out", &mut |p| {
        p.number("p0-source-rate").unwrap_or(0.0) > 0.0
            && p.number("p0-sink-rate").unwrap_or(0.0) > 0.0
            && p.number("p0-step0-rate").unwrap_or(0.0) > 0.0
    });
    let first = page.number("p0-source-total").unwrap();
    let first_refresh = page.refreshes();
    assert!(first > 0.0);
    // Two refreshes later at least, the total has grown (the page reads the counters anew).
    wait(&mut page, "the page's message total to grow", &mut |p| {
        p.refreshes() >= first_refresh + 2 && p.number("p0-source-total").unwrap() > first
    });
    assert!(page.number("p0-sink-total").unwrap() > 0.0);
    assert!(
        page.number("s0-queue").is_some(),
        "the queue depth is shown"
    );
    assert_eq!(page.number("s0-keys"), Some(27.0));
    // The latency of the last second, in its words and in seconds.
    wait(&mut page, "a p99 latency", &mut |p| {
        let p99 = p.eval("document.getElementById('p0-latency').dataset.p99");
        let text = p.eval("document.getElementById('p0-latency').textContent");
        let text = text.as_str().unwrap();
        p99.as_str()
            .and_then(|v| v.parse::<f64>().ok())
            .is_some_and(|v| v > 0.0 && v < 10.0)
            && text.contains("p99 ")
            && (text.ends_with("µs") || text.ends_with("ms"))
    });
    // A few more seconds of flow for the charts, then the screenshot.
    let hold = std::env::var("WALLAROO_LIVE_PAGE_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    std::thread::sleep(Duration::from_secs(hold));
    for chart in ["chart-rate", "chart-p99"] {
        assert_eq!(
            page.eval(&format!(
                "document.querySelectorAll('#{chart} path[data-series=Alphabet]').length"
            )),
            1,
            "{chart} has its line"
        );
    }
    let shot = page.call("Page.captureScreenshot", json!({ "format": "png" }));
    let png = base64_decode(shot["data"].as_str().unwrap());
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let path = screenshot_path();
    std::fs::write(&path, &png).unwrap();

    // Once the votes stop, the page's totals are the exact counts.
    stop.store(true, Ordering::Relaxed);
    sender.join().unwrap();
    let sent = sent.load(Ordering::Relaxed) as f64;
    wait(
        &mut page,
        "the page's totals to reach what was sent",
        &mut |p| {
            p.number("p0-source-total") == Some(sent) && p.number("p0-sink-total") == Some(sent)
        },
    );
    drop(page);
    drop(browser);
    running.stop().unwrap();
    eprintln!(
        "screenshot: {} ({} bytes); {sent} votes; {:.1} s",
        path.display(),
        png.len(),
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn a_stateless_step_shows_its_messages_in_and_out() {
    let receiver = Receiver::start();
    let args = Args::new()
        .with_input("127.0.0.1:0")
        .with_output(receiver.addr.to_string().as_str())
        .with_workers(1)
        .with_http("127.0.0.1:0");
    let running = word_count::word_count(&args).start(&args).unwrap();
    let http = running.http_addr().unwrap();
    // 3 lines, 7 words.
    send_bytes(
        running.local_addr(0).unwrap(),
        b"the cat saw the dog\n\nThe end\n",
    );
    assert_eq!(receiver.wait_for(7).len(), 7);

    let (browser, mut page) = open_page(http);
    let deadline = Instant::now() + Duration::from_secs(30);
    while page.number("p0-step0-total") != Some(3.0) {
        assert!(
            Instant::now() < deadline,
            "waited 30 s for the step's total"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        page.eval("document.getElementById('p0-step0-total').textContent"),
        "3 in · 7 out"
    );
    let step = page.eval("document.getElementById('p0-step0').textContent");
    assert!(
        step.as_str()
            .unwrap()
            .contains("stateless, on the source's thread"),
        "{step}"
    );
    drop(browser);
    running.stop().unwrap();
}
