-- Escalation (预警叫应): which tier of an occurrence has been told (claimed once, by one
-- instance), and every notification with its delivery.

CREATE TABLE escalations (
    site TEXT NOT NULL,
    gateway TEXT NOT NULL,
    occurrence TEXT NOT NULL,
    tier BIGINT NOT NULL,
    claimed_ts BIGINT NOT NULL,
    PRIMARY KEY (site, gateway, occurrence, tier)
);

CREATE TABLE notifications (
    id TEXT PRIMARY KEY,
    site TEXT NOT NULL,
    gateway TEXT NOT NULL,
    occurrence TEXT NOT NULL,
    tier BIGINT NOT NULL,
    contact TEXT NOT NULL,
    -- webhook, dingtalk, wecom, email, sms
    channel TEXT NOT NULL,
    address TEXT NOT NULL,
    text TEXT NOT NULL,
    -- pending, delivered, failed, cancelled
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_try_ts BIGINT NOT NULL,
    -- An instance sending it holds it until then; after a crash another takes it over.
    lease_until BIGINT NOT NULL DEFAULT 0,
    last_error TEXT,
    created_ts BIGINT NOT NULL,
    delivered_ts BIGINT
);
CREATE INDEX notifications_due ON notifications (status, next_try_ts);
CREATE INDEX notifications_by_occurrence ON notifications (site, gateway, occurrence);
