-- flujo cost ledger, schema version 2: one-hour cache writes, and the fleet's spend per UTC
-- day, kept in the transaction of each batch, which the fleet-wide limits read (one row a
-- day, however many calls). Earlier rows are summed into it once, here.
ALTER TABLE cost_records ADD COLUMN cache_write_1h_input_tokens BIGINT NOT NULL DEFAULT 0;
CREATE TABLE flujo_daily_spend (
    day DATE PRIMARY KEY,
    cost_nano_usd NUMERIC NOT NULL
);
INSERT INTO flujo_daily_spend (day, cost_nano_usd)
    SELECT day, COALESCE(SUM(cost_nano_usd), 0) FROM cost_records GROUP BY day;
