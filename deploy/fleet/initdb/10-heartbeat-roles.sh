#!/bin/sh
# Run by the postgres image's entrypoint on the first start (an empty data volume): the
# fleet's roles, with the passwords of .env.fleet.
set -eu
: "${HEARTBEAT_AGENT_PASSWORD:?set HEARTBEAT_AGENT_PASSWORD}"
: "${HEARTBEAT_READER_PASSWORD:?set HEARTBEAT_READER_PASSWORD}"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v agent_pw="$HEARTBEAT_AGENT_PASSWORD" -v reader_pw="$HEARTBEAT_READER_PASSWORD" \
    -f /docker-entrypoint-initdb.d/heartbeat-roles.psql
