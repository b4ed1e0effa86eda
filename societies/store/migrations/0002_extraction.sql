-- Which extraction mode produced each stored answer. NULL: the run's mode when the call was
-- made (run.extraction at creation); `societies rescore` sets it for every answer it rewrites.
ALTER TABLE calls ADD COLUMN extraction TEXT;
ALTER TABLE run ADD COLUMN rescored_at TEXT
