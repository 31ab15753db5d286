-- Apache Spark SQL views over a store's compacted index (docs/sql/README.md). The same
-- ${...} placeholders as duckdb.sql; run with spark.sql.session.timeZone=UTC. ${STORE} is a
-- directory or an s3a://bucket/prefix URL.
CREATE OR REPLACE TEMPORARY VIEW evident_index
USING parquet
OPTIONS (path '${STORE}/parquet', pathGlobFilter '*.parquet');

CREATE OR REPLACE TEMPORARY VIEW evident_params AS
SELECT TIMESTAMP '${REPORT_AT}' AS report_at, TIMESTAMP '${STALE_BEFORE}' AS stale_before;

CREATE OR REPLACE TEMPORARY VIEW evident_evidence AS
SELECT key, hostname AS host, COALESCE(collector, '') AS collector,
       CAST(collected_at AS TIMESTAMP) AS collected_at, error, explode(controls) AS control
FROM evident_index
WHERE kind = 'observation';

CREATE OR REPLACE TEMPORARY VIEW evident_check_control AS
SELECT key, c.id AS check_id, c.status AS check_status, explode(c.controls) AS control
FROM (SELECT key, explode(checks) AS c FROM evident_index WHERE kind = 'observation') AS r;
