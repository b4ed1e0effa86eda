-- A call is identified by its position columns, not by a string joined from them (a name
-- holding "|" made such strings ambiguous): the calls table is rebuilt without call_key,
-- unique on the position. The index also serves look-ups of one tree (society, repeat, case).
CREATE TABLE calls_v3 (
    id INTEGER PRIMARY KEY,
    repeat INTEGER NOT NULL,
    case_id TEXT NOT NULL,
    society TEXT NOT NULL,
    node TEXT NOT NULL,
    agent INTEGER NOT NULL,
    round INTEGER NOT NULL,
    step TEXT NOT NULL CHECK (step IN ('persona', 'answer')),
    pattern TEXT,
    messages_json TEXT NOT NULL,
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
    outcome TEXT NOT NULL CHECK (outcome IN ('ok', 'context_exceeded', 'error')),
    error TEXT,
    request_hash TEXT NOT NULL,
    request_id TEXT,
    invocation INTEGER,
    created_at TEXT NOT NULL,
    extraction TEXT,
    UNIQUE (society, repeat, case_id, node, agent, step)
);
INSERT OR REPLACE INTO calls_v3 (
    id, repeat, case_id, society, node, agent, round, step, pattern, messages_json, reply,
    answer, correct, prompt_tokens, completion_tokens, total_tokens, cached_tokens, latency_ms,
    backend, model, params_json, attempts, outcome, error, request_hash, request_id, invocation,
    created_at, extraction
)
SELECT
    id, repeat, case_id, society, node, agent, round, step, pattern, messages_json, reply,
    answer, correct, prompt_tokens, completion_tokens, total_tokens, cached_tokens, latency_ms,
    backend, model, params_json, attempts, outcome, error, request_hash, request_id, invocation,
    created_at, extraction
FROM calls ORDER BY id;
DROP TABLE calls;
ALTER TABLE calls_v3 RENAME TO calls
