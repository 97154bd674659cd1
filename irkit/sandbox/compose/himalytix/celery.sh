#!/bin/sh
# The celery service: the app's worker as PID 1 (`celery -A dashboard`, the runbook's app name).
set -eu
# The broker first, as `wait-for-it --strict` would: a worker that cannot reach it within a few
# seconds exits, and `restart: always` tries again. While the broker is gone (the
# compose-celery-crashloop drill stops Redis) the worker crash-loops at start.
if ! python3 -c '
import os, sys, time, redis
broker = redis.Redis.from_url(os.environ["IRKIT_SANDBOX_BROKER_URL"], socket_connect_timeout=1)
for _ in range(5):
    try:
        sys.exit(0 if broker.ping() else 1)
    except redis.exceptions.ConnectionError:
        time.sleep(1)
sys.exit(1)'; then
    echo "celery: the broker does not answer at start; exiting" >&2
    exit 1
fi
exec celery -A dashboard worker -n "celery@${HOSTNAME:-himalytix}" -c 2 -Q celery \
    --pool prefork --without-gossip --without-mingle --loglevel INFO
