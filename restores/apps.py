from django.apps import AppConfig


class RestoresConfig(AppConfig):
    name = "restores"
    verbose_name = "Restores"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Changes to an organization in maintenance (being restored) are refused at the model level.
        from restores.maintenance import connect_guard

        connect_guard()
