//! The job in timely dataflow: a reader thread cuts the socket's bytes into frames and hands
//! each read's votes to worker 0 as one batch (one epoch); the votes are exchanged by key to
//! the workers, each adds into its own table and writes its lines to its own connection.
//!
//! Timely has no backpressure of its own: worker 0 admits a new epoch only while fewer than
//! [`EPOCHS_IN_FLIGHT`] are unfinished, and the reader's channel is bounded, so a slow
//! dataflow slows the sender down through TCP.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc::{sync_channel, Receiver, TryRecvError};
use std::sync::{Arc, Mutex};

use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::{Input, Operator, Probe};
use timely::dataflow::{InputHandle, ProbeHandle};

use crate::harness::{Started, Totals, Workload};

/// Epochs (reads) admitted but not yet through the dataflow, at most.
const EPOCHS_IN_FLIGHT: u64 = 8;
/// Batches the reader may hold ready for worker 0.
const READER_QUEUE: usize = 16;
const READ_BUFFER: usize = 64 * 1024;

type Votes = Vec<(u32, u32)>;

/// Spreads keys over the workers (timely takes the hash modulo the worker count).
fn spread(key: u32) -> u64 {
    let h = u64::from(key).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    h >> 32
}

/// Starts the dataflow on `workers` threads; it ends when the input connection does.
pub fn start(workload: Workload, workers: usize, output: SocketAddr) -> Started {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let input = listener.local_addr().expect("address");
    let (batches, batches_rx) = sync_channel::<Votes>(READER_QUEUE);
    let (worker0_tx, worker0_rx) = sync_channel::<std::thread::Thread>(1);
    let reader = std::thread::Builder::new()
        .name("timely-reader".into())
        .spawn(move || {
            let (conn, _) = listener.accept().expect("accept");
            let worker0 = worker0_rx.recv().expect("worker 0 starts");
            read_frames(workload, conn, |votes| {
                // The worker may be gone only if it panicked; the join below reports it.
                let _ = batches.send(votes);
                worker0.unpark();
            });
            drop(batches);
            worker0.unpark();
        })
        .expect("spawn");
    let batches_rx = Arc::new(Mutex::new(Some(batches_rx)));
    let worker0_tx = Arc::new(Mutex::new(Some(worker0_tx)));
    let config = if workers == 1 {
        timely::Config::thread()
    } else {
        timely::Config::process(workers)
    };
    let guards = timely::execute(config, move |worker| {
        let out = TcpStream::connect(output).expect("connect to the receiver");
        let _ = out.set_nodelay(true);
        let mut input = InputHandle::<u64, CapacityContainerBuilder<Votes>>::new();
        let probe = ProbeHandle::new();
        worker.dataflow::<u64, _, _>(|scope| {
            build(scope.input_from(&mut input), workload, out, &probe);
        });
        if worker.index() == 0 {
            let rx = batches_rx
                .lock()
                .expect("lock")
                .take()
                .expect("one worker 0");
            let tx = worker0_tx
                .lock()
                .expect("lock")
                .take()
                .expect("one worker 0");
            tx.send(std::thread::current()).expect("the reader waits");
            feed(worker, &mut input, &probe, &rx);
        }
        drop(input);
        while worker.step_or_park(None) {}
    })
    .expect("start timely");
    Started {
        input,
        outputs: workers,
        acknowledges: false,
        stop: Box::new(move || {
            reader.join().expect("the timely reader");
            for result in guards.join() {
                result.expect("a timely worker");
            }
        }),
    }
}

/// The dataflow: exchange by key, add into the worker's table, encode and write.
fn build<'scope>(
    votes: timely::dataflow::Stream<'scope, u64, Votes>,
    workload: Workload,
    mut out: TcpStream,
    probe: &ProbeHandle<u64>,
) {
    let totals = votes.unary::<CapacityContainerBuilder<Vec<(u32, u64)>>, _, _, _>(
        Exchange::new(|&(key, _): &(u32, u32)| spread(key)),
        "add votes",
        |_capability, _info| {
            let mut table = Totals::default();
            move |input, output| {
                input.for_each(|time, data| {
                    let mut session = output.session(&time);
                    for (key, votes) in data.drain(..) {
                        let total = table.entry(key).or_insert(0);
                        *total += u64::from(votes);
                        session.give((key, *total));
                    }
                });
            }
        },
    );
    let mut lines = Vec::with_capacity(256 * 1024);
    totals
        .probe_with(probe)
        .sink(Pipeline, "write lines", move |(input, _frontier)| {
            input.for_each(|_time, data| {
                for &(key, total) in data.iter() {
                    workload.encode(key, total, &mut lines);
                }
            });
            if !lines.is_empty() {
                out.write_all(&lines).expect("write");
                lines.clear();
            }
        });
}

/// Worker 0's loop: admit the reader's batches, one epoch each, while few are in flight;
/// step the dataflow; park when there is nothing to do (the reader unparks it).
fn feed(
    worker: &mut timely::worker::Worker,
    input: &mut InputHandle<u64, CapacityContainerBuilder<Votes>>,
    probe: &ProbeHandle<u64>,
    rx: &Receiver<Votes>,
) {
    loop {
        let epoch = *input.time();
        let mut admitted = false;
        if !probe.less_than(&epoch.saturating_sub(EPOCHS_IN_FLIGHT)) {
            match rx.try_recv() {
                Ok(mut votes) => {
                    input.send_batch(&mut votes);
                    input.advance_to(epoch + 1);
                    admitted = true;
                }
                Err(TryRecvError::Empty) => {}
                Err(TryRecvError::Disconnected) => return,
            }
        }
        if admitted {
            worker.step();
        } else {
            worker.step_or_park(None);
        }
    }
}

/// Reads `conn` to its end, handing each read's decoded votes to `deliver`.
fn read_frames(workload: Workload, mut conn: TcpStream, mut deliver: impl FnMut(Votes)) {
    let mut buf = vec![0u8; READ_BUFFER];
    let mut end = 0usize;
    loop {
        let n = match conn.read(&mut buf[end..]) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => panic!("read: {e}"),
        };
        end += n;
        let mut start = 0usize;
        let mut votes = Vec::with_capacity(end / workload.frame_len() + 1);
        while end - start >= 4 {
            let len =
                u32::from_be_bytes(buf[start..start + 4].try_into().expect("4 bytes")) as usize;
            if end - start < 4 + len {
                break;
            }
            if let Some(vote) = workload.decode(&buf[start + 4..start + 4 + len]) {
                votes.push(vote);
            }
            start += 4 + len;
        }
        buf.copy_within(start..end, 0);
        end -= start;
        if !votes.is_empty() {
            deliver(votes);
        }
    }
}
