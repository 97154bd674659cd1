#!/bin/sh
# The celery service: the app's worker as PID 1 (`celery -A dashboard`, the runbook's app name).
set -eu
# The compose-celery-crashloop drill: a flag in the bind-mounted drill folder makes the worker
# exit at once at every start, and `restart: always` restarts it, again and again.
if [ -e /irkit-drill/celery-crashloop ]; then
    echo "drill compose-celery-crashloop: the worker exits at start" >&2
    exit 3
fi
exec celery -A dashboard worker -n "celery@${HOSTNAME:-himalytix}" -c 2 -Q celery \
    --pool prefork --without-gossip --without-mingle --loglevel INFO
