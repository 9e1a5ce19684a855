//! Cuts a byte stream into frames (wire format, ARCHITECTURE.md §4): a length header of
//! `header_length` bytes then the payload, or newline-delimited lines.
//!
//! The reader owns one buffer that it reads into and hands out payloads as slices of it:
//! no allocation per frame. A frame longer than the limit is refused from its header alone,
//! before any of it is read into memory.

use std::io::{self, Read};
use std::ops::Range;

use crate::codec::{read_be, Framing};

/// The buffer a reader starts with; it grows only for frames larger than this.
const INITIAL_BUFFER: usize = 64 * 1024;

/// The default limit on a frame's payload: 16 MiB.
pub const DEFAULT_MAX_FRAME: usize = 16 * 1024 * 1024;

/// The default memory budget of a source's connections together: 256 MiB.
pub const DEFAULT_MEMORY_BUDGET: usize = 256 * 1024 * 1024;

/// Memory that the readers of one source's streams share for frames larger than a
/// reader's initial buffer: a reader whose frame would take it over the budget fails its
/// read (its stream is closed), and the others go on.
#[derive(Debug)]
pub struct MemoryBudget {
    left: std::sync::atomic::AtomicUsize,
    total: usize,
}

impl MemoryBudget {
    /// A budget of `bytes`.
    pub fn new(bytes: usize) -> Self {
        MemoryBudget {
            left: std::sync::atomic::AtomicUsize::new(bytes),
            total: bytes,
        }
    }

    /// Takes `bytes` from the budget, if it has them.
    fn take(&self, bytes: usize) -> bool {
        use std::sync::atomic::Ordering;
        self.left
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |left| {
                left.checked_sub(bytes)
            })
            .is_ok()
    }

    /// Gives `bytes` back.
    fn give(&self, bytes: usize) {
        self.left
            .fetch_add(bytes, std::sync::atomic::Ordering::AcqRel);
    }
}

/// A frame that breaks the wire format.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The header declares a payload over the limit (or, for lines, no newline came in time).
    #[error(
        "frame #{frame} at byte {offset} declares {length} bytes, over the {limit}-byte limit; {hint}"
    )]
    TooLong {
        /// The frame's number on this stream (from 1).
        frame: u64,
        /// The stream offset of the frame's header.
        offset: u64,
        /// The declared payload length.
        length: u64,
        /// The limit.
        limit: usize,
        /// The framing expected, and a guess at what arrived instead ([`expected_framing`]).
        hint: String,
    },
    /// The stream ended inside a frame.
    #[error("stream ended inside frame #{frame} at byte {offset}: {received} of {expected} bytes received; {hint}")]
    Truncated {
        /// The frame's number on this stream (from 1).
        frame: u64,
        /// The stream offset of the frame's header.
        offset: u64,
        /// Bytes of the frame received.
        received: usize,
        /// Bytes the frame needs (header and payload), if the header was complete.
        expected: String,
        /// The framing expected, and a guess at what arrived instead ([`expected_framing`]).
        hint: String,
    },
}

/// The framing a reader expects, for a log line about input that does not fit it, with a
/// guess at what was sent instead: a length header that reads as text (`"abcd"` taken for a
/// length) suggests newline-delimited text, and a line with control bytes suggests
/// length-prefixed frames. `bytes` are where the trouble starts: a frame's header, or a
/// line; empty when unknown.
///
/// ```
/// use wallaroo_core::codec::Framing;
/// use wallaroo_core::source::framing::expected_framing;
/// let hint = expected_framing(Framing::DEFAULT, b"abcd");
/// assert!(hint.contains("the header reads as text"), "{hint}");
/// assert!(hint.contains("#[decoder(lines)]"), "{hint}");
/// ```
pub fn expected_framing(framing: Framing, bytes: &[u8]) -> String {
    match framing {
        Framing::LengthPrefixed { header_length, .. } => {
            let header = &bytes[..bytes.len().min(header_length)];
            let text = header
                .iter()
                .all(|&b| b.is_ascii_graphic() || matches!(b, b' ' | b'\t' | b'\r' | b'\n'));
            if header.is_empty() || !text {
                format!(
                    "framing: {framing} (a sender of newline-delimited text would need \
                     `#[decoder(lines)]`)"
                )
            } else {
                format!(
                    "framing: {framing}, but the header reads as text ({:?}): the input looks \
                     like newline-delimited text, which needs `#[decoder(lines)]`, or a sender \
                     that puts a {header_length}-byte length before each message",
                    String::from_utf8_lossy(header)
                )
            }
        }
        Framing::Lines => {
            let binary = bytes
                .iter()
                .any(|&b| b.is_ascii_control() && !matches!(b, b'\t' | b'\r' | b'\n'));
            if binary {
                format!(
                    "framing: {framing}, but the line holds control bytes: the input looks like \
                     length-prefixed frames, which need `#[decoder]` (a 4-byte length header) \
                     or `#[decoder(header_length = N)]`"
                )
            } else {
                format!(
                    "framing: {framing} (a sender of length-prefixed frames would need \
                     `#[decoder]` or `#[decoder(header_length = N)]`)"
                )
            }
        }
    }
}

impl Drop for FrameReader {
    fn drop(&mut self) {
        self.give_back();
    }
}

/// What one read from the stream brought.
#[derive(Debug, PartialEq, Eq)]
pub enum Fill {
    /// Some bytes.
    Data(usize),
    /// The end of the stream.
    End,
}

/// Where a frame lies on its stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FramePos {
    /// The frame's number on the stream, from 1.
    pub number: u64,
    /// The stream offset just past the frame.
    pub end: u64,
}

/// Reads frames from a byte stream into one reused buffer.
#[derive(Debug)]
pub struct FrameReader {
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Bytes that the frame at `start` needs in all, once known.
    need: usize,
    framing: Framing,
    max_frame: usize,
    frames: u64,
    offset: u64,
    /// The budget the buffer's growth past [`INITIAL_BUFFER`] is taken from, and how much
    /// of it the buffer holds.
    budget: Option<std::sync::Arc<MemoryBudget>>,
    taken: usize,
}

impl FrameReader {
    /// A reader with this framing and payload limit.
    pub fn new(framing: Framing, max_frame: usize) -> Self {
        FrameReader {
            buf: vec![0; INITIAL_BUFFER],
            start: 0,
            end: 0,
            need: 0,
            framing,
            max_frame,
            frames: 0,
            offset: 0,
            budget: None,
            taken: 0,
        }
    }

    /// Takes the memory of frames larger than the initial buffer (64 KiB) from `budget`,
    /// shared with other readers: a frame that would take more than is left fails the read.
    pub fn with_budget(mut self, budget: std::sync::Arc<MemoryBudget>) -> Self {
        self.budget = Some(budget);
        self
    }

    /// Frames read so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Bytes of the stream consumed as whole frames so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Moves the reader out, leaving an empty one that holds no memory in its place.
    pub(crate) fn take(&mut self) -> FrameReader {
        std::mem::replace(
            self,
            FrameReader {
                buf: Vec::new(),
                start: 0,
                end: 0,
                need: 0,
                framing: self.framing,
                max_frame: self.max_frame,
                frames: 0,
                offset: 0,
                budget: None,
                taken: 0,
            },
        )
    }

    /// Takes `bytes`, read from the stream already, as its first bytes (at most the
    /// initial buffer's 64 KiB).
    pub fn preload(&mut self, bytes: &[u8]) {
        assert!(
            self.end + bytes.len() <= self.buf.len(),
            "preloaded bytes fit the initial buffer"
        );
        self.buf[self.end..self.end + bytes.len()].copy_from_slice(bytes);
        self.end += bytes.len();
    }

    /// Bytes read and not yet taken as whole frames: the start of a frame.
    pub fn buffered(&self) -> usize {
        self.end - self.start
    }

    /// Free space after the bytes read: after [`FrameReader::fill`], more than 0 when the
    /// read did not fill what it was offered.
    pub fn spare(&self) -> usize {
        self.buf.len() - self.end
    }

    /// Reads once from `source` (what is available, up to the free space).
    pub fn fill(&mut self, source: &mut impl Read) -> io::Result<Fill> {
        self.make_room()?;
        loop {
            match source.read(&mut self.buf[self.end..]) {
                Ok(0) => return Ok(Fill::End),
                Ok(n) => {
                    self.end += n;
                    return Ok(Fill::Data(n));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Moves a partial frame to the front, and grows the buffer when one frame needs more;
    /// fails if the growth is over the memory budget.
    fn make_room(&mut self) -> io::Result<()> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            if self.buf.len() > INITIAL_BUFFER && self.need <= INITIAL_BUFFER {
                // A large frame has passed: give its memory back.
                self.buf = vec![0; INITIAL_BUFFER];
                self.give_back();
            }
        } else if self.end == self.buf.len() || self.need > self.buf.len() - self.start {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        // Grown only when full, and at most twice over: a frame's memory follows the bytes
        // that arrived, not the length its header announces (a header of 16 MiB followed by
        // one byte costs the initial buffer, not 16 MiB).
        if self.end == self.buf.len() {
            let wanted = self.need.max(self.end + 1);
            let grown = (self.buf.len() * 2)
                .min(wanted)
                .min(self.max_total())
                .max(self.end + 1);
            if let Some(budget) = &self.budget {
                let more = grown.saturating_sub(INITIAL_BUFFER) - self.taken;
                if !budget.take(more) {
                    return Err(io::Error::new(
                        io::ErrorKind::OutOfMemory,
                        format!(
                            "frame #{} would take its stream's buffer to {grown} bytes, over \
                             what is left of the {}-byte memory budget its source's streams \
                             share",
                            self.frames + 1,
                            budget.total
                        ),
                    ));
                }
                self.taken += more;
            }
            self.buf.resize(grown, 0);
        }
        Ok(())
    }

    /// Gives what the buffer took from the budget back.
    fn give_back(&mut self) {
        if let Some(budget) = &self.budget {
            budget.give(std::mem::take(&mut self.taken));
        }
    }

    fn max_total(&self) -> usize {
        match self.framing {
            Framing::LengthPrefixed { header_length, .. } => header_length + self.max_frame,
            // A line and its `\r\n`.
            Framing::Lines => self.max_frame + 2,
        }
    }

    /// The next complete payload in the buffer, or `None` when more bytes are needed.
    #[inline]
    pub fn next_frame(&mut self) -> Result<Option<&[u8]>, FrameError> {
        match self.next_range()? {
            Some(payload) => Ok(Some(&self.buf[payload])),
            None => Ok(None),
        }
    }

    /// Hands `each` every complete payload in the buffer, with where it lies on the stream;
    /// returns when more bytes are needed. On a framing error, the frames before it have
    /// been handed out.
    ///
    /// The same frames as [`FrameReader::next_frame`] gives one by one, but frames with the
    /// default 4-byte header are cut in one loop that keeps its place in registers (a
    /// third of the instructions a frame).
    #[inline]
    pub fn for_each_frame(
        &mut self,
        mut each: impl FnMut(&[u8], FramePos),
    ) -> Result<(), FrameError> {
        loop {
            self.whole_default_frames(&mut each);
            // Another framing, a frame not yet whole, or one over the limit.
            let Some(payload) = self.next_range()? else {
                return Ok(());
            };
            let pos = FramePos {
                number: self.frames,
                end: self.offset,
            };
            each(&self.buf[payload], pos);
        }
    }

    /// The loop of [`FrameReader::for_each_frame`] for the default 4-byte header: stops
    /// at the first frame that is not whole or is over the limit.
    #[inline(always)]
    fn whole_default_frames(&mut self, each: &mut impl FnMut(&[u8], FramePos)) {
        if !self.default_header() {
            return;
        }
        let (first, base, max_frame) = (self.start, self.offset, self.max_frame);
        let buf = &self.buf[..self.end];
        let mut start = first;
        let mut number = self.frames;
        while let Some(header) = buf.get(start..).and_then(<[u8]>::first_chunk::<4>) {
            let length = u32::from_be_bytes(*header) as usize;
            // Cannot wrap on a 64-bit target (`start` is within the buffer, `length` under
            // 2^32); where it could, the slice below panics rather than read past the end.
            let end = start.wrapping_add(4).wrapping_add(length);
            if length > max_frame || end > buf.len() {
                break;
            }
            number += 1;
            each(
                &buf[start + 4..end],
                FramePos {
                    number,
                    end: base + (end - first) as u64,
                },
            );
            start = end;
        }
        if start != first {
            self.start = start;
            self.offset = base + (start - first) as u64;
            self.frames = number;
            self.need = 0;
        }
    }

    /// Whether frames have the default header: 4 bytes, the payload's length.
    #[inline(always)]
    fn default_header(&self) -> bool {
        matches!(
            self.framing,
            Framing::LengthPrefixed {
                header_length: 4,
                payload_length: None,
            }
        )
    }

    /// Where the next complete payload lies in the buffer; consumes its frame.
    #[inline]
    fn next_range(&mut self) -> Result<Option<Range<usize>>, FrameError> {
        // The common case: the default 4-byte header, and the whole frame at hand.
        if self.default_header() {
            let available = &self.buf[self.start..self.end];
            if let Some(header) = available.first_chunk::<4>() {
                let length = u32::from_be_bytes(*header) as usize;
                if length <= self.max_frame && available.len() >= 4 + length {
                    let payload = self.start + 4..self.start + 4 + length;
                    self.consume(4 + length);
                    return Ok(Some(payload));
                }
            }
        }
        self.next_range_general()
    }

    /// Every framing, and the frames not (yet) whole.
    #[inline(never)]
    fn next_range_general(&mut self) -> Result<Option<Range<usize>>, FrameError> {
        let available = &self.buf[self.start..self.end];
        match self.framing {
            Framing::LengthPrefixed {
                header_length,
                payload_length,
            } => {
                if available.len() < header_length {
                    self.need = header_length;
                    return Ok(None);
                }
                let header = &available[..header_length];
                let length = match payload_length {
                    Some(custom) => custom(header) as u64,
                    None => read_be(header),
                };
                if length > self.max_frame as u64 {
                    return Err(FrameError::TooLong {
                        frame: self.frames + 1,
                        offset: self.offset,
                        length,
                        limit: self.max_frame,
                        hint: expected_framing(self.framing, header),
                    });
                }
                let total = header_length + length as usize;
                if available.len() < total {
                    self.need = total;
                    return Ok(None);
                }
                let payload = self.start + header_length..self.start + total;
                self.consume(total);
                Ok(Some(payload))
            }
            Framing::Lines => {
                let Some(newline) = memchr::memchr(b'\n', available) else {
                    if available.len() > self.max_frame + 1 {
                        return Err(FrameError::TooLong {
                            frame: self.frames + 1,
                            offset: self.offset,
                            length: available.len() as u64,
                            limit: self.max_frame,
                            hint: expected_framing(self.framing, available),
                        });
                    }
                    self.need = available.len() + 1;
                    return Ok(None);
                };
                let mut line_end = self.start + newline;
                if newline > 0 && self.buf[line_end - 1] == b'\r' {
                    line_end -= 1;
                }
                let line = self.start..line_end;
                self.consume(newline + 1);
                if line.len() > self.max_frame {
                    return Err(FrameError::TooLong {
                        frame: self.frames,
                        offset: self.offset - (newline as u64 + 1),
                        length: line.len() as u64,
                        limit: self.max_frame,
                        hint: expected_framing(self.framing, &self.buf[line]),
                    });
                }
                Ok(Some(line))
            }
        }
    }

    #[inline]
    fn consume(&mut self, bytes: usize) {
        self.start += bytes;
        self.offset += bytes as u64;
        self.frames += 1;
        self.need = 0;
    }

    /// At the end of the stream: the last line of a text stream that has no final newline,
    /// or the error for a frame cut short. `Ok(None)` when the stream ended cleanly.
    pub fn finish(&mut self) -> Result<Option<&[u8]>, FrameError> {
        let received = self.end - self.start;
        if received == 0 {
            return Ok(None);
        }
        match self.framing {
            Framing::Lines => {
                let mut line = self.start..self.end;
                if self.buf[line.end - 1] == b'\r' {
                    line.end -= 1;
                }
                self.consume(received);
                Ok(Some(&self.buf[line]))
            }
            Framing::LengthPrefixed { header_length, .. } => {
                let expected = if received >= header_length {
                    self.need.to_string()
                } else {
                    "an unknown number of".to_string()
                };
                let err = FrameError::Truncated {
                    frame: self.frames + 1,
                    offset: self.offset,
                    received,
                    expected,
                    hint: expected_framing(self.framing, &self.buf[self.start..self.end]),
                };
                self.start = self.end;
                Err(err)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hands out at most `step` bytes per read, to cut frames at every position.
    #[derive(Clone)]
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = self.step.min(self.data.len()).min(out.len());
            out[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    fn frame(payload: &[u8]) -> Vec<u8> {
        let mut out = (payload.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(payload);
        out
    }

    /// Reads `source` to its end with `reader`, frame by frame; checks on the way that
    /// [`FrameReader::for_each_frame`] cuts a copy of the stream into the same frames, at
    /// the same places, with the same error.
    fn read_all(
        reader: &mut FrameReader,
        source: &mut (impl Read + Clone),
    ) -> (Vec<Vec<u8>>, Option<FrameError>) {
        let mut batched = FrameReader::new(reader.framing, reader.max_frame);
        let (batched_frames, batched_err) = drain(&mut batched, &mut source.clone(), true);
        let (frames, err) = drain(reader, source, false);
        assert_eq!(
            batched_frames, frames,
            "for_each_frame cuts the same frames"
        );
        assert_eq!(batched_err, err, "and fails the same way");
        assert_eq!(batched.offset(), reader.offset());
        (frames.into_iter().map(|(p, _)| p).collect(), err)
    }

    type Drained = (Vec<(Vec<u8>, FramePos)>, Option<FrameError>);

    /// Every frame with where it lies: from `for_each_frame` if `batched`, else from
    /// `next_frame` and the reader's counters after it.
    fn drain(reader: &mut FrameReader, source: &mut impl Read, batched: bool) -> Drained {
        let mut frames = Vec::new();
        loop {
            if batched {
                let result = reader.for_each_frame(|p, at| frames.push((p.to_vec(), at)));
                if let Err(e) = result {
                    return (frames, Some(e));
                }
            } else {
                loop {
                    let payload = match reader.next_frame() {
                        Ok(Some(p)) => p.to_vec(),
                        Ok(None) => break,
                        Err(e) => return (frames, Some(e)),
                    };
                    let at = FramePos {
                        number: reader.frames(),
                        end: reader.offset(),
                    };
                    frames.push((payload, at));
                }
            }
            if reader.fill(source).unwrap() == Fill::End {
                let at = |r: &FrameReader| FramePos {
                    number: r.frames(),
                    end: r.offset(),
                };
                return match reader.finish() {
                    Ok(Some(p)) => {
                        let p = p.to_vec();
                        frames.push((p, at(reader)));
                        (frames, None)
                    }
                    Ok(None) => (frames, None),
                    Err(e) => (frames, Some(e)),
                };
            }
        }
    }

    #[test]
    fn frames_survive_any_split() {
        let payloads: Vec<Vec<u8>> = (0..50u8).map(|i| vec![i; i as usize]).collect();
        let stream: Vec<u8> = payloads.iter().flat_map(|p| frame(p)).collect();
        for step in [1, 2, 3, 7, 64, 100_000] {
            let mut reader = FrameReader::new(Framing::DEFAULT, 1024);
            let (frames, err) = read_all(
                &mut reader,
                &mut Trickle {
                    data: &stream,
                    step,
                },
            );
            assert_eq!(err, None);
            assert_eq!(frames, payloads, "step {step}");
            assert_eq!(reader.offset(), stream.len() as u64);
        }
    }

    #[test]
    fn frames_larger_than_the_buffer_grow_it_then_shrink_back() {
        let big = vec![7u8; 3 * INITIAL_BUFFER + 5];
        let mut stream = frame(&big);
        stream.extend(frame(b"after"));
        let mut reader = FrameReader::new(Framing::DEFAULT, DEFAULT_MAX_FRAME);
        let (frames, err) = read_all(
            &mut reader,
            &mut Trickle {
                data: &stream,
                step: 10_000,
            },
        );
        assert_eq!(err, None);
        assert_eq!(frames, vec![big, b"after".to_vec()]);
        assert_eq!(reader.buf.len(), INITIAL_BUFFER);
    }

    #[test]
    fn a_frame_takes_memory_as_its_bytes_arrive_not_as_its_header_announces() {
        // A header of 16 MiB and one byte of payload.
        let mut stream = (DEFAULT_MAX_FRAME as u32).to_be_bytes().to_vec();
        stream.push(1);
        let mut reader = FrameReader::new(Framing::DEFAULT, DEFAULT_MAX_FRAME);
        let (frames, err) = read_all(
            &mut reader,
            &mut Trickle {
                data: &stream,
                step: 5,
            },
        );
        assert!(frames.is_empty());
        assert!(err.is_some(), "the stream ended inside the frame");
        assert_eq!(reader.buf.len(), INITIAL_BUFFER);

        // The whole frame arrives in pieces: the buffer grows with what arrived (at most
        // twice over), to the frame.
        let big = vec![3u8; DEFAULT_MAX_FRAME];
        let mut reader = FrameReader::new(Framing::DEFAULT, DEFAULT_MAX_FRAME);
        let stream = frame(&big);
        let mut source = Trickle {
            data: &stream,
            step: 100_000,
        };
        let mut got = None;
        while got.is_none() {
            assert!(matches!(reader.fill(&mut source).unwrap(), Fill::Data(_)));
            assert!(
                reader.buf.len() <= (2 * reader.end).max(INITIAL_BUFFER),
                "{} bytes held for {} arrived",
                reader.buf.len(),
                reader.end
            );
            got = reader.next_frame().unwrap().map(<[u8]>::len);
        }
        assert_eq!(got, Some(DEFAULT_MAX_FRAME));
    }

    #[test]
    fn an_oversized_header_is_refused_before_reading_the_payload() {
        let mut stream = frame(b"ok");
        stream.extend_from_slice(&0xffff_fff0u32.to_be_bytes());
        let mut reader = FrameReader::new(Framing::DEFAULT, DEFAULT_MAX_FRAME);
        let (frames, err) = read_all(
            &mut reader,
            &mut Trickle {
                data: &stream,
                step: 3,
            },
        );
        assert_eq!(frames, vec![b"ok".to_vec()]);
        let err = err.unwrap();
        assert_eq!(
            err,
            FrameError::TooLong {
                frame: 2,
                offset: 6,
                length: 0xffff_fff0,
                limit: DEFAULT_MAX_FRAME,
                hint: "framing: 4-byte big-endian length header (a sender of newline-delimited \
                       text would need `#[decoder(lines)]`)"
                    .into(),
            }
        );
        assert_eq!(
            err.to_string(),
            "frame #2 at byte 6 declares 4294967280 bytes, over the 16777216-byte limit; \
             framing: 4-byte big-endian length header (a sender of newline-delimited text would \
             need `#[decoder(lines)]`)"
        );
        assert_eq!(
            reader.buf.len(),
            INITIAL_BUFFER,
            "nothing was allocated for it"
        );
    }

    #[test]
    fn a_stream_cut_mid_frame_reports_what_arrived() {
        let mut stream = frame(b"whole");
        stream.extend_from_slice(&frame(b"cut short")[..6]);
        let mut reader = FrameReader::new(Framing::DEFAULT, 1024);
        let (frames, err) = read_all(
            &mut reader,
            &mut Trickle {
                data: &stream,
                step: 4,
            },
        );
        assert_eq!(frames, vec![b"whole".to_vec()]);
        assert_eq!(
            err.unwrap().to_string(),
            "stream ended inside frame #2 at byte 9: 6 of 13 bytes received; framing: 4-byte \
             big-endian length header (a sender of newline-delimited text would need \
             `#[decoder(lines)]`)"
        );
    }

    #[test]
    fn other_header_lengths_and_custom_lengths() {
        let mut reader = FrameReader::new(Framing::length_prefixed(2), 1024);
        let (frames, _) = read_all(&mut reader, &mut &[0u8, 3, b'a', b'b', b'c', 0, 0][..]);
        assert_eq!(frames, vec![b"abc".to_vec(), Vec::new()]);

        // A header that counts itself, as some protocols do.
        fn minus_header(h: &[u8]) -> usize {
            (h[0] as usize).saturating_sub(1)
        }
        let framing = Framing::LengthPrefixed {
            header_length: 1,
            payload_length: Some(minus_header),
        };
        let mut reader = FrameReader::new(framing, 1024);
        let (frames, err) = read_all(&mut reader, &mut &[3u8, b'h', b'i', 1][..]);
        assert_eq!(err, None);
        assert_eq!(frames, vec![b"hi".to_vec(), Vec::new()]);
    }

    #[test]
    fn lines_strip_line_ends_and_keep_a_last_unterminated_line() {
        let text = b"one\r\ntwo\n\nthree";
        for step in [1, 4, 100] {
            let mut reader = FrameReader::new(Framing::Lines, 1024);
            let (frames, err) = read_all(&mut reader, &mut Trickle { data: text, step });
            assert_eq!(err, None);
            assert_eq!(
                frames,
                vec![
                    b"one".to_vec(),
                    b"two".to_vec(),
                    Vec::new(),
                    b"three".to_vec()
                ]
            );
        }
    }

    #[test]
    fn an_overlong_line_is_refused() {
        let mut text = vec![b'x'; 100];
        text.push(b'\n');
        let mut reader = FrameReader::new(Framing::Lines, 10);
        let (frames, err) = read_all(
            &mut reader,
            &mut Trickle {
                data: &text,
                step: 5,
            },
        );
        assert!(frames.is_empty());
        assert!(
            matches!(err, Some(FrameError::TooLong { limit: 10, .. })),
            "{err:?}"
        );
    }

    #[test]
    fn text_sent_to_a_length_header_is_recognised_as_text() {
        let mut reader = FrameReader::new(Framing::DEFAULT, DEFAULT_MAX_FRAME);
        let (frames, err) = read_all(&mut reader, &mut &b"hello world\n"[..]);
        assert!(frames.is_empty());
        let err = err.unwrap().to_string();
        assert!(
            err.starts_with("frame #1 at byte 0 declares 1751477356 bytes"),
            "{err}"
        );
        assert!(
            err.contains("but the header reads as text (\"hell\"): the input looks like newline-delimited text, which needs `#[decoder(lines)]`"),
            "{err}"
        );

        // A 2-byte header takes "o-" for 28461 bytes, which never come.
        let mut reader = FrameReader::new(Framing::length_prefixed(2), DEFAULT_MAX_FRAME);
        let (_, err) = read_all(&mut reader, &mut &b"o-1 1042 AAPL buy 100 150.01\n"[..]);
        let err = err.unwrap().to_string();
        assert!(err.starts_with("stream ended inside frame #1"), "{err}");
        assert!(err.contains("the header reads as text (\"o-\")"), "{err}");
    }

    #[test]
    fn the_hint_names_the_framing_and_guesses_the_other_one() {
        let frames = expected_framing(Framing::length_prefixed(2), &[0, 5, b'h']);
        assert_eq!(
            frames,
            "framing: 2-byte big-endian length header (a sender of newline-delimited text \
             would need `#[decoder(lines)]`)"
        );
        assert!(!expected_framing(Framing::DEFAULT, b"").contains("reads as text"));
        let line = expected_framing(Framing::Lines, b"\0\0\0\x05hello");
        assert!(
            line.starts_with("framing: newline-delimited lines, but the line holds control bytes"),
            "{line}"
        );
        let line = expected_framing(Framing::Lines, b"hello\tworld\r");
        assert_eq!(
            line,
            "framing: newline-delimited lines (a sender of length-prefixed frames would need \
             `#[decoder]` or `#[decoder(header_length = N)]`)"
        );
    }

    #[test]
    fn readers_sharing_a_budget_take_large_frames_from_it_and_give_them_back() {
        let budget = std::sync::Arc::new(MemoryBudget::new(200 * 1024));
        let reader = || {
            FrameReader::new(Framing::DEFAULT, DEFAULT_MAX_FRAME)
                .with_budget(std::sync::Arc::clone(&budget))
        };
        let big = frame(&vec![5u8; 200 * 1024]);
        // A has 150 KiB of a 200 KiB frame: its buffer took at least what arrived past the
        // initial 64 KiB from the budget.
        let mut a = reader();
        let mut a_source = Trickle {
            data: &big[..150 * 1024],
            step: 16 * 1024,
        };
        while a.fill(&mut a_source).unwrap() != Fill::End {}
        assert!(a.taken >= 150 * 1024 - INITIAL_BUFFER, "{}", a.taken);
        // B's frame of the same size does not fit in what is left: its read fails.
        let mut b = reader();
        let mut b_source = Trickle {
            data: &big,
            step: 64 * 1024,
        };
        let error = loop {
            match b.fill(&mut b_source) {
                Ok(_) => assert!(b.next_frame().unwrap().is_none()),
                Err(e) => break e,
            }
        };
        assert_eq!(error.kind(), io::ErrorKind::OutOfMemory);
        assert!(
            error.to_string().contains("204800-byte memory budget"),
            "{error}"
        );
        drop(b);
        // A's frame is read whole; once past it, A gives its memory back, and C's fits.
        let mut a_source = Trickle {
            data: &big[150 * 1024..],
            step: 64 * 1024,
        };
        let mut read = None;
        while read.is_none() {
            assert!(matches!(a.fill(&mut a_source).unwrap(), Fill::Data(_)));
            read = a.next_frame().unwrap().map(<[u8]>::len);
        }
        assert_eq!(read, Some(200 * 1024));
        a.fill(&mut &b""[..]).unwrap();
        assert_eq!(a.taken, 0);
        let mut c = reader();
        let (frames, err) = read_all(
            &mut c,
            &mut Trickle {
                data: &big,
                step: 64 * 1024,
            },
        );
        assert_eq!((frames.len(), err), (1, None));
        drop((a, c));
        assert_eq!(
            budget.left.load(std::sync::atomic::Ordering::Acquire),
            200 * 1024
        );
    }

    /// Properties over arbitrary input: the frame reader reads untrusted bytes.
    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            /// Any payloads, framed with a header of any width and read in pieces of any
            /// size, come back as they were.
            #[test]
            fn framed_payloads_come_back_whatever_the_pieces(
                payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..40),
                step in 1usize..700,
                header_length in prop::sample::select(vec![1usize, 2, 4, 8]),
            ) {
                // A 1-byte header holds lengths up to 255.
                let payloads: Vec<Vec<u8>> = payloads
                    .into_iter()
                    .map(|mut p| {
                        p.truncate(if header_length == 1 { 255 } else { p.len() });
                        p
                    })
                    .collect();
                let mut stream = Vec::new();
                for p in &payloads {
                    let length = (p.len() as u64).to_be_bytes();
                    stream.extend_from_slice(&length[8 - header_length..]);
                    stream.extend_from_slice(p);
                }
                let mut reader = FrameReader::new(Framing::length_prefixed(header_length), 1024);
                let (frames, err) = read_all(&mut reader, &mut Trickle { data: &stream, step });
                prop_assert_eq!(err, None);
                prop_assert_eq!(frames, payloads);
                prop_assert_eq!(reader.offset(), stream.len() as u64);
            }

            /// Lines without a newline of their own come back as they were, whatever the
            /// pieces, with `\r\n` or `\n` ends, and a last line without an end.
            #[test]
            fn lines_come_back_whatever_the_pieces(
                lines in prop::collection::vec(prop::collection::vec(any::<u8>().prop_map(|b| if b == b'\n' || b == b'\r' { b'.' } else { b }), 0..100), 1..40),
                step in 1usize..300,
                crlf in any::<bool>(),
            ) {
                let end: &[u8] = if crlf { b"\r\n" } else { b"\n" };
                let stream = lines.join(end);
                let mut reader = FrameReader::new(Framing::Lines, 1024);
                let (frames, err) = read_all(&mut reader, &mut Trickle { data: &stream, step });
                prop_assert_eq!(err, None);
                // A last empty line (the stream ends at a line end) is no line.
                let mut expected = lines.clone();
                if expected.last().is_some_and(Vec::is_empty) {
                    expected.pop();
                }
                prop_assert_eq!(frames, expected);
            }

            /// Any bytes at all, in pieces of any size: frames or a framing error, never a
            /// panic, never more memory than the limit allows, never more frames than bytes.
            #[test]
            fn any_bytes_are_frames_or_an_error(
                bytes in prop::collection::vec(any::<u8>(), 0..4096),
                step in 1usize..600,
                lines in any::<bool>(),
            ) {
                let framing = if lines { Framing::Lines } else { Framing::DEFAULT };
                let mut reader = FrameReader::new(framing, 512);
                let (frames, _err) = read_all(&mut reader, &mut Trickle { data: &bytes, step });
                prop_assert!(reader.buf.len() <= INITIAL_BUFFER.max(4 + 512));
                prop_assert!(frames.iter().map(|f| f.len()).sum::<usize>() <= bytes.len());
                prop_assert!(reader.offset() <= bytes.len() as u64);
            }
        }
    }
}
