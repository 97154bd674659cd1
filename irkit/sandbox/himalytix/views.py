"""The practice app's pages. `journal` carries the fault the error-spike drill switches on."""

from __future__ import annotations

import decimal
import os

import redis.asyncio
from celery import Celery
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from irkit.sandbox.himalytix.accounting.models import Invoice, JournalEntry
from irkit.sandbox.himalytix.flags import LEDGER_V2_FLAG
from irkit.sandbox.himalytix.tenancy.models import Tenant


def celery_app() -> Celery:
    from irkit.sandbox.tasks import app

    return app


def broker_client() -> redis.asyncio.Redis:
    return redis.asyncio.Redis.from_url(
        os.environ.get("IRKIT_SANDBOX_BROKER_URL", "redis://127.0.0.1:56379/0"),
        socket_timeout=2,
        socket_connect_timeout=2,
    )


def home(request: HttpRequest) -> HttpResponse:
    context = {"tenants": Tenant.objects.count(), "invoices": Invoice.objects.count()}
    return render(request, "home.html", context)


def api_health(request: HttpRequest) -> JsonResponse:
    """The API's own liveness: it reads the tables every request needs, so a missing relation
    (an unapplied migration) fails here as it would on every page."""
    return JsonResponse(
        {
            "status": "ok",
            "tenants": Tenant.objects.count(),
            "invoices": Invoice.objects.count(),
        }
    )


def journal(request: HttpRequest) -> JsonResponse:
    entries = list(JournalEntry.objects.order_by("-posted_at")[:20])
    if cache.get(LEDGER_V2_FLAG):
        # ledger v2 re-quantizes amounts to a precision the context cannot hold.
        context = decimal.Context(prec=4, traps=[decimal.InvalidOperation])
        for entry in entries:
            entry.amount = entry.amount.quantize(decimal.Decimal("0.000001"), context=context)
    return JsonResponse(
        {"entries": [{"id": e.id, "memo": e.memo, "amount": str(e.amount)} for e in entries]}
    )
