//! A real browser for tests: Debian's chromium, headless, driven over WebDriver through
//! chromedriver. Enough of the protocol to open a page and evaluate script in it.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::http;
use crate::mqtt::wait_port;

pub struct Browser {
    port: u16,
    session: String,
    driver: Child,
}

impl Browser {
    /// Starts chromedriver and a headless chromium session.
    pub fn start() -> Result<Browser> {
        let port = crate::free_port();
        let driver = Command::new(driver_binary())
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting chromedriver (install it: apt-get install chromium chromium-driver; scripts/test does)")?;
        let mut browser = Browser {
            port,
            session: String::new(),
            driver,
        };
        wait_port(port, Duration::from_secs(20))?;
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium_binary(),
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--disable-background-networking", "--disable-extensions", "--no-first-run",
                         "--disable-sync", "--disable-default-apps", "--window-size=1280,1024"]
            }
        }}});
        let answer = browser.command("POST", "/session", Some(capabilities))?;
        browser.session = answer["sessionId"]
            .as_str()
            .context("chromedriver gave no session id")?
            .to_string();
        Ok(browser)
    }

    pub fn open(&self, url: &str) -> Result<()> {
        self.command(
            "POST",
            &format!("/session/{}/url", self.session),
            Some(json!({ "url": url })),
        )?;
        Ok(())
    }

    /// Logs in to the view on 127.0.0.1:`port` through its login page and waits for the
    /// page proper.
    pub fn login(&self, port: u16, name: &str, password: &str) -> Result<()> {
        self.open(&format!("http://127.0.0.1:{port}/login"))?;
        self.wait_until(
            "return document.querySelector('#login') !== null;",
            &json!(true),
            Duration::from_secs(10),
        )?;
        let fill = format!(
            "document.querySelector('[name=name]').value = {}; document.querySelector('[name=password]').value = {}; document.querySelector('#login').requestSubmit(); return true;",
            json!(name),
            json!(password)
        );
        self.eval(&fill)?;
        self.wait_until(
            "return location.pathname === '/' && document.querySelector('#who') !== null && document.querySelector('#who').textContent !== '';",
            &json!(true),
            Duration::from_secs(10),
        )?;
        Ok(())
    }

    /// Saves what the page looks like as a PNG under `target/test-artifacts/` (kept out of
    /// git); returns the file.
    pub fn screenshot(&self, name: &str) -> Result<std::path::PathBuf> {
        use base64::Engine;
        let shot = self.command(
            "GET",
            &format!("/session/{}/screenshot", self.session),
            None,
        )?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot.as_str().context("no screenshot in the answer")?)
            .context("the screenshot is not base64")?;
        let dir = crate::workspace().join("target/test-artifacts");
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png)?;
        Ok(path)
    }

    /// Runs a script in the page (`return ...;`) and gives back its value.
    pub fn eval(&self, script: &str) -> Result<Value> {
        self.command(
            "POST",
            &format!("/session/{}/execute/sync", self.session),
            Some(json!({ "script": script, "args": [] })),
        )
    }

    /// Polls `script` until it returns `want`; returns how long that took.
    pub fn wait_until(&self, script: &str, want: &Value, limit: Duration) -> Result<Duration> {
        let start = Instant::now();
        loop {
            let got = self.eval(script)?;
            if &got == want {
                return Ok(start.elapsed());
            }
            if start.elapsed() > limit {
                bail!("after {limit:?} the page still says {got} for `{script}`, not {want}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn command(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value> {
        let text = body.map(|b| b.to_string());
        let (status, answer) = http::request(self.port, method, path, text.as_deref())?;
        let v: Value = serde_json::from_str(&answer)
            .with_context(|| format!("chromedriver answered {status}: {answer}"))?;
        if status != 200 {
            bail!("chromedriver {method} {path}: {status}: {}", v["value"]);
        }
        Ok(v["value"].clone())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.command("DELETE", &format!("/session/{}", self.session), None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn driver_binary() -> &'static str {
    if std::path::Path::new("/usr/bin/chromedriver").exists() {
        "/usr/bin/chromedriver"
    } else {
        "chromedriver"
    }
}

fn chromium_binary() -> &'static str {
    if std::path::Path::new("/usr/bin/chromium").exists() {
        "/usr/bin/chromium"
    } else {
        "chromium"
    }
}
