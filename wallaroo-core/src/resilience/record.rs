//! The record format of logs and snapshots.
//!
//! ```text
//! record := length: u32 LE | !length: u32 LE (its complement, as DEFLATE's LEN and NLEN)
//!           | crc32 over the length bytes and the payload: u32 LE | payload
//! ```
//!
//! A file is a header record (a [`FileHeader`]) followed by entry records, payloads in
//! postcard. Reading tells a torn tail (the process died mid-write: an incomplete last
//! record, or zeros the file system left after it) from a damaged record (a checksum that
//! fails with valid data after it), which is never silently skipped. The length checks
//! itself: a damaged length is damage, not a record that runs past the end of the file.
//! Format 1 files, whose records had no check of their length, are still read.

use serde::{Deserialize, Serialize};

/// Bytes before each payload.
pub(crate) const RECORD_HEADER: usize = 12;

/// A CRC-32 hasher whose CPU features were looked up once, to clone for each record.
// Why: `Hasher::new` looks them up every time, 22 instructions a record (callgrind).
fn hasher() -> crc32fast::Hasher {
    static TEMPLATE: std::sync::OnceLock<crc32fast::Hasher> = std::sync::OnceLock::new();
    TEMPLATE.get_or_init(crc32fast::Hasher::new).clone()
}
/// Bytes before each payload in format 1: the length and the record's CRC.
const RECORD_HEADER_V1: usize = 8;

/// The magic at the start of every header.
pub(crate) const MAGIC: [u8; 8] = *b"WALLAROO";
/// The version of this file format: 2 added the state's layout to the header, and a check
/// of each record's length.
pub(crate) const FORMAT: u16 = 2;

/// What a file is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum FileKind {
    /// All states of a partition (or of one worker) at one point.
    Snapshot,
    /// States as they changed, in order.
    Log,
}

/// The first record of every file: what wrote it, so that recovery refuses files it would
/// misread.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FileHeader {
    pub(crate) magic: [u8; 8],
    pub(crate) format: u16,
    pub(crate) kind: FileKind,
    pub(crate) partition: String,
    pub(crate) state_type: String,
    pub(crate) state_version: u32,
    pub(crate) key_type: String,
    /// The state's layout (`State::LAYOUT`); absent from format 1, which had none.
    pub(crate) state_layout: Option<String>,
}

/// The header as format 1 wrote it: [`FileHeader`] without the layout, which postcard
/// reads from the start of either format.
#[derive(Deserialize)]
struct FileHeaderV1 {
    magic: [u8; 8],
    format: u16,
    kind: FileKind,
    partition: String,
    state_type: String,
    state_version: u32,
    key_type: String,
}

impl FileHeader {
    /// Reads a header of any format this build reads: format 1's has no layout.
    pub(crate) fn decode(payload: &[u8]) -> Result<FileHeader, postcard::Error> {
        let v1: FileHeaderV1 = postcard::from_bytes(payload)?;
        if v1.magic == MAGIC && v1.format >= 2 {
            return postcard::from_bytes(payload);
        }
        Ok(FileHeader {
            magic: v1.magic,
            format: v1.format,
            kind: v1.kind,
            partition: v1.partition,
            state_type: v1.state_type,
            state_version: v1.state_version,
            key_type: v1.key_type,
            state_layout: None,
        })
    }
}

/// Where an input message came from: a replayable stream, its sequence number, and the
/// index among the messages one input fanned out into. A key's state remembers the last
/// origin applied per stream, so a replayed message is recognised and skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Origin {
    pub(crate) stream: u64,
    pub(crate) seq: u64,
    pub(crate) sub: u32,
}

impl Origin {
    /// No origin: the message comes from a source that cannot replay.
    pub(crate) const NONE: Origin = Origin {
        stream: 0,
        seq: 0,
        sub: 0,
    };

    pub(crate) fn is_some(&self) -> bool {
        self.stream != 0
    }

    /// The message's place, for people: `position 500 of stream "numbers"` (positions
    /// counted from 0, as sources give them), or that it has none.
    pub(crate) fn describe(&self) -> String {
        if !self.is_some() {
            return "without a position (its source cannot replay)".to_string();
        }
        let stream = match stream_name(self.stream) {
            Some(name) => format!("stream {name:?}"),
            None => format!("stream {:#x}", self.stream),
        };
        match self.sub {
            0 => format!("at position {} of {stream}", self.seq - 1),
            sub => format!(
                "at position {} of {stream} (its message #{sub} after the first)",
                self.seq - 1
            ),
        }
    }
}

/// The names of the replayable streams this process has seen, by id: an origin carries
/// only the id.
static STREAM_NAMES: std::sync::OnceLock<
    std::sync::Mutex<std::collections::HashMap<u64, std::sync::Arc<str>>>,
> = std::sync::OnceLock::new();

/// Notes that the stream `id` is called `name` (once per stream a source opens, never per
/// message), so that errors can name it.
pub(crate) fn name_stream(id: u64, name: &str) {
    let names = STREAM_NAMES.get_or_init(Default::default);
    let mut names = names.lock().unwrap_or_else(|e| e.into_inner());
    names.entry(id).or_insert_with(|| name.into());
}

/// The name of the stream `id`, if a source named it.
pub(crate) fn stream_name(id: u64) -> Option<std::sync::Arc<str>> {
    let names = STREAM_NAMES.get()?;
    let names = names.lock().unwrap_or_else(|e| e.into_inner());
    names.get(&id).cloned()
}

/// Appends one record whose payload is `value` in postcard.
pub(crate) fn append<T: Serialize>(buf: &mut Vec<u8>, value: &T) -> Result<(), postcard::Error> {
    let start = buf.len();
    buf.extend_from_slice(&[0; RECORD_HEADER]);
    let mut out = postcard::to_extend(value, std::mem::take(buf))?;
    let length = (out.len() - start - RECORD_HEADER) as u32;
    out[start..start + 4].copy_from_slice(&length.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&(!length).to_le_bytes());
    let length = length.to_le_bytes();
    let mut crc = hasher();
    crc.update(&length);
    crc.update(&out[start + RECORD_HEADER..]);
    out[start + 8..start + 12].copy_from_slice(&crc.finalize().to_le_bytes());
    *buf = out;
    Ok(())
}

/// What reading a record found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Next<'a> {
    /// A whole record: its offset and payload.
    Record(u64, &'a [u8]),
    /// The clean end of the file.
    End,
    /// The file ends in a record cut short (or in zeros) at this offset.
    TornTail(u64),
    /// A record that fails its checksum at this offset, with data after it.
    Damaged(u64),
}

/// Reads the records of a file held in memory.
pub(crate) struct Records<'a> {
    data: &'a [u8],
    pos: usize,
    /// Whether the file is of format 1, whose records do not check their length.
    v1: bool,
}

/// A `u32` at `at` of `bytes`, little-endian.
fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

/// Whether `data` starts with a whole record of format 1 whose checksum holds.
fn is_v1_record(data: &[u8]) -> bool {
    if data.len() < RECORD_HEADER_V1 {
        return false;
    }
    let length = u32_at(data, 0) as usize;
    let Some(payload) = data[RECORD_HEADER_V1..].get(..length) else {
        return false;
    };
    let mut crc = hasher();
    crc.update(&data[..4]);
    crc.update(payload);
    crc.finalize() == u32_at(data, 4)
}

impl<'a> Records<'a> {
    /// The records of `data`, in the framing of its first record: format 1's when that
    /// record is a whole, valid record of format 1, else format 2's, whose length checks
    /// itself. (A first record of format 2 whose length was damaged, or cut short, is not
    /// taken for a record of format 1: it is damage, or a torn tail.)
    pub(crate) fn new(data: &'a [u8]) -> Self {
        let v2 = data.len() >= RECORD_HEADER && u32_at(data, 4) == !u32_at(data, 0);
        Records {
            data,
            pos: 0,
            v1: !v2 && is_v1_record(data),
        }
    }

    pub(crate) fn next_record(&mut self) -> Next<'a> {
        let at = self.pos;
        let rest = &self.data[at..];
        if rest.is_empty() {
            return Next::End;
        }
        let header = if self.v1 {
            RECORD_HEADER_V1
        } else {
            RECORD_HEADER
        };
        if rest.len() < header {
            return Next::TornTail(at as u64);
        }
        let length = u32_at(rest, 0) as usize;
        if !self.v1 && u32_at(rest, 4) != !u32_at(rest, 0) {
            // A length that fails its own check is damage, wherever it is, unless the file
            // ends in zeros from here (the file system's, after a cut write).
            return if rest.iter().all(|&b| b == 0) {
                Next::TornTail(at as u64)
            } else {
                Next::Damaged(at as u64)
            };
        }
        let stored = u32_at(rest, header - 4);
        if rest.len() - header < length {
            // Format 2's length is checked: the write was cut short.
            return Next::TornTail(at as u64);
        }
        let payload = &rest[header..header + length];
        let mut crc = hasher();
        crc.update(&rest[..4]);
        crc.update(payload);
        if crc.finalize() != stored {
            let after = &rest[header + length..];
            // The last record, or zeros to the end: a write the crash cut short.
            if after.is_empty() || rest.iter().all(|&b| b == 0) {
                return Next::TornTail(at as u64);
            }
            return Next::Damaged(at as u64);
        }
        self.pos += header + length;
        Next::Record(at as u64, payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(values: &[&str]) -> Vec<u8> {
        let mut buf = Vec::new();
        for v in values {
            append(&mut buf, v).unwrap();
        }
        buf
    }

    fn read_all(data: &[u8]) -> (Vec<String>, Next<'_>) {
        let mut records = Records::new(data);
        let mut out = Vec::new();
        loop {
            match records.next_record() {
                Next::Record(_, payload) => {
                    out.push(postcard::from_bytes::<String>(payload).unwrap())
                }
                other => return (out, other),
            }
        }
    }

    #[test]
    fn headers_of_format_1_read_without_a_layout_and_format_2_round_trips() {
        /// Format 1's header, as it was written.
        #[derive(Serialize)]
        struct V1<'a>([u8; 8], u16, FileKind, &'a str, &'a str, u32, &'a str);
        let v1 =
            postcard::to_allocvec(&V1(MAGIC, 1, FileKind::Log, "p", "Total", 3, "u8")).unwrap();
        let header = FileHeader::decode(&v1).unwrap();
        assert_eq!(
            (
                header.format,
                header.kind,
                header.state_version,
                header.state_layout
            ),
            (1, FileKind::Log, 3, None)
        );
        assert_eq!(
            (header.state_type.as_str(), header.key_type.as_str()),
            ("Total", "u8")
        );

        let v2 = FileHeader {
            format: FORMAT,
            state_layout: Some("{ votes: u64 }".into()),
            ..header
        };
        assert_eq!(
            FileHeader::decode(&postcard::to_allocvec(&v2).unwrap()).unwrap(),
            v2
        );
    }

    #[test]
    fn records_round_trip() {
        let data = file(&["one", "two", ""]);
        assert_eq!(
            read_all(&data),
            (vec!["one".into(), "two".into(), "".into()], Next::End)
        );
    }

    #[test]
    fn a_cut_short_last_record_is_a_torn_tail() {
        let data = file(&["one", "two"]);
        let whole = file(&["one"]).len() as u64;
        for cut in whole as usize + 1..data.len() {
            let (read, next) = read_all(&data[..cut]);
            assert_eq!(read, vec!["one".to_string()]);
            assert_eq!(next, Next::TornTail(whole), "cut at {cut}");
        }
    }

    #[test]
    fn zeros_after_the_last_record_are_a_torn_tail() {
        let mut data = file(&["one"]);
        let end = data.len() as u64;
        data.extend_from_slice(&[0; 100]);
        assert_eq!(read_all(&data).1, Next::TornTail(end));
    }

    #[test]
    fn a_damaged_record_in_the_middle_is_reported_not_skipped() {
        let mut data = file(&["one", "two", "three"]);
        let second = file(&["one"]).len();
        data[second + RECORD_HEADER] ^= 0xff;
        let (read, next) = read_all(&data);
        assert_eq!(read, vec!["one".to_string()]);
        assert_eq!(next, Next::Damaged(second as u64));
    }

    #[test]
    fn a_damaged_length_in_the_middle_is_damage_not_a_torn_tail() {
        let data = file(&["one", "two", "three"]);
        let second = file(&["one"]).len();
        // Any byte of the second record's length: the high one makes it run past the end.
        for byte in 0..4 {
            let mut damaged = data.clone();
            damaged[second + byte] ^= 0x40;
            let (read, next) = read_all(&damaged);
            assert_eq!(read, vec!["one".to_string()], "byte {byte}");
            assert_eq!(next, Next::Damaged(second as u64), "byte {byte}");
        }
    }

    #[test]
    fn a_write_cut_inside_a_record_header_is_a_torn_tail() {
        let data = file(&["one", "two"]);
        let whole = file(&["one"]).len();
        for cut in whole + 1..whole + RECORD_HEADER {
            assert_eq!(
                read_all(&data[..cut]).1,
                Next::TornTail(whole as u64),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn format_1_records_are_still_read() {
        // Format 1: length | crc32 over the length and the payload | payload.
        let mut data = Vec::new();
        let mut ends = Vec::new();
        for value in ["one", "two"] {
            let payload = postcard::to_allocvec(&value).unwrap();
            let length = (payload.len() as u32).to_le_bytes();
            let mut crc = crc32fast::Hasher::new();
            crc.update(&length);
            crc.update(&payload);
            data.extend_from_slice(&length);
            data.extend_from_slice(&crc.finalize().to_le_bytes());
            data.extend_from_slice(&payload);
            ends.push(data.len());
        }
        assert_eq!(
            read_all(&data),
            (vec!["one".into(), "two".into()], Next::End)
        );
        assert_eq!(
            read_all(&data[..ends[1] - 1]).1,
            Next::TornTail(ends[0] as u64)
        );
    }

    #[test]
    fn a_damaged_last_record_counts_as_torn() {
        let mut data = file(&["one", "two"]);
        let last = data.len() - 1;
        data[last] ^= 0xff;
        assert!(matches!(read_all(&data).1, Next::TornTail(_)));
    }

    // Found by the properties below (their seeds are in proptest-regressions/): a first
    // record of a file was taken for one of format 1 when its length was damaged, and then
    // for a torn tail (the whole file's records cut off), or when it was cut inside its
    // header, and then for damage.
    #[test]
    fn a_damaged_first_length_is_damage_and_a_cut_first_header_a_torn_tail() {
        let mut data = file(&["\u{1f900}A0", ""]);
        data[0] ^= 24;
        assert_eq!(read_all(&data).1, Next::Damaged(0));
        let data = file(&[""]);
        assert_eq!(read_all(&data[..10]).1, Next::TornTail(0));
    }

    /// Properties over arbitrary damage: recovery reads what a crash or a disk left.
    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// The records of `data`, and how the reading ended.
        fn read(data: &[u8]) -> (Vec<Vec<u8>>, Next<'_>) {
            let mut records = Records::new(data);
            let mut out = Vec::new();
            loop {
                match records.next_record() {
                    Next::Record(_, payload) => out.push(payload.to_vec()),
                    other => return (out, other),
                }
            }
        }

        fn payloads_of(values: &[String]) -> (Vec<u8>, Vec<Vec<u8>>) {
            let mut file = Vec::new();
            for v in values {
                append(&mut file, v).unwrap();
            }
            let payloads = values
                .iter()
                .map(|v| postcard::to_allocvec(v).unwrap())
                .collect();
            (file, payloads)
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            /// A file cut anywhere (a crash mid-write) reads as its whole records before the
            /// cut, then a clean end or a torn tail: never damage, never a record changed.
            #[test]
            fn a_cut_file_is_its_records_then_a_torn_tail(
                values in prop::collection::vec("\\PC{0,60}", 1..20),
                cut in any::<prop::sample::Index>(),
            ) {
                let (file, payloads) = payloads_of(&values);
                let cut = cut.index(file.len() + 1);
                let (read, end) = read(&file[..cut]);
                prop_assert!(payloads.starts_with(&read));
                match end {
                    Next::End => prop_assert!(read.len() == payloads.len() || cut < file.len()),
                    Next::TornTail(_) => prop_assert!(cut < file.len()),
                    other => prop_assert!(false, "{:?} at a cut of {} of {}", other, cut, file.len()),
                }
            }

            /// A byte changed anywhere but in the last record is refused as damage at that
            /// record, naming its offset; a record is never read changed.
            #[test]
            fn a_damaged_byte_is_never_read_as_data(
                values in prop::collection::vec("\\PC{0,60}", 2..20),
                at in any::<prop::sample::Index>(),
                flip in 1u8..=255,
            ) {
                let (mut file, payloads) = payloads_of(&values);
                // Where each record starts.
                let mut starts = vec![0usize];
                for p in &payloads[..payloads.len() - 1] {
                    starts.push(starts.last().unwrap() + RECORD_HEADER + p.len());
                }
                let at = at.index(file.len());
                file[at] ^= flip;
                let (read, end) = read(&file);
                for (got, want) in read.iter().zip(&payloads) {
                    prop_assert_eq!(got, want);
                }
                // The record the byte is in: damage there, unless it is the last record
                // (then it may be a write the crash cut short).
                let hit = starts.iter().rposition(|&s| s <= at).unwrap();
                if hit < payloads.len() - 1 {
                    prop_assert_eq!(read.len(), hit);
                    prop_assert_eq!(end, Next::Damaged(starts[hit] as u64));
                }
            }

            /// Any bytes at all read as records and an end, a torn tail or damage; never a
            /// panic, never past the data.
            #[test]
            fn any_bytes_read_to_an_end(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
                let (read, _end) = read(&bytes);
                prop_assert!(read.iter().map(Vec::len).sum::<usize>() <= bytes.len());
            }
        }
    }
}
