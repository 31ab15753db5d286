-- Amazon Athena / Trino over the bucket: the compacted index as an external table with
-- partition projection on date and host (no crawler, no MSCK REPAIR), and the same views.
-- Replace ${BUCKET_PREFIX} (bucket/prefix), ${FIRST_DAY} and ${HOSTS} (comma-separated
-- path-safe host names, or use 'injected' projection and always filter on host).
CREATE EXTERNAL TABLE IF NOT EXISTS evident_index (
  key string, digest string, agent string, chain string, sequence bigint, kind string,
  collector string, hostname string, collected_at timestamp,
  controls array<string>, status string, error boolean,
  checks array<struct<id:string, status:string, controls:array<string>>>
)
PARTITIONED BY (`date` string, host string)
STORED AS PARQUET
LOCATION 's3://${BUCKET_PREFIX}/parquet/'
TBLPROPERTIES (
  'projection.enabled' = 'true',
  'projection.date.type' = 'date',
  'projection.date.format' = 'yyyy-MM-dd',
  'projection.date.range' = '${FIRST_DAY},NOW',
  'projection.date.interval' = '1',
  'projection.date.interval.unit' = 'DAYS',
  'projection.host.type' = 'enum',
  'projection.host.values' = '${HOSTS}',
  'storage.location.template' = 's3://${BUCKET_PREFIX}/parquet/date=${date}/host=${host}/'
);

CREATE OR REPLACE VIEW evident_params AS
SELECT TIMESTAMP '${REPORT_AT}' AS report_at, TIMESTAMP '${STALE_BEFORE}' AS stale_before;

CREATE OR REPLACE VIEW evident_evidence AS
SELECT i.key, i.hostname AS host, COALESCE(i.collector, '') AS collector,
       CAST(i.collected_at AS TIMESTAMP) AS collected_at, i.error, t.control
FROM evident_index i CROSS JOIN UNNEST(i.controls) AS t (control)
WHERE i.kind = 'observation';

CREATE OR REPLACE VIEW evident_check_control AS
SELECT i.key, u.check_id, u.check_status, t.control
FROM evident_index i
CROSS JOIN UNNEST(i.checks) AS u (check_id, check_status, check_controls)
CROSS JOIN UNNEST(u.check_controls) AS t (control)
WHERE i.kind = 'observation';
