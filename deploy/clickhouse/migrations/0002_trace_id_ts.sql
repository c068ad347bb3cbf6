-- mcptap: single-only
-- 0002: the trace-id lookup table and its materialized view, as the clickhouseexporter deploys
-- them (traces_id_ts_lookup_table.sql + traces_id_ts_lookup_mv.sql). Grafana's ClickHouse
-- datasource finds `<table>_trace_id_ts` and narrows a trace-by-id query to
-- [min(Start), max(End) + 1] before scanning the traces table.
-- Start/End are second-precision DateTime and the MV aggregates per insert block, so one trace
-- can leave several rows: readers use min(Start) and max(End).
-- The cluster variant is 0003_trace_id_ts_replicated.sql.
CREATE TABLE IF NOT EXISTS `{{database}}`.`{{table}}_trace_id_ts` (
    TraceId String   CODEC(ZSTD(1)),
    Start   DateTime CODEC(Delta, ZSTD(1)),
    End     DateTime CODEC(Delta, ZSTD(1)),
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.01) GRANULARITY 1
) ENGINE = MergeTree()
PARTITION BY toDate(Start)
ORDER BY (TraceId, Start)
{{ttl_start}}
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1;

CREATE MATERIALIZED VIEW IF NOT EXISTS `{{database}}`.`{{table}}_trace_id_ts_mv`
TO `{{database}}`.`{{table}}_trace_id_ts`
AS SELECT
    TraceId,
    min(Timestamp) AS Start,
    max(Timestamp) AS End
FROM `{{database}}`.`{{table}}`
WHERE TraceId != ''
GROUP BY TraceId;
