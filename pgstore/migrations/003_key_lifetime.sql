-- Key lifetime: an expiry, and the links of a rotation (Store.RotateKey).
-- Keys stored before this migration get NULLs: they never expire and were
-- never rotated. The links are key ids as text, not foreign keys: a key may
-- be stored with links as given (CreateKey), like every other field.
ALTER TABLE licensing_keys
    ADD COLUMN expires_at   timestamptz,
    ADD COLUMN rotated_to   text,
    ADD COLUMN rotated_from text;
