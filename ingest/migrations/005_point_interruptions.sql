-- Interruptions (断线) of single points: a point whose data stop reaching the store while
-- its gateway is online, from its last sample until samples arrive again. Keyed by that
-- last sample's time, the same for every instance that sees it.

CREATE TABLE point_interruptions (
    site TEXT NOT NULL,
    gateway TEXT NOT NULL,
    device TEXT NOT NULL,
    point TEXT NOT NULL,
    start_ts BIGINT NOT NULL,
    end_ts BIGINT,
    occurrence TEXT NOT NULL,
    PRIMARY KEY (site, gateway, device, point, start_ts)
);
CREATE INDEX point_interruptions_open ON point_interruptions (end_ts, site);
