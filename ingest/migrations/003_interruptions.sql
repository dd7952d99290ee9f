-- Interruptions (断线): a gateway gone offline (its last will) or silent, from the last
-- status heard until it is back. Keyed by that last status's time, which every instance
-- received, so several instances record one interruption, not one each.

CREATE TABLE interruptions (
    site TEXT NOT NULL,
    gateway TEXT NOT NULL,
    start_ts BIGINT NOT NULL,
    end_ts BIGINT,
    -- offline (the gateway's will) or silent (nothing heard past the threshold)
    cause TEXT NOT NULL,
    occurrence TEXT NOT NULL,
    PRIMARY KEY (site, gateway, start_ts)
);
CREATE INDEX interruptions_open ON interruptions (end_ts, site);
