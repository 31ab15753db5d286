-- Failing checks per control: each host whose newest record (per collector) fails the check
-- (check_id 'collection': the collection itself failed).
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
SELECT control, check_id, host, collector, key
FROM (
  SELECT control, check_id, host, collector, key FROM failed
  UNION ALL
  SELECT control, 'collection' AS check_id, host, collector, key FROM newest WHERE error
) AS x
ORDER BY control, check_id, host, collector;
