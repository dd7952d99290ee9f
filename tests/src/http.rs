//! A plain HTTP/1.1 client over a TCP socket, enough for tests to ask VictoriaMetrics,
//! hazingest and chromedriver: one request per connection, chunked answers understood.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{bail, Context, Result};

/// API tokens by port: a request to a port with one carries it (a test central's view).
static TOKENS: Mutex<BTreeMap<u16, String>> = Mutex::new(BTreeMap::new());

/// From now on, requests to `port` carry `Authorization: Bearer {token}`.
pub fn authorize(port: u16, token: &str) {
    TOKENS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(port, token.to_string());
}

/// The `Authorization` header line a request to `port` carries, if any.
pub fn auth_line(port: u16) -> String {
    TOKENS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&port)
        .map(|t| format!("authorization: Bearer {t}\r\n"))
        .unwrap_or_default()
}

/// Sends one request to 127.0.0.1:`port`; returns the status and the body.
pub fn request(port: u16, method: &str, path: &str, body: Option<&str>) -> Result<(u16, String)> {
    let token = TOKENS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&port)
        .cloned();
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
    request_with(port, method, path, body, &headers).map(|(status, _, body)| (status, body))
}

/// [`request`] with the caller's own headers and no token; also returns the head.
pub fn request_with(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> Result<(u16, String, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))
        .with_context(|| format!("connecting to 127.0.0.1:{port}"))?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    let body = body.unwrap_or("");
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\nconnection: close\r\ncontent-type: application/json\r\n{extra}content-length: {}\r\n\r\n{body}",
        body.len()
    )?;
    // Read the head, then the body by its length or chunks: some servers (chromedriver)
    // keep the connection open whatever the request asked.
    let mut raw = Vec::new();
    let mut buf = [0u8; 65536];
    let split = loop {
        if let Some(p) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break p;
        }
        let n = s.read(&mut buf)?;
        if n == 0 {
            bail!("connection closed before an HTTP header");
        }
        raw.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("no status in the answer")?;
    let length: Option<usize> = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok());
    let chunked = head.contains("transfer-encoding: chunked");
    let mut payload = raw[split + 4..].to_vec();
    loop {
        let complete = match length {
            Some(len) => payload.len() >= len,
            None if chunked => payload.ends_with(b"0\r\n\r\n"),
            None => false,
        };
        if complete {
            break;
        }
        let n = s.read(&mut buf)?;
        if n == 0 {
            break;
        }
        payload.extend_from_slice(&buf[..n]);
    }
    if chunked {
        payload = dechunk(&payload)?;
    }
    Ok((
        status,
        String::from_utf8_lossy(&raw[..split]).to_string(),
        String::from_utf8_lossy(&payload).to_string(),
    ))
}

pub fn get(port: u16, path: &str) -> Result<String> {
    let (status, body) = request(port, "GET", path, None)?;
    if !(200..300).contains(&status) {
        bail!("GET {path}: HTTP {status}: {body}");
    }
    Ok(body)
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .context("bad chunk")?;
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&data[..line_end])
                .split(';')
                .next()
                .unwrap_or("")
                .trim(),
            16,
        )?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        out.extend_from_slice(&data[..size.min(data.len())]);
        data = &data[(size + 2).min(data.len())..];
    }
}

/// Percent-encodes a query value.
pub fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The value of one line of a Prometheus text page, e.g. `hazingest_readings_written_total`
/// or `hazingest_rejected_total{reason="too_large"}`.
pub fn metric(port: u16, name: &str) -> Result<f64> {
    let page = get(port, "/metrics")?;
    page.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .with_context(|| format!("no {name} in /metrics"))
}
