//! Reading a partition's files back, and writing its snapshots.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::record::{self, FileHeader, FileKind, Next, Origin, Records, FORMAT, MAGIC};
use super::{io_error, partition_dir, FileName, ResilienceError};
use crate::component::type_name_of;
use crate::state::{Key, ReadSaved, SavedVersion, State, VersionMismatch};

/// Per key, the last origin applied from each replayable stream.
///
/// One pointer, null for a key that no replayable stream reached: it sits in every slot of
/// a worker's state table, and a smaller slot keeps more of the table in cache. Saved as
/// the list of origins, as a `Vec` would be.
// Why a boxed `Vec`: a thin pointer, 8 bytes where a `Vec` is 24 and a boxed slice 16; the
// box is allocated only for keys that replayable streams reach.
#[allow(clippy::box_collection)]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Progress(Option<Box<Vec<Origin>>>);

impl Progress {
    fn origins(&self) -> &[Origin] {
        self.0.as_deref().map_or(&[], Vec::as_slice)
    }

    /// Whether a message of this origin was applied already (it is a replay).
    #[inline]
    pub(crate) fn seen(&self, origin: Origin) -> bool {
        self.origins()
            .iter()
            .any(|p| p.stream == origin.stream && (p.seq, p.sub) >= (origin.seq, origin.sub))
    }

    /// Notes that a message of this origin was applied.
    #[inline]
    pub(crate) fn record(&mut self, origin: Origin) {
        let origins = self.0.get_or_insert_with(Box::default);
        match origins.iter_mut().find(|p| p.stream == origin.stream) {
            Some(p) => *p = origin,
            None => origins.push(origin),
        }
    }
}

impl Serialize for Progress {
    fn serialize<Ser: serde::Serializer>(&self, serializer: Ser) -> Result<Ser::Ok, Ser::Error> {
        self.origins().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Progress {
    fn deserialize<De: serde::Deserializer<'de>>(deserializer: De) -> Result<Self, De::Error> {
        let origins = Vec::<Origin>::deserialize(deserializer)?;
        Ok(Progress((!origins.is_empty()).then(|| Box::new(origins))))
    }
}

/// A record of a snapshot: a key's state, or how far a replayable stream was applied.
#[derive(Deserialize)]
enum SnapshotRecord<K, S> {
    State {
        key: K,
        state: S,
        progress: Progress,
    },
    Stream {
        stream: u64,
        seq: u64,
    },
}

/// [`SnapshotRecord`] by reference, for writing (same variants, same order).
#[derive(Serialize)]
enum SnapshotRecordRef<'a, K, S> {
    State {
        key: &'a K,
        state: &'a S,
        progress: &'a Progress,
    },
    Stream {
        stream: u64,
        seq: u64,
    },
}

/// A record of a log: a state as a message changed it, or a marker saying that every
/// message of a stream up to `seq` routed to this worker has been applied.
#[derive(Deserialize)]
enum LogRecord<K, S> {
    Put {
        key: K,
        state: S,
        origin: Option<Origin>,
    },
    Marker {
        stream: u64,
        seq: u64,
    },
}

/// [`LogRecord`] by reference, for writing (same variants, same order).
#[derive(Serialize)]
pub(crate) enum LogRecordRef<'a, K, S> {
    Put {
        key: &'a K,
        state: &'a S,
        origin: Option<Origin>,
    },
    Marker {
        stream: u64,
        seq: u64,
    },
}

/// The header that files of this partition, state and key carry.
pub(crate) fn header<K: Key, S: State>(partition: &str, kind: FileKind) -> FileHeader {
    FileHeader {
        magic: MAGIC,
        format: FORMAT,
        kind,
        partition: partition.to_string(),
        state_type: type_name_of::<S>(),
        state_version: S::VERSION,
        key_type: type_name_of::<K>(),
        state_layout: Some(S::LAYOUT.to_string()),
    }
}

/// Serializes states, and how far each replayable stream was applied, as a snapshot file.
pub(crate) fn encode_snapshot<'a, K: Key, S: State + 'a>(
    header: &FileHeader,
    entries: impl Iterator<Item = (&'a K, &'a S, &'a Progress)>,
    streams: impl Iterator<Item = (u64, u64)>,
) -> Vec<u8> {
    let mut bytes = Vec::new();
    record::append(&mut bytes, header).expect("a header serializes");
    for (key, state, progress) in entries {
        record::append(
            &mut bytes,
            &SnapshotRecordRef::State {
                key,
                state,
                progress,
            },
        )
        .expect("a state and key that serde serializes also serialize with postcard");
    }
    for (stream, seq) in streams {
        let entry: SnapshotRecordRef<'_, K, S> = SnapshotRecordRef::Stream { stream, seq };
        record::append(&mut bytes, &entry).expect("integers serialize");
    }
    bytes
}

/// What recovery found: the states, and the generation they came from.
pub(crate) struct Recovered<K, S> {
    pub(crate) states: HashMap<K, (S, Progress)>,
    /// Per replayable stream, the sequence number up to which every message has been
    /// applied by every worker it was routed to.
    pub(crate) streams: HashMap<u64, u64>,
    /// The last generation found (0 when the directory was empty).
    pub(crate) generation: u64,
    /// Files read, for the log line.
    pub(crate) files: usize,
}

/// Reads the partition's last generation back.
pub(crate) fn recover<K: Key, S: State>(
    root: &Path,
    partition: &str,
) -> Result<Recovered<K, S>, ResilienceError> {
    let dir = partition_dir(root, partition);
    fs::create_dir_all(&dir).map_err(io_error(&dir))?;
    let mut names = Vec::new();
    for entry in fs::read_dir(&dir).map_err(io_error(&dir))? {
        let entry = entry.map_err(io_error(&dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".tmp") {
            // A snapshot whose write did not finish: the files it would replace are intact.
            let path = entry.path();
            fs::remove_file(&path).map_err(io_error(&path))?;
            continue;
        }
        if let Some(parsed) = FileName::parse(&name) {
            names.push(parsed);
        }
    }
    let mut recovered = Recovered {
        states: HashMap::new(),
        streams: HashMap::new(),
        generation: 0,
        files: 0,
    };
    let Some(generation) = names
        .iter()
        .filter_map(|n| match n {
            FileName::Snapshot { generation } => Some(*generation),
            _ => None,
        })
        .max()
    else {
        recovered.generation = names.iter().map(FileName::generation).max().unwrap_or(0);
        return Ok(recovered);
    };
    recovered.generation = generation;
    let expected = header::<K, S>(partition, FileKind::Snapshot);
    let path = dir.join(FileName::Snapshot { generation }.to_name());
    let base = read_snapshot(&path, &expected, &mut recovered)?;

    // Per worker of that generation: the newest worker snapshot, then the segments from it.
    let mut workers: BTreeMap<usize, (Option<u64>, Vec<u64>)> = BTreeMap::new();
    for name in &names {
        match *name {
            FileName::WorkerSnapshot {
                generation: g,
                worker,
                seq,
            } if g == generation => {
                let newest = &mut workers.entry(worker).or_default().0;
                *newest = Some(newest.map_or(seq, |s: u64| s.max(seq)));
            }
            FileName::Log {
                generation: g,
                worker,
                seq,
            } if g == generation => {
                workers.entry(worker).or_default().1.push(seq);
            }
            _ => {}
        }
    }
    let mut tables = Vec::new();
    for (worker, (snapshot, mut logs)) in workers {
        let mut table = base.clone();
        let from = snapshot.unwrap_or(0);
        if let Some(seq) = snapshot {
            let path = dir.join(
                FileName::WorkerSnapshot {
                    generation,
                    worker,
                    seq,
                }
                .to_name(),
            );
            table.extend(read_snapshot(&path, &expected, &mut recovered)?);
        }
        logs.retain(|&seq| seq >= from);
        logs.sort_unstable();
        for seq in logs {
            let path = dir.join(
                FileName::Log {
                    generation,
                    worker,
                    seq,
                }
                .to_name(),
            );
            read_log(
                &path,
                &header::<K, S>(partition, FileKind::Log),
                &mut recovered,
                &mut table,
            )?;
        }
        tables.push(table);
    }
    // A stream is applied as far as the worker that is furthest behind on it.
    recovered.streams = base;
    for table in &tables {
        for stream in table.keys() {
            recovered.streams.entry(*stream).or_insert(u64::MAX);
        }
    }
    for (stream, seq) in recovered.streams.iter_mut() {
        for table in &tables {
            *seq = (*seq).min(table.get(stream).copied().unwrap_or(0));
        }
    }
    Ok(recovered)
}

/// Reads a file's header and checks it against what this build reads: the state's version
/// and layout are checked by [`read_states`].
fn check_header(
    path: &Path,
    records: &mut Records<'_>,
    expected: &FileHeader,
) -> Result<FileHeader, ResilienceError> {
    let incompatible = |reason: String| ResilienceError::Incompatible {
        path: path.to_path_buf(),
        reason,
    };
    let payload = match records.next_record() {
        Next::Record(_, payload) => payload,
        _ => {
            return Err(incompatible(
                "no valid header: not a resilience file, or damaged".into(),
            ))
        }
    };
    let found = FileHeader::decode(payload)
        .map_err(|_| incompatible("no valid header: not a resilience file".into()))?;
    if found.magic != MAGIC || !(1..=FORMAT).contains(&found.format) {
        return Err(incompatible(format!(
            "file format {} (this build reads formats 1 to {FORMAT})",
            found.format
        )));
    }
    if found.kind != expected.kind {
        return Err(incompatible(format!(
            "a {:?} file where a {:?} was expected",
            found.kind, expected.kind
        )));
    }
    if found.key_type != expected.key_type {
        return Err(incompatible(format!(
            "written for state {} keyed by {}, but this build keys state {} by {}; \
             keys saved as another type cannot be read back (postcard is not self-describing): \
             run the version that wrote it, or move the directory away to start empty",
            found.state_type, found.key_type, expected.state_type, expected.key_type
        )));
    }
    Ok(found)
}

/// Has `reader` read the states of a file whose header is `found`, in the version they
/// were saved by, upgraded to `S`.
fn read_states<S: State, R: ReadSaved<S, Output = Result<T, ResilienceError>>, T>(
    path: &Path,
    found: &FileHeader,
    reader: R,
) -> Result<T, ResilienceError> {
    let saved = SavedVersion {
        version: found.state_version,
        layout: found.state_layout.as_deref(),
    };
    S::read_saved(&saved, reader).map_err(|mismatch: VersionMismatch| {
        ResilienceError::Incompatible {
            path: path.to_path_buf(),
            reason: format!("state {}: {mismatch}", found.state_type),
        }
    })?
}

/// Reads a snapshot's states into `recovered`; returns its stream table.
fn read_snapshot<K: Key, S: State>(
    path: &Path,
    expected: &FileHeader,
    recovered: &mut Recovered<K, S>,
) -> Result<HashMap<u64, u64>, ResilienceError> {
    let data = fs::read(path).map_err(io_error(path))?;
    let mut records = Records::new(&data);
    let found = check_header(path, &mut records, expected)?;
    recovered.files += 1;
    read_states(
        path,
        &found,
        SnapshotReader {
            path,
            records,
            recovered,
        },
    )
}

/// Reads the records of a snapshot after its header.
struct SnapshotReader<'a, 'r, K, S> {
    path: &'a Path,
    records: Records<'a>,
    recovered: &'r mut Recovered<K, S>,
}

impl<K: Key, S: State> ReadSaved<S> for SnapshotReader<'_, '_, K, S> {
    type Output = Result<HashMap<u64, u64>, ResilienceError>;

    fn read<Saved: State, F: Fn(Saved) -> S>(mut self, upgrade: F) -> Self::Output {
        let mut streams = HashMap::new();
        loop {
            match self.records.next_record() {
                Next::Record(offset, payload) => match decode(self.path, offset, payload)? {
                    SnapshotRecord::<K, Saved>::State {
                        key,
                        state,
                        progress,
                    } => {
                        self.recovered
                            .states
                            .insert(key, (upgrade(state), progress));
                    }
                    SnapshotRecord::Stream { stream, seq } => {
                        streams.insert(stream, seq);
                    }
                },
                Next::End => return Ok(streams),
                // Snapshots are renamed into place whole: any damage is damage.
                Next::TornTail(offset) | Next::Damaged(offset) => {
                    return Err(ResilienceError::Damaged {
                        path: self.path.to_path_buf(),
                        offset,
                    })
                }
            }
        }
    }
}

fn read_log<K: Key, S: State>(
    path: &Path,
    expected: &FileHeader,
    recovered: &mut Recovered<K, S>,
    streams: &mut HashMap<u64, u64>,
) -> Result<(), ResilienceError> {
    let data = fs::read(path).map_err(io_error(path))?;
    let mut records = Records::new(&data);
    if data.is_empty() {
        // Created, then the process died before the header was written.
        return Ok(());
    }
    let found = check_header(path, &mut records, expected)?;
    recovered.files += 1;
    read_states(
        path,
        &found,
        LogReader {
            path,
            length: data.len() as u64,
            records,
            recovered,
            streams,
        },
    )
}

/// Reads the records of a log segment after its header.
struct LogReader<'a, 'r, K, S> {
    path: &'a Path,
    /// The file's length.
    length: u64,
    records: Records<'a>,
    recovered: &'r mut Recovered<K, S>,
    streams: &'r mut HashMap<u64, u64>,
}

impl<K: Key, S: State> ReadSaved<S> for LogReader<'_, '_, K, S> {
    type Output = Result<(), ResilienceError>;

    fn read<Saved: State, F: Fn(Saved) -> S>(mut self, upgrade: F) -> Self::Output {
        loop {
            match self.records.next_record() {
                Next::Record(offset, payload) => match decode(self.path, offset, payload)? {
                    LogRecord::<K, Saved>::Put { key, state, origin } => {
                        let slot = self
                            .recovered
                            .states
                            .entry(key)
                            .or_insert_with(|| (S::build(), Progress::default()));
                        slot.0 = upgrade(state);
                        if let Some(origin) = origin {
                            slot.1.record(origin);
                        }
                    }
                    LogRecord::Marker { stream, seq } => {
                        self.streams.insert(stream, seq);
                    }
                },
                Next::End => return Ok(()),
                Next::TornTail(offset) => {
                    tracing::warn!(
                        "{}: the last {} bytes from byte {offset} are a record cut short by a crash; cut off",
                        self.path.display(),
                        self.length - offset
                    );
                    return Ok(());
                }
                Next::Damaged(offset) => {
                    return Err(ResilienceError::Damaged {
                        path: self.path.to_path_buf(),
                        offset,
                    })
                }
            }
        }
    }
}

fn decode<T: for<'de> Deserialize<'de>>(
    path: &Path,
    offset: u64,
    payload: &[u8],
) -> Result<T, ResilienceError> {
    postcard::from_bytes(payload).map_err(|e| ResilienceError::Incompatible {
        path: path.to_path_buf(),
        reason: format!("record at byte {offset} does not decode ({e}); was the state type changed without a new version?"),
    })
}

/// Writes the new generation's snapshot, then removes the files of earlier generations.
pub(crate) fn start_generation<'a, K: Key, S: State + 'a>(
    root: &Path,
    partition: &str,
    generation: u64,
    entries: impl Iterator<Item = (&'a K, &'a S, &'a Progress)>,
    streams: impl Iterator<Item = (u64, u64)>,
) -> Result<PathBuf, ResilienceError> {
    let dir = partition_dir(root, partition);
    fs::create_dir_all(&dir).map_err(io_error(&dir))?;
    let bytes = encode_snapshot(
        &header::<K, S>(partition, FileKind::Snapshot),
        entries,
        streams,
    );
    let path = dir.join(FileName::Snapshot { generation }.to_name());
    super::write_atomically(&path, &bytes)?;
    for entry in fs::read_dir(&dir).map_err(io_error(&dir))? {
        let entry = entry.map_err(io_error(&dir))?;
        if let Some(name) = FileName::parse(&entry.file_name().to_string_lossy()) {
            if name.generation() < generation {
                let old = entry.path();
                fs::remove_file(&old).map_err(io_error(&old))?;
            }
        }
    }
    super::sync_dir(&dir)?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_skips_what_was_applied_per_stream() {
        let mut p = Progress::default();
        let o = |stream, seq, sub| Origin { stream, seq, sub };
        assert!(!p.seen(o(1, 5, 0)));
        p.record(o(1, 5, 1));
        assert!(p.seen(o(1, 5, 0)));
        assert!(p.seen(o(1, 5, 1)));
        assert!(!p.seen(o(1, 5, 2)));
        assert!(!p.seen(o(1, 6, 0)));
        assert!(!p.seen(o(2, 1, 0)), "another stream");
        p.record(o(2, 1, 0));
        assert!(p.seen(o(2, 1, 0)));
        assert!(p.seen(o(1, 4, 9)));
    }

    #[test]
    fn progress_is_one_pointer_and_saved_as_its_list_of_origins() {
        assert_eq!(
            std::mem::size_of::<Progress>(),
            std::mem::size_of::<usize>()
        );
        let o = |stream, seq| Origin {
            stream,
            seq,
            sub: 0,
        };
        let mut p = Progress::default();
        // Nothing recorded saves as an empty list, byte for byte what `Vec` saved.
        let empty = postcard::to_allocvec(&p).unwrap();
        assert_eq!(empty, postcard::to_allocvec(&Vec::<Origin>::new()).unwrap());
        assert_eq!(postcard::from_bytes::<Progress>(&empty).unwrap(), p);
        p.record(o(1, 5));
        p.record(o(2, 7));
        let saved = postcard::to_allocvec(&p).unwrap();
        assert_eq!(
            saved,
            postcard::to_allocvec(&vec![o(1, 5), o(2, 7)]).unwrap()
        );
        assert_eq!(postcard::from_bytes::<Progress>(&saved).unwrap(), p);
    }
}
