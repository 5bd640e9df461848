-- SPDX-License-Identifier: MIT
-- AUTOOS schema, migration 007: model and agent steps (issue 14), run by the
-- coordinator's fabric workers, and the sandboxed runs of an agent's tool calls.
-- Applied by `autoos-coordinator --migrate` as the schema's owner role.
--
-- kind 'model' and 'agent': steps the coordinator runs itself (node
-- 'fabric:<coordinator id>' while a call is in flight); kind 'tool': one tool
-- call of an agent step, a run placed on a node like any run step, its step id
-- '<agent step>.a<attempt>.t<turn>-<k>', never escalated (its failure goes back
-- to the model) and not counted against the workflow's success.
ALTER TABLE steps DROP CONSTRAINT steps_kind_check;
ALTER TABLE steps ADD CONSTRAINT steps_kind_check
    CHECK (kind IN ('run', 'approval', 'model', 'agent', 'tool'));

-- Recovery level 3: the chain entry of the step's role a model step calls
-- first (0, or another provider's after the retries on one are spent).
ALTER TABLE steps ADD COLUMN model_entry int NOT NULL DEFAULT 0 CHECK (model_entry >= 0);

-- A model or agent step's attempt: provider, model, tokens, cost, fallbacks,
-- the verifier's verdict and confidence, an agent's bounded transcript
-- (orc_model_result_json, orc_agent_result_json).
ALTER TABLE runs ADD COLUMN fabric jsonb;
