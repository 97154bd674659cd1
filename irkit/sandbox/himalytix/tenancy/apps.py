from django.apps import AppConfig


class TenancyConfig(AppConfig):
    name = "irkit.sandbox.himalytix.tenancy"
    label = "tenancy"
