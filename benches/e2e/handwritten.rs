//! The job written by hand in plain Rust on one thread, no framework: read frames from a
//! socket, add into a table, write lines. The practical limit the others are measured by.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};

use crate::harness::{Started, Totals, Workload};

/// Bytes read at once.
const READ_BUFFER: usize = 64 * 1024;

/// Listens for one connection and answers every vote on `output`, on one thread; the thread
/// ends when the input connection does.
pub fn start(workload: Workload, output: SocketAddr) -> Started {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let input = listener.local_addr().expect("address");
    let thread = std::thread::Builder::new()
        .name("handwritten".into())
        .spawn(move || {
            let (conn, _) = listener.accept().expect("accept");
            let out = TcpStream::connect(output).expect("connect to the receiver");
            let _ = out.set_nodelay(true);
            serve(workload, conn, out);
        })
        .expect("spawn");
    Started {
        input,
        outputs: 1,
        acknowledges: false,
        stop: Box::new(move || thread.join().expect("the hand-written program")),
    }
}

/// The whole program: one buffer in, one table, one buffer out, written after each read.
/// Each read's votes are added up first and encoded after, so that with many keys the
/// table's cache misses overlap instead of waiting on the formatting between them.
fn serve(workload: Workload, mut input: TcpStream, mut out: TcpStream) {
    let mut totals = Totals::default();
    let mut buf = vec![0u8; READ_BUFFER];
    let mut running: Vec<(u32, u64)> = Vec::with_capacity(READ_BUFFER / 4);
    let mut lines = Vec::with_capacity(4 * READ_BUFFER);
    let mut end = 0usize;
    loop {
        let n = match input.read(&mut buf[end..]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => panic!("read: {e}"),
        };
        end += n;
        let mut start = 0usize;
        while end - start >= 4 {
            let len =
                u32::from_be_bytes(buf[start..start + 4].try_into().expect("4 bytes")) as usize;
            if end - start < 4 + len {
                break;
            }
            if let Some((key, votes)) = workload.decode(&buf[start + 4..start + 4 + len]) {
                let total = totals.entry(key).or_insert(0);
                *total += u64::from(votes);
                running.push((key, *total));
            }
            start += 4 + len;
        }
        buf.copy_within(start..end, 0);
        end -= start;
        for (key, total) in running.drain(..) {
            workload.encode(key, total, &mut lines);
        }
        out.write_all(&lines).expect("write");
        lines.clear();
    }
}
