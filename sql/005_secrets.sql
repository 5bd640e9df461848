-- SPDX-License-Identifier: MIT
-- AUTOOS schema, migration 005: secrets (issue 10 item 2; doc/trust.md "Secrets").
-- Applied by `autoos-coordinator --migrate` as the schema's owner role.
--
-- A secret's value is never stored here in plain text: ciphertext, nonce and
-- tag are AES-256-GCM under the coordinator's secret key, a file outside
-- PostgreSQL (secret_key_file), with associated data binding each row to its
-- name and version ("autoos/secret-store/v1" ‖ len ‖ name ‖ len ‖ version, the
-- lengths 8-byte big-endian, the version as decimal text). A row copied to
-- another name or an older version put back does not decrypt. key_id names
-- the key (the first 16 hex digits of sha256 of the raw key) so that a
-- coordinator holding another key says so instead of failing on every row.
-- Rotation (PUT again) replaces the row with version + 1; a deleted secret's
-- row is gone. Who created, rotated and deleted what is in the fleet's audit
-- chain (secret_created, secret_rotated, secret_deleted), never the value.
CREATE TABLE secrets (
    name        text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$'),
    version     int NOT NULL DEFAULT 1 CHECK (version >= 1),
    key_id      text NOT NULL CHECK (key_id ~ '^[0-9a-f]{16}$'),
    nonce       bytea NOT NULL CHECK (octet_length(nonce) = 12),
    ciphertext  bytea NOT NULL,
    tag         bytea NOT NULL CHECK (octet_length(tag) = 16),
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    rotated_by  text,
    rotated_at  timestamptz
);

REVOKE ALL ON secrets FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON secrets TO autoos_app;
