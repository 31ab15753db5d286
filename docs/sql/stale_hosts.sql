-- Hosts whose newest evidence of a control (per collector) is older than the cadence.
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
SELECT l.control, l.host, l.collector, l.newest
FROM latest l CROSS JOIN evident_params p
WHERE l.newest < p.stale_before
ORDER BY l.control, l.host, l.collector;
