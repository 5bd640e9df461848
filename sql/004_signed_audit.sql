-- SPDX-License-Identifier: MIT
-- AUTOOS schema, migration 004: the signed audit trail (issue 10).
-- Applied by `autoos-coordinator --migrate` in one transaction, as the schema's
-- owner role (migrate_db / --db-owner), never as the service's role.
--
-- PostgreSQL is not trusted to keep history honest. The coordinator signs
-- checkpoints of chain heads with an Ed25519 key held outside the database
-- (audit_key), stores them here and also writes each to its log, one JSON line
-- per checkpoint. A checkpoint vouches for every row of its chain up to seq:
-- a verifier recomputes the chain (canonical rows as in 001) and checks that
-- the hash at seq is the signed one. The signed bytes are
--   "autoos-audit-checkpoint-v1\nchain=<uuid or fleet>\nseq=<seq>\n"
--   "hash=<64 lowercase hex>\nts_epoch_us=<ts_epoch_us>\n"
-- key_id names the key: the first 16 hex digits of sha256(raw public key).
-- The rows' canonical form and hashes are unchanged, so rows written before
-- this migration verify as before; they are covered once a checkpoint of
-- their chain's head is signed (autoos-coordinator --audit-checkpoint-all).

CREATE TABLE audit_checkpoints (
    id          bigserial PRIMARY KEY,
    workflow_id uuid REFERENCES workflows (id),           -- NULL: the fleet chain
    seq         int NOT NULL CHECK (seq >= 1),
    hash        bytea NOT NULL CHECK (octet_length(hash) = 32),
    ts_epoch_us bigint NOT NULL,
    key_id      text NOT NULL CHECK (key_id ~ '^[0-9a-f]{16}$'),
    signature   bytea NOT NULL CHECK (octet_length(signature) = 64),
    coordinator text NOT NULL,
    CONSTRAINT audit_checkpoints_key UNIQUE NULLS NOT DISTINCT (workflow_id, seq, key_id)
);

-- An honest database keeps only checkpoints of rows it holds: the row at
-- (workflow_id, seq) must exist with that hash. (A dishonest one is caught
-- by the verifier, not by this.)
CREATE FUNCTION autoos_audit_checkpoint_check() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT (CASE WHEN NEW.workflow_id IS NULL
                 THEN EXISTS (SELECT FROM audit_log a WHERE a.workflow_id IS NULL
                                                        AND a.seq = NEW.seq AND a.hash = NEW.hash)
                 ELSE EXISTS (SELECT FROM audit_log a WHERE a.workflow_id = NEW.workflow_id
                                                        AND a.seq = NEW.seq AND a.hash = NEW.hash)
            END) THEN
        RAISE EXCEPTION 'audit checkpoint of chain % at seq % names no such row', NEW.workflow_id, NEW.seq
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER audit_checkpoints_check BEFORE INSERT ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION autoos_audit_checkpoint_check();
CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION autoos_audit_append_only();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION autoos_audit_append_only();

-- The audit functions resolve names in this schema and pg_catalog only: a
-- session's temporary table named audit_log cannot stand in for the real one.
DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION autoos_audit_chain() SET search_path = pg_catalog, %I', current_schema());
    EXECUTE format('ALTER FUNCTION autoos_audit_checkpoint_check() SET search_path = pg_catalog, %I',
                   current_schema());
    EXECUTE format('ALTER FUNCTION autoos_audit_verify(uuid) SET search_path = pg_catalog, %I', current_schema());
END
$$;

-- The service's role (a member of autoos_app) appends and reads; it owns
-- nothing, so it cannot ALTER TABLE ... DISABLE TRIGGER, DROP TRIGGER or
-- redefine the functions. The owner is the role --migrate connects as.
REVOKE ALL ON audit_checkpoints FROM PUBLIC;
GRANT SELECT, INSERT ON audit_checkpoints TO autoos_app;
GRANT USAGE ON SEQUENCE audit_checkpoints_id_seq TO autoos_app;
REVOKE TRUNCATE, TRIGGER, REFERENCES ON audit_log, audit_checkpoints FROM autoos_app;
