-- mcptap: cluster-only
-- 0006: the Distributed tables that writers and readers use in cluster mode. Both shard by
-- cityHash64(TraceId), so a trace's spans and its lookup rows land on the same shard.
-- `CREATE TABLE ... AS` copies the local table's columns, including the MATERIALIZED ones
-- from 0005 (an INSERT through the Distributed table forwards only the ordinary columns, and
-- each shard computes the MATERIALIZED ones). A later migration that adds a column must
-- alter both the local and the Distributed table.
CREATE TABLE IF NOT EXISTS `{{database}}`.`{{table}}` {{on_cluster}}
AS `{{database}}`.`{{local_table}}`
ENGINE = Distributed('{{cluster}}', '{{database}}', '{{local_table}}', cityHash64(TraceId));

CREATE TABLE IF NOT EXISTS `{{database}}`.`{{table}}_trace_id_ts` {{on_cluster}}
AS `{{database}}`.`{{local_table}}_trace_id_ts`
ENGINE = Distributed('{{cluster}}', '{{database}}', '{{local_table}}_trace_id_ts', cityHash64(TraceId));
