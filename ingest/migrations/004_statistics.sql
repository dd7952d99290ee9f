-- Data health per site and hour, counted once when the hour is over (incremental: no
-- page view rescans the store). Days are sums of hours.

CREATE TABLE hourly_stats (
    site TEXT NOT NULL,
    -- Start of the hour, ms UTC.
    hour_ts BIGINT NOT NULL,
    -- Readings the poll plans promised in the hour (master data).
    expected DOUBLE PRECISION NOT NULL,
    received BIGINT NOT NULL,
    good BIGINT NOT NULL,
    -- Of the hour, how long the site's gateways were online, ms (averaged over gateways).
    online_ms BIGINT NOT NULL,
    computed_ts BIGINT NOT NULL,
    PRIMARY KEY (site, hour_ts)
);
