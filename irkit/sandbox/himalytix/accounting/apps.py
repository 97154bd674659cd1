from django.apps import AppConfig


class AccountingConfig(AppConfig):
    name = "irkit.sandbox.himalytix.accounting"
    label = "accounting"
