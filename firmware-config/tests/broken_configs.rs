//! A table of broken site files: each must be refused with an error that names the file,
//! the line an operator has to fix, and says what is wrong.
//!
//! Every case is a whole site file; line 1 is the line right after `r#"`.

use std::path::PathBuf;

use firmware_config::load_site;

struct Case {
    name: &'static str,
    toml: &'static str,
    /// The rendered error must contain this...
    expect: &'static str,
    /// ...on a line reported as `file:line:`.
    line: usize,
}

const CASES: &[Case] = &[
    Case {
        name: "health interval too long",
        toml: r#"[site]
id = "HB-420100-0001"
gateway = "gw-01"

[uplink]
broker = "mqtt://127.0.0.1:1883"
health_interval = "1h"
"#,
        expect: "use 10s ..= 10min",
        line: 7,
    },
    Case {
        name: "report mode misspelt",
        toml: r#"[site]
id = "HB-420100-0001"
gateway = "gw-01"

[[bus]]
id = "rs485-1"
rtu = { port = "/tmp/hazsim/t-1", baud = 9600 }

[[device]]
id = "GD-101"
bus = "rs485-1"
unit = 1
profile = "gas-detector-4ch"
poll = "1s"
[device.points.CH1]
report = "every_pol"
"#,
        expect: "\"every_pol\" is not a report mode",
        line: 16,
    },
    Case {
        name: "deadband in % of a point without a range",
        toml: r#"[site]
id = "HB-420100-0001"
gateway = "gw-01"

[[bus]]
id = "rs485-1"
rtu = { port = "/tmp/hazsim/t-1", baud = 9600 }

[[device]]
id = "GD-101"
bus = "rs485-1"
unit = 1
profile = "gas-detector-4ch"
poll = "1s"
[device.points.CH1_STATUS]
report = { deadband = "1%" }
"#,
        expect: "a deadband in % needs the point's `range`",
        line: 16,
    },
    Case {
        name: "integrity report too rare",
        toml: r#"[site]
id = "HB-420100-0001"
gateway = "gw-01"

[[bus]]
id = "rs485-1"
rtu = { port = "/tmp/hazsim/t-1", baud = 9600 }

[[device]]
id = "GD-101"
bus = "rs485-1"
unit = 1
profile = "gas-detector-4ch"
poll = "1s"
report = { every = "2h" }
"#,
        expect: "outside 1s..=1h",
        line: 15,
    },
    Case {
        name: "deadband not a percentage",
        toml: r#"[site]
id = "HB-420100-0001"
gateway = "gw-01"

[[bus]]
id = "rs485-1"
rtu = { port = "/tmp/hazsim/t-1", baud = 9600 }

[[device]]
id = "GD-101"
bus = "rs485-1"
unit = 1
profile = "gas-detector-4ch"
poll = "1s"
[device.points.CH1]
report = { deadband = "lots" }
"#,
        expect: "is not a percentage",
        line: 16,
    },
    Case {
        name: "typo in a field name",
        toml: r#"[site]
id = "HB-420100-0001"
gateway = "gw-01"

[[bus]]
id = "rs485-1"
rtu = { port = "/tmp/hazsim/t-1", baud = 9600 }

[[device]]
id = "GD-101"
bus = "rs485-1"
unit = 1
profile = "gas-detector-4ch"
pol = "1s"
"#,
        expect: "unknown field `pol`, expected one of",
        line: 14,
    },
    Case {
        name: "missing field",
        toml: r#"[site]
id = "HB-420100-0001"
gateway = "gw-01"

[[bus]]
id = "rs485-1"
rtu = { port = "/tmp/hazsim/t-1", baud = 9600 }

[[device]]
id = "GD-101"
bus = "rs485-1"
profile = "gas-detector-4ch"
poll = "1s"
"#,
        expect: "missing field `unit`",
        line: 9,
    },
    Case {
        name: "unit 0",
        toml: r#"[site]
id = "HB-420100-0001"
gateway = "gw-01"

[[bus]]
id = "rs485-1"
rtu = { port = "/tmp/hazsim/t-1", baud = 9600 }

[[device]]
id = "GD-101"
bus = "rs485-1"
unit = 0
profile = "gas-detector-4ch"
poll = "1s"
"#,
        expect: "device \"GD-101\".unit: 0 is not a Modbus unit id; use 1..=247",
        line: 12,
    },
    Case {
        name: "unit 248",
        toml: r#"[site]
id = "HB-420100-0001"
gateway = "gw-01"

[[bus]]
id = "rs485-1"
rtu = { port = "/tmp/hazsim/t-1", baud = 9600 }

[[device]]
id = "GD-101"
bus = "rs485-1"
unit = 248
profile = "gas-detector-4ch"
poll = "1s"
"#,
        expect: "248 is not a Modbus unit id; use 1..=247",
        line: 12,
    },
    Case {
        name: "unknown bus",
        toml: r#"[site]
id = "HB-420100-0001"
gateway = "gw-01"

[[bus]]
id = "rs485-1"
rtu = { port = "/tmp/hazsim/t-1", baud = 9600 }

[[device]]
id = "GD-101"
bus = "rs485-2"
unit = 1
profile = "gas-detector-4ch"
poll = "1s"
"#,
        expect: "device \"GD-101\".bus: no bus \"rs485-2\"; defined buses: [\"rs485-1\"]",
        line: 11,
    },
    Case {
        name: "unknown profile",
        toml: r#"[site]
id = "HB-420100-0001"
gateway = "gw-01"

[[bus]]
id = "rs485-1"
rtu = { port = "/tmp/hazsim/t-1", baud = 9600 }

[[device]]
id = "GD-101"
bus = "rs485-1"
unit = 1
profile = "gas-detector-9ch"
poll = "1s"
"#,
        expect: "no profile \"gas-detector-9ch\" among the built-in ones",
        line: 13,
    },
    Case {
        name: "unknown hazard source",
        toml: r#"[site]
id = "HB-420100-0001"
gateway = "gw-01"

[[hazard_source]]
id = "HS-01"
name = "LPG spheres"
grade = 2

[[bus]]
id = "rs485-1"
rtu = { port = "/tmp/hazsim/t-1", baud = 9600 }

[[device]]
id = "GD-101"
bus = "rs485-1"
unit = 1
profile = "gas-detector-4ch"
hazard_source = "HS-1"
poll = "1s"
"#,
        expect: "no hazard source \"HS-1\"; defined: [\"HS-01\"]",
        line: 19,
    },
    Case {
        name: "hazard grade out of 1..=4",
        toml: r#"[site]
id = "HB-420100-0001"
gateway = "gw-01"

[[hazard_source]]
id = "HS-01"
name = "LPG spheres"
grade = 5
"#,
        expect: "5 is not a major-hazard grade; use 1 (most severe) ..= 4",
        line: 8,
    },
    Case {
        name: "duplicate device id",
        toml: r#"[site]
id = "HB-420100-0001"
gateway = "gw-01"

[[bus]]
id = "rs485-1"
rtu = { port = "/tmp/hazsim/t-1", baud = 9600 }

[[device]]
id = "GD-101"
bus = "rs485-1"
unit = 1
profile = "gas-detector-4ch"
poll = "1s"

[[device]]
id = "GD-101"
bus = "rs485-1"
unit = 2
profile = "gas-detector-4ch"
poll = "1s"
"#,
        expect: "device \"GD-101\" is defined twice",
        line: 17,
    },
    Case {
        name: "duplicate unit on one bus",
        toml: r#"[site]
id = "HB-420100-0001"
gateway = "gw-01"

[[bus]]
id = "rs485-1"
rtu = { port = "/tmp/hazsim/t-1", baud = 9600 }

[[device]]
id = "GD-101"
bus = "rs485-1"
unit = 1
profile = "gas-detector-4ch"
poll = "1s"

[[device]]
id = "GD-102"
bus = "rs485-1"
unit = 1
profile = "gas-detector-4ch"
poll = "1s"
"#,
        expect: "unit 1 on bus \"rs485-1\" is already device \"GD-101\"",
        line: 19,
    },
    Case {
        name: "device timeout not below its poll",
        toml: r#"[site]
id = "HB-420100-0001"
gateway = "gw-01"

[[bus]]
id = "tcp-1"
tcp = { host = "127.0.0.1", port = 15020 }

[[device]]
id = "PT-101"
bus = "tcp-1"
unit = 1
profile = "pressure-transmitter-f32"
poll = "1s"
timeout = "1s"
"#,
        expect: "the timeout (1s) must be shorter than the poll interval (1s)",
        line: 15,
    },
    Case {
        name: "bus timeout inherited by a faster poll",
        toml: r#"[site]
id = "HB-420100-0001"
gateway = "gw-01"

[[bus]]
id = "tcp-1"
tcp = { host = "127.0.0.1", port = 15020 }
timeout = "2s"

[[device]]
id = "PT-101"
bus = "tcp-1"
unit = 1
profile = "pressure-transmitter-f32"
poll = "1s"
"#,
        expect: "the timeout (2s, from bus \"tcp-1\") must be shorter than the poll interval (1s)",
        line: 15,
    },
    Case {
        name: "poll without a unit",
        toml: r#"[site]
id = "HB-420100-0001"
gateway = "gw-01"

[[bus]]
id = "rs485-1"
rtu = { port = "/tmp/hazsim/t-1", baud = 9600 }

[[device]]
id = "GD-101"
bus = "rs485-1"
unit = 1
profile = "gas-detector-4ch"
poll = "1"
"#,
        expect: "\"1\" has no unit; write e.g. \"500ms\", \"1s\"",
        line: 14,
    },
    Case {
        name: "poll longer than a day",
        toml: r#"[site]
id = "HB-420300-0007"
gateway = "gw-01"

[[bus]]
id = "dtu-1"
rtu_over_tcp = { host = "127.0.0.1", port = 15031 }

[[device]]
id = "PZ-1"
bus = "dtu-1"
unit = 1
profile = "piezometer"
poll = "2d"
"#,
        expect: "48h is outside 50ms ..= 24h",
        line: 14,
    },
    Case {
        name: "non-standard baud rate",
        toml: r#"[site]
id = "HB-420100-0001"
gateway = "gw-01"

[[bus]]
id = "rs485-1"
rtu = { port = "/tmp/hazsim/t-1", baud = 9700 }
"#,
        expect: "9700 is not a standard baud rate; use one of [1200, 2400",
        line: 7,
    },
    Case {
        name: "parity mark",
        toml: r#"[site]
id = "HB-420100-0001"
gateway = "gw-01"

[[bus]]
id = "rs485-1"
rtu = { port = "/tmp/hazsim/t-1", baud = 9600, parity = "mark" }
"#,
        expect: "unknown variant `mark`, expected one of `none`, `even`, `odd`",
        line: 7,
    },
    Case {
        name: "two buses on one serial port",
        toml: r#"[site]
id = "HB-420100-0001"
gateway = "gw-01"

[[bus]]
id = "rs485-1"
rtu = { port = "/tmp/hazsim/t-1", baud = 9600 }

[[bus]]
id = "rs485-2"
rtu = { port = "/tmp/hazsim/t-1", baud = 19200 }
"#,
        expect: "/tmp/hazsim/t-1 is already the port of bus \"rs485-1\"; one RS-485 line is one bus",
        line: 10,
    },
    Case {
        name: "a bus with both tcp and rtu",
        toml: r#"[site]
id = "HB-420100-0001"
gateway = "gw-01"

[[bus]]
id = "mixed"
tcp = { host = "127.0.0.1", port = 15020 }
rtu = { port = "/tmp/hazsim/t-1", baud = 9600 }
"#,
        expect: "bus \"mixed\": give exactly one of `tcp`, `rtu` or `rtu_over_tcp`",
        line: 6,
    },
    Case {
        name: "TCP port 0",
        toml: r#"[site]
id = "HB-420300-0007"
gateway = "gw-01"

[[bus]]
id = "dtu-1"
rtu_over_tcp = { host = "127.0.0.1", port = 0 }
"#,
        expect: "bus \"dtu-1\".rtu_over_tcp.port: 0 is not a TCP port; use 1..=65535",
        line: 7,
    },
    Case {
        name: "override of a point the profile does not have",
        toml: r#"[site]
id = "HB-420100-0001"
gateway = "gw-01"

[[bus]]
id = "rs485-1"
rtu = { port = "/tmp/hazsim/t-1", baud = 9600 }

[[device]]
id = "GD-101"
bus = "rs485-1"
unit = 1
profile = "gas-detector-4ch"
poll = "1s"

[device.points.CH5]
unit = "ppm"
"#,
        expect: "profile \"gas-detector-4ch\" has no point \"CH5\"; its points: [\"CH1\"",
        line: 16,
    },
    Case {
        name: "override moving a point onto another",
        toml: r#"[site]
id = "HB-420100-0001"
gateway = "gw-01"

[[bus]]
id = "rs485-1"
rtu = { port = "/tmp/hazsim/t-1", baud = 9600 }

[[device]]
id = "GD-101"
bus = "rs485-1"
unit = 1
profile = "gas-detector-4ch"
poll = "1s"

[device.points.CH1]
address = 1
"#,
        expect: "device \"GD-101\".points \"CH1\".address: holding u16 at 1 overlaps \"CH1_STATUS\" (holding 1..1); two points cannot claim the same registers",
        line: 17,
    },
    Case {
        name: "override widening a point over its neighbour",
        toml: r#"[site]
id = "HB-420100-0001"
gateway = "gw-01"

[[bus]]
id = "rs485-1"
rtu = { port = "/tmp/hazsim/t-1", baud = 9600 }

[[device]]
id = "GD-101"
bus = "rs485-1"
unit = 1
profile = "gas-detector-4ch"
poll = "1s"

[device.points.CH2]
type = "f64"
"#,
        expect: "device \"GD-101\".points \"CH2\".address: holding f64 at 16 overlaps \"CH2_STATUS\" (holding 17..17)",
        line: 16,
    },
    Case {
        name: "address beyond 65535",
        toml: r#"[site]
id = "HB-420100-0001"
gateway = "gw-01"

[[bus]]
id = "rs485-1"
rtu = { port = "/tmp/hazsim/t-1", baud = 9600 }

[[device]]
id = "GD-101"
bus = "rs485-1"
unit = 1
profile = "gas-detector-4ch"
poll = "1s"

[device.points.CH4]
address = 65536
"#,
        expect: "65536 is outside the Modbus address space 0..=65535",
        line: 17,
    },
    Case {
        name: "override with an unknown word order",
        toml: r#"[site]
id = "HB-420100-0001"
gateway = "gw-01"

[[bus]]
id = "tcp-1"
tcp = { host = "127.0.0.1", port = 15020 }

[[device]]
id = "PT-101"
bus = "tcp-1"
unit = 1
profile = "pressure-transmitter-f32"
poll = "1s"

[device.points.PRESSURE]
order = "bcda"
"#,
        expect: "\"bcda\" is not a byte order; use \"abcd\" (big-endian), \"cdab\" (word swap)",
        line: 17,
    },
    Case {
        name: "override pointing status_from at nothing",
        toml: r#"[site]
id = "HB-420100-0001"
gateway = "gw-01"

[[bus]]
id = "tcp-1"
tcp = { host = "127.0.0.1", port = 15020 }

[[device]]
id = "PT-101"
bus = "tcp-1"
unit = 1
profile = "pressure-transmitter-f32"
poll = "1s"

[device.points.TEMPERATURE]
status_from = "TEMP_STATUS"
"#,
        expect: "no point \"TEMP_STATUS\" in this device",
        line: 17,
    },
    Case {
        name: "empty label of a limit (ingest would refuse the alarm)",
        toml: r#"[site]
id = "HB-420100-0001"
gateway = "gw-01"

[[bus]]
id = "tcp-1"
tcp = { host = "127.0.0.1", port = 15020 }

[[device]]
id = "GD-101"
bus = "tcp-1"
unit = 1
profile = "gas-detector-4ch"
poll = "1s"

[device.points.CH1.alarm]
limits = [
  { above = 25.0, level = "yellow", label = "" },
]
"#,
        expect: "device \"GD-101\".points \"CH1\".alarm.limits[0].label: label \"\" must be 1 to 128 characters",
        line: 18,
    },
    Case {
        name: "over-long label of a limit",
        toml: r#"[site]
id = "HB-420100-0001"
gateway = "gw-01"

[[bus]]
id = "tcp-1"
tcp = { host = "127.0.0.1", port = 15020 }

[[device]]
id = "GD-101"
bus = "tcp-1"
unit = 1
profile = "gas-detector-4ch"
poll = "1s"

[device.points.CH1.alarm]
limits = [
  { above = 25.0, level = "yellow" },
  { above = 50.0, level = "red", label = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" },
]
"#,
        expect: "must be 1 to 128 characters, none of them a control character",
        line: 19,
    },
    Case {
        name: "control character in a rate label",
        toml: r#"[site]
id = "HB-420100-0001"
gateway = "gw-01"

[[bus]]
id = "tcp-1"
tcp = { host = "127.0.0.1", port = 15020 }

[[device]]
id = "GD-101"
bus = "tcp-1"
unit = 1
profile = "gas-detector-4ch"
poll = "1s"

[device.points.CH1.alarm]
rate = { change = 5.0, within = "1min", level = "orange", label = "rising\u0007fast" }
"#,
        expect: "rate.label: label \"rising\\u{7}fast\"",
        line: 17,
    },
    Case {
        name: "empty unit (ingest would refuse every reading)",
        toml: r#"[site]
id = "HB-420100-0001"
gateway = "gw-01"

[[bus]]
id = "tcp-1"
tcp = { host = "127.0.0.1", port = 15020 }

[[device]]
id = "GD-101"
bus = "tcp-1"
unit = 1
profile = "gas-detector-4ch"
poll = "1s"

[device.points.CH3]
unit = ""
"#,
        expect: ".unit: unit \"\" must be 1 to 128 characters",
        line: 17,
    },
    Case {
        name: "over-long unit",
        toml: r#"[site]
id = "HB-420100-0001"
gateway = "gw-01"

[[bus]]
id = "tcp-1"
tcp = { host = "127.0.0.1", port = 15020 }

[[device]]
id = "GD-101"
bus = "tcp-1"
unit = 1
profile = "gas-detector-4ch"
poll = "1s"

[device.points.CH3]
unit = "uuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuu"
"#,
        expect: "must be 1 to 128 characters",
        line: 17,
    },
    Case {
        name: "broker URL without a scheme",
        toml: r#"[site]
id = "HB-420100-0001"
gateway = "gw-01"

[uplink]
broker = "127.0.0.1:1883"
"#,
        expect: "uplink.broker: \"127.0.0.1:1883\" is not a broker address; write mqtt://host:1883 or mqtts://host:8883",
        line: 6,
    },
    Case {
        name: "site id with a slash",
        toml: r#"[site]
id = "HB/420100-0001"
gateway = "gw-01"
"#,
        expect: "site.id: \"HB/420100-0001\" is not a valid id; use 1 to 64 letters, digits",
        line: 2,
    },
    Case {
        name: "inline password",
        toml: r#"[site]
id = "HB-420100-0001"
gateway = "gw-01"

[uplink]
broker = "mqtts://mqtt.example.org:8883"
username = "gw-01"
password = "s3cret-do-not-echo"
"#,
        expect: "unknown field `password`, expected one of `broker`, `prefix`, `client_id`, `username`, `password_file`, `password_env`, `ca_file`, `client_cert`, `client_key`, `keep_alive`, `compress`, `health_interval`; a password is never written into the config: use `password_file` or `password_env`",
        line: 8,
    },
    Case {
        name: "password from both a file and the environment",
        toml: r#"[site]
id = "HB-420100-0001"
gateway = "gw-01"

[uplink]
broker = "mqtts://mqtt.example.org:8883"
password_file = "/etc/hazgate/mqtt.pass"
password_env = "HAZGATE_MQTT_PASSWORD"
"#,
        expect: "uplink.password_env: give `password_file` or `password_env`, not both",
        line: 8,
    },
    Case {
        name: "keep-alive under a second (MQTT counts whole seconds)",
        toml: r#"[site]
id = "HB-420100-0001"
gateway = "gw-01"

[uplink]
broker = "mqtt://127.0.0.1:1883"
keep_alive = "500ms"
"#,
        expect: "uplink.keep_alive: use 1s ..= 65535s",
        line: 7,
    },
    Case {
        name: "a password file that cannot be read",
        toml: r#"[site]
id = "HB-420100-0001"
gateway = "gw-01"

[uplink]
broker = "mqtt://127.0.0.1:1883"
username = "gw-01"
password_file = "/nonexistent/hazgate/mqtt.pass"
"#,
        expect: "uplink.password_file: cannot read /nonexistent/hazgate/mqtt.pass",
        line: 8,
    },
    Case {
        name: "a CA file that cannot be read",
        toml: r#"[site]
id = "HB-420100-0001"
gateway = "gw-01"

[uplink]
broker = "mqtts://mqtt.example.org:8883"
ca_file = "/nonexistent/hazgate/ca.pem"
"#,
        expect: "uplink.ca_file: cannot read /nonexistent/hazgate/ca.pem",
        line: 7,
    },
    Case {
        name: "a release threshold on the dangerous side of the cut",
        toml: r#"[site]
id = "HB-420100-0001"
gateway = "gw-01"

[[bus]]
id = "tcp-1"
tcp = { host = "127.0.0.1", port = 15020 }

[[device]]
id = "RO-01"
bus = "tcp-1"
unit = 3
profile = "relay-output-module"
poll = "1s"

[[device]]
id = "CH4-T1"
bus = "tcp-1"
unit = 1
profile = "mine-methane-sensor"
poll = "1s"

[device.points.CH4.alarm]
limits = [{ above = 1.5, level = "red" }]
linkage = [{ level = "red", device = "RO-01", point = "DO5", release_below = 2.0 }]
"#,
        expect: "the release threshold must lie on the safe side",
        line: 23,
    },
    Case {
        name: "a reset input without latching",
        toml: r#"[site]
id = "HB-420100-0001"
gateway = "gw-01"

[[bus]]
id = "tcp-1"
tcp = { host = "127.0.0.1", port = 15020 }

[[device]]
id = "RO-01"
bus = "tcp-1"
unit = 3
profile = "relay-output-module"
poll = "1s"

[[device]]
id = "CH4-T1"
bus = "tcp-1"
unit = 1
profile = "mine-methane-sensor"
poll = "1s"

[device.points.CH4.alarm]
limits = [{ above = 1.5, level = "red" }]
linkage = [{ level = "red", device = "RO-01", point = "DO5", reset = { device = "RO-01", point = "DI8" } }]
"#,
        expect: "a reset input only means something with `latch = true`",
        line: 23,
    },
    Case {
        name: "feedback from a point that does not exist",
        toml: r#"[site]
id = "HB-420100-0001"
gateway = "gw-01"

[[bus]]
id = "tcp-1"
tcp = { host = "127.0.0.1", port = 15020 }

[[device]]
id = "RO-01"
bus = "tcp-1"
unit = 3
profile = "relay-output-module"
poll = "1s"

[[device]]
id = "CH4-T1"
bus = "tcp-1"
unit = 1
profile = "mine-methane-sensor"
poll = "1s"

[device.points.CH4.alarm]
limits = [{ above = 1.5, level = "red" }]
linkage = [{ level = "red", device = "RO-01", point = "DO5", feedback = { device = "RO-01", point = "DI9", within = "2s" } }]
"#,
        expect: "no point \"RO-01.DI9\" to read",
        line: 17,
    },
    Case {
        name: "two rules on one output that disagree on its values",
        toml: r#"[site]
id = "HB-420100-0001"
gateway = "gw-01"

[[bus]]
id = "tcp-1"
tcp = { host = "127.0.0.1", port = 15020 }

[[device]]
id = "RO-01"
bus = "tcp-1"
unit = 3
profile = "relay-output-module"
poll = "1s"

[[device]]
id = "CH4-T1"
bus = "tcp-1"
unit = 1
profile = "mine-methane-sensor"
poll = "1s"

[device.points.CH4.alarm]
limits = [{ above = 1.5, level = "red" }]
linkage = [
  { level = "red", device = "RO-01", point = "DO5" },
  { level = "red", device = "RO-01", point = "DO5", on = 0.0, off = 1.0 },
]
"#,
        expect: "is driven by another rule with other values (on 1, off 0)",
        line: 17,
    },
    Case {
        name: "an H2S head in ppm left with the combustible ladder in %LEL",
        toml: r#"[site]
id = "HB-420100-0001"
gateway = "gw-01"

[[bus]]
id = "tcp-1"
tcp = { host = "127.0.0.1", port = 15020 }

[[device]]
id = "GD-102"
bus = "tcp-1"
unit = 2
profile = "gas-detector-4ch"
poll = "1s"

[device.points.CH3]
unit = "ppm"
"#,
        expect: "the limits are in \"%LEL\" but the point reports \"ppm\"",
        line: 18,
    },
    Case {
        name: "a calibration switch that is not a point of the site",
        toml: r#"[site]
id = "HB-420100-0001"
gateway = "gw-01"

[[bus]]
id = "tcp-1"
tcp = { host = "127.0.0.1", port = 15020 }

[[device]]
id = "GD-102"
bus = "tcp-1"
unit = 2
profile = "gas-detector-4ch"
poll = "1s"

[device.points.CH1.alarm]
limits = [{ above = 25.0, level = "yellow" }]
calibration = { max = "30min", level = "blue", input = { device = "GD-102", point = "KEY" } }
"#,
        expect: "device \"GD-102\".points.CH1.alarm.calibration.input: no point \"GD-102.KEY\" to read",
        line: 10,
    },
    Case {
        name: "a stuck rule of one sample",
        toml: r#"[site]
id = "HB-420100-0001"
gateway = "gw-01"

[[bus]]
id = "tcp-1"
tcp = { host = "127.0.0.1", port = 15020 }

[[device]]
id = "GD-102"
bus = "tcp-1"
unit = 2
profile = "gas-detector-4ch"
poll = "1s"

[device.points.CH1.alarm]
limits = [{ above = 25.0, level = "yellow" }]
stuck = { samples = 1, level = "blue" }
"#,
        expect: "stuck.samples: use 2 to 100000 samples in a row",
        line: 18,
    },
    Case {
        name: "an impossible jump allowance of zero",
        toml: r#"[site]
id = "HB-420100-0001"
gateway = "gw-01"

[[bus]]
id = "tcp-1"
tcp = { host = "127.0.0.1", port = 15020 }

[[device]]
id = "GD-102"
bus = "tcp-1"
unit = 2
profile = "gas-detector-4ch"
poll = "1s"

[device.points.CH1.alarm]
limits = [{ above = 25.0, level = "yellow" }]
jump = { change = 0.0, per = "1s", level = "blue" }
"#,
        expect: "jump.change: the largest physical change must be a positive number",
        line: 18,
    },
    Case {
        name: "a derived point reading a point that does not exist",
        toml: r#"[site]
id = "HB-420300-0007"
gateway = "gw-01"

[[bus]]
id = "tcp-1"
tcp = { host = "127.0.0.1", port = 15030 }

[[device]]
id = "WL-01"
bus = "tcp-1"
unit = 1
profile = "tailings-pond-level"
poll = "10s"

[device.derived.FREEBOARD]
difference = [316.0, "WATER_LEVL"]
"#,
        expect: "device \"WL-01\".derived.FREEBOARD: no point \"WL-01.WATER_LEVL\" to read",
        line: 16,
    },
    Case {
        name: "derived points that read each other",
        toml: r#"[site]
id = "HB-420300-0007"
gateway = "gw-01"

[[bus]]
id = "tcp-1"
tcp = { host = "127.0.0.1", port = 15030 }

[[device]]
id = "WL-01"
bus = "tcp-1"
unit = 1
profile = "tailings-pond-level"
poll = "10s"

[device.derived.A]
difference = ["B", 1.0]

[device.derived.B]
difference = ["A", 1.0]
"#,
        expect: "it depends on itself through other derived points",
        line: 16,
    },
    Case {
        name: "a derived difference of unlike quantities",
        toml: r#"[site]
id = "HB-420300-0007"
gateway = "gw-01"

[[bus]]
id = "tcp-1"
tcp = { host = "127.0.0.1", port = 15030 }

[[device]]
id = "WL-01"
bus = "tcp-1"
unit = 1
profile = "tailings-pond-level"
poll = "10s"

[device.derived.ODD]
difference = ["WATER_LEVEL", "BATTERY"]
"#,
        expect: "its points are in different units",
        line: 16,
    },
    Case {
        name: "a derived rate per week",
        toml: r#"[site]
id = "HB-420300-0007"
gateway = "gw-01"

[[bus]]
id = "tcp-1"
tcp = { host = "127.0.0.1", port = 15030 }

[[device]]
id = "WL-01"
bus = "tcp-1"
unit = 1
profile = "tailings-pond-level"
poll = "10s"

[device.derived.RISE]
rate = { of = "WATER_LEVEL", over = "1h", per = "7d" }
"#,
        expect: "derived.RISE.rate.per: use \"1s\", \"1min\", \"1h\" or \"1d\"",
        line: 17,
    },
    Case {
        name: "a derived point with an alarm in another unit",
        toml: r#"[site]
id = "HB-420300-0007"
gateway = "gw-01"

[[bus]]
id = "tcp-1"
tcp = { host = "127.0.0.1", port = 15030 }

[[device]]
id = "WL-01"
bus = "tcp-1"
unit = 1
profile = "tailings-pond-level"
poll = "10s"

[device.derived.FREEBOARD]
difference = [316.0, "WATER_LEVEL"]
alarm = { unit = "mm", limits = [{ below = 1000.0, level = "red" }] }
"#,
        expect: "the limits are in \"mm\" but the point reports \"m\"",
        line: 18,
    },
    Case {
        name: "store too small",
        toml: r#"[site]
id = "HB-420100-0001"
gateway = "gw-01"

[store]
dir = "/tmp/hazgate-store"
max_size = "512KiB"
"#,
        expect: "store.max_size: under 1MiB cannot hold even a short outage",
        line: 7,
    },
    Case {
        name: "sync interval too long",
        toml: r#"[site]
id = "HB-420100-0001"
gateway = "gw-01"

[store]
sync_interval = "1min"
"#,
        expect: "store.sync_interval: use 10ms ..= 10s",
        line: 6,
    },
    Case {
        name: "TOML syntax error",
        toml: r#"[site]
id = "HB-420100-0001
gateway = "gw-01"
"#,
        expect: "invalid basic string",
        line: 2,
    },
];

fn scratch_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("broken_configs");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn every_broken_config_is_refused_with_file_line_and_reason() {
    assert!(CASES.len() >= 20);
    let dir = scratch_dir();
    let mut failures = Vec::new();
    for (i, case) in CASES.iter().enumerate() {
        let path = dir.join(format!("case-{i:02}.toml"));
        std::fs::write(&path, case.toml).unwrap();
        let rendered = match load_site(&path) {
            Ok(_) => {
                failures.push(format!("#{i} {}: loaded without an error", case.name));
                continue;
            }
            Err(errors) => format!("{errors}"),
        };
        let anchor = format!("{}:{}: ", path.display(), case.line);
        let found = rendered
            .lines()
            .any(|l| l.starts_with(&anchor) && l.contains(case.expect));
        if !found {
            failures.push(format!(
                "#{i} {}: expected a line starting {anchor:?} containing {:?}; got:\n{rendered}",
                case.name, case.expect
            ));
        }
        assert!(
            !rendered.contains("s3cret"),
            "#{i} {}: an error echoes a secret:\n{rendered}",
            case.name
        );
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n\n")
    );
}

/// An operator fixes everything in one pass: all independent problems come back at once.
#[test]
fn independent_problems_are_reported_together() {
    let text = r#"[site]
id = "HB-420100-0001"
gateway = "gw-01"

[[bus]]
id = "rs485-1"
rtu = { port = "/tmp/hazsim/t-1", baud = 9601 }

[[device]]
id = "GD-101"
bus = "rs485-1"
unit = 0
profile = "gas-detector-4ch"
hazard_source = "HS-9"
poll = "1s"

[device.points.CH2]
address = 3
"#;
    let path = scratch_dir().join("several.toml");
    std::fs::write(&path, text).unwrap();
    let rendered = format!("{}", load_site(&path).unwrap_err());
    for (line, what) in [
        (7, "9601 is not a standard baud rate"),
        (12, "0 is not a Modbus unit id"),
        (14, "no hazard source \"HS-9\""),
        (18, "holding u16 at 3 overlaps \"CH1_UNIT\""),
    ] {
        let anchor = format!("{}:{line}: ", path.display());
        assert!(
            rendered
                .lines()
                .any(|l| l.starts_with(&anchor) && l.contains(what)),
            "missing {what:?} at line {line}:\n{rendered}"
        );
    }
}

/// The same broken file, once valid: the table's cases fail for their own reason only.
#[test]
fn the_baseline_of_the_table_is_valid() {
    let text = r#"[site]
id = "HB-420100-0001"
gateway = "gw-01"

[uplink]
broker = "mqtts://mqtt.example.org:8883"
password_env = "HAZGATE_MQTT_PASSWORD"

[store]
dir = "/tmp/hazgate-store"
max_size = "1MiB"

[[hazard_source]]
id = "HS-01"
name = "LPG spheres"
grade = 2

[[bus]]
id = "rs485-1"
rtu = { port = "/tmp/hazsim/t-1", baud = 9600 }

[[bus]]
id = "tcp-1"
tcp = { host = "127.0.0.1", port = 15020 }

[[device]]
id = "GD-101"
bus = "rs485-1"
unit = 1
profile = "gas-detector-4ch"
hazard_source = "HS-01"
poll = "1s"

[device.points.CH3]
unit = "ppm"
range = [0.0, 100.0]

# An H2S head: its ladder restated in ppm (100 / 200 % of the MAC of 10 mg/m3).
[device.points.CH3.alarm]
limits = [
  { above = 7.2, level = "yellow", label = "一级报警" },
  { above = 14.4, level = "red", label = "二级报警" },
]

[[device]]
id = "PT-101"
bus = "tcp-1"
unit = 1
profile = "pressure-transmitter-f32"
poll = "1s"
timeout = "999ms"

[device.points.PRESSURE]
order = "abcd"
"#;
    let path = scratch_dir().join("valid.toml");
    std::fs::write(&path, text).unwrap();
    let site = load_site(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(site.devices.len(), 2);
    // Nobody set a timeout for GD-101: the default fits inside its 1 s poll.
    let gd = site.device("GD-101").unwrap();
    assert!(
        gd.timeout < gd.poll,
        "default timeout {:?} for a {:?} poll",
        gd.timeout,
        gd.poll
    );
}

mod never_panics {
    use firmware_config::error::SourceText;
    use firmware_config::site::parse_site;
    use proptest::prelude::*;

    const VALID: &str = r#"
[site]
id = "HB-1"
gateway = "gw-01"
[[hazard_source]]
id = "HS-01"
name = "LPG spheres"
grade = 2
[[bus]]
id = "rs485-1"
rtu = { port = "/tmp/x", baud = 9600, parity = "none" }
[[device]]
id = "GD-101"
bus = "rs485-1"
unit = 1
profile = "gas-detector-4ch"
hazard_source = "HS-01"
poll = "1s"
[device.points.CH3]
unit = "ppm"
range = [0.0, 100.0]
"#;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// Any text at all gives a config or errors, never a panic.
        #[test]
        fn arbitrary_text(text in ".{0,400}") {
            let _ = parse_site(&SourceText::new("fuzz.toml", text));
        }

        /// A valid config with bytes changed: still a config or errors with a line, never a panic.
        #[test]
        fn mutated_valid_config(edits in prop::collection::vec((0usize..VALID.len(), any::<char>()), 1..6)) {
            let mut chars: Vec<char> = VALID.chars().collect();
            for (at, c) in edits {
                let at = at % chars.len();
                chars[at] = c;
            }
            let text: String = chars.into_iter().collect();
            if let Err(errors) = parse_site(&SourceText::new("fuzz.toml", text)) {
                prop_assert!(!errors.0.is_empty());
                for e in &errors.0 {
                    prop_assert!(!e.message.is_empty());
                }
            }
        }
    }
}
