#!/bin/sh
# The practice database: initialised on first start (superuser irkit, the app's role erp and its
# database himalytix, as `psql -U erp -d himalytix` in the runbook), then PostgreSQL in the
# foreground on 127.0.0.1:$PGPORT. Trust on loopback, as the embedded practice server: the stack
# holds no real data.
set -eu
PGPORT=${PGPORT:-5432}
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    initdb -D "$PGDATA" -U irkit -E UTF8 --no-locale --auth-local=trust --auth-host=trust >/dev/null
    cat >>"$PGDATA/postgresql.auto.conf" <<CONF
listen_addresses = '127.0.0.1'
unix_socket_directories = '/tmp'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 100
CONF
    pg_ctl -D "$PGDATA" -o "-p $PGPORT" -w start >/dev/null
    psql -h 127.0.0.1 -p "$PGPORT" -U irkit -d postgres -v ON_ERROR_STOP=1 -q <<SQL
CREATE ROLE erp LOGIN;
GRANT pg_monitor TO erp;
CREATE DATABASE himalytix OWNER erp;
SQL
    pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
fi
exec postgres -D "$PGDATA" -p "$PGPORT"
