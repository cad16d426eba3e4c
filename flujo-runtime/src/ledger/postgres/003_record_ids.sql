-- flujo cost ledger, schema version 3: each record's identity (16 bytes, made from its model
-- call's trace and span ids). A batch written again because its commit's acknowledgement
-- was lost finds its rows already there and adds nothing, to the rows or to the daily
-- spend. Rows of earlier versions (and of replicas not yet upgraded) have none, and are
-- never refused.
ALTER TABLE cost_records ADD COLUMN record_id BYTEA;
CREATE UNIQUE INDEX cost_records_record_id ON cost_records (record_id);
