-- SPDX-License-Identifier: MIT
-- AUTOOS schema, migration 002: what the coordinator keeps per step to
-- schedule and recover (retry budget, backoff, the node to avoid, fallbacks),
-- the output dependents receive, and run history for simulate.
-- Applied by `autoos-coordinator --migrate` in one transaction.

-- standby: a fallback not (yet) needed; replaced: failed, its fallback
-- succeeded in its place.
ALTER TABLE steps DROP CONSTRAINT steps_state_check;
ALTER TABLE steps ADD CONSTRAINT steps_state_check
    CHECK (state IN ('pending', 'ready', 'dispatched', 'running', 'succeeded', 'failed',
                     'skipped', 'cancelled', 'awaiting_human', 'standby', 'replaced'));

ALTER TABLE steps
    ADD COLUMN position       int NOT NULL DEFAULT 0,       -- order in the document
    ADD COLUMN program        text,                         -- argv joined: history key
    ADD COLUMN selector       jsonb NOT NULL DEFAULT '{}'::jsonb,
    ADD COLUMN max_attempts   int NOT NULL DEFAULT 1 CHECK (max_attempts >= 1),
    ADD COLUMN backoff_ms     bigint NOT NULL DEFAULT 500,
    ADD COLUMN max_backoff_ms bigint NOT NULL DEFAULT 10000,
    ADD COLUMN failures       int NOT NULL DEFAULT 0,       -- failed attempts, against max_attempts
    ADD COLUMN moves          int NOT NULL DEFAULT 0,       -- placed again (node lost, sandbox_error)
    ADD COLUMN not_before     timestamptz,                  -- backoff: not dispatched before
    ADD COLUMN avoid_node     text,                         -- the node that just failed it
    ADD COLUMN fallback_for   text,                         -- this step stands by for that one
    ADD COLUMN escalate       boolean NOT NULL DEFAULT true, -- false: a failure ends the step (POST /v1/runs)
    ADD COLUMN output_b64     text,                         -- stdout (base64) passed to dependents
    ADD COLUMN outcome        text,
    ADD COLUMN exit_code      int,
    ADD COLUMN wall_ms        bigint,
    ADD COLUMN error          text,
    ADD COLUMN dispatched_at  timestamptz,
    ADD COLUMN updated_at     timestamptz NOT NULL DEFAULT now();

CREATE INDEX steps_ready_idx ON steps (not_before) WHERE state = 'ready';
CREATE INDEX steps_inflight_idx ON steps (node) WHERE state IN ('dispatched', 'running');
DROP INDEX steps_state_idx;

ALTER TABLE runs
    ADD COLUMN program text,
    ADD COLUMN late    boolean NOT NULL DEFAULT false;     -- arrived after the attempt was given up
CREATE INDEX runs_program_idx ON runs (program, id DESC);

CREATE INDEX workflows_created_idx ON workflows (created_at DESC);
