from django.urls import path

from restores import selective_views, views, wizard, wizard_steps

app_name = "restores"

urlpatterns = [
    # In place, guarded by the Owner's code. The Account Backups list links to restores:start.
    path("backup/<int:backup_pk>/", views.restore_start, name="start"),
    path("backup/<int:backup_pk>/verify/", views.backup_verify, name="verify"),
    path("backup/<int:backup_pk>/selective/", selective_views.selective_restore, name="selective"),
    path("<int:pk>/", views.restore_detail, name="detail"),
    path("<int:pk>/confirm/", views.restore_confirm, name="confirm"),
    path("<int:pk>/resend/", views.restore_resend, name="resend"),
    path("<int:pk>/cancel/", views.restore_cancel, name="cancel"),
    path("settings/", views.restore_settings, name="settings"),
    # Into a new organization: the organization wizard's "Restore from backup" (Site Admins).
    path("wizard/", wizard.wizard_start, name="wizard"),
    path("wizard/backup/", wizard.wizard_backup, name="wizard_backup"),
    path("wizard/upload/", wizard.wizard_upload, name="wizard_upload"),
    path("wizard/organization/", wizard_steps.wizard_profile, name="wizard_profile"),
    path("wizard/address/", wizard_steps.wizard_address, name="wizard_address"),
    path("wizard/contact/", wizard_steps.wizard_contact, name="wizard_contact"),
    path("wizard/structure/", wizard_steps.wizard_structure, name="wizard_structure"),
    path("wizard/regulations/", wizard_steps.wizard_regulations, name="wizard_regulations"),
    path("wizard/modules/", wizard_steps.wizard_modules, name="wizard_modules"),
    path("wizard/confirm/", wizard_steps.wizard_confirm, name="wizard_confirm"),
    path("wizard/backup/<int:backup_pk>/logo/", wizard.backup_logo, name="backup_logo"),
    path("wizard/upload/<int:upload_pk>/logo/", wizard.upload_logo, name="upload_logo"),
]
