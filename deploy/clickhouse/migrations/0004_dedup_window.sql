-- mcptap: single-only
-- 0004: make insert_deduplication_token work on a traces table that 0001 did not create (for
-- example one created by the clickhouseexporter, whose SETTINGS lack the window).
-- A no-op when 0001 created the table. Replicated tables (cluster mode) deduplicate through
-- replicated_deduplication_window instead, so this file is single-only.
ALTER TABLE `{{database}}`.`{{table}}` MODIFY SETTING non_replicated_deduplication_window = 10000;
