//! A throwaway PostgreSQL for tests, from Debian's packages: a cluster of its own in a
//! temporary folder, on a free port, trusting local connections, stopped when dropped.
//! Run as root (CI), the cluster runs as the `postgres` user, as PostgreSQL requires.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

pub struct Postgres {
    pub port: u16,
    dir: PathBuf,
    _tmp: tempfile::TempDir,
    as_postgres: bool,
    bin: PathBuf,
}

fn bin_dir() -> Result<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .context("PostgreSQL is not installed (apt-get install postgresql; scripts/test does)")?
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|b| b.join("initdb").exists())
        .collect();
    found.sort();
    found.pop().context("no initdb under /usr/lib/postgresql")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

impl Postgres {
    pub fn start() -> Result<Postgres> {
        let bin = bin_dir()?;
        let tmp = tempfile::Builder::new().prefix("hazgate-pg-").tempdir()?;
        let dir = tmp.path().join("data");
        let as_postgres = is_root();
        if as_postgres {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(tmp.path())
                .status()?;
            if !status.success() {
                bail!("cannot hand {} to the postgres user", tmp.path().display());
            }
        }
        let pg = Postgres {
            port: crate::free_port(),
            dir,
            _tmp: tmp,
            as_postgres,
            bin,
        };
        pg.run(
            "initdb",
            &[
                "-A",
                "trust",
                "-U",
                "hazingest",
                "-E",
                "UTF8",
                "--no-sync",
                "-D",
            ],
            Some(&pg.dir),
        )?;
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            pg.port,
            pg.dir.parent().unwrap_or(Path::new("/tmp")).display()
        );
        let log = pg.dir.parent().unwrap_or(Path::new("/tmp")).join("pg.log");
        pg.run(
            "pg_ctl",
            &[
                "-w",
                "-l",
                &log.display().to_string(),
                "-o",
                &options,
                "start",
                "-D",
            ],
            Some(&pg.dir),
        )?;
        Ok(pg)
    }

    fn run(&self, program: &str, args: &[&str], dir: Option<&Path>) -> Result<()> {
        let exe = self.bin.join(program);
        let mut c = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        c.args(args);
        if let Some(d) = dir {
            c.arg(d);
        }
        let out = c.output().with_context(|| format!("running {program}"))?;
        if !out.status.success() {
            bail!(
                "{program} failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    /// A new, empty database in the cluster: each test its own.
    pub fn database(&self, name: &str) -> Result<String> {
        self.run(
            "createdb",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "hazingest",
                name,
            ],
            None,
        )?;
        Ok(format!(
            "postgres://hazingest@127.0.0.1:{}/{name}",
            self.port
        ))
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self.run(
            "pg_ctl",
            &["-m", "immediate", "stop", "-D"],
            Some(&self.dir.clone()),
        );
    }
}
