"""`django-admin practice_data`: the tenants, users and ledger the drills and checks look at.

Safe to run again: rows are created once, and users' last logins are spread over the last 40
minutes on every run so that the runbook's "active users (last 5 min)" has an answer. It lives in
the accounting app, which builds on tenancy: it seeds both, and tenancy imports nothing back.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from irkit.sandbox.himalytix.accounting.models import Invoice, JournalEntry
from irkit.sandbox.himalytix.tenancy.models import Tenant

TENANTS = [
    ("Acme Trading", "acme"),
    ("Everest Foods", "everest"),
    ("Lumbini Textiles", "lumbini"),
    ("Pokhara Tours", "pokhara"),
]
USERS = 40


class Command(BaseCommand):
    help = "Create or refresh the practice stack's tenants, users and ledger."

    def handle(self, *args: Any, **options: Any) -> None:
        now = timezone.now()
        with transaction.atomic():
            tenants = [
                Tenant.objects.get_or_create(name=name, defaults={"schema_name": schema})[0]
                for name, schema in TENANTS
            ]
            for n in range(1, USERS + 1):
                user, created = User.objects.get_or_create(
                    username=f"user{n}", defaults={"email": f"user{n}@example.com"}
                )
                if created:
                    user.set_unusable_password()
                user.last_login = now - timedelta(minutes=n % 40)
                user.save()
            if not JournalEntry.objects.exists():
                JournalEntry.objects.bulk_create(
                    JournalEntry(
                        tenant=tenants[i % len(tenants)],
                        memo=f"practice entry {i}",
                        amount=Decimal(i * 137 % 10_000) / 100,
                    )
                    for i in range(200)
                )
            if not Invoice.objects.exists():
                Invoice.objects.bulk_create(
                    Invoice(tenant=tenants[i % len(tenants)], number=f"INV-{i:05d}", total=i * 10)
                    for i in range(50)
                )
        self.stdout.write(f"practice data ready: {len(tenants)} tenants, {USERS} users")
