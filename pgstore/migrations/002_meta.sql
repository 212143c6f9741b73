-- Facts about the store itself, one row each. pepper_fingerprint is
-- licensing.PepperFingerprint of the pepper the store was first used with
-- (never the pepper): CheckPepper refuses any other.
CREATE TABLE licensing_meta (
    name       text        PRIMARY KEY,
    value      text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
