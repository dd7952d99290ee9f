//! Errors of the store, worded for an operator reading the log: what could not be done,
//! to which file, and the system's own reason ("No space left on device").

use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An operating-system call on a store file failed. Telemetry callers count and retry;
    /// the store's state is left as if the failed call had not been made.
    #[error("cannot {action} {}: {err}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        err: io::Error,
    },
    /// A payload the store will not take (it could never fit, or exceeds the format limit).
    #[error("a record of {len} bytes is too large for the store (at most {max} bytes)")]
    TooLarge { len: usize, max: usize },
    /// The options make no sense (e.g. a zero size).
    #[error("invalid store options: {0}")]
    Options(String),
    /// The store was written by a later hazgate whose layout this one does not know: it
    /// is left untouched rather than read wrongly or cut as damage.
    #[error("the store at {} was written by a newer hazgate (format {found}; this one reads format {supported}): run that version again, or move the store aside to start a new one", path.display())]
    NewerFormat {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    /// The task owning the store has ended (used by `store::task`).
    #[error("the store task has stopped")]
    Closed,
}

impl StoreError {
    pub(crate) fn io<'a>(
        action: &'static str,
        path: &'a Path,
    ) -> impl FnOnce(io::Error) -> StoreError + 'a {
        move |err| StoreError::Io {
            action,
            path: path.to_path_buf(),
            err,
        }
    }

    /// The kind of the underlying I/O error, if any (e.g. `StorageFull`).
    pub fn io_kind(&self) -> Option<io::ErrorKind> {
        match self {
            StoreError::Io { err, .. } => Some(err.kind()),
            _ => None,
        }
    }
}
