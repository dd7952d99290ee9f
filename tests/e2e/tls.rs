//! The uplink over TLS to a mosquitto TLS listener, with a CA made by the test: the right
//! CA connects and delivers, a wrong one is refused with a message that says why.

use std::path::Path;
use std::time::Duration;

use hazgate_e2e::daemon::Gateway;
use hazgate_e2e::mqtt::Broker;
use hazgate_e2e::mqtt::Subscriber;
use hazgate_e2e::{free_port, Sim, Workdir};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};

/// A CA and a server certificate for localhost and 127.0.0.1; returns the CA's PEM.
fn make_pki(dir: &Path, name: &str) -> (String, String, String) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, format!("hazgate test CA {name}"));
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&server_key, &ca, &ca_key)
        .unwrap();
    let write = |file: &str, text: String| {
        let p = dir.join(format!("{name}-{file}"));
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    (
        write("ca.pem", ca.pem()),
        write("server.pem", server.pem()),
        write("server.key", server_key.serialize_pem()),
    )
}

fn site(w: &Workdir, tls_port: u16, ca_file: &str) -> std::path::PathBuf {
    w.write(
        "site.toml",
        &format!(
            r#"
[site]
id = "T-TLS"
gateway = "gw-tls"
[uplink]
broker = "mqtts://localhost:{tls_port}"
ca_file = "{ca_file}"
[store]
dir = "store"
sync_interval = "200ms"
[[bus]]
id = "tcp-1"
tcp = {{ host = "127.0.0.1", port = {} }}
[[device]]
id = "PT-201"
bus = "tcp-1"
unit = 1
profile = "pressure-transmitter-f32"
poll = "200ms"
timeout = "150ms"
"#,
            free_port()
        ),
    )
}

fn tls_broker(w: &Workdir) -> (Broker, u16, String) {
    let dir = w.path().join("mosquitto");
    std::fs::create_dir_all(&dir).unwrap();
    let (ca, cert, key) = make_pki(&dir, "good");
    let tls_port = free_port();
    let broker = Broker::start_with(
        &dir,
        &format!("listener {tls_port} 127.0.0.1\ncafile {ca}\ncertfile {cert}\nkeyfile {key}\n"),
    )
    .unwrap();
    hazgate_e2e::mqtt::wait_port(tls_port, Duration::from_secs(10)).unwrap();
    (broker, tls_port, ca)
}

#[test]
fn tls_with_the_sites_ca_delivers() {
    let w = Workdir::new();
    let (broker, tls_port, ca) = tls_broker(&w);
    let site = site(&w, tls_port, &ca);
    let _sim = Sim::start(&site, &[]).unwrap();
    let sub = Subscriber::start(broker.port, "hazard/#").unwrap();
    let mut gw = Gateway::start(&site, &w.path().join("gw.log")).unwrap();
    let got = sub.wait_for(Duration::from_secs(20), "telemetry over TLS", |m| {
        m.iter().any(|m| m.topic == "hazard/T-TLS/gw-tls/telemetry")
    });
    assert!(got.is_ok(), "{got:?}\n{}", gw.log_text());
    assert!(gw.stop(Duration::from_secs(10)));
}

#[test]
fn tls_with_a_wrong_ca_is_refused_clearly() {
    let w = Workdir::new();
    let (broker, tls_port, _) = tls_broker(&w);
    let (wrong_ca, _, _) = make_pki(w.path(), "other");
    let site = site(&w, tls_port, &wrong_ca);
    let _sim = Sim::start(&site, &[]).unwrap();
    let sub = Subscriber::start(broker.port, "hazard/#").unwrap();
    let mut gw = Gateway::start(&site, &w.path().join("gw.log")).unwrap();
    std::thread::sleep(Duration::from_secs(4));
    let log = gw.log_text();
    assert!(
        log.contains("TLS handshake with the broker failed"),
        "{log}"
    );
    assert!(
        log.contains("UnknownIssuer") || log.contains("unknown issuer"),
        "{log}"
    );
    assert!(
        sub.snapshot().iter().all(|m| !m.topic.contains("T-TLS")),
        "nothing may pass an untrusted broker"
    );
    // The readings wait in the store, and polling goes on.
    assert!(gw.stop(Duration::from_secs(10)));
}
