//! Scenario files: the shipped examples match the example sites, and bad files are
//! refused with file, line and field before anything starts.

mod common;

use std::path::Path;
use std::process::Command;

use common::{Sim, TempDir, BIN};
use firmware_config::load_site;

fn examples() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

#[test]
fn every_example_scenario_fits_an_example_site() {
    let sites: Vec<_> = ["tank-farm.toml", "tailings-dam.toml", "mine.toml"]
        .iter()
        .map(|s| examples().join(s))
        .filter(|p| p.exists())
        .map(|p| load_site(&p).unwrap_or_else(|e| panic!("{e}")))
        .collect();
    assert!(!sites.is_empty());
    let mut count = 0;
    for entry in std::fs::read_dir(examples().join("scenarios")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        count += 1;
        let errors: Vec<String> = sites
            .iter()
            .map(|site| hazsim::scenario::load(&path, site))
            .filter_map(|r| r.err().map(|e| e.to_string()))
            .collect();
        assert!(
            errors.len() < sites.len(),
            "{} fits no example site:\n{}",
            path.display(),
            errors.join("\n")
        );
    }
    assert!(
        count >= 9,
        "expected the nine shipped scenarios, found {count}"
    );
}

fn start_error(scenario: &str) -> String {
    let dir = TempDir::new();
    let site = dir.write(
        "site.toml",
        &common::test_site(
            &dir.0,
            common::Ports {
                tcp: 1,
                dtu: 2,
                control: 3,
            },
        ),
    );
    let sc = dir.write("bad.toml", scenario);
    let out = Command::new(BIN)
        .args([
            "serve",
            "-c",
            site.to_str().unwrap(),
            "--scenario",
            sc.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success(), "a bad scenario must stop the start");
    String::from_utf8_lossy(&out.stderr).to_string()
}

#[test]
fn bad_scenarios_name_file_line_and_field() {
    let e = start_error("[[event]]\nat = \"1s\"\ndevice = \"GD-101\"\npoint = \"CH1\"\nramp = { to = 5.0, over = \"1s\", speed = 2 }\n");
    assert!(
        e.contains("bad.toml:5") && e.contains("unknown field `speed`"),
        "{e}"
    );
    let e = start_error("description = \"x\"\n\n[[event]]\nat = \"1s\"\ndevice = \"GD-101\"\npoint = \"NOPE\"\nset = 1.0\n");
    assert!(
        e.contains("bad.toml:3: event[0].point: device \"GD-101\" has no point \"NOPE\""),
        "{e}"
    );
    let e = start_error("[[event]]\nat = \"1s\"\ndevice = \"GD-101\"\npoint = \"CH1\"\nfault = { kind = \"status\" }\n");
    assert!(e.contains("event[0].fault.code: missing"), "{e}");
    let e = start_error("[[event]]\nat = \"soon\"\ndevice = \"GD-101\"\nclear_fault = true\n");
    assert!(e.contains("bad.toml:2"), "{e}");
    let e = start_error(
        "[[event]]\nat = \"1s\"\ndevice = \"GT-1\"\npoint = \"GAS\"\nset = 1.0\nrelease = true\n",
    );
    assert!(e.contains("found set and release"), "{e}");
    let e = start_error(
        "[[event]]\nat = \"1s\"\ndevice = \"GD-101\"\npoint = \"CH1\"\nrelease = false\n",
    );
    assert!(e.contains("release = true"), "{e}");
    // Problems in several events are all reported at once.
    let e = start_error("[[event]]\nat = \"1s\"\ndevice = \"A\"\nset = 1.0\n[[event]]\nat = \"1s\"\ndevice = \"B\"\nset = 1.0\n");
    assert!(
        e.contains("event[0].device") && e.contains("event[1].device"),
        "{e}"
    );
}

#[test]
fn a_good_scenario_starts() {
    let scenario = "[[event]]\nat = \"1h\"\ndevice = \"GD-101\"\nfault = { kind = \"silent\", for = \"20s\" }\n";
    let sim = Sim::start_with(&[], common::test_site, &[("ok.toml", scenario)]);
    assert_eq!(sim.ready_lines.last().unwrap(), "ready");
}
