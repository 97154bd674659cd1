#!/usr/bin/env python3
"""The practice app's manage.py, as a Django project has one: `docker-compose exec web python
manage.py migrate` works verbatim."""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "irkit.sandbox.himalytix.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
