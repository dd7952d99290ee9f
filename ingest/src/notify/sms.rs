//! SMS through a provider's HTTP API, described by a template in the config: the body with
//! `{to}` and `{text}` filled in, JSON-escaped when the body is JSON.

use firmware_config::escalation::SmsTemplate;
use hazgate_common::read_secret;

pub fn body(template: &SmsTemplate, to: &str, text: &str) -> String {
    let json = template.content_type.contains("json");
    let fill = |s: &str| {
        if json {
            // serde_json quotes it; the template supplies the quotes itself.
            let q = serde_json::to_string(s).unwrap_or_default();
            q[1..q.len().saturating_sub(1).max(1)].to_string()
        } else {
            s.bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect()
        }
    };
    template
        .body
        .replace("{to}", &fill(to))
        .replace("{text}", &fill(text))
}

pub async fn send(
    http: &reqwest::Client,
    template: &SmsTemplate,
    to: &str,
    text: &str,
) -> Result<(), String> {
    let mut request = http
        .post(&template.url)
        .header("content-type", &template.content_type)
        .body(body(template, to, text));
    if let Some(t) = &template.token {
        let token = read_secret(t, "SMS token").map_err(|e| e.to_string())?;
        request = request.bearer_auth(token);
    }
    let r = request.send().await.map_err(|e| e.to_string())?;
    let status = r.status();
    if status.is_success() {
        Ok(())
    } else {
        let text = r.text().await.unwrap_or_default();
        Err(format!(
            "HTTP {status}: {}",
            text.chars().take(200).collect::<String>()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_is_filled_safely() {
        let t = SmsTemplate {
            url: "http://x".into(),
            body: r#"{"mobile":"{to}","content":"{text}"}"#.into(),
            content_type: "application/json".into(),
            token: None,
        };
        let b = body(&t, "13800000000", "【红色预警】\"quoted\"\nline");
        let v: serde_json::Value = serde_json::from_str(&b).unwrap();
        assert_eq!(v["content"], "【红色预警】\"quoted\"\nline");
        let t = SmsTemplate {
            body: "to={to}&msg={text}".into(),
            content_type: "application/x-www-form-urlencoded".into(),
            ..t
        };
        assert_eq!(body(&t, "+86 1", "a&b"), "to=%2B86%201&msg=a%26b");
    }
}
