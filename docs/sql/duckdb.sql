-- DuckDB views over a store's compacted index (docs/sql/README.md).
-- Replace ${STORE} with the store directory or s3://bucket/prefix (INSTALL httpfs; LOAD
-- httpfs; for S3), ${REPORT_AT} with the instant the report describes and ${STALE_BEFORE}
-- with that instant minus the cadence, both UTC ('2026-11-20 07:00:00').
SET TimeZone = 'UTC';

CREATE OR REPLACE VIEW evident_index AS
SELECT * FROM read_parquet('${STORE}/parquet/*/*/*.parquet', hive_partitioning = true);

CREATE OR REPLACE VIEW evident_params AS
SELECT TIMESTAMP '${REPORT_AT}' AS report_at, TIMESTAMP '${STALE_BEFORE}' AS stale_before;

-- One row per observation and control it evidences.
CREATE OR REPLACE VIEW evident_evidence AS
SELECT key, hostname AS host, COALESCE(collector, '') AS collector,
       CAST(collected_at AS TIMESTAMP) AS collected_at, error, UNNEST(controls) AS control
FROM evident_index
WHERE kind = 'observation';

-- One row per check result and control the check evidences.
CREATE OR REPLACE VIEW evident_check_control AS
SELECT key, check_id, check_status, UNNEST(check_controls) AS control
FROM (
  SELECT key, c.id AS check_id, c.status AS check_status, c.controls AS check_controls
  FROM (SELECT key, UNNEST(checks) AS c FROM evident_index WHERE kind = 'observation') AS r
) AS cc;
