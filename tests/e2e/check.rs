//! `hazgate check` accepts every shipped example, prints the poll plan, warns about an
//! overbooked RS-485 line, and refuses a broken config with the file, line and field.

use hazgate_e2e::{hazgate, workspace, Workdir};

#[test]
fn every_example_passes_check() {
    let mut n = 0;
    for entry in std::fs::read_dir(workspace().join("examples")).unwrap() {
        let path = entry.unwrap().path();
        // central.toml configures hazingest, not a site
        if path.extension().is_some_and(|e| e == "toml") && !path.ends_with("central.toml") {
            let out = hazgate(&["check", "-c", path.to_str().unwrap()]);
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "{}: {}{}",
                path.display(),
                stdout,
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(stdout.contains("ok: "), "{stdout}");
            assert!(!stdout.contains("warning:"), "{}: {stdout}", path.display());
            n += 1;
        }
    }
    assert!(
        n >= 3,
        "expected the tank farm, tailings dam and mine examples, found {n}"
    );
}

#[test]
fn check_prints_the_plan() {
    let out = hazgate(&[
        "check",
        "-c",
        workspace()
            .join("examples/tank-farm.toml")
            .to_str()
            .unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("device GD-101 unit 1 profile gas-detector-4ch"),
        "{stdout}"
    );
    assert!(stdout.contains("fc 03 holding 0..="), "{stdout}");
    assert!(stdout.contains("line load"), "{stdout}");
}

#[test]
fn overbooked_line_is_warned() {
    let w = Workdir::new();
    let mut text = String::from(
        "[site]\nid = \"T-1\"\ngateway = \"g\"\n[[bus]]\nid = \"slow\"\nrtu = { port = \"/tmp/hazsim-none\", baud = 1200 }\ntimeout = \"200ms\"\n",
    );
    for unit in 1..=6 {
        text.push_str(&format!(
            "[[device]]\nid = \"GD-{unit}\"\nbus = \"slow\"\nunit = {unit}\nprofile = \"gas-detector-4ch\"\npoll = \"1s\"\n"
        ));
    }
    let site = w.write("site.toml", &text);
    let out = hazgate(&["check", "-c", site.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(stdout.contains("warning: bus slow needs"), "{stdout}");
}

#[test]
fn broken_config_is_refused_with_file_line_and_field() {
    let w = Workdir::new();
    let site = w.write(
        "site.toml",
        "[site]\nid = \"T-1\"\ngateway = \"g\"\n[[bus]]\nid = \"b\"\ntcp = { host = \"127.0.0.1\", port = 1502 }\n[[device]]\nid = \"D\"\nbus = \"nope\"\nunit = 1\nprofile = \"gas-detector-4ch\"\npoll = \"1s\"\n",
    );
    let out = hazgate(&["check", "-c", site.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{}:9: device \"D\".bus: no bus \"nope\"",
            site.display()
        )),
        "{stderr}"
    );
}

/// The figures an example states in its comments are the ones `hazgate check` prints: each
/// `# check:` line lists fragments (separated by "; ") that must appear in the output, so
/// a comment cannot drift from the config it describes.
#[test]
fn examples_say_what_check_prints() {
    let root = hazgate_e2e::workspace();
    let mut checked = 0;
    for name in ["tank-farm.toml", "tailings-dam.toml", "mine.toml"] {
        let path = root.join("examples").join(name);
        let text = std::fs::read_to_string(&path).unwrap();
        let out = hazgate_e2e::hazgate(&["check", "-c", path.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let printed = String::from_utf8_lossy(&out.stdout);
        for line in text.lines().filter_map(|l| l.strip_prefix("# check: ")) {
            for fragment in line.split("; ") {
                assert!(
                    printed.contains(fragment),
                    "{name} says \"{fragment}\", but hazgate check prints:\n{printed}"
                );
                checked += 1;
            }
        }
    }
    assert!(
        checked >= 6,
        "the examples state figures to check ({checked})"
    );
}
