-- mcptap: cluster-only
-- 0003: cluster variant of 0002. The lookup table is local to each node
-- (`{{local_table}}_trace_id_ts`, ReplicatedMergeTree) and is filled by an MV on the local
-- traces table, so a trace's lookup rows live on the shard that holds its spans (both
-- Distributed tables shard by cityHash64(TraceId)). 0006_distributed.sql adds the
-- Distributed `{{table}}_trace_id_ts` that Grafana queries.
-- The engine is written out here rather than taken from the engine placeholder, because that
-- one carries the ZooKeeper path of the traces table, and two tables cannot share a path.
CREATE TABLE IF NOT EXISTS `{{database}}`.`{{local_table}}_trace_id_ts` {{on_cluster}} (
    TraceId String   CODEC(ZSTD(1)),
    Start   DateTime CODEC(Delta, ZSTD(1)),
    End     DateTime CODEC(Delta, ZSTD(1)),
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.01) GRANULARITY 1
) ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{{database}}/{{local_table}}_trace_id_ts', '{replica}')
PARTITION BY toDate(Start)
ORDER BY (TraceId, Start)
{{ttl_start}}
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1;

CREATE MATERIALIZED VIEW IF NOT EXISTS `{{database}}`.`{{local_table}}_trace_id_ts_mv` {{on_cluster}}
TO `{{database}}`.`{{local_table}}_trace_id_ts`
AS SELECT
    TraceId,
    min(Timestamp) AS Start,
    max(Timestamp) AS End
FROM `{{database}}`.`{{local_table}}`
WHERE TraceId != ''
GROUP BY TraceId;
