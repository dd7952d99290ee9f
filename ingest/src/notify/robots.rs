//! JSON over HTTP: the generic webhook, and the DingTalk and WeCom group robots (whose
//! answers say `errcode: 0` when the message was taken).

use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use firmware_config::site::Secret;
use hazgate_common::read_secret;

/// POSTs `body`; a 2xx answer is success, and with `errcode` the robot's own verdict too.
pub async fn post_json(
    http: &reqwest::Client,
    url: &str,
    body: &Value,
    robot: bool,
) -> Result<(), String> {
    let r = http
        .post(url)
        .json(body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = r.status();
    let text = r.text().await.unwrap_or_default();
    if !status.is_success() {
        return Err(format!(
            "HTTP {status}: {}",
            text.chars().take(200).collect::<String>()
        ));
    }
    if robot {
        let answer: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if answer["errcode"].as_i64() != Some(0) {
            return Err(format!(
                "the robot refused it: {}",
                text.chars().take(200).collect::<String>()
            ));
        }
    }
    Ok(())
}

fn text_message(text: &str) -> Value {
    json!({"msgtype": "text", "text": {"content": text}})
}

/// A DingTalk group robot; with a signing secret, the URL carries `timestamp` and `sign`
/// (HMAC-SHA256 of "timestamp\nsecret", base64, URL-encoded), as DingTalk requires.
pub async fn dingtalk(
    http: &reqwest::Client,
    url: &str,
    secret: Option<&Secret>,
    text: &str,
) -> Result<(), String> {
    let url = match secret {
        Some(s) => {
            let secret = read_secret(s, "DingTalk signing secret").map_err(|e| e.to_string())?;
            let ts = crate::now_ms();
            let mut mac =
                Hmac::<Sha256>::new_from_slice(secret.as_bytes()).map_err(|e| e.to_string())?;
            mac.update(format!("{ts}\n{secret}").as_bytes());
            let sign =
                base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
            let encoded: String = sign
                .bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' => (b as char).to_string(),
                    _ => format!("%{b:02X}"),
                })
                .collect();
            let sep = if url.contains('?') { '&' } else { '?' };
            format!("{url}{sep}timestamp={ts}&sign={encoded}")
        }
        None => url.to_string(),
    };
    post_json(http, &url, &text_message(text), true).await
}

/// A WeCom (企业微信) group robot.
pub async fn wecom(http: &reqwest::Client, url: &str, text: &str) -> Result<(), String> {
    post_json(http, url, &text_message(text), true).await
}
