//! One segment file of a lane: records appended back to back, written through a small
//! buffer at known offsets (so a failed write is cut back exactly), scanned and cut at
//! the first bad record on start, deleted whole once it is no longer needed.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::error::StoreError;
use super::record::{self, Bad, Header, HEADER_LEN};

/// What the store keeps in memory per record: enough to answer without reading the disk
/// except for the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub id: u64,
    pub offset: u64,
    pub len: u32,
    pub topic: u8,
    pub seq: u64,
    pub min_ts: i64,
    pub max_ts: i64,
}

impl Entry {
    /// Bytes the record takes in the file.
    pub fn size(&self) -> u64 {
        HEADER_LEN as u64 + self.len as u64
    }
}

/// What a scan found wrong in one segment.
#[derive(Debug, Default, Clone, Copy)]
pub struct ScanDamage {
    /// Bad records found (skipped, or where the file was cut).
    pub corrupt_records: u64,
    /// Bytes cut off the end of the file.
    pub truncated_bytes: u64,
}

pub struct Segment {
    pub path: PathBuf,
    pub entries: Vec<Entry>,
    /// Open while this is the lane's head; sealed segments are only read.
    writer: Option<File>,
    disk_len: u64,
    buf: Vec<u8>,
    unsynced: bool,
}

/// `dir/000000000042.seg` for a segment whose first record is id 42.
pub fn file_name(first_id: u64) -> String {
    format!("{first_id:012}.seg")
}

/// The number in a segment file's name, or None for any other file.
pub fn parse_name(path: &Path) -> Option<u64> {
    if path.extension()? != "seg" {
        return None;
    }
    path.file_stem()?.to_str()?.parse().ok()
}

/// Makes a new directory entry durable: without it a new segment may vanish on power loss.
pub fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(StoreError::io("sync folder", dir))
}

fn read_at(file: &File, path: &Path, buf: &mut [u8], at: u64) -> Result<(), StoreError> {
    file.read_exact_at(buf, at)
        .map_err(StoreError::io("read from", path))
}

impl Segment {
    /// Creates an empty head segment for records from `first_id` on.
    pub fn create(dir: &Path, first_id: u64) -> Result<Segment, StoreError> {
        let path = dir.join(file_name(first_id));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(StoreError::io("create", &path))?;
        sync_dir(dir)?;
        Ok(Segment {
            path,
            entries: Vec::new(),
            writer: Some(file),
            disk_len: 0,
            buf: Vec::new(),
            unsynced: false,
        })
    }

    /// Scans an existing segment, keeping the records that check out and whose ids grow
    /// past `prev_id`. A bad record followed by a good one (a flipped bit) is skipped; at
    /// any other bad record (torn tail, garbage) the file is cut. Only I/O errors fail.
    pub fn recover(
        path: PathBuf,
        mut prev_id: u64,
        damage: &mut ScanDamage,
    ) -> Result<Segment, StoreError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(StoreError::io("open", &path))?;
        let file_len = file
            .metadata()
            .map_err(StoreError::io("read the size of", &path))?
            .len();
        let mut entries = Vec::new();
        let mut payload = Vec::new();
        let mut off = 0u64;
        while off < file_len {
            match read_record(&file, &path, off, file_len, prev_id, &mut payload)? {
                Ok(e) => {
                    prev_id = e.id;
                    off += e.size();
                    entries.push(e);
                }
                Err(Some(skip_to))
                    if skip_to < file_len
                        && read_record(&file, &path, skip_to, file_len, prev_id, &mut payload)?
                            .is_ok() =>
                {
                    damage.corrupt_records += 1;
                    off = skip_to;
                }
                Err(_) => {
                    damage.corrupt_records += 1;
                    damage.truncated_bytes += file_len - off;
                    file.set_len(off)
                        .and_then(|()| file.sync_all())
                        .map_err(StoreError::io("cut the damaged end of", &path))?;
                    break;
                }
            }
        }
        let disk_len = off.min(file_len);
        Ok(Segment {
            path,
            entries,
            writer: Some(file),
            disk_len,
            buf: Vec::new(),
            unsynced: true,
        })
    }

    /// Bytes of the segment, including what is still buffered.
    pub fn len(&self) -> u64 {
        self.disk_len + self.buf.len() as u64
    }

    pub fn last_id(&self) -> Option<u64> {
        self.entries.last().map(|e| e.id)
    }

    pub fn is_writable(&self) -> bool {
        self.writer.is_some()
    }

    /// Adds a record to the buffer; [`Segment::flush`] or [`Segment::sync`] writes it.
    pub fn push(&mut self, h: &Header, payload: &[u8]) -> Entry {
        let e = Entry {
            id: h.id,
            offset: self.len(),
            len: payload.len() as u32,
            topic: h.topic,
            seq: h.seq,
            min_ts: h.min_ts,
            max_ts: h.max_ts,
        };
        record::encode(h, payload, &mut self.buf);
        self.entries.push(e);
        e
    }

    /// Takes back the last pushed record after its write or sync failed, from the buffer
    /// or from the file, so the failed append leaves no trace.
    pub fn undo_last(&mut self) {
        let Some(e) = self.entries.pop() else { return };
        if e.offset >= self.disk_len {
            self.buf.truncate((e.offset - self.disk_len) as usize);
        } else {
            self.buf.clear();
            if let Some(f) = &self.writer {
                // Best effort: if this fails too, the next start cuts the record as torn
                // or keeps it as an extra record; either is safe.
                let _ = f.set_len(e.offset);
            }
            self.disk_len = e.offset;
        }
    }

    /// Writes the buffer to the file (no sync). On failure the file is cut back to where
    /// it was and the buffer kept, so a retry writes the same bytes at the same place.
    pub fn flush(&mut self) -> Result<(), StoreError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let Some(f) = &self.writer else {
            return Ok(());
        };
        if let Err(err) = f.write_all_at(&self.buf, self.disk_len) {
            let _ = f.set_len(self.disk_len);
            return Err(StoreError::Io {
                action: "write to",
                path: self.path.clone(),
                err,
            });
        }
        self.disk_len += self.buf.len() as u64;
        self.buf.clear();
        self.unsynced = true;
        Ok(())
    }

    /// Flush and fdatasync: on return every pushed record is durable.
    pub fn sync(&mut self) -> Result<(), StoreError> {
        self.flush()?;
        if self.unsynced {
            if let Some(f) = &self.writer {
                f.sync_data().map_err(StoreError::io("sync", &self.path))?;
            }
            self.unsynced = false;
        }
        Ok(())
    }

    /// Syncs and closes the writer: the segment is full and a new head takes over.
    pub fn seal(&mut self) -> Result<(), StoreError> {
        self.sync()?;
        self.writer = None;
        Ok(())
    }

    /// Drops the writer of a recovered segment that is not the head (it was synced when
    /// it was sealed, before the crash).
    pub fn close_writer(&mut self) {
        self.writer = None;
    }

    /// Opens the file for reading payloads.
    pub fn reader(&self) -> Result<File, StoreError> {
        File::open(&self.path).map_err(StoreError::io("open", &self.path))
    }

    /// Reads one record's payload and checks its CRC; `Ok(None)` if it no longer checks
    /// out (the disk changed under us).
    pub fn read(&self, file: &File, e: &Entry) -> Result<Option<Vec<u8>>, StoreError> {
        let mut buf = vec![0u8; e.size() as usize];
        read_at(file, &self.path, &mut buf, e.offset)?;
        match record::decode(&buf) {
            Ok(h) if h.id == e.id && h.len == e.len => {
                buf.drain(..HEADER_LEN);
                Ok(Some(buf))
            }
            _ => Ok(None),
        }
    }

    /// Deletes the file. Failure is not an error for the caller: a leftover segment is
    /// found again on the next start, below the watermark, and deleted then.
    pub fn remove(self) {
        drop(self.writer);
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Reads and checks the record at `off`. `Err(Some(next))`: a bad record whose header is
/// plausible, so the next one would start at `next`; `Err(None)`: nothing can be trusted.
fn read_record(
    file: &File,
    path: &Path,
    off: u64,
    file_len: u64,
    prev_id: u64,
    payload: &mut Vec<u8>,
) -> Result<Result<Entry, Option<u64>>, StoreError> {
    let available = file_len - off;
    if available < HEADER_LEN as u64 {
        return Ok(Err(None));
    }
    let mut hdr = [0u8; HEADER_LEN];
    read_at(file, path, &mut hdr, off)?;
    let h = match record::parse_header(&hdr, available) {
        Ok(h) => h,
        Err(Bad::Torn | Bad::Corrupt) => return Ok(Err(None)),
    };
    payload.resize(h.len as usize, 0);
    read_at(file, path, payload, off + HEADER_LEN as u64)?;
    let next = off + HEADER_LEN as u64 + h.len as u64;
    if !record::check(&hdr, payload) || h.id <= prev_id {
        return Ok(Err(Some(next)));
    }
    Ok(Ok(Entry {
        id: h.id,
        offset: off,
        len: h.len,
        topic: h.topic,
        seq: h.seq,
        min_ts: h.min_ts,
        max_ts: h.max_ts,
    }))
}
