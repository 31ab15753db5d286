-- DuckDB views over a store's JSON-lines index (days not compacted yet), same columns as
-- duckdb.sql. The same ${...} placeholders.
SET TimeZone = 'UTC';

CREATE OR REPLACE VIEW evident_index AS
SELECT * FROM read_json('${STORE}/index/*/*/*.jsonl', format = 'newline_delimited',
  hive_partitioning = false,
  columns = {key: 'VARCHAR', digest: 'VARCHAR', agent: 'VARCHAR', chain: 'VARCHAR',
             sequence: 'UBIGINT', kind: 'VARCHAR', collector: 'VARCHAR', host: 'VARCHAR',
             collected_at: 'TIMESTAMPTZ', controls: 'VARCHAR[]', status: 'VARCHAR',
             checks: 'MAP(VARCHAR, VARCHAR)', error: 'BOOLEAN',
             check_controls: 'MAP(VARCHAR, VARCHAR[])'});

CREATE OR REPLACE VIEW evident_params AS
SELECT TIMESTAMP '${REPORT_AT}' AS report_at, TIMESTAMP '${STALE_BEFORE}' AS stale_before;

CREATE OR REPLACE VIEW evident_evidence AS
SELECT key, host, COALESCE(collector, '') AS collector,
       CAST(collected_at AS TIMESTAMP) AS collected_at, COALESCE(error, false) AS error,
       UNNEST(controls) AS control
FROM evident_index
WHERE kind = 'observation';

CREATE OR REPLACE VIEW evident_check_control AS
SELECT key, check_id, check_status, UNNEST(COALESCE(check_controls[check_id], [])) AS control
FROM (
  SELECT key, check_controls, UNNEST(map_keys(checks)) AS check_id,
         UNNEST(map_values(checks)) AS check_status
  FROM evident_index WHERE kind = 'observation'
) AS r;
