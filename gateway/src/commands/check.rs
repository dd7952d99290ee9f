//! `hazgate check`: validates a site and prints its poll plan and line budget.

use std::fmt::Write;

use firmware_config::quantity::format_duration;
use firmware_config::SiteConfig;

use crate::poll::plan::DevicePlan;
use crate::poll::timing::{cycle_time, line_load, ASSUMED_TURNAROUND};

/// The report `hazgate check` prints, and the warnings in it.
pub struct CheckReport {
    pub text: String,
    pub warnings: Vec<String>,
}

pub fn report(site: &SiteConfig) -> CheckReport {
    let mut t = String::new();
    let mut warnings = Vec::new();
    let points: usize = site
        .devices
        .iter()
        .map(|d| d.points.iter().filter(|p| p.publish).count())
        .sum();
    let _ = writeln!(
        t,
        "site {} gateway {}: {} buses, {} devices, {} readings per cycle (config {} hash {})",
        site.site.id,
        site.site.gateway,
        site.buses.len(),
        site.devices.len(),
        points,
        site.path.display(),
        site.hash
    );
    for (b, bus) in site.buses.iter().enumerate() {
        let devices: Vec<_> = site
            .devices_on(b)
            .map(|d| (d, DevicePlan::for_device(d, &bus.link)))
            .collect();
        let _ = writeln!(
            t,
            "\nbus {}: {}, timeout {}, gap {}",
            bus.id,
            bus.link.describe(),
            format_duration(bus.timeout),
            format_duration(bus.gap)
        );
        if devices.is_empty() {
            warnings.push(format!("bus {} has no devices", bus.id));
        }
        for (d, plan) in &devices {
            let readings = d.points.iter().filter(|p| p.publish).count();
            let line = cycle_time(&bus.link, bus.gap, plan)
                .map(|c| format!(", {} on the line", ms(c)))
                .unwrap_or_default();
            let _ = writeln!(
                t,
                "  device {} unit {} profile {} every {}, timeout {}: {} request{}, {} registers, {} bits, {readings} readings{line}",
                d.id,
                d.unit,
                d.profile.model,
                format_duration(d.poll),
                format_duration(d.timeout),
                plan.blocks.len(),
                if plan.blocks.len() == 1 { "" } else { "s" },
                plan.registers(),
                plan.bits()
            );
            for block in &plan.blocks {
                let names: Vec<&str> = block
                    .points
                    .iter()
                    .map(|&i| d.points[i].id.as_str())
                    .collect();
                let _ = writeln!(
                    t,
                    "    fc {:02X} {} {}..={} ({} {}): {}",
                    block.kind.read_function(),
                    block.kind.name(),
                    block.start,
                    block.end() - 1,
                    block.count,
                    if block.kind.is_bit() {
                        "bits"
                    } else {
                        "registers"
                    },
                    names.join(" ")
                );
            }
        }
        let pairs: Vec<_> = devices.iter().map(|(d, p)| (*d, p)).collect();
        if let Some(load) = line_load(&bus.link, bus.gap, &pairs) {
            let _ = writeln!(
                t,
                "  line load {:.0}% of the line's time; {:.0}% with the costliest device silent (assumes {} device turnaround)",
                load.normal * 100.0,
                load.one_silent * 100.0,
                ms(ASSUMED_TURNAROUND)
            );
            if load.normal > 1.0 {
                warnings.push(format!(
                    "bus {} needs {:.0}% of its line time: devices will miss their poll intervals; raise the baud rate, lengthen poll intervals or split the line",
                    bus.id,
                    load.normal * 100.0
                ));
            } else if load.one_silent > 1.0 {
                warnings.push(format!(
                    "bus {}: if one device goes silent, its timeouts push the line to {:.0}% and the others miss their intervals; shorten that device's timeout or lengthen poll intervals",
                    bus.id,
                    load.one_silent * 100.0
                ));
            }
        }
    }
    if !site.derived.is_empty() {
        let _ = writeln!(t, "\nderived points (computed in this order):");
        for x in &site.derived {
            let unit = x
                .unit
                .as_deref()
                .map(|u| format!(" [{u}]"))
                .unwrap_or_default();
            let alarms = x
                .alarm
                .as_ref()
                .map(|a| format!(", {} limit(s)", a.limits.len()))
                .unwrap_or_default();
            let _ = writeln!(
                t,
                "  {}.{}{unit} = {}{alarms}",
                site.devices[x.device].id,
                x.id,
                x.op.describe()
            );
        }
    }
    CheckReport { text: t, warnings }
}

fn ms(d: std::time::Duration) -> String {
    format!("{:.1}ms", d.as_secs_f64() * 1000.0)
}

/// What `hazgate check --connect` found: one line per broker and device, and whether
/// everything answered.
pub struct ConnectReport {
    pub text: String,
    pub all_answered: bool,
}

/// Tries the broker once (address, TLS, credentials) and reads every device once, bus by
/// bus, and says what answered.
pub async fn connect(site: &SiteConfig) -> ConnectReport {
    let mut t = String::new();
    let mut all_answered = true;
    if let Some(u) = &site.uplink {
        let scheme = if u.broker.tls { "mqtts" } else { "mqtt" };
        let at = format!("{scheme}://{}:{}", u.broker.host, u.broker.port);
        match hazgate_common::broker::probe(u, std::time::Duration::from_secs(10)).await {
            Ok(()) => {
                let _ = writeln!(
                    t,
                    "broker {at}: connected{}",
                    match &u.username {
                        Some(user) => format!(" as {user}"),
                        None => String::new(),
                    }
                );
            }
            Err(e) => {
                all_answered = false;
                let _ = writeln!(t, "broker {at}: {e}");
            }
        }
    }
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    let poller = {
        let site = site.clone();
        tokio::spawn(async move { crate::poll::poll_once(&site, None, tx).await })
    };
    let mut by_device: std::collections::BTreeMap<String, (usize, usize, Option<String>)> =
        Default::default();
    while let Some(readings) = rx.recv().await {
        for r in readings {
            let e = by_device.entry(r.device.to_string()).or_default();
            e.1 += 1;
            match &r.quality {
                hazgate_wire::Quality::Bad { detail, .. } => {
                    e.2.get_or_insert_with(|| detail.clone());
                }
                _ => e.0 += 1,
            }
        }
    }
    let _ = poller.await;
    for (b, bus) in site.buses.iter().enumerate() {
        let _ = writeln!(t, "bus {} ({}):", bus.id, bus.link.describe());
        for d in site.devices_on(b) {
            let line = match by_device.get(&d.id) {
                Some((read, total, _)) if *read > 0 => {
                    format!("answers, {read} of {total} readings read")
                }
                Some((_, _, Some(why))) => {
                    all_answered = false;
                    format!("no reading: {why}")
                }
                _ => {
                    all_answered = false;
                    "no reading".to_string()
                }
            };
            let _ = writeln!(t, "  {} (unit {}): {line}", d.id, d.unit);
        }
    }
    ConnectReport {
        text: t,
        all_answered,
    }
}
