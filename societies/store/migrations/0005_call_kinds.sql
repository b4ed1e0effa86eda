-- Calls of two more kinds (issue 11): a judge's verdict and a questionnaire's answers are steps
-- of their own, and a confederate's scripted turn is stored with outcome 'scripted' (no model
-- call, 0 tokens) so transcripts read as the agents saw them. SQLite cannot alter a CHECK
-- constraint, so the calls table is rebuilt with the same columns and rows.
CREATE TABLE calls_v5 (
    id INTEGER PRIMARY KEY,
    repeat INTEGER NOT NULL,
    case_id TEXT NOT NULL,
    society TEXT NOT NULL,
    node TEXT NOT NULL,
    agent INTEGER NOT NULL,
    round INTEGER NOT NULL,
    step TEXT NOT NULL CHECK (step IN ('persona', 'answer', 'judge', 'questionnaire')),
    pattern TEXT,
    parent INTEGER,
    added BLOB NOT NULL,
    reply TEXT,
    answer TEXT,
    correct INTEGER,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    total_tokens INTEGER NOT NULL DEFAULT 0,
    cached_tokens INTEGER NOT NULL DEFAULT 0,
    latency_ms REAL,
    backend TEXT NOT NULL,
    model TEXT NOT NULL,
    params_json TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    outcome TEXT NOT NULL CHECK (outcome IN ('ok', 'context_exceeded', 'error', 'scripted')),
    error TEXT,
    request_hash TEXT NOT NULL,
    request_id TEXT,
    invocation INTEGER,
    created_at TEXT NOT NULL,
    extraction TEXT,
    UNIQUE (society, repeat, case_id, node, agent, step)
);
INSERT INTO calls_v5 (id, repeat, case_id, society, node, agent, round, step, pattern, parent, added, reply, answer, correct, prompt_tokens, completion_tokens, total_tokens, cached_tokens, latency_ms, backend, model, params_json, attempts, outcome, error, request_hash, request_id, invocation, created_at, extraction)
SELECT id, repeat, case_id, society, node, agent, round, step, pattern, parent, added, reply, answer, correct, prompt_tokens, completion_tokens, total_tokens, cached_tokens, latency_ms, backend, model, params_json, attempts, outcome, error, request_hash, request_id, invocation, created_at, extraction
FROM calls ORDER BY id;
DROP TABLE calls;
ALTER TABLE calls_v5 RENAME TO calls
