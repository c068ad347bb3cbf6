-- 0005: mcptap's columns. Every one is MATERIALIZED from the span/resource attribute maps, so
-- - writers (mcptap and the clickhouseexporter alike) keep inserting the same 22 columns,
-- - SELECT * and Grafana's queries do not see them (MATERIALIZED columns are left out of *),
-- - parts written before this migration compute them on read, no rewrite is needed.
-- Attribute names: docs/attributes.md. Values are strings as the exporter stores them.
-- The skip indexes below cover the analyzer's filters: handle ids, session ids and client
-- identity (bloom filters), and the small enumerations (set indexes) where rare values such as
-- a routing mismatch, an HTTP 5xx, an error type or leftover legacy traffic are what one looks for.
-- Indexes apply to parts written after this migration. To index older parts run, once:
--   ALTER TABLE <db>.<table> MATERIALIZE INDEX idx_mcp_handles_used  (and so on)
ALTER TABLE `{{database}}`.`{{local_table}}` {{on_cluster}}
    ADD COLUMN IF NOT EXISTS McpMethod           LowCardinality(String) MATERIALIZED SpanAttributes['mcp.method.name'] CODEC(ZSTD(1)),
    ADD COLUMN IF NOT EXISTS McpProtocolVersion  LowCardinality(String) MATERIALIZED SpanAttributes['mcp.protocol.version'] CODEC(ZSTD(1)),
    ADD COLUMN IF NOT EXISTS McpEra              LowCardinality(String) MATERIALIZED SpanAttributes['mcptap.era'] CODEC(ZSTD(1)),
    ADD COLUMN IF NOT EXISTS McpExchangeKind     LowCardinality(String) MATERIALIZED SpanAttributes['mcptap.exchange.kind'] CODEC(ZSTD(1)),
    ADD COLUMN IF NOT EXISTS McpClientName       LowCardinality(String) MATERIALIZED SpanAttributes['mcptap.client.name'] CODEC(ZSTD(1)),
    ADD COLUMN IF NOT EXISTS McpClientVersion    LowCardinality(String) MATERIALIZED SpanAttributes['mcptap.client.version'] CODEC(ZSTD(1)),
    ADD COLUMN IF NOT EXISTS McpSessionId        String                 MATERIALIZED SpanAttributes['mcp.session.id'] CODEC(ZSTD(1)),
    ADD COLUMN IF NOT EXISTS McpSessionMinted    String                 MATERIALIZED SpanAttributes['mcptap.session.minted'] CODEC(ZSTD(1)),
    ADD COLUMN IF NOT EXISTS ToolName            LowCardinality(String) MATERIALIZED SpanAttributes['gen_ai.tool.name'] CODEC(ZSTD(1)),
    ADD COLUMN IF NOT EXISTS HttpStatus          UInt16                 MATERIALIZED toUInt16OrZero(SpanAttributes['http.response.status_code']) CODEC(ZSTD(1)),
    ADD COLUMN IF NOT EXISTS RpcErrorCode        LowCardinality(String) MATERIALIZED SpanAttributes['rpc.response.status_code'] CODEC(ZSTD(1)),
    ADD COLUMN IF NOT EXISTS ErrorType           LowCardinality(String) MATERIALIZED SpanAttributes['error.type'] CODEC(ZSTD(1)),
    ADD COLUMN IF NOT EXISTS InstanceId          LowCardinality(String) MATERIALIZED ResourceAttributes['service.instance.id'] CODEC(ZSTD(1)),
    ADD COLUMN IF NOT EXISTS HandlesUsed         Array(String)          MATERIALIZED JSONExtract(SpanAttributes['mcptap.handles.used'], 'Array(String)') CODEC(ZSTD(1)),
    ADD COLUMN IF NOT EXISTS HandlesMinted       Array(String)          MATERIALIZED JSONExtract(SpanAttributes['mcptap.handles.minted'], 'Array(String)') CODEC(ZSTD(1)),
    ADD COLUMN IF NOT EXISTS RoutingMethodStatus LowCardinality(String) MATERIALIZED SpanAttributes['mcptap.routing.method_status'] CODEC(ZSTD(1)),
    ADD COLUMN IF NOT EXISTS RoutingNameStatus   LowCardinality(String) MATERIALIZED SpanAttributes['mcptap.routing.name_status'] CODEC(ZSTD(1));

ALTER TABLE `{{database}}`.`{{local_table}}` {{on_cluster}}
    ADD INDEX IF NOT EXISTS idx_mcp_handles_used    HandlesUsed         TYPE bloom_filter(0.01) GRANULARITY 1,
    ADD INDEX IF NOT EXISTS idx_mcp_handles_minted  HandlesMinted       TYPE bloom_filter(0.01) GRANULARITY 1,
    ADD INDEX IF NOT EXISTS idx_mcp_session_id      McpSessionId        TYPE bloom_filter(0.01) GRANULARITY 1,
    ADD INDEX IF NOT EXISTS idx_mcp_session_minted  McpSessionMinted    TYPE bloom_filter(0.01) GRANULARITY 1,
    ADD INDEX IF NOT EXISTS idx_mcp_client_name     McpClientName       TYPE bloom_filter(0.01) GRANULARITY 1,
    ADD INDEX IF NOT EXISTS idx_mcp_instance_id     InstanceId          TYPE bloom_filter(0.01) GRANULARITY 1,
    ADD INDEX IF NOT EXISTS idx_mcp_tool_name       ToolName            TYPE bloom_filter(0.01) GRANULARITY 1,
    ADD INDEX IF NOT EXISTS idx_mcp_method          McpMethod           TYPE set(64)            GRANULARITY 1,
    ADD INDEX IF NOT EXISTS idx_mcp_era             McpEra              TYPE set(4)             GRANULARITY 1,
    ADD INDEX IF NOT EXISTS idx_mcp_exchange_kind   McpExchangeKind     TYPE set(4)             GRANULARITY 1,
    ADD INDEX IF NOT EXISTS idx_mcp_http_status     HttpStatus          TYPE set(64)            GRANULARITY 1,
    ADD INDEX IF NOT EXISTS idx_mcp_error_type      ErrorType           TYPE set(64)            GRANULARITY 1,
    ADD INDEX IF NOT EXISTS idx_mcp_routing_method  RoutingMethodStatus TYPE set(8)             GRANULARITY 1,
    ADD INDEX IF NOT EXISTS idx_mcp_routing_name    RoutingNameStatus   TYPE set(8)             GRANULARITY 1;
