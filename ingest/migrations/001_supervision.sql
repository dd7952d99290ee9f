-- The supervision database: what is not a time series. Portable SQL (SQLite and
-- PostgreSQL): times are BIGINT milliseconds since the epoch (UTC), flags are 0/1.

-- One alarm occurrence (raise to clear) of one gateway, kept up to date from its events.
CREATE TABLE occurrences (
    site TEXT NOT NULL,
    gateway TEXT NOT NULL,
    occurrence TEXT NOT NULL,
    device TEXT,
    point TEXT,
    hazard_source TEXT,
    condition TEXT NOT NULL,
    -- Current level; NULL once cleared.
    level TEXT,
    -- Highest level it reached.
    max_level TEXT NOT NULL,
    label TEXT,
    unit TEXT,
    value DOUBLE PRECISION,
    limit_value DOUBLE PRECISION,
    opened_ts BIGINT NOT NULL,
    -- Time of the latest event applied (events can arrive twice or late).
    last_ts BIGINT NOT NULL,
    cleared_ts BIGINT,
    -- The acknowledgement in force: asked for centrally (acked_*), confirmed by the edge
    -- (confirmed_ts). An escalation clears it: the new level must be answered again.
    acked_by TEXT,
    acked_ts BIGINT,
    ack_note TEXT,
    ack_command TEXT,
    confirmed_ts BIGINT,
    -- Cleared before anybody acknowledged it (recorded as such in 叫应记录).
    cleared_unacked BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (site, gateway, occurrence)
);
CREATE INDEX occurrences_open ON occurrences (cleared_ts, site);

-- 叫应记录: the timeline of every occurrence. Entries from the gateway carry its alarm
-- seq, so a redelivered event is recorded once.
CREATE TABLE occurrence_log (
    site TEXT NOT NULL,
    gateway TEXT NOT NULL,
    occurrence TEXT NOT NULL,
    ts BIGINT NOT NULL,
    -- raise, escalate, deescalate, clear, ack_requested, ack_confirmed, note, notified,
    -- notify_failed, escalated
    kind TEXT NOT NULL,
    level TEXT,
    actor TEXT,
    detail TEXT,
    seq BIGINT,
    UNIQUE (site, gateway, seq)
);
CREATE INDEX occurrence_log_by_occurrence ON occurrence_log (site, gateway, occurrence, ts);
CREATE INDEX occurrence_log_by_time ON occurrence_log (site, ts);

CREATE TABLE users (
    name TEXT PRIMARY KEY,
    -- argon2id, PHC string.
    password_hash TEXT NOT NULL,
    -- admin, regulator, enterprise
    role TEXT NOT NULL,
    -- regulator: administrative-division code prefixes; enterprise: site ids; comma-separated.
    scope TEXT NOT NULL DEFAULT '',
    created_ts BIGINT NOT NULL,
    disabled BIGINT NOT NULL DEFAULT 0
);

-- Sessions and API tokens are stored as SHA-256 of the token, never the token.
CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_name TEXT NOT NULL,
    csrf TEXT NOT NULL,
    created_ts BIGINT NOT NULL,
    expires_ts BIGINT NOT NULL
);

CREATE TABLE api_tokens (
    token_hash TEXT PRIMARY KEY,
    user_name TEXT NOT NULL,
    label TEXT NOT NULL,
    created_ts BIGINT NOT NULL
);

CREATE TABLE audit (
    ts BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT,
    detail TEXT,
    remote TEXT
);
CREATE INDEX audit_by_time ON audit (ts);

-- Commands to gateways (acknowledgements, resets) until the edge confirms them.
CREATE TABLE commands (
    id TEXT PRIMARY KEY,
    site TEXT NOT NULL,
    gateway TEXT NOT NULL,
    occurrence TEXT,
    payload TEXT NOT NULL,
    created_ts BIGINT NOT NULL,
    sent_ts BIGINT,
    confirmed_ts BIGINT
);
CREATE INDEX commands_unconfirmed ON commands (site, gateway, confirmed_ts);
