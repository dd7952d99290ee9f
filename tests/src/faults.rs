//! Real faults for tests: a small filesystem that can be filled up, a wall clock that can
//! be stepped under a running process (libfaketime), and a TCP relay whose established
//! connections can go silent the way a vanished serial server's do.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};

/// A tmpfs of a given size mounted on a folder; unmounted when dropped. Needs root (CI
/// runs as root); `None` with the reason where mounting is not allowed.
pub struct Tmpfs {
    path: PathBuf,
    filler: PathBuf,
}

impl Tmpfs {
    pub fn mount(path: &Path, size_kib: u64) -> Result<Tmpfs> {
        std::fs::create_dir_all(path)?;
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_kib}k"), "tmpfs"])
            .arg(path)
            .status()
            .context("running mount")?;
        if !status.success() {
            bail!("cannot mount a tmpfs on {} (not root?)", path.display());
        }
        Ok(Tmpfs {
            path: path.to_path_buf(),
            filler: path.join("filler"),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Fills the filesystem until it is full, leaving `leave` bytes free at most.
    pub fn fill(&self, leave: u64) -> Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.filler)?;
        let chunk = vec![0u8; 4096];
        loop {
            if self.free()? <= leave + chunk.len() as u64 {
                break;
            }
            if f.write_all(&chunk).is_err() {
                break;
            }
        }
        // The last bytes, one at a time, when nothing is to be left.
        if leave == 0 {
            while f.write_all(&chunk[..512]).is_ok() {}
            while f.write_all(&chunk[..1]).is_ok() {}
        }
        let _ = f.sync_all();
        Ok(())
    }

    /// Gives the filled space back.
    pub fn unfill(&self) {
        let _ = std::fs::remove_file(&self.filler);
    }

    pub fn free(&self) -> Result<u64> {
        let out = Command::new("df")
            .args(["--output=avail", "-B1"])
            .arg(&self.path)
            .output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines()
            .nth(1)
            .and_then(|l| l.trim().parse().ok())
            .context("df gave no figure")
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// Environment for a process whose wall clock the test steps with [`FakeClock::step`]
/// (libfaketime, Debian's `faketime`); monotonic time stays real.
pub struct FakeClock {
    file: PathBuf,
}

impl FakeClock {
    pub fn new(dir: &Path) -> Result<FakeClock> {
        let lib = Self::library().context("libfaketime is not installed (Debian: faketime)")?;
        let _ = lib;
        let file = dir.join("faketime.rc");
        std::fs::write(&file, "+0\n")?;
        Ok(FakeClock { file })
    }

    fn library() -> Option<PathBuf> {
        [
            "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
            "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
            "/usr/lib/faketime/libfaketime.so.1",
        ]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
    }

    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            (
                "LD_PRELOAD",
                Self::library()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
            ),
            ("FAKETIME_TIMESTAMP_FILE", self.file.display().to_string()),
            ("FAKETIME_NO_CACHE", "1".into()),
            ("FAKETIME_DONT_FAKE_MONOTONIC", "1".into()),
            ("FAKETIME_DONT_RESET", "1".into()),
        ]
    }

    /// Sets the wall clock `seconds` away from the real one (negative: behind).
    pub fn step(&self, seconds: i64) -> Result<()> {
        std::fs::write(&self.file, format!("{seconds:+}\n"))?;
        Ok(())
    }
}

/// A TCP relay in front of a server. `freeze` makes every established connection go
/// silent (bytes are swallowed, nothing answers, the socket stays open), as a serial
/// server that lost power behind a switch does; new connections are relayed again.
pub struct Relay {
    pub port: u16,
    generation: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    pub connections: Arc<AtomicU64>,
}

impl Relay {
    pub fn start(target: u16) -> Result<Relay> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        listener.set_nonblocking(true)?;
        let generation = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(AtomicU64::new(0));
        let (g, s, c) = (generation.clone(), stop.clone(), connections.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        c.fetch_add(1, Ordering::Relaxed);
                        let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                            continue;
                        };
                        let born = g.load(Ordering::Relaxed);
                        pipe(client, server, g.clone(), born, s.clone());
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Ok(Relay {
            port,
            generation,
            stop,
            connections,
        })
    }

    /// Every connection made so far goes silent for good.
    pub fn freeze(&self) {
        self.generation.fetch_add(1, Ordering::Relaxed);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Copies both ways until the relay freezes this connection's generation: then reads
/// are swallowed and nothing more is written, but the sockets stay open.
fn pipe(
    client: TcpStream,
    server: TcpStream,
    generation: Arc<AtomicU64>,
    born: u64,
    stop: Arc<AtomicBool>,
) {
    for (mut from, mut to) in [
        (client.try_clone().unwrap(), server.try_clone().unwrap()),
        (server, client),
    ] {
        let generation = generation.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let _ = from.set_read_timeout(Some(Duration::from_millis(100)));
            let mut buf = [0u8; 4096];
            while !stop.load(Ordering::Relaxed) {
                match from.read(&mut buf) {
                    Ok(0) => return,
                    Ok(n) => {
                        if generation.load(Ordering::Relaxed) == born
                            && to.write_all(&buf[..n]).is_err()
                        {
                            return;
                        }
                    }
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) => {}
                    Err(_) => return,
                }
            }
        });
    }
}
