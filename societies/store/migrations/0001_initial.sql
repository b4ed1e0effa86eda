-- One run directory holds one experiment: its resolved config, its cases, and every model call.
CREATE TABLE run (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    name TEXT NOT NULL,
    created_at TEXT NOT NULL,
    package_version TEXT NOT NULL,
    config_json TEXT NOT NULL,
    identity_json TEXT NOT NULL,
    task TEXT NOT NULL,
    extraction TEXT NOT NULL,
    prompts TEXT NOT NULL,
    source TEXT
);

CREATE TABLE invocations (
    id INTEGER PRIMARY KEY,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    package_version TEXT NOT NULL,
    argv_json TEXT,
    calls_made INTEGER NOT NULL DEFAULT 0,
    calls_reused INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL DEFAULT 'running'
);

CREATE TABLE cases (
    case_id TEXT PRIMARY KEY,
    idx INTEGER NOT NULL,
    fields_json TEXT NOT NULL
);

CREATE TABLE agents (
    society TEXT NOT NULL,
    agent INTEGER NOT NULL,
    name TEXT NOT NULL,
    trait TEXT NOT NULL,
    role TEXT,
    backend TEXT NOT NULL,
    model TEXT NOT NULL,
    PRIMARY KEY (society, agent)
);

-- Which tree node each strategy reaches at each round: calls are stored once per node, and a
-- node is shared by every strategy with that prefix.
CREATE TABLE strategy_nodes (
    repeat INTEGER NOT NULL,
    case_id TEXT NOT NULL,
    society TEXT NOT NULL,
    strategy TEXT NOT NULL,
    round INTEGER NOT NULL,
    node TEXT NOT NULL,
    PRIMARY KEY (repeat, case_id, society, strategy, round)
);

CREATE TABLE calls (
    id INTEGER PRIMARY KEY,
    call_key TEXT NOT NULL UNIQUE,
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
    created_at TEXT NOT NULL
);

CREATE INDEX calls_by_position ON calls (society, repeat, case_id, node, agent);
