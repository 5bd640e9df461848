-- SPDX-License-Identifier: MIT
-- AUTOOS schema, migration 006: node drain (issue 15), as Nomad's. A
-- draining node takes no new step; the steps it runs finish. Set by
-- POST /v1/nodes/{id}/drain, cleared by DELETE /v1/nodes/{id}/drain, each an
-- audit row on the fleet chain. Here, not in a coordinator's memory, so every
-- coordinator of the fleet sees it.
ALTER TABLE nodes
    ADD COLUMN drain_since timestamptz,  -- set: draining since then
    ADD COLUMN drained_by  text;         -- the key that drained it
