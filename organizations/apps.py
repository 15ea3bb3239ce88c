from django.apps import AppConfig


class OrganizationsConfig(AppConfig):
    name = "organizations"
    verbose_name = "Organizations and tenant data"
    default_auto_field = "django.db.models.BigAutoField"
