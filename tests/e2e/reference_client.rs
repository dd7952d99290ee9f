//! tokio-modbus, an independent Modbus implementation, reads the simulator over Modbus TCP
//! and RTU over TCP and agrees with what `hazgate poll` reports: neither our client nor our
//! simulator can hide a protocol error behind the other.

use std::net::SocketAddr;
use std::time::Duration;

use firmware_config::codec::{decode, RawValue};
use firmware_config::{load_site, Link};
use hazgate_e2e::{find, free_port, poll, Sim, Workdir};
use hazgate_wire::Value;
use serde_json::json;
use tokio_modbus::client::{rtu, tcp, Reader};
use tokio_modbus::Slave;

#[test]
fn tokio_modbus_and_hazgate_read_the_same_values() {
    let w = Workdir::new();
    let site_path = w.write(
        "site.toml",
        &format!(
            r#"
[site]
id = "T-REF"
gateway = "gw"
[[bus]]
id = "tcp-1"
tcp = {{ host = "127.0.0.1", port = {} }}
[[bus]]
id = "dtu-1"
rtu_over_tcp = {{ host = "127.0.0.1", port = {} }}
[[device]]
id = "PT-201"
bus = "tcp-1"
unit = 1
profile = "pressure-transmitter-f32"
poll = "1s"
timeout = "500ms"
[[device]]
id = "GD-101"
bus = "dtu-1"
unit = 7
profile = "gas-detector-4ch"
poll = "1s"
timeout = "500ms"
"#,
            free_port(),
            free_port()
        ),
    );
    let sim = Sim::start(&site_path, &[]).unwrap();
    sim.ctl(json!({"device": "PT-201", "point": "PRESSURE", "set": 1.6}))
        .unwrap();
    sim.ctl(json!({"device": "GD-101", "point": "CH1", "set": 42.7}))
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));

    let site = load_site(&site_path).unwrap();
    let pressure = site.devices[0]
        .points
        .iter()
        .find(|p| p.id == "PRESSURE")
        .unwrap()
        .clone();
    let endpoint = |bus: usize| -> SocketAddr {
        match &site.buses[bus].link {
            Link::Tcp { host, port } | Link::RtuOverTcp { host, port } => {
                format!("{host}:{port}").parse().unwrap()
            }
            Link::Rtu(_) => unreachable!(),
        }
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (pt_words, gd_words) = rt.block_on(async {
        let mut ctx = tcp::connect_slave(endpoint(0), Slave(1)).await.unwrap();
        let pt = ctx
            .read_holding_registers(pressure.address, pressure.width())
            .await
            .unwrap()
            .unwrap();
        let stream = tokio::net::TcpStream::connect(endpoint(1)).await.unwrap();
        let mut ctx = rtu::attach_slave(stream, Slave(7));
        let gd = ctx.read_holding_registers(0, 5).await.unwrap().unwrap();
        (pt, gd)
    });
    let raw = decode(pressure.ty, pressure.order, &pt_words).unwrap();
    let RawValue::Float(p) = raw else {
        panic!("f32 expected, got {raw:?}")
    };
    assert!((p - 1.6).abs() < 1e-6, "tokio-modbus read {p}");
    // CH1 raw 427 with 1 decimal place, status 0, unit code 4 (%LEL)
    assert_eq!(gd_words[0], 427, "{gd_words:?}");
    assert_eq!(gd_words[1], 0);
    assert_eq!(gd_words[3], 4);
    assert_eq!(gd_words[4], 1);

    let readings = poll(&site_path, None).unwrap();
    assert_eq!(
        find(&readings, "PT-201", "PRESSURE").value,
        Some(Value::Number(1.6))
    );
    assert_eq!(
        find(&readings, "GD-101", "CH1").value,
        Some(Value::Number(42.7))
    );
}
