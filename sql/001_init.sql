-- SPDX-License-Identifier: MIT
-- AUTOOS schema, migration 001 (PostgreSQL 15).
--
-- Applied by `autoos-coordinator --migrate` inside one transaction, which then
-- records (1, '001_init') in schema_migrations. The file therefore holds no
-- BEGIN/COMMIT and nothing that refuses to run in a transaction block.
--
-- audit_log is append-only and hash-chained per workflow (workflow_id NULL is
-- the fleet chain: node lost, keys created, ...):
--   canonical(row) = convert_to(jsonb_build_array(workflow_id, seq, ts_epoch_us,
--                                                 actor, action, detail)::text, 'UTF8')
--   hash           = sha256(prev_hash || canonical(row))
--   prev_hash      = hash of the previous row of the same chain, or 32 zero bytes
-- The BEFORE INSERT trigger fills seq, prev_hash and hash (whatever the INSERT
-- gave); writers supply workflow_id, actor, action, detail (and ts_epoch_us, if
-- not now). autoos_audit_verify(workflow) returns the first bad seq or NULL.

CREATE TABLE IF NOT EXISTS schema_migrations (
    version    int PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE nodes (
    id        text PRIMARY KEY,
    labels    jsonb NOT NULL DEFAULT '{}'::jsonb,
    capacity  int NOT NULL DEFAULT 1 CHECK (capacity >= 0),
    state     text NOT NULL DEFAULT 'healthy',
    last_seen timestamptz,
    version   text
);

CREATE TABLE workflows (
    id         uuid PRIMARY KEY,
    name       text NOT NULL,
    spec       jsonb NOT NULL,
    state      text NOT NULL DEFAULT 'pending'
               CHECK (state IN ('pending', 'running', 'paused', 'awaiting_human',
                                'succeeded', 'failed', 'cancelled')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    created_by text
);
CREATE INDEX workflows_state_idx ON workflows (state);

CREATE TABLE steps (
    workflow_id uuid NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    step_id     text NOT NULL,
    kind        text NOT NULL DEFAULT 'run' CHECK (kind IN ('run', 'approval')),
    state       text NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'ready', 'dispatched', 'running',
                                 'succeeded', 'failed', 'skipped', 'cancelled',
                                 'awaiting_human')),
    attempt     int NOT NULL DEFAULT 0 CHECK (attempt >= 0),
    node        text,
    spec        jsonb NOT NULL DEFAULT '{}'::jsonb,
    fallback    text,
    needs       text[] NOT NULL DEFAULT '{}',
    PRIMARY KEY (workflow_id, step_id)
);
CREATE INDEX steps_state_idx ON steps (state);

-- One row per attempt; (workflow_id, step_id, attempt) is the idempotency key
-- of a result (INSERT ... ON CONFLICT DO NOTHING for redeliveries).
CREATE TABLE runs (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workflow_id       uuid NOT NULL,
    step_id           text NOT NULL,
    attempt           int NOT NULL CHECK (attempt >= 1),
    node              text,
    outcome           text NOT NULL
                      CHECK (outcome IN ('exited', 'signaled', 'timeout', 'cpu_limit',
                                         'oom', 'pids_limit', 'output_limit',
                                         'sandbox_error', 'rejected')),
    exit_code         int,
    wall_ms           bigint,
    cpu_ms            bigint,
    memory_peak_bytes bigint,
    denied_syscalls   text[] NOT NULL DEFAULT '{}',
    result            jsonb,
    started_at        timestamptz,
    finished_at       timestamptz,
    CONSTRAINT runs_attempt_key UNIQUE (workflow_id, step_id, attempt),
    FOREIGN KEY (workflow_id, step_id) REFERENCES steps (workflow_id, step_id)
        ON DELETE CASCADE
);

-- Only the SHA-256 of a key is stored.
CREATE TABLE api_keys (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       text NOT NULL UNIQUE,
    role       text NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
    key_sha256 bytea NOT NULL UNIQUE CHECK (octet_length(key_sha256) = 32),
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);

CREATE TABLE audit_log (
    id          bigserial PRIMARY KEY,
    workflow_id uuid REFERENCES workflows (id),
    seq         int NOT NULL CHECK (seq >= 1),
    ts_epoch_us bigint NOT NULL
                DEFAULT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint,
    actor       text NOT NULL,
    action      text NOT NULL,
    detail      jsonb NOT NULL DEFAULT '{}'::jsonb,
    prev_hash   bytea NOT NULL CHECK (octet_length(prev_hash) = 32),
    hash        bytea NOT NULL CHECK (octet_length(hash) = 32),
    -- NULLS NOT DISTINCT (PostgreSQL 15): the fleet chain has unique seqs too.
    CONSTRAINT audit_log_workflow_seq_key UNIQUE NULLS NOT DISTINCT (workflow_id, seq)
);

-- The bytes hashed for one row: jsonb's own text form of a fixed-order array.
-- jsonb text output is deterministic (object keys sorted, fixed spacing), and
-- the time is a UTC epoch, so nothing depends on session settings.
CREATE FUNCTION autoos_audit_canonical(p_workflow_id uuid, p_seq int, p_ts_epoch_us bigint,
                                       p_actor text, p_action text, p_detail jsonb)
RETURNS bytea LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT convert_to(jsonb_build_array(p_workflow_id, p_seq, p_ts_epoch_us,
                                        p_actor, p_action, p_detail)::text, 'UTF8')
$$;

-- Serializes the writers of one chain (transaction-scoped advisory lock) and
-- fills seq, prev_hash and hash. Rows inserted earlier by the same statement
-- are visible here, so multi-row INSERTs chain correctly.
CREATE FUNCTION autoos_audit_chain() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    last_seq  int;
    last_hash bytea;
BEGIN
    PERFORM pg_advisory_xact_lock(
        hashtextextended(coalesce(NEW.workflow_id::text, 'fleet'), 1096107087));
    IF NEW.workflow_id IS NULL THEN
        SELECT seq, hash INTO last_seq, last_hash FROM audit_log
         WHERE workflow_id IS NULL ORDER BY seq DESC LIMIT 1;
    ELSE
        SELECT seq, hash INTO last_seq, last_hash FROM audit_log
         WHERE workflow_id = NEW.workflow_id ORDER BY seq DESC LIMIT 1;
    END IF;
    NEW.seq := coalesce(last_seq, 0) + 1;
    NEW.prev_hash := coalesce(last_hash, '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea);
    NEW.hash := sha256(NEW.prev_hash || autoos_audit_canonical(NEW.workflow_id, NEW.seq,
                       NEW.ts_epoch_us, NEW.actor, NEW.action, NEW.detail));
    RETURN NEW;
END
$$;

CREATE FUNCTION autoos_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'table % is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER audit_log_chain BEFORE INSERT ON audit_log
    FOR EACH ROW EXECUTE FUNCTION autoos_audit_chain();
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION autoos_audit_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION autoos_audit_append_only();

-- The first seq of the chain (NULL: the fleet chain) whose row does not verify
-- (missing seq, wrong prev_hash, or hash not matching its contents); NULL when
-- the whole chain verifies. Cutting off the chain's tail is not detectable here.
CREATE FUNCTION autoos_audit_verify(p_workflow uuid) RETURNS int
LANGUAGE plpgsql STABLE AS $$
DECLARE
    r        record;
    expected int := 1;
    prev     bytea := '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea;
BEGIN
    FOR r IN SELECT a.seq, a.ts_epoch_us, a.actor, a.action, a.detail, a.prev_hash, a.hash
               FROM audit_log a
              WHERE (p_workflow IS NULL AND a.workflow_id IS NULL) OR a.workflow_id = p_workflow
              ORDER BY a.seq
    LOOP
        IF r.seq <> expected THEN
            RETURN expected;
        END IF;
        IF r.prev_hash IS DISTINCT FROM prev
           OR r.hash IS DISTINCT FROM sha256(prev || autoos_audit_canonical(p_workflow, r.seq,
                                             r.ts_epoch_us, r.actor, r.action, r.detail)) THEN
            RETURN r.seq;
        END IF;
        prev := r.hash;
        expected := expected + 1;
    END LOOP;
    RETURN NULL;
END
$$;

CREATE FUNCTION autoos_touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$;
CREATE TRIGGER workflows_updated_at BEFORE UPDATE ON workflows
    FOR EACH ROW EXECUTE FUNCTION autoos_touch_updated_at();

-- The application role (NOLOGIN; grant it to the coordinator's login role).
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'autoos_app') THEN
        CREATE ROLE autoos_app NOLOGIN;
    END IF;
END
$$;

REVOKE ALL ON audit_log FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON nodes, workflows, steps, runs, api_keys TO autoos_app;
GRANT SELECT ON schema_migrations TO autoos_app;
GRANT SELECT, INSERT ON audit_log TO autoos_app;
GRANT USAGE ON SEQUENCE audit_log_id_seq TO autoos_app;
