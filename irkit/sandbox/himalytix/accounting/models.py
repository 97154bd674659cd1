from django.db import models

from irkit.sandbox.himalytix.tenancy.models import Tenant


class JournalEntry(models.Model):
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE)
    posted_at = models.DateTimeField(auto_now_add=True)
    memo = models.TextField(blank=True, default="")
    amount = models.DecimalField(max_digits=14, decimal_places=2, default=0)


class Invoice(models.Model):
    """Added by the second migration: the relation the migration-failure drill takes away."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE)
    number = models.CharField(max_length=32)
    total = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    issued_at = models.DateTimeField(auto_now_add=True)
