-- 0001: the traces table, column for column the OpenTelemetry Collector clickhouseexporter's
-- otel_traces (internal/sqltemplates/traces_table.sql, the generally deployed form), so the
-- exporter and mcptap can write to and read from the same table.
-- Differences from the exporter's DDL: none in columns, indexes, partitioning or ordering.
-- SETTINGS adds non_replicated_deduplication_window = 10000, which lets a retried INSERT with the
-- same insert_deduplication_token be dropped on a plain (non-replicated) MergeTree. Replicated
-- tables deduplicate through replicated_deduplication_window and ignore this setting.
-- In cluster mode this creates the local ReplicatedMergeTree table on every node, and
-- 0006_distributed.sql puts the Distributed table in front of it.
CREATE DATABASE IF NOT EXISTS `{{database}}` {{on_cluster}};

CREATE TABLE IF NOT EXISTS `{{database}}`.`{{local_table}}` {{on_cluster}} (
    Timestamp          DateTime64(9)                          CODEC(Delta, ZSTD(1)),
    TraceId            String                                 CODEC(ZSTD(1)),
    SpanId             String                                 CODEC(ZSTD(1)),
    ParentSpanId       String                                 CODEC(ZSTD(1)),
    TraceState         String                                 CODEC(ZSTD(1)),
    SpanName           LowCardinality(String)                 CODEC(ZSTD(1)),
    SpanKind           LowCardinality(String)                 CODEC(ZSTD(1)),
    ServiceName        LowCardinality(String)                 CODEC(ZSTD(1)),
    ResourceAttributes Map(LowCardinality(String), String)    CODEC(ZSTD(1)),
    ScopeName          String                                 CODEC(ZSTD(1)),
    ScopeVersion       String                                 CODEC(ZSTD(1)),
    SpanAttributes     Map(LowCardinality(String), String)    CODEC(ZSTD(1)),
    Duration           UInt64                                 CODEC(ZSTD(1)),
    StatusCode         LowCardinality(String)                 CODEC(ZSTD(1)),
    StatusMessage      String                                 CODEC(ZSTD(1)),
    Events Nested (
        Timestamp  DateTime64(9),
        Name       LowCardinality(String),
        Attributes Map(LowCardinality(String), String)
    ) CODEC(ZSTD(1)),
    Links Nested (
        TraceId    String,
        SpanId     String,
        TraceState String,
        Attributes Map(LowCardinality(String), String)
    ) CODEC(ZSTD(1)),
    INDEX idx_trace_id        TraceId                       TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_res_attr_key    mapKeys(ResourceAttributes)   TYPE bloom_filter(0.01)  GRANULARITY 1,
    INDEX idx_res_attr_value  mapValues(ResourceAttributes) TYPE bloom_filter(0.01)  GRANULARITY 1,
    INDEX idx_span_attr_key   mapKeys(SpanAttributes)       TYPE bloom_filter(0.01)  GRANULARITY 1,
    INDEX idx_span_attr_value mapValues(SpanAttributes)     TYPE bloom_filter(0.01)  GRANULARITY 1,
    INDEX idx_duration        Duration                      TYPE minmax              GRANULARITY 1
) ENGINE = {{engine}}
PARTITION BY toDate(Timestamp)
ORDER BY (ServiceName, SpanName, toDateTime(Timestamp))
{{ttl}}
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1, non_replicated_deduplication_window = 10000;
