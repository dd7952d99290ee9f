//! The bounded server against a flood of connections over loopback: past the cap nothing
//! more is served while the flood holds, idle connections are closed, and once the flood
//! is gone a fresh request is answered at once.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use axum::routing::get;
use axum::Router;
use hazgate_common::{serve, HttpLimits};

/// A server on a free loopback port, in its own runtime thread.
fn server(limits: HttpLimits) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            serve(
                listener,
                Router::new().route("/", get(|| async { "ok" })),
                limits,
            )
            .await;
        });
    });
    port
}

/// One GET; the answer's body, or an error (a time-out included).
fn fetch(port: u16, limit: Duration) -> std::io::Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(limit))?;
    s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")?;
    let mut answer = String::new();
    s.read_to_string(&mut answer)?;
    Ok(answer)
}

#[test]
fn a_flood_beyond_the_cap_is_held_off_and_the_server_answers_after_it() {
    let port = server(HttpLimits {
        max_connections: 8,
        idle_timeout: Duration::from_secs(30),
        header_timeout: Duration::from_secs(30),
    });
    assert!(fetch(port, Duration::from_secs(5)).unwrap().ends_with("ok"));
    // Many more connections than the cap, none of them saying anything (fewer than the
    // listen backlog of 128, past which the kernel drops SYNs and connect() backs off).
    let flood: Vec<TcpStream> = (0..100)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    // The cap holds: nothing beyond it is served while the flood stays.
    assert!(
        fetch(port, Duration::from_millis(700)).is_err(),
        "served beyond the cap"
    );
    drop(flood);
    let started = Instant::now();
    let answer = fetch(port, Duration::from_secs(10)).expect("answered after the flood");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("ok"), "{answer}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn idle_connections_are_closed_and_their_slots_freed() {
    let port = server(HttpLimits {
        max_connections: 4,
        idle_timeout: Duration::from_millis(500),
        header_timeout: Duration::from_secs(30),
    });
    // The whole cap taken by clients that never send a byte, and never close.
    let mut idle: Vec<TcpStream> = (0..4)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    let started = Instant::now();
    // Still answered: the server closes the idle ones.
    let answer = fetch(port, Duration::from_secs(5)).expect("answered despite idle clients");
    assert!(answer.ends_with("ok"), "{answer}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    for s in &mut idle {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 16];
        // Closed by the server: end of stream (or a reset), not a time-out.
        match s.read(&mut buf) {
            Ok(n) => assert_eq!(n, 0),
            Err(e) => assert_ne!(e.kind(), std::io::ErrorKind::WouldBlock, "{e}"),
        }
    }
}

#[test]
fn a_slow_request_head_is_cut_off() {
    let port = server(HttpLimits {
        max_connections: 4,
        idle_timeout: Duration::from_secs(30),
        header_timeout: Duration::from_millis(500),
    });
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let started = Instant::now();
    // One byte every 100 ms keeps it busy but never finishes the head.
    let mut closed = false;
    for b in b"GET / HTTP/1.1\r\nhost: slowly-slowly-slowly-slowly-slowly\r\n".iter() {
        if s.write_all(&[*b]).is_err() {
            closed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        if started.elapsed() > Duration::from_secs(3) {
            break;
        }
    }
    if !closed {
        let mut answer = Vec::new();
        let _ = s.read_to_end(&mut answer);
        // hyper answers 408 or just closes; either way it is not served.
        let text = String::from_utf8_lossy(&answer);
        assert!(!text.contains("ok") || text.is_empty(), "{text}");
    }
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
}
