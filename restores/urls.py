from django.urls import path

app_name = "restores"

# Filled by the restore work (issue 5): restores:start (backup pk), restores:wizard, ...
urlpatterns: list = []
