from django.urls import path

from backups import views

app_name = "backups"

urlpatterns = [
    path("", views.backup_list, name="list"),
    path("<int:pk>/", views.backup_detail, name="detail"),
]
