from django.apps import AppConfig


class RestoresConfig(AppConfig):
    name = "restores"
    verbose_name = "Restores"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Changes to an organization in maintenance (being restored) are refused at the model level.
        from backups.rotation import register_wrapped
        from restores.maintenance import connect_guard

        connect_guard()
        # Uploaded files' passwords are wrapped with BACKUP_KEYS too: key rotation re-wraps them.
        register_wrapped("restores.RestoreUpload", "password_wrapped")
