-- SPDX-License-Identifier: MIT
-- AUTOOS schema, migration 003: node identity (issue 10). Which nodes are
-- enrolled, and at which key generation. No key material is kept here: the
-- coordinator derives a node's key from its fleet key file (outside
-- PostgreSQL) as HMAC(fleet key, node | generation), so a reader of this
-- table learns nothing that signs or verifies a message. Removing a node, or
-- giving it a new key (generation + 1), takes effect within 5 s.
CREATE TABLE node_identities (
    node        text PRIMARY KEY CHECK (length(node) BETWEEN 1 AND 128),
    generation  int NOT NULL DEFAULT 1 CHECK (generation >= 1),
    key_id      text NOT NULL,                -- first 16 hex digits of sha256(node key): names the key in logs
    enrolled_at timestamptz NOT NULL DEFAULT now(),
    rekeyed_at  timestamptz,
    removed_at  timestamptz                   -- set: the node's messages are refused
);

GRANT SELECT, INSERT, UPDATE ON node_identities TO autoos_app;
