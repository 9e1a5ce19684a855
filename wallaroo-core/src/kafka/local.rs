//! The local copy of a state's shards, kept in the resilience directory for a warm start.
//!
//! When a process gives a shard up cleanly (a rebalance, or a stop), it writes what a
//! restore of the shard would read from the changelog up to a fence it writes then: the
//! last record of each key, and the fence's offset (the checkpoint). A process given the
//! shard again reads the copy and only the changelog's records from the checkpoint on,
//! which is the same restore, without reading the partition from its start.
//!
//! A copy is taken (its file removed) when the shard is taken, before any of its records is
//! applied: a process that dies holding the shard leaves no copy behind, and the next
//! restore reads the changelog whole. A copy that does not read back is logged and left
//! aside the same way: it costs a cold restore, never a wrong state.
//!
//! ```text
//! file := MAGIC "WALLAROO-SHARD\n" | format: u16 LE | body length: u64 LE | body | crc32(body): u32 LE
//! body := postcard(checkpoint: i64, records: Vec<(key, value)>)
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::shard::ShardRecords as Records;

const MAGIC: &[u8] = b"WALLAROO-SHARD\n";
const FORMAT: u16 = 1;

/// The local copies of one changelog topic's partitions.
pub(crate) struct LocalCopies {
    dir: PathBuf,
}

/// A copy read back: the checkpoint and the records before it.
pub(crate) struct Copy {
    pub(crate) checkpoint: i64,
    pub(crate) records: Records,
}

impl LocalCopies {
    /// The copies of `topic`'s partitions in the resilience directory `resilience`.
    pub(crate) fn new(resilience: &Path, topic: &str) -> Self {
        LocalCopies {
            dir: resilience.join("changelog").join(topic),
        }
    }

    fn path(&self, partition: i32) -> PathBuf {
        self.dir.join(format!("{partition}.shard"))
    }

    /// Writes the copy of `partition`: `records`, what the changelog holds before
    /// `checkpoint`. Durable when it returns (written aside, synced, renamed).
    pub(crate) fn save(
        &self,
        partition: i32,
        checkpoint: i64,
        records: &Records,
    ) -> Result<(), String> {
        let body = postcard::to_allocvec(&(checkpoint, records)).map_err(|e| e.to_string())?;
        let mut file = Vec::with_capacity(MAGIC.len() + 14 + body.len());
        file.extend_from_slice(MAGIC);
        file.extend_from_slice(&FORMAT.to_le_bytes());
        file.extend_from_slice(&(body.len() as u64).to_le_bytes());
        file.extend_from_slice(&body);
        file.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
        let path = self.path(partition);
        let aside = path.with_extension("shard.new");
        let written = (|| {
            std::fs::create_dir_all(&self.dir)?;
            let mut out = std::fs::File::create(&aside)?;
            out.write_all(&file)?;
            out.sync_all()?;
            std::fs::rename(&aside, &path)?;
            std::fs::File::open(&self.dir)?.sync_all()
        })();
        written.map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Takes the copy of `partition`, if there is one that reads back: the file is removed
    /// first (durably), whatever it held.
    pub(crate) fn take(&self, partition: i32) -> Option<Copy> {
        let path = self.path(partition);
        let bytes = std::fs::read(&path).ok()?;
        let removed = std::fs::remove_file(&path)
            .and_then(|()| std::fs::File::open(&self.dir).and_then(|d| d.sync_all()));
        if let Err(e) = removed {
            // Left in place, it could be read again after a crash while the shard is held.
            tracing::warn!(
                "{}: cannot remove the local copy ({e}); the changelog is read whole",
                path.display()
            );
            return None;
        }
        match read(&bytes) {
            Ok(copy) => Some(copy),
            Err(e) => {
                tracing::warn!(
                    "{}: the local copy does not read back ({e}); the changelog is read whole",
                    path.display()
                );
                None
            }
        }
    }
}

/// A copy's file read back.
fn read(bytes: &[u8]) -> Result<Copy, String> {
    let rest = bytes.strip_prefix(MAGIC).ok_or("not a shard copy")?;
    let (format, rest) = rest.split_first_chunk::<2>().ok_or("cut short")?;
    if u16::from_le_bytes(*format) != FORMAT {
        return Err(format!("format {}", u16::from_le_bytes(*format)));
    }
    let (length, rest) = rest.split_first_chunk::<8>().ok_or("cut short")?;
    let length = usize::try_from(u64::from_le_bytes(*length)).map_err(|e| e.to_string())?;
    if rest.len() != length + 4 {
        return Err(format!(
            "{} bytes after the header, {} announced",
            rest.len(),
            length + 4
        ));
    }
    let (body, crc) = rest.split_at(length);
    if crc32fast::hash(body).to_le_bytes() != crc {
        return Err("checksum mismatch".into());
    }
    let (checkpoint, records): (i64, Records) =
        postcard::from_bytes(body).map_err(|e| e.to_string())?;
    Ok(Copy {
        checkpoint,
        records,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("wallaroo-local-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn a_copy_is_read_back_once() {
        let dir = temp("once");
        let copies = LocalCopies::new(&dir, "g-s-changelog");
        let records: Records = vec![(b"k1".to_vec(), b"v1".to_vec()), (b"k2".to_vec(), vec![])];
        copies.save(3, 41, &records).unwrap();
        assert!(copies.take(2).is_none());
        let copy = copies.take(3).expect("the copy");
        assert_eq!(copy.checkpoint, 41);
        assert_eq!(copy.records, records);
        // Taken: the next take finds none.
        assert!(copies.take(3).is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_damaged_copy_is_left_aside() {
        let dir = temp("damaged");
        let copies = LocalCopies::new(&dir, "t");
        let records: Records = vec![(b"k".to_vec(), b"value".to_vec())];
        let path = copies.path(0);
        for damage in [
            |b: &mut Vec<u8>| *b.last_mut().unwrap() ^= 1,
            |b: &mut Vec<u8>| b.truncate(b.len() - 1),
            |b: &mut Vec<u8>| b[0] = b'X',
            |b: &mut Vec<u8>| b[MAGIC.len()] = 9,
        ] {
            copies.save(0, 7, &records).unwrap();
            let mut bytes = std::fs::read(&path).unwrap();
            damage(&mut bytes);
            std::fs::write(&path, bytes).unwrap();
            assert!(copies.take(0).is_none());
            assert!(!path.exists(), "a damaged copy is removed as well");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
