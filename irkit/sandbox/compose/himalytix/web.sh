#!/bin/sh
# The web service: the app's migrations (and its practice data on a new database), then gunicorn
# on 127.0.0.1:$WEB_PORT as PID 1. One worker with threads, as the embedded stack's, so that
# django-prometheus's counters are one series; --reuse-port lets `--scale web=3` share the port on
# the host's network.
set -eu
# The compose-web-oom drill: a flag in the bind-mounted drill folder makes PID 1 allocate past
# the container's memory limit once, at the first start that finds it, so the kernel kills it and
# `restart: always` brings it back: what a leak does between two deploys. The mark is kept in the
# container's own layer, so a restart (by the engine or by hand) does not repeat it.
if [ -e /irkit-drill/web-oom ] && [ ! -e /tmp/irkit-drill-web-oom.done ]; then
    touch /tmp/irkit-drill-web-oom.done
    echo "drill compose-web-oom: allocating past the memory limit" >&2
    exec tail /dev/zero
fi
# One Django start for both (each costs seconds under the container's CPU limit); practice_data
# is safe to run again.
python -c 'import django; django.setup()
from django.core.management import call_command
call_command("migrate", interactive=False)
call_command("practice_data")'
exec gunicorn irkit.sandbox.himalytix.wsgi:application \
    --bind "127.0.0.1:${WEB_PORT:-8000}" --reuse-port \
    --workers 1 --worker-class gthread --threads 8 \
    --timeout 30 --graceful-timeout 5 --name himalytix-web \
    --no-control-socket --access-logfile - --error-logfile -
