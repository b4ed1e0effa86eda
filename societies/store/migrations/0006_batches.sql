-- Provider batches (issue 13): every batch a run submits, recorded as it is submitted, and the
-- calls it holds, so that a run killed while batches are in progress resumes by polling them
-- (never submitting them again). An item names its call by position (typed columns, as in
-- calls) and carries the hash of the request line it was sent as.
CREATE TABLE batches (
    id INTEGER PRIMARY KEY,
    -- submitting: input file uploaded, the batch maybe created; submitted: the provider's id
    -- is known; ended: in a final state at the provider (its files named below); collected:
    -- every answer it gave is stored as a call.
    state TEXT NOT NULL CHECK (state IN ('submitting', 'submitted', 'ended', 'collected')),
    input_file_id TEXT NOT NULL,
    provider_id TEXT,
    provider_status TEXT,
    output_file_id TEXT,
    error_file_id TEXT,
    model TEXT NOT NULL,
    requests INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    ended_at TEXT
);
CREATE TABLE batch_items (
    batch INTEGER NOT NULL REFERENCES batches (id),
    custom_id TEXT NOT NULL,
    repeat INTEGER NOT NULL,
    case_id TEXT NOT NULL,
    society TEXT NOT NULL,
    node TEXT NOT NULL,
    agent INTEGER NOT NULL,
    step TEXT NOT NULL,
    body_hash TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    -- pending until its batch ends; then answered or failed (retried in a later batch).
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'answered', 'failed')),
    PRIMARY KEY (batch, custom_id)
);
CREATE INDEX batch_items_key ON batch_items (society, repeat, case_id, node, agent, step)
