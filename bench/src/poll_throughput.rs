//! Reading throughput of the gateway against `hazsim` over loopback TCP, with 1 and with 50
//! devices, beside the loopback ceiling measured in the same run by a minimal raw
//! responder and client doing the same requests. Target: 50 devices reach 50 % of it.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use firmware_config::SiteConfig;
use hazgate::decode::DeviceDecoder;
use hazgate::poll::cycle::read_device;
use hazgate::poll::link::BusLink;
use hazgate::poll::plan::DevicePlan;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::report::{machine, Table};

/// Registers per device, read in one request: a realistic full block of a transmitter.
pub const REGISTERS: u16 = 60;
const RUN: Duration = Duration::from_secs(3);
const MANY: usize = 50;

struct Rate {
    requests: f64,
    registers: f64,
}

pub fn run(hazsim: &Path, self_exe: &Path) -> Result<Table> {
    let dir = std::env::temp_dir().join(format!("hazgate-bench-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("profiles"))?;
    let mut profile = String::from("model = \"bench-block\"\nvendor = \"bench\"\n");
    for i in 0..REGISTERS {
        profile.push_str(&format!("[[point]]\nid = \"R{i}\"\nkind = \"holding\"\naddress = {i}\nsimulate = {{ normal = {i} }}\n"));
    }
    std::fs::write(dir.join("profiles/bench-block.toml"), profile)?;
    let base_port = 26000 + (std::process::id() % 2000) as u16 * 8 % 20000;
    let mut site =
        String::from("[site]\nid = \"BENCH\"\ngateway = \"gw\"\nprofile_dirs = [\"profiles\"]\n");
    for d in 0..MANY {
        site.push_str(&format!(
            "[[bus]]\nid = \"tcp-{d}\"\ntcp = {{ host = \"127.0.0.1\", port = {} }}\n[[device]]\nid = \"D{d}\"\nbus = \"tcp-{d}\"\nunit = 1\nprofile = \"bench-block\"\npoll = \"1s\"\n",
            base_port + d as u16
        ));
    }
    let site_path = dir.join("site.toml");
    std::fs::write(&site_path, site)?;
    let config = firmware_config::load_site(&site_path).map_err(|e| anyhow::anyhow!("{e}"))?;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut sim = Child2(
        Command::new(hazsim)
            .args(["serve", "-c"])
            .arg(&site_path)
            .stdout(Stdio::piped())
            .spawn()
            .context("starting hazsim")?,
    );
    wait_ready(&mut sim.0)?;
    let gw1 = rt.block_on(gateway(&config, 1))?;
    let gw50 = rt.block_on(gateway(&config, MANY))?;
    drop(sim);

    let raw_port = base_port + MANY as u16 + 1;
    let mut responder = Child2(
        Command::new(self_exe)
            .args(["raw-responder", "--port", &raw_port.to_string()])
            .stdout(Stdio::piped())
            .spawn()?,
    );
    wait_ready(&mut responder.0)?;
    let raw1 = rt.block_on(raw_client(raw_port, 1))?;
    let raw50 = rt.block_on(raw_client(raw_port, MANY))?;
    drop(responder);
    let _ = std::fs::remove_dir_all(&dir);

    let share = gw50.requests / raw50.requests * 100.0;
    let row = |name: &str, r: &Rate, ceiling: Option<&Rate>| {
        vec![
            name.to_string(),
            format!("{:.0}", r.requests),
            format!("{:.0}", r.registers),
            ceiling
                .map(|c| format!("{:.0} %", r.requests / c.requests * 100.0))
                .unwrap_or_else(|| "ceiling".into()),
        ]
    };
    Ok(Table {
        title: "Modbus TCP reading throughput (loopback)".into(),
        header: vec!["run".into(), "requests/s".into(), "registers/s".into(), "of ceiling".into()],
        rows: vec![
            row("raw client + raw responder, 1 connection", &raw1, None),
            row("hazgate -> hazsim, 1 device", &gw1, Some(&raw1)),
            row(&format!("raw client + raw responder, {MANY} connections"), &raw50, None),
            row(&format!("hazgate -> hazsim, {MANY} devices"), &gw50, Some(&raw50)),
        ],
        notes: vec![
            format!(
                "Each request reads {REGISTERS} holding registers; the gateway decodes every reading (quality included). {}s per run on {}.",
                RUN.as_secs(),
                machine()
            ),
            format!(
                "Target: {MANY} devices at least 50 % of the ceiling: {share:.0} % ({}).",
                if share >= 50.0 { "met" } else { "NOT met" }
            ),
        ],
    })
}

struct Child2(Child);

impl Drop for Child2 {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_ready(child: &mut Child) -> Result<()> {
    use std::io::BufRead;
    let out = child.stdout.take().context("no stdout")?;
    let mut lines = std::io::BufReader::new(out).lines();
    while let Some(line) = lines.next().transpose()? {
        if line.trim() == "ready" {
            // Keep draining so the child never blocks on a full pipe.
            std::thread::spawn(move || for _ in lines.by_ref() {});
            return Ok(());
        }
    }
    bail!("the process ended before it was ready")
}

/// The gateway's own read path: plan, Modbus client, decode, as the daemon runs it.
async fn gateway(site: &SiteConfig, devices: usize) -> Result<Rate> {
    let requests = Arc::new(AtomicU64::new(0));
    let registers = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for device in site.devices.iter().take(devices).cloned() {
        let link = site.buses[device.bus].link.clone();
        let (requests, registers) = (requests.clone(), registers.clone());
        tasks.spawn(async move {
            let mut link = BusLink::new(link);
            let plan = DevicePlan::for_device(&device, link.link());
            let decoder = DeviceDecoder::new(&device, &plan);
            let mut readings = 0usize;
            while start.elapsed() < RUN {
                let image = read_device(&mut link, &device, &plan, Duration::ZERO).await;
                let decoded = decoder.decode(&image);
                if decoded.iter().any(|r| !r.quality.is_good()) {
                    return Err(anyhow::anyhow!(
                        "bad reading in benchmark: {:?}",
                        decoded.iter().find(|r| !r.quality.is_good())
                    ));
                }
                readings += decoded.len();
                requests.fetch_add(plan.blocks.len() as u64, Ordering::Relaxed);
                registers.fetch_add(plan.registers() as u64, Ordering::Relaxed);
            }
            Ok(readings)
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    let secs = start.elapsed().as_secs_f64();
    Ok(Rate {
        requests: requests.load(Ordering::Relaxed) as f64 / secs,
        registers: registers.load(Ordering::Relaxed) as f64 / secs,
    })
}

/// The least a client can do: write a fixed request, read a fixed-size reply.
async fn raw_client(port: u16, connections: usize) -> Result<Rate> {
    let requests = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..connections {
        let requests = requests.clone();
        tasks.spawn(async move {
            let mut s = TcpStream::connect(("127.0.0.1", port)).await?;
            s.set_nodelay(true)?;
            let mut reply = vec![0u8; 9 + REGISTERS as usize * 2];
            let mut tid: u16 = 0;
            while start.elapsed() < RUN {
                tid = tid.wrapping_add(1);
                let [t0, t1] = tid.to_be_bytes();
                let [c0, c1] = REGISTERS.to_be_bytes();
                s.write_all(&[t0, t1, 0, 0, 0, 6, 1, 3, 0, 0, c0, c1])
                    .await?;
                s.read_exact(&mut reply).await?;
                requests.fetch_add(1, Ordering::Relaxed);
            }
            anyhow::Ok(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    let secs = start.elapsed().as_secs_f64();
    let req = requests.load(Ordering::Relaxed) as f64 / secs;
    Ok(Rate {
        requests: req,
        registers: req * REGISTERS as f64,
    })
}

/// The least a server can do: answer every 12-byte request with a fixed reply.
pub async fn raw_responder(port: u16) -> Result<()> {
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    println!("ready");
    loop {
        let (mut s, _) = listener.accept().await?;
        s.set_nodelay(true)?;
        tokio::spawn(async move {
            let mut reply = vec![0u8; 9 + REGISTERS as usize * 2];
            reply[4..6].copy_from_slice(&(3 + REGISTERS * 2).to_be_bytes());
            reply[6] = 1;
            reply[7] = 3;
            reply[8] = (REGISTERS * 2) as u8;
            let mut request = [0u8; 12];
            while s.read_exact(&mut request).await.is_ok() {
                reply[0..2].copy_from_slice(&request[0..2]);
                if s.write_all(&reply).await.is_err() {
                    break;
                }
            }
        });
    }
}
