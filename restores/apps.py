from django.apps import AppConfig


class RestoresConfig(AppConfig):
    name = "restores"
    verbose_name = "Restores"
    default_auto_field = "django.db.models.BigAutoField"
