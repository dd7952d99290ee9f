//! Escalation (叫应 chain): an occurrence nobody has acknowledged tells tier after tier of
//! its site's policy as their deadlines pass, until it is acknowledged or cleared. Timers
//! are not held in memory but read from the database on every tick, so they survive a
//! restart; each tier is claimed by one `INSERT` on a primary key, so with several
//! instances (PostgreSQL) exactly one of them notifies it. Each notification is a row that
//! an instance leases while sending: a crash leaves it to be taken over when the lease
//! runs out, a failure is retried with backoff, and a hanging endpoint holds up nothing
//! else (sends run side by side, each with a deadline).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use sqlx::Row;
use tokio::sync::Semaphore;
use tracing::{info, warn};

use firmware_config::escalation::Channel;

use super::db::{Db, DbError};
use super::occurrences::{self, Occurrence};
use crate::notify::{text, Note, Notifier};

/// How often deadlines and pending notifications are looked at.
const TICK: Duration = Duration::from_millis(250);
/// How long an instance holds a notification it is sending.
const LEASE: Duration = Duration::from_secs(30);
/// Sends at once, at most.
const PARALLEL: usize = 32;
/// Tries before a notification is given up as failed.
const MAX_ATTEMPTS: i64 = 8;

fn retry_after(attempts: i64) -> i64 {
    // 5 s, 10 s, 20 s ... at most 5 min.
    (5_000i64 << (attempts - 1).clamp(0, 6)).min(300_000)
}

fn notification_id() -> String {
    let bytes: [u8; 12] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub struct Escalator {
    db: Db,
    notifier: Arc<Notifier>,
    /// Tiers known to be claimed (by us or another instance): not tried again.
    claimed: std::sync::Mutex<HashSet<(String, String, String, usize)>>,
    sending: Arc<Semaphore>,
}

impl Escalator {
    pub fn spawn(db: Db, notifier: Arc<Notifier>) {
        let me = Arc::new(Escalator {
            db,
            notifier,
            claimed: Default::default(),
            sending: Arc::new(Semaphore::new(PARALLEL)),
        });
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(TICK);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = me.escalate_due().await {
                    warn!("escalation: {e}");
                }
                if let Err(e) = me.dispatch().await {
                    warn!("notifications: {e}");
                }
            }
        });
    }

    /// Claims every tier whose deadline has passed on an open, unanswered occurrence, and
    /// queues its notifications.
    async fn escalate_due(&self) -> Result<(), DbError> {
        let settings = self.notifier.settings();
        if settings.policies.is_empty() {
            return Ok(());
        }
        let now = crate::now_ms();
        for o in occurrences::unanswered(&self.db).await? {
            let Some(policy) = settings.policy(&o.site) else {
                continue;
            };
            let Some(level) = o
                .level
                .as_deref()
                .and_then(|l| hazgate_wire::Level::ALL.into_iter().find(|x| x.name() == l))
            else {
                continue;
            };
            for (i, tier) in policy.tiers.iter().enumerate() {
                let Some(after) = tier.after(level) else {
                    continue;
                };
                if now < o.opened_ts.saturating_add(after.as_millis() as i64) {
                    continue;
                }
                let key = (o.site.clone(), o.gateway.clone(), o.occurrence.clone(), i);
                if self
                    .claimed
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .contains(&key)
                {
                    continue;
                }
                self.claim(&o, i, now).await?;
                self.claimed
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(key);
            }
        }
        Ok(())
    }

    /// One tier of one occurrence: claimed, and its notifications queued, in one
    /// transaction, by whichever instance gets there first.
    async fn claim(&self, o: &Occurrence, tier: usize, now: i64) -> Result<(), DbError> {
        let settings = self.notifier.settings();
        let Some(policy) = settings.policy(&o.site) else {
            return Ok(());
        };
        let t = &policy.tiers[tier];
        let mut tx = self.db.pool.begin().await?;
        let won = sqlx::query(
            "INSERT INTO escalations (site, gateway, occurrence, tier, claimed_ts) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        )
        .bind(&o.site)
        .bind(&o.gateway)
        .bind(&o.occurrence)
        .bind(tier as i64)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if won == 0 {
            tx.rollback().await?;
            return Ok(());
        }
        let message = text::message(settings, o, tier, &t.name);
        let mut names = Vec::new();
        for &c in &t.contacts {
            let contact = &settings.contacts[c];
            names.push(contact.name.clone());
            for channel in &contact.channels {
                sqlx::query(
                    "INSERT INTO notifications (id, site, gateway, occurrence, tier, contact, channel, address, text, status, next_try_ts, created_ts) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending', $10, $11)",
                )
                .bind(notification_id())
                .bind(&o.site)
                .bind(&o.gateway)
                .bind(&o.occurrence)
                .bind(tier as i64)
                .bind(&contact.id)
                .bind(channel.kind())
                .bind(channel.address())
                .bind(&message)
                .bind(now)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
        }
        sqlx::query(
            "INSERT INTO occurrence_log (site, gateway, occurrence, ts, kind, level, actor, detail) VALUES ($1, $2, $3, $4, 'escalated', $5, $6, $7)",
        )
        .bind(&o.site)
        .bind(&o.gateway)
        .bind(&o.occurrence)
        .bind(now)
        .bind(o.level.clone())
        .bind(&t.name)
        .bind(names.join("、"))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        info!(site = %o.site, occurrence = %o.occurrence, tier = tier + 1, "escalated to {}", t.name);
        Ok(())
    }

    /// Leases due notifications and sends them side by side.
    async fn dispatch(&self) -> Result<(), DbError> {
        let now = crate::now_ms();
        // An acknowledgement or the clear stops what is still waiting.
        sqlx::query(
            "UPDATE notifications SET status = 'cancelled' WHERE status = 'pending' AND EXISTS (SELECT 1 FROM occurrences o WHERE o.site = notifications.site AND o.gateway = notifications.gateway AND o.occurrence = notifications.occurrence AND (o.acked_by IS NOT NULL OR o.cleared_ts IS NOT NULL))",
        )
        .execute(&self.db.pool)
        .await?;
        let rows = sqlx::query(
            "SELECT id, site, gateway, occurrence, tier, contact, channel, address, text, attempts FROM notifications WHERE status = 'pending' AND next_try_ts <= $1 AND lease_until < $2 ORDER BY created_ts LIMIT 200",
        )
        .bind(now)
        .bind(now)
        .fetch_all(&self.db.pool)
        .await?;
        for r in rows {
            let id: String = r.try_get("id")?;
            let Ok(permit) = self.sending.clone().try_acquire_owned() else {
                break;
            };
            let leased = sqlx::query(
                "UPDATE notifications SET lease_until = $1 WHERE id = $2 AND status = 'pending' AND lease_until < $3",
            )
            .bind(now + LEASE.as_millis() as i64)
            .bind(&id)
            .bind(now)
            .execute(&self.db.pool)
            .await?
            .rows_affected();
            if leased == 0 {
                continue;
            }
            let job = Job {
                id,
                site: r.try_get("site")?,
                gateway: r.try_get("gateway")?,
                occurrence: r.try_get("occurrence")?,
                tier: r.try_get::<i64, _>("tier")? as usize,
                contact: r.try_get("contact")?,
                channel: r.try_get("channel")?,
                address: r.try_get("address")?,
                text: r.try_get("text")?,
                attempts: r.try_get("attempts")?,
            };
            let (db, notifier) = (self.db.clone(), self.notifier.clone());
            tokio::spawn(async move {
                if let Err(e) = job.run(&db, &notifier).await {
                    warn!("notification record: {e}");
                }
                drop(permit);
            });
        }
        Ok(())
    }
}

struct Job {
    id: String,
    site: String,
    gateway: String,
    occurrence: String,
    tier: usize,
    contact: String,
    channel: String,
    address: String,
    text: String,
    attempts: i64,
}

impl Job {
    fn channel<'a>(&self, notifier: &'a Notifier) -> Option<&'a Channel> {
        notifier
            .settings()
            .contacts
            .iter()
            .find(|c| c.id == self.contact)?
            .channels
            .iter()
            .find(|ch| ch.kind() == self.channel && ch.address() == self.address)
    }

    async fn run(self, db: &Db, notifier: &Notifier) -> Result<(), DbError> {
        let result = match self.channel(notifier) {
            Some(ch) => {
                let o = occurrences::get(db, &self.site, &self.gateway, &self.occurrence).await?;
                let link = o.as_ref().and_then(|o| text::link(notifier.settings(), o));
                let note = Note {
                    text: &self.text,
                    site: &self.site,
                    gateway: &self.gateway,
                    occurrence: &self.occurrence,
                    level: o.as_ref().and_then(|o| o.level.as_deref()),
                    tier: self.tier,
                    contact: &self.contact,
                    link: link.as_deref(),
                };
                notifier.send(ch, &note).await
            }
            None => Err("the contact or channel is no longer configured".into()),
        };
        let now = crate::now_ms();
        let who = format!("{} ({} {})", self.contact, self.channel, self.address);
        match result {
            Ok(()) => {
                sqlx::query(
                    "UPDATE notifications SET status = 'delivered', delivered_ts = $1, attempts = attempts + 1, last_error = NULL WHERE id = $2",
                )
                .bind(now)
                .bind(&self.id)
                .execute(&db.pool)
                .await?;
                occurrences::log(
                    db,
                    &self.site,
                    &self.gateway,
                    &self.occurrence,
                    now,
                    "notified",
                    Some(&who),
                    Some(&format!("第{}级", self.tier + 1)),
                )
                .await?;
            }
            Err(e) => {
                let attempts = self.attempts + 1;
                let failed = attempts >= MAX_ATTEMPTS;
                warn!(contact = %self.contact, channel = %self.channel, attempts, "notification not delivered: {e}");
                sqlx::query(
                    "UPDATE notifications SET status = $1, attempts = $2, next_try_ts = $3, lease_until = 0, last_error = $4 WHERE id = $5",
                )
                .bind(if failed { "failed" } else { "pending" })
                .bind(attempts)
                .bind(now + retry_after(attempts))
                .bind(&e)
                .bind(&self.id)
                .execute(&db.pool)
                .await?;
                occurrences::log(
                    db,
                    &self.site,
                    &self.gateway,
                    &self.occurrence,
                    now,
                    if failed {
                        "notify_failed"
                    } else {
                        "notify_retry"
                    },
                    Some(&who),
                    Some(&e),
                )
                .await?;
            }
        }
        Ok(())
    }
}
