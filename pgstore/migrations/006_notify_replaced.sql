-- Change notifications (005) for the plain-SQL writes that a row trigger
-- on one id does not describe: a key whose id changes notifies its old id
-- too (the caches know the key by it); an instance row moved to another
-- key notifies the old key too (its seat was freed); a TRUNCATE of either
-- table, which fires no row trigger, notifies '*', which is no key id, so
-- every cache empties itself.
CREATE OR REPLACE FUNCTION licensing_notify_key() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('licensing_keys', OLD.id::text);
    ELSE
        PERFORM pg_notify('licensing_keys', NEW.id::text);
        IF TG_OP = 'UPDATE' AND OLD.id IS DISTINCT FROM NEW.id THEN
            PERFORM pg_notify('licensing_keys', OLD.id::text);
        END IF;
    END IF;
    RETURN NULL;
END $$;

DROP TRIGGER licensing_keys_notify_update ON licensing_keys;
CREATE TRIGGER licensing_keys_notify_update AFTER UPDATE ON licensing_keys
    FOR EACH ROW WHEN (OLD.active IS DISTINCT FROM NEW.active
        OR OLD.revoked_at IS DISTINCT FROM NEW.revoked_at
        OR OLD.expires_at IS DISTINCT FROM NEW.expires_at
        OR OLD.rotated_to IS DISTINCT FROM NEW.rotated_to
        OR OLD.max_instances IS DISTINCT FROM NEW.max_instances
        OR OLD.digest IS DISTINCT FROM NEW.digest
        OR OLD.lookup_value IS DISTINCT FROM NEW.lookup_value
        OR OLD.organization_id IS DISTINCT FROM NEW.organization_id
        OR OLD.id IS DISTINCT FROM NEW.id)
    EXECUTE FUNCTION licensing_notify_key();

CREATE OR REPLACE FUNCTION licensing_notify_instance() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('licensing_keys', OLD.key_id::text);
    ELSE
        PERFORM pg_notify('licensing_keys', NEW.key_id::text);
        IF TG_OP = 'UPDATE' AND OLD.key_id IS DISTINCT FROM NEW.key_id THEN
            PERFORM pg_notify('licensing_keys', OLD.key_id::text);
        END IF;
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION licensing_notify_all() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('licensing_keys', '*');
    RETURN NULL;
END $$;

CREATE TRIGGER licensing_keys_notify_truncate AFTER TRUNCATE ON licensing_keys
    FOR EACH STATEMENT EXECUTE FUNCTION licensing_notify_all();
CREATE TRIGGER key_instances_notify_truncate AFTER TRUNCATE ON key_instances
    FOR EACH STATEMENT EXECUTE FUNCTION licensing_notify_all();
