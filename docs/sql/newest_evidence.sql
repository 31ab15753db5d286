-- Newest evidence per control, host and collector (the report's drill-down): the record and
-- its status for that control (fail: a check of the control fails; error: collection failed).
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
)
SELECT n.control, n.host, n.collector, n.collected_at, n.key,
       CASE WHEN f.key IS NOT NULL THEN 'fail'
            WHEN n.error THEN 'error'
            ELSE 'pass' END AS status
FROM newest n
LEFT JOIN (SELECT DISTINCT key, control FROM failed) f
  ON f.key = n.key AND f.control = n.control
ORDER BY n.control, n.host, n.collector;
