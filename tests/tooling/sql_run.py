"""Runs Evident's documented SQL (docs/sql/) on a real engine and prints the results as JSON.

usage: sql_run.py ENGINE STORE SQL_DIR REPORT_AT STALE_BEFORE [QUERY...]
ENGINE: duckdb (compacted Parquet index), duckdb-jsonl (JSON-lines index), spark (local mode).
REPORT_AT / STALE_BEFORE: 'YYYY-MM-DD HH:MM:SS[.fff]' UTC. Output: {"engine", "setup_seconds",
"queries": {name: {"columns", "rows", "seconds"}}}; timestamps as 'YYYY-MM-DDTHH:MM:SSZ'.
"""
import datetime
import json
import os
import sys
import time

QUERIES = ["control_status", "newest_evidence", "stale_hosts", "failing_checks"]


def statements(path, subst):
    text = open(path, encoding="utf-8").read()
    for k, v in subst.items():
        text = text.replace("${" + k + "}", v)
    lines = [l for l in text.splitlines() if not l.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def plain(v):
    if isinstance(v, datetime.datetime):
        if v.tzinfo is not None:
            v = v.astimezone(datetime.timezone.utc).replace(tzinfo=None)
        return v.strftime("%Y-%m-%dT%H:%M:%SZ")
    return v


def main():
    engine, store, sql_dir, report_at, stale_before = sys.argv[1:6]
    names = sys.argv[6:] or QUERIES
    subst = {"STORE": os.path.abspath(store), "REPORT_AT": report_at, "STALE_BEFORE": stale_before}
    t0 = time.monotonic()
    if engine in ("duckdb", "duckdb-jsonl"):
        import duckdb

        con = duckdb.connect()
        for s in statements(os.path.join(sql_dir, engine + ".sql"), subst):
            con.execute(s)

        def run(sql):
            cur = con.execute(sql)
            cols = [d[0] for d in cur.description]
            return cols, cur.fetchall()

    elif engine == "spark":
        from pyspark.sql import SparkSession

        spark = (
            SparkSession.builder.master("local[2]")
            .appName("evident-sql")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.sql.shuffle.partitions", "4")
            .getOrCreate()
        )
        spark.sparkContext.setLogLevel("ERROR")
        for s in statements(os.path.join(sql_dir, "spark.sql"), subst):
            spark.sql(s)

        def run(sql):
            df = spark.sql(sql)
            return df.columns, [tuple(r) for r in df.collect()]

    else:
        sys.exit(f"unknown engine {engine}")
    out = {"engine": engine, "setup_seconds": time.monotonic() - t0, "queries": {}}
    for name in names:
        sql = ";".join(statements(os.path.join(sql_dir, name + ".sql"), subst))
        t = time.monotonic()
        cols, rows = run(sql)
        out["queries"][name] = {
            "columns": cols,
            "rows": [[plain(v) for v in r] for r in rows],
            "seconds": time.monotonic() - t,
        }
    json.dump(out, sys.stdout)
    if engine == "spark":
        spark.stop()


if __name__ == "__main__":
    main()
