-- Per-control readiness as `evident report` computes it, waivers aside: failing when the
-- newest record of some host and collector fails a check of the control or failed to
-- collect; else stale when the newest evidence of some host and collector is older than the
-- cadence (before stale_before); else passing. Controls without evidence are absent (the
-- report's no_evidence). hosts and records count the evidence up to report_at.
WITH ev AS (
  SELECT e.*
  FROM evident_evidence e CROSS JOIN evident_params p
  WHERE e.collected_at <= p.report_at
),
latest AS (
  SELECT control, host, collector, MAX(collected_at) AS newest
  FROM ev
  GROUP BY control, host, collector
),
newest AS (
  SELECT ev.control, ev.host, ev.collector, ev.key, ev.collected_at, ev.error
  FROM ev
  JOIN latest l
    ON ev.control = l.control AND ev.host = l.host AND ev.collector = l.collector
   AND ev.collected_at = l.newest
),
failed AS (
  SELECT n.control, n.host, n.collector, n.key, c.check_id
  FROM newest n
  JOIN evident_check_control c
    ON c.key = n.key AND c.control = n.control AND c.check_status <> 'pass'
),
failing AS (
  SELECT control, COUNT(*) AS failing
  FROM (
    SELECT control, host, collector FROM failed
    UNION
    SELECT control, host, collector FROM newest WHERE error
  ) AS f
  GROUP BY control
),
stale AS (
  SELECT l.control, COUNT(*) AS stale
  FROM latest l CROSS JOIN evident_params p
  WHERE l.newest < p.stale_before
  GROUP BY l.control
),
totals AS (
  SELECT control, COUNT(DISTINCT host) AS hosts, COUNT(*) AS records,
         MAX(collected_at) AS newest
  FROM ev
  GROUP BY control
)
SELECT t.control,
       CASE WHEN f.failing > 0 THEN 'failing'
            WHEN s.stale > 0 THEN 'stale'
            ELSE 'passing' END AS status,
       t.hosts, t.records, t.newest
FROM totals t
LEFT JOIN failing f ON f.control = t.control
LEFT JOIN stale s ON s.control = t.control
ORDER BY t.control;
