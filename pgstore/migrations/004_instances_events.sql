-- Instances and seats (Store.SeatInstance), the event log (licensing.EventLog)
-- and webhook delivery progress (webhook.Cursors). Keys stored before this
-- migration get max_instances 0: no limit of their own, as before.
ALTER TABLE licensing_keys ADD COLUMN max_instances integer NOT NULL DEFAULT 0
    CHECK (max_instances >= 0);

-- The instances a key remembers: those seen within the lease hold a seat.
-- Rows past the lease are deleted by the next new instance of the key.
CREATE TABLE key_instances (
    key_id        uuid        NOT NULL REFERENCES licensing_keys (id) ON DELETE CASCADE,
    instance_id   text        NOT NULL,
    name          text        NOT NULL DEFAULT '',
    url           text        NOT NULL DEFAULT '',
    first_seen_at timestamptz NOT NULL,
    last_seen_at  timestamptz NOT NULL,
    metrics       jsonb,
    PRIMARY KEY (key_id, instance_id)
);

-- The event log. seq comes from event_seq, whose one row every appending
-- transaction updates: appends are serialized by its row lock, so seq order
-- is commit order. body holds the whole licensing.Event but its Seq.
CREATE TABLE license_events (
    seq         bigint      PRIMARY KEY,
    id          text        NOT NULL UNIQUE,
    org_id      text        NOT NULL,
    key_id      text        NOT NULL DEFAULT '',
    type        text        NOT NULL,
    occurred_at timestamptz NOT NULL,
    body        jsonb       NOT NULL
);

-- Events: an organization's events newest first, all or of one key or type.
CREATE INDEX license_events_org_seq ON license_events (org_id, seq DESC);
CREATE INDEX license_events_org_key_seq ON license_events (org_id, key_id, seq DESC);
CREATE INDEX license_events_org_type_seq ON license_events (org_id, type, seq DESC);
-- PruneEvents by age.
CREATE INDEX license_events_occurred_at ON license_events (occurred_at);

CREATE TABLE event_seq (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    n   bigint  NOT NULL
);
INSERT INTO event_seq (n) VALUES (0);

-- ExpiringKeys: active keys that expire, in (expires_at, id) order.
CREATE INDEX licensing_keys_expiring ON licensing_keys (expires_at, id)
    WHERE active AND expires_at IS NOT NULL;

-- Webhook delivery: per endpoint, the seq delivered up to and the process
-- that holds the delivery lease until lease_until.
CREATE TABLE webhook_cursors (
    endpoint    text        PRIMARY KEY,
    cursor      bigint      NOT NULL DEFAULT 0,
    holder      text        NOT NULL,
    lease_until timestamptz NOT NULL
);
