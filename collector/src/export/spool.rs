//! The on-disk spool of one exporter: batches that could not stay in memory
//! while the destination was slow or down, kept in order across restarts.
//!
//! Layout: one directory per exporter (`<spool-dir>/<exporter>/`), one file per
//! batch named `<seq>-<batch id>.json` (`seq` zero-padded to 20 digits, batch id
//! as 16 hex digits), holding the `serde_json` encoding of [`Batch`]. A file is
//! written to `<name>.tmp` and renamed into place, so a crash leaves either the
//! whole file or a `.tmp` that the next [`Spool::open`] deletes. Files are
//! replayed in `seq` order, oldest first; a file is deleted only after its batch
//! was acknowledged (or dropped as fatal), so a crash between the two re-sends
//! it, which the destination deduplicates by [`Batch::token`].
//!
//! A lock file (`.lock`, `File::try_lock`) keeps two collectors from sharing one
//! spool directory.

use super::Batch;
use std::collections::VecDeque;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// One spooled batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolEntry {
    /// Queue sequence number: order of the batch among everything queued.
    pub seq: u64,
    /// [`Batch::id`].
    pub batch_id: u64,
    /// Spans in the batch (known for files written by this process; read from
    /// the file for older ones, 0 until then).
    pub spans: u64,
    /// File size in bytes.
    pub bytes: u64,
}

/// Why a batch was not spooled.
#[derive(Debug)]
pub enum SpoolError {
    /// Adding the batch would exceed the byte bound.
    Full,
    /// The file could not be written.
    Io(io::Error),
}

impl std::fmt::Display for SpoolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SpoolError::Full => write!(f, "spool full"),
            SpoolError::Io(e) => write!(f, "spool write failed: {e}"),
        }
    }
}

/// A bounded, ordered directory of batch files.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    entries: VecDeque<SpoolEntry>,
    bytes: u64,
    _lock: File,
}

fn file_name(seq: u64, batch_id: u64) -> String {
    format!("{seq:020}-{batch_id:016x}.json")
}

fn parse_name(name: &str) -> Option<(u64, u64)> {
    let stem = name.strip_suffix(".json")?;
    let (seq, id) = stem.split_once('-')?;
    Some((seq.parse().ok()?, u64::from_str_radix(id, 16).ok()?))
}

impl Spool {
    /// Opens (creating it if needed) the spool in `dir`, bounded to `max_bytes`
    /// of batch files. Deletes leftover `.tmp` files and lists the batches left
    /// by a previous run (they are replayed first).
    /// Errors: the directory cannot be created or read, or another process holds
    /// its lock.
    pub fn open(dir: &Path, max_bytes: u64) -> io::Result<Spool> {
        fs::create_dir_all(dir)?;
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(".lock"))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    format!(
                        "spool directory {} is in use by another mcptap-collector (give each its own --spool-dir)",
                        dir.display()
                    ),
                ));
            }
            Err(fs::TryLockError::Error(e)) => return Err(e),
        }
        let mut entries = Vec::new();
        let mut bytes = 0;
        for ent in fs::read_dir(dir)? {
            let ent = ent?;
            let name = ent.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.ends_with(".tmp") {
                let _ = fs::remove_file(ent.path());
                continue;
            }
            if let Some((seq, batch_id)) = parse_name(name) {
                let len = ent.metadata()?.len();
                bytes += len;
                entries.push(SpoolEntry {
                    seq,
                    batch_id,
                    spans: 0,
                    bytes: len,
                });
            }
        }
        entries.sort_by_key(|e| e.seq);
        Ok(Spool {
            dir: dir.to_owned(),
            max_bytes,
            entries: entries.into(),
            bytes,
            _lock: lock,
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The sequence number after the newest spooled batch (0 when empty): where
    /// a restarted queue continues numbering.
    pub fn next_seq(&self) -> u64 {
        self.entries.back().map_or(0, |e| e.seq + 1)
    }

    /// Batches in the spool.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no batch is spooled.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes of batch files.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The oldest spooled batch, if any.
    pub fn front(&self) -> Option<&SpoolEntry> {
        self.entries.front()
    }

    /// Spooled entries, oldest first.
    pub fn entries(&self) -> impl Iterator<Item = &SpoolEntry> {
        self.entries.iter()
    }

    /// Writes `batch` as number `seq` (tmp file + rename), keeping the entries
    /// sorted by `seq`. Returns the file size.
    /// Errors: [`SpoolError::Full`] if it would exceed the bound (nothing written),
    /// [`SpoolError::Io`] on a write error.
    pub fn push(&mut self, seq: u64, batch: &Batch) -> Result<u64, SpoolError> {
        let data = serde_json::to_vec(batch).map_err(|e| SpoolError::Io(io::Error::other(e)))?;
        let len = data.len() as u64;
        if self.bytes.saturating_add(len) > self.max_bytes {
            return Err(SpoolError::Full);
        }
        let name = file_name(seq, batch.id);
        let tmp = self.dir.join(format!("{name}.tmp"));
        let write = || -> io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(&data)?;
            f.sync_data()?;
            fs::rename(&tmp, self.dir.join(&name))
        };
        if let Err(e) = write() {
            let _ = fs::remove_file(&tmp);
            return Err(SpoolError::Io(e));
        }
        let entry = SpoolEntry {
            seq,
            batch_id: batch.id,
            spans: batch.spans.len() as u64,
            bytes: len,
        };
        let pos = self.entries.partition_point(|e| e.seq < seq);
        if self.entries.get(pos).is_some_and(|e| e.seq == seq) {
            // Same seq written again (in-flight batch re-spooled): replace.
            if let Some(old) = self.entries.get_mut(pos) {
                self.bytes = self.bytes.saturating_sub(old.bytes);
                *old = entry;
            }
        } else {
            self.entries.insert(pos, entry);
        }
        self.bytes += len;
        Ok(len)
    }

    /// Reads the batch of `entry`.
    /// Errors: the file is missing or does not hold a batch (corrupt).
    pub fn read(&self, entry: &SpoolEntry) -> io::Result<Batch> {
        let data = fs::read(self.dir.join(file_name(entry.seq, entry.batch_id)))?;
        serde_json::from_slice(&data).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    /// Deletes the file of batch `seq` (sent, or dropped); a missing file is fine.
    pub fn remove(&mut self, seq: u64) {
        let pos = self.entries.partition_point(|e| e.seq < seq);
        if let Some(e) = self.entries.get(pos).filter(|e| e.seq == seq).cloned() {
            let path = self.dir.join(file_name(e.seq, e.batch_id));
            if let Err(err) = fs::remove_file(&path)
                && err.kind() != io::ErrorKind::NotFound
            {
                tracing::warn!(path = %path.display(), error = %err, "cannot delete spool file");
            }
            self.bytes = self.bytes.saturating_sub(e.bytes);
            self.entries.remove(pos);
        }
    }

    /// Moves a file that cannot be read to `<name>.bad` (kept for inspection,
    /// no longer replayed) and forgets it.
    pub fn quarantine(&mut self, seq: u64) {
        let pos = self.entries.partition_point(|e| e.seq < seq);
        if let Some(e) = self.entries.get(pos).filter(|e| e.seq == seq).cloned() {
            let path = self.dir.join(file_name(e.seq, e.batch_id));
            let _ = fs::rename(&path, path.with_extension("json.bad"));
            self.bytes = self.bytes.saturating_sub(e.bytes);
            self.entries.remove(pos);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use mcptap_mcp::{Span, SpanStatus};

    fn span(i: u8) -> Span {
        Span {
            trace_id: [i; 16],
            span_id: [i; 8],
            parent_span_id: None,
            trace_state: String::new(),
            name: format!("tools/call t{i}"),
            start_ns: 1,
            end_ns: 2,
            status: SpanStatus::Unset,
            instance_id: "i".into(),
            attributes: vec![],
            events: vec![],
        }
    }

    fn tmpdir(tag: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("mcptap-spool-test-{}-{tag}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn order_bound_restart_and_lock() {
        let dir = tmpdir("a");
        let b1 = Batch::new(vec![span(1)]);
        let b2 = Batch::new(vec![span(2), span(3)]);
        let b0 = Batch::new(vec![span(9)]);
        {
            let mut s = Spool::open(&dir, 1 << 20).unwrap();
            assert!(
                Spool::open(&dir, 1 << 20).is_err(),
                "second opener must be refused"
            );
            s.push(5, &b1).unwrap();
            s.push(7, &b2).unwrap();
            s.push(3, &b0).unwrap(); // an older in-flight batch spooled at shutdown
            let seqs: Vec<u64> = s.entries().map(|e| e.seq).collect();
            assert_eq!(seqs, [3, 5, 7]);
            assert_eq!(s.next_seq(), 8);
            let front = s.front().unwrap().clone();
            assert_eq!(s.read(&front).unwrap(), b0);
            s.remove(3);
            assert_eq!(s.len(), 2);
            fs::write(
                dir.join("00000000000000000009-00000000000000aa.json.tmp"),
                b"x",
            )
            .unwrap();
        }
        let mut s = Spool::open(&dir, 1 << 20).unwrap();
        let seqs: Vec<u64> = s.entries().map(|e| e.seq).collect();
        assert_eq!(seqs, [5, 7]);
        assert!(
            !dir.join("00000000000000000009-00000000000000aa.json.tmp")
                .exists()
        );
        let e = s.front().unwrap().clone();
        assert_eq!(s.read(&e).unwrap(), b1);
        let total = s.bytes();
        s.remove(5);
        s.remove(7);
        assert_eq!(s.bytes(), 0);
        assert!(total > 0);
        drop(s);
        let mut small = Spool::open(&dir, 10).unwrap();
        assert!(matches!(small.push(1, &b1), Err(SpoolError::Full)));
        assert!(small.is_empty());
        fs::remove_dir_all(&dir).unwrap();
    }

    /// A spool file written before the `mcp.progress*` / `mcp.log.*` event
    /// attributes moved under `mcptap.` reads back with the new names.
    #[test]
    fn old_attribute_names_read_back_as_new() {
        use mcptap_mcp::{AttrValue, SpanEvent, attrs};
        let dir = tmpdir("renamed");
        let mut sp = span(4);
        sp.events = vec![SpanEvent {
            time_ns: 1,
            name: "notifications/progress".into(),
            attributes: attrs::RENAMED
                .iter()
                .map(|&(_, new)| (new, AttrValue::Str("1".into())))
                .collect(),
        }];
        let batch = Batch::new(vec![sp]);
        let mut s = Spool::open(&dir, 1 << 20).unwrap();
        s.push(1, &batch).unwrap();
        let e = s.front().unwrap().clone();
        let path = dir.join(file_name(e.seq, e.batch_id));
        let mut text = fs::read_to_string(&path).unwrap();
        for &(old, new) in attrs::RENAMED {
            text = text.replace(&format!("\"{new}\""), &format!("\"{old}\""));
        }
        assert!(text.contains("\"mcp.progress\"") && !text.contains("mcptap.progress"));
        fs::write(&path, text).unwrap();
        let back = s.read(&e).unwrap();
        assert_eq!(back, batch);
        let keys: Vec<&str> = back.spans[0].events[0]
            .attributes
            .iter()
            .map(|(k, _)| *k)
            .collect();
        let new: Vec<&str> = attrs::RENAMED.iter().map(|&(_, new)| new).collect();
        assert_eq!(keys, new);
        drop(s);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn corrupt_file_is_quarantined() {
        let dir = tmpdir("b");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(file_name(1, 0xab)), b"{not json").unwrap();
        let mut s = Spool::open(&dir, 1 << 20).unwrap();
        let e = s.front().unwrap().clone();
        assert!(s.read(&e).is_err());
        s.quarantine(e.seq);
        assert!(s.is_empty());
        assert!(dir.join(format!("{}.bad", file_name(1, 0xab))).exists());
        drop(s);
        fs::remove_dir_all(&dir).unwrap();
    }
}
