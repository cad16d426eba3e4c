-- flujo cost ledger, schema version 1: one row per model call. Released migrations never
-- change; a new version is a new file, and only adds (columns with defaults, tables), so
-- that replicas of the previous release keep writing during a rolling upgrade.
CREATE TABLE cost_records (
    id BIGSERIAL PRIMARY KEY,
    timestamp_ns BIGINT NOT NULL,
    day DATE NOT NULL,
    request_id TEXT,
    trace_id TEXT,
    pipeline TEXT,
    step TEXT,
    model TEXT NOT NULL,
    provider TEXT NOT NULL,
    operation TEXT NOT NULL,
    input_tokens BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL,
    cache_read_input_tokens BIGINT NOT NULL,
    cache_write_input_tokens BIGINT NOT NULL,
    reasoning_output_tokens BIGINT NOT NULL,
    cost_nano_usd BIGINT,
    price_version TEXT NOT NULL
);
CREATE INDEX cost_records_day ON cost_records (day);
