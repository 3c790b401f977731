"""The event archive: every accepted event as Parquet on S3, by site and site-local day
(decision 0027), read by DuckDB for the questions the counters cannot answer."""
