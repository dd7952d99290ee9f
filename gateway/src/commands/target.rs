//! Which bus a commissioning tool talks to: one of the site file's (`--config` and
//! `--bus`), or one given on the command line (`--tcp`, `--rtu-over-tcp`, or `--serial`
//! with its line settings), so a line can be tried before any config is written.

use std::path::PathBuf;

use anyhow::Result;

use super::refused;
use firmware_config::site::{Parity, SerialLine};
use firmware_config::Link;

#[derive(clap::Args, Debug, Clone)]
pub struct BusArgs {
    /// Site config whose bus to use (with --bus).
    #[arg(short, long, value_name = "FILE", requires = "bus")]
    pub config: Option<PathBuf>,
    /// The bus's id in the site config.
    #[arg(long, value_name = "ID", requires = "config")]
    pub bus: Option<String>,
    /// A Modbus TCP device or gateway.
    #[arg(long, value_name = "HOST:PORT")]
    pub tcp: Option<String>,
    /// A serial server or 4G DTU that passes RTU frames through TCP.
    #[arg(long, value_name = "HOST:PORT")]
    pub rtu_over_tcp: Option<String>,
    /// An RS-485 port (Modbus RTU), e.g. /dev/ttyUSB0.
    #[arg(long, value_name = "PORT")]
    pub serial: Option<PathBuf>,
    /// Serial line speed.
    #[arg(long, default_value_t = 9600, value_name = "BAUD")]
    pub baud: u32,
    /// Serial parity: N, E or O.
    #[arg(long, default_value = "N", value_parser = parse_parity)]
    pub parity: Parity,
    /// Serial data bits.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u8).range(7..=8))]
    pub data_bits: u8,
    /// Serial stop bits.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=2))]
    pub stop_bits: u8,
}

fn parse_parity(s: &str) -> Result<Parity, String> {
    match s {
        "N" | "n" | "none" => Ok(Parity::None),
        "E" | "e" | "even" => Ok(Parity::Even),
        "O" | "o" | "odd" => Ok(Parity::Odd),
        _ => Err(format!("\"{s}\" is not a parity: N, E or O")),
    }
}

fn host_port(flag: &str, s: &str) -> Result<(String, u16)> {
    let (host, port) = s
        .rsplit_once(':')
        .filter(|(h, _)| !h.is_empty())
        .ok_or_else(|| {
            refused(format!(
                "--{flag} wants HOST:PORT, e.g. 192.168.1.20:502; got \"{s}\""
            ))
        })?;
    let port = port.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| {
        refused(format!(
            "--{flag}: \"{port}\" is not a TCP port (1 to 65535)"
        ))
    })?;
    Ok((host.trim_matches(['[', ']']).to_string(), port))
}

impl BusArgs {
    /// The link to open, from exactly one of the ways to name it.
    pub fn link(&self) -> Result<Link> {
        let given = [
            self.config.is_some(),
            self.tcp.is_some(),
            self.rtu_over_tcp.is_some(),
            self.serial.is_some(),
        ];
        match given.iter().filter(|g| **g).count() {
            0 => return Err(refused("say which bus: --tcp HOST:PORT, --rtu-over-tcp HOST:PORT, --serial PORT, or --config FILE --bus ID")),
            1 => {}
            _ => return Err(refused("name one bus only: --tcp, --rtu-over-tcp, --serial or --config with --bus")),
        }
        if let (Some(config), Some(id)) = (&self.config, &self.bus) {
            let site = super::load(config)?;
            let bus = site.buses.iter().find(|b| &b.id == id).ok_or_else(|| {
                let known: Vec<&str> = site.buses.iter().map(|b| b.id.as_str()).collect();
                refused(format!(
                    "{} has no bus \"{id}\"; its buses: {known:?}",
                    config.display()
                ))
            })?;
            return Ok(bus.link.clone());
        }
        if let Some(s) = &self.tcp {
            let (host, port) = host_port("tcp", s)?;
            return Ok(Link::Tcp { host, port });
        }
        if let Some(s) = &self.rtu_over_tcp {
            let (host, port) = host_port("rtu-over-tcp", s)?;
            return Ok(Link::RtuOverTcp { host, port });
        }
        let port = self.serial.clone().unwrap_or_default();
        if self.baud == 0 {
            return Err(refused("--baud must be above zero"));
        }
        Ok(Link::Rtu(SerialLine {
            port,
            baud: self.baud,
            parity: self.parity,
            data_bits: self.data_bits,
            stop_bits: self.stop_bits,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_port_are_checked() {
        assert_eq!(
            host_port("tcp", "10.0.0.5:502").unwrap(),
            ("10.0.0.5".into(), 502)
        );
        assert_eq!(
            host_port("tcp", "[::1]:5020").unwrap(),
            ("::1".into(), 5020)
        );
        for bad in ["10.0.0.5", ":502", "host:0", "host:http", "host:70000"] {
            assert!(host_port("tcp", bad).is_err(), "{bad}");
        }
    }
}
