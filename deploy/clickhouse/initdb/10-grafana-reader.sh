#!/bin/bash
# Runs once, when the ClickHouse volume is first initialised (docker-entrypoint-initdb.d).
# Grafana gets its own user that can only read Breakwater's database: the ClickHouse data source
# runs whatever SQL a dashboard holds, so it must not be able to write or drop anything.
set -euo pipefail

if [[ -z "${GRAFANA_CLICKHOUSE_PASSWORD:-}" ]]; then
  echo "GRAFANA_CLICKHOUSE_PASSWORD is not set: no grafana user created" >&2
  exit 1
fi
if [[ "${GRAFANA_CLICKHOUSE_PASSWORD}" == *"'"* || "${GRAFANA_CLICKHOUSE_PASSWORD}" == *"\\"* ]]; then
  echo "GRAFANA_CLICKHOUSE_PASSWORD must not contain quotes or backslashes" >&2
  exit 1
fi

clickhouse client --user "${CLICKHOUSE_USER}" --password "${CLICKHOUSE_PASSWORD}" --multiquery <<SQL
CREATE USER IF NOT EXISTS grafana IDENTIFIED WITH sha256_password BY '${GRAFANA_CLICKHOUSE_PASSWORD}';
GRANT SELECT ON ${CLICKHOUSE_DB}.* TO grafana;
SQL
