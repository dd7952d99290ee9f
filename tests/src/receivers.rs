//! Local stand-ins for notification endpoints: an HTTP receiver (webhook, DingTalk and
//! WeCom robots, an SMS provider) that records what it is sent and answers as told (or
//! never), and an SMTP sink that takes mail and keeps it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;

/// How a receiver answers.
#[derive(Debug, Clone)]
pub enum Answer {
    /// 200 with this JSON body.
    Ok(String),
    /// This status.
    Status(u16),
    /// Reads the request and never answers.
    Hang,
}

#[derive(Debug, Clone)]
pub struct Request {
    pub path: String,
    pub head: String,
    pub body: String,
    /// When it was read in full (ms UTC).
    pub at_ms: i64,
}

pub struct HttpReceiver {
    pub port: u16,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl HttpReceiver {
    pub fn start(answer: Answer) -> Result<HttpReceiver> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let kept = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (kept, answer) = (kept.clone(), answer.clone());
                std::thread::spawn(move || {
                    let _ = serve(stream, &kept, &answer);
                });
            }
        });
        Ok(HttpReceiver { port, requests })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn received(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

fn serve(mut stream: TcpStream, kept: &Mutex<Vec<Request>>, answer: &Answer) -> Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        if line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body)?;
    let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
    kept.lock().unwrap().push(Request {
        path,
        head,
        body: String::from_utf8_lossy(&body).into_owned(),
        at_ms: crate::now_ms(),
    });
    match answer {
        Answer::Ok(b) => write!(
            stream,
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{b}",
            b.len()
        )?,
        Answer::Status(s) => write!(
            stream,
            "HTTP/1.1 {s} Oops\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
        )?,
        Answer::Hang => std::thread::sleep(Duration::from_secs(120)),
    }
    Ok(())
}

/// One mail as the sink took it.
#[derive(Debug, Clone)]
pub struct Mail {
    pub to: Vec<String>,
    pub data: String,
}

pub struct SmtpSink {
    pub port: u16,
    mails: Arc<Mutex<Vec<Mail>>>,
}

impl SmtpSink {
    pub fn start() -> Result<SmtpSink> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let mails = Arc::new(Mutex::new(Vec::new()));
        let kept = mails.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let kept = kept.clone();
                std::thread::spawn(move || {
                    let _ = session(stream, &kept);
                });
            }
        });
        Ok(SmtpSink { port, mails })
    }

    pub fn mails(&self) -> Vec<Mail> {
        self.mails.lock().unwrap().clone()
    }
}

fn session(mut stream: TcpStream, kept: &Mutex<Vec<Mail>>) -> Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    write!(stream, "220 sink ESMTP\r\n")?;
    let mut to = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let upper = line.to_ascii_uppercase();
        if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            write!(stream, "250-sink\r\n250 8BITMIME\r\n")?;
        } else if upper.starts_with("RCPT TO:") {
            to.push(line[8..].trim().trim_matches(['<', '>']).to_string());
            write!(stream, "250 ok\r\n")?;
        } else if upper.starts_with("DATA") {
            write!(stream, "354 go on\r\n")?;
            let mut data = String::new();
            loop {
                let mut l = String::new();
                if reader.read_line(&mut l)? == 0 {
                    return Ok(());
                }
                if l == ".\r\n" {
                    break;
                }
                data.push_str(&l);
            }
            kept.lock().unwrap().push(Mail {
                to: std::mem::take(&mut to),
                data,
            });
            write!(stream, "250 queued\r\n")?;
        } else if upper.starts_with("QUIT") {
            write!(stream, "221 bye\r\n")?;
            return Ok(());
        } else {
            write!(stream, "250 ok\r\n")?;
        }
    }
}
