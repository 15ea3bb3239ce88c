from django.contrib import admin
from django.urls import include, path

from backupsvc import health
from organizations import views as org_views

admin.site.site_header = "backupsvc operations"
admin.site.site_title = "backupsvc admin"

urlpatterns = [
    path("", org_views.dashboard, name="dashboard"),
    path("accounts/", include("accounts.urls")),
    path("organizations/", include("organizations.urls")),
    path("administration/", include("organizations.wizard.urls")),
    path("backups/", include("backups.urls")),
    path("restores/", include("restores.urls")),
    path("admin/", admin.site.urls),
    path("health/", health.health, name="health"),
]
