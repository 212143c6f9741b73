-- License keys. The full key is never stored: lookup_value and digest come
-- from the service's Hasher.
CREATE TABLE licensing_keys (
    id                uuid        PRIMARY KEY,
    organization_id   text        NOT NULL,
    lookup_value      text        NOT NULL,
    digest            text        NOT NULL,
    masked_key        text        NOT NULL,
    instance_name     text        NOT NULL DEFAULT '',
    instance_url      text        NOT NULL DEFAULT '',
    active            boolean     NOT NULL,
    created_at        timestamptz NOT NULL,
    activated_at      timestamptz,
    last_validated_at timestamptz,
    revoked_at        timestamptz,
    last_metrics      jsonb,
    last_violations   jsonb
);

-- Validation looks keys up by this value; it is unique by contract.
CREATE UNIQUE INDEX licensing_keys_lookup_value ON licensing_keys (lookup_value);

-- Listing: an organization's keys, newest first.
CREATE INDEX licensing_keys_org_created ON licensing_keys (organization_id, created_at DESC, id DESC);
