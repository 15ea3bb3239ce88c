"""The built-in permission and the system role Administration Editor (seed 002)."""

from django.db import migrations


def create_system_roles(apps, schema_editor):  # type: ignore[no-untyped-def]
    Permission = apps.get_model("accounts", "Permission")
    Role = apps.get_model("accounts", "Role")
    perm, _ = Permission.objects.get_or_create(
        codename="backups.manage_account_backups", defaults={"name": "Backups: Manage Account Backups"}
    )
    role, _ = Role.objects.get_or_create(name="Administration Editor", organization=None, defaults={"is_system": True})
    role.permissions.add(perm)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]
    operations = [migrations.RunPython(create_system_roles, migrations.RunPython.noop)]
