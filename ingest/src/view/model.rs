//! What the page shows, per gateway, and the stream of changes to it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::broadcast;

use hazgate_wire::{
    ActiveAlarm, AlarmEvent, Envelope, Health, Level, Presence, SourceLevel, State, Status,
};

/// One gateway as the regulator sees it.
#[derive(Debug, Clone, Serialize)]
pub struct GatewayView {
    pub site: Arc<str>,
    pub gateway: Arc<str>,
    /// From the gateway's master data: the enterprise's name, its administrative-division
    /// code and its sector.
    pub name: Option<String>,
    pub division: Option<String>,
    pub industry: Option<hazgate_wire::Industry>,
    /// From the latest status received: `online`, or `offline` (clean stop or last will).
    pub presence: Option<Presence>,
    /// `false` while the gateway says its wall clock is wrong: its readings are then kept
    /// in the quarantine, not the store. `null` before any status.
    pub clock_ok: Option<bool>,
    pub version: Option<String>,
    /// When anything last arrived from it (ms UTC, this host's clock).
    pub last_seen: i64,
    pub health: Option<Health>,
    /// The site's level as this gateway reports it; `null` when calm.
    pub level: Option<Level>,
    pub hazard_sources: Vec<SourceLevel>,
    pub alarms: Vec<ActiveAlarm>,
    /// Gateway time of the state shown (ms UTC).
    pub state_ts: Option<i64>,
    /// Gateway time of the latest status (ms UTC): where an interruption begins.
    pub status_ts: Option<i64>,
    /// How often the gateway says it sends its health (ms), if it says.
    pub health_every_ms: Option<u64>,
    #[serde(skip)]
    announced: i64,
}

/// A change pushed to the page.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ViewEvent {
    Gateway(GatewayView),
    Alarm(AlarmEvent),
}

impl ViewEvent {
    /// The site it belongs to.
    pub fn site(&self) -> &str {
        match self {
            ViewEvent::Gateway(g) => &g.site,
            ViewEvent::Alarm(a) => &a.envelope.site,
        }
    }
}

type Key = (Arc<str>, Arc<str>);

#[derive(Debug)]
pub struct View {
    gateways: Mutex<BTreeMap<Key, GatewayView>>,
    /// The master data of each gateway, for drill-down (names, decimals, limits).
    masters: Mutex<BTreeMap<Key, Arc<hazgate_wire::MasterData>>>,
    events: broadcast::Sender<ViewEvent>,
}

/// A gateway merely seen again is announced at most this often.
const SEEN_ANNOUNCE_MS: i64 = 1000;

impl Default for View {
    fn default() -> Self {
        Self {
            gateways: Mutex::new(BTreeMap::new()),
            masters: Mutex::new(BTreeMap::new()),
            events: broadcast::channel(1024).0,
        }
    }
}

impl View {
    pub fn subscribe(&self) -> broadcast::Receiver<ViewEvent> {
        self.events.subscribe()
    }

    pub fn snapshot(&self) -> Vec<GatewayView> {
        self.lock().values().cloned().collect()
    }

    /// Any message from a gateway: it is alive.
    pub fn seen(&self, e: &Envelope) {
        let now = crate::now_ms();
        self.update(e, |g| {
            g.last_seen = now;
            now - g.announced >= SEEN_ANNOUNCE_MS
        });
    }

    /// The latest state received replaces the one shown. Not ordered by `seq` or `ts`: a
    /// gateway restarted with a fresh store starts its seqs again, and a wrong clock makes
    /// `ts` meaningless; the broker delivers one topic's messages in order, and the
    /// retained one it hands a new subscription is the latest.
    pub fn state(&self, s: State) {
        self.update(&s.envelope.clone(), |g| {
            g.state_ts = Some(s.ts);
            g.level = s.level;
            g.hazard_sources = s.hazard_sources;
            g.alarms = s.alarms;
            true
        });
    }

    /// Presence is the latest status received, for the same reason as [`View::state`]:
    /// a SIGKILLed gateway's last will carries a lower seq than its birth, and must still
    /// say offline.
    pub fn status(&self, s: Status) {
        self.update(&s.envelope.clone(), |g| {
            g.presence = Some(s.state);
            // A last will is written at connection time: its `ts` is older than what was
            // last heard, and must not move the start of an interruption back.
            g.status_ts = Some(g.status_ts.map_or(s.ts, |t| t.max(s.ts)));
            g.clock_ok = Some(s.clock_ok);
            g.version = Some(s.version);
            if s.health_every_ms.is_some() {
                g.health_every_ms = s.health_every_ms;
            }
            if s.health.is_some() || s.state == Presence::Offline {
                g.health = s.health;
            }
            true
        });
    }

    /// The gateway's master data replaces what was known of it.
    pub fn master(&self, m: hazgate_wire::MasterData) {
        let m = Arc::new(m);
        self.masters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                (m.envelope.site.clone(), m.envelope.gateway.clone()),
                m.clone(),
            );
        self.update(&m.envelope.clone(), |g| {
            g.name = m.name.clone();
            g.division = m.division.clone();
            g.industry = m.industry;
            true
        });
    }

    /// A gateway's master data, if it sent any.
    pub fn master_of(&self, site: &str, gateway: &str) -> Option<Arc<hazgate_wire::MasterData>> {
        self.masters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(Arc::from(site), Arc::from(gateway)))
            .cloned()
    }

    /// An alarm event this instance took (through the shared subscription).
    pub fn alarm(&self, a: AlarmEvent) {
        let _ = self.events.send(ViewEvent::Alarm(a));
    }

    /// Applies `change` to a gateway's view; announces it when `change` says so.
    fn update(&self, e: &Envelope, change: impl FnOnce(&mut GatewayView) -> bool) {
        let mut gateways = self.lock();
        let g = gateways
            .entry((e.site.clone(), e.gateway.clone()))
            .or_insert_with(|| GatewayView {
                site: e.site.clone(),
                gateway: e.gateway.clone(),
                name: None,
                division: None,
                industry: None,
                presence: None,
                clock_ok: None,
                version: None,
                last_seen: crate::now_ms(),
                health: None,
                level: None,
                hazard_sources: Vec::new(),
                alarms: Vec::new(),
                state_ts: None,
                status_ts: None,
                health_every_ms: None,
                announced: 0,
            });
        if change(g) {
            g.announced = crate::now_ms();
            let _ = self.events.send(ViewEvent::Gateway(g.clone()));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<Key, GatewayView>> {
        self.gateways.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(seq: u64, state: Presence, clock_ok: bool) -> Status {
        Status {
            envelope: Envelope {
                v: 1,
                site: "S".into(),
                gateway: "G".into(),
                seq,
            },
            state,
            ts: 1,
            version: "0.1.0".into(),
            config_hash: "h".into(),
            boot_ts: 1,
            clock_ok,
            health_every_ms: None,
            health: None,
        }
    }

    #[test]
    fn presence_is_the_latest_status_received_whatever_its_seq() {
        let v = View::default();
        v.status(status(4_294_967_297, Presence::Online, true));
        // The last will of a SIGKILLed gateway: reserved before the birth, a lower seq.
        v.status(status(4_294_967_296, Presence::Offline, true));
        assert_eq!(v.snapshot()[0].presence, Some(Presence::Offline));
        // Restarted with a fresh store: seqs start again.
        v.status(status(1, Presence::Online, false));
        let g = &v.snapshot()[0];
        assert_eq!(g.presence, Some(Presence::Online));
        assert_eq!(g.clock_ok, Some(false));
    }
}
