-- Change notifications for the servers' read caches (cache.go): every
-- change that validation depends on sends NOTIFY licensing_keys with the
-- key's id as payload, from a trigger, so that every writer (any server,
-- any code path, a psql session) invalidates: a key's revocation, expiry,
-- rotation or seat limit, and a seat taken or freed (an instance row
-- inserted or deleted, or seen again as new). The batched writes of
-- validations (last_validated_at, instance fields, metrics, an instance's
-- last_seen_at) send nothing.
-- PostgreSQL delivers a notification when its transaction commits, once
-- per distinct payload.
CREATE FUNCTION licensing_notify_key() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('licensing_keys', OLD.id::text);
    ELSE
        PERFORM pg_notify('licensing_keys', NEW.id::text);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER licensing_keys_notify_update AFTER UPDATE ON licensing_keys
    FOR EACH ROW WHEN (OLD.active IS DISTINCT FROM NEW.active
        OR OLD.revoked_at IS DISTINCT FROM NEW.revoked_at
        OR OLD.expires_at IS DISTINCT FROM NEW.expires_at
        OR OLD.rotated_to IS DISTINCT FROM NEW.rotated_to
        OR OLD.max_instances IS DISTINCT FROM NEW.max_instances
        OR OLD.digest IS DISTINCT FROM NEW.digest
        OR OLD.lookup_value IS DISTINCT FROM NEW.lookup_value
        OR OLD.organization_id IS DISTINCT FROM NEW.organization_id)
    EXECUTE FUNCTION licensing_notify_key();

CREATE TRIGGER licensing_keys_notify_delete AFTER DELETE ON licensing_keys
    FOR EACH ROW EXECUTE FUNCTION licensing_notify_key();

CREATE FUNCTION licensing_notify_instance() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('licensing_keys', OLD.key_id::text);
    ELSE
        PERFORM pg_notify('licensing_keys', NEW.key_id::text);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER key_instances_notify AFTER INSERT OR DELETE ON key_instances
    FOR EACH ROW EXECUTE FUNCTION licensing_notify_instance();

CREATE TRIGGER key_instances_notify_update AFTER UPDATE ON key_instances
    FOR EACH ROW WHEN (OLD.key_id IS DISTINCT FROM NEW.key_id
        OR OLD.instance_id IS DISTINCT FROM NEW.instance_id
        OR OLD.first_seen_at IS DISTINCT FROM NEW.first_seen_at)
    EXECUTE FUNCTION licensing_notify_instance();
