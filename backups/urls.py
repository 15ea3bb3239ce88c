from django.urls import path

from backups import schedule_views, views

app_name = "backups"

urlpatterns = [
    path("", views.backup_list, name="list"),
    path("toolbar/", views.backup_toolbar, name="toolbar"),
    path("request/", views.backup_request_view, name="request"),
    path("<int:pk>/", views.backup_detail, name="detail"),
    path("<int:pk>/row/", views.backup_row, name="row"),
    path("<int:pk>/history/", views.backup_history, name="history"),
    path("<int:pk>/download/", views.backup_download, name="download"),
    path("<int:pk>/cancel/", views.backup_cancel_view, name="cancel"),
    path("<int:pk>/expire/", views.backup_expire_view, name="expire"),
    path("<int:pk>/verify/", views.backup_verify_view, name="verify"),
    path("schedules/", schedule_views.schedule_list, name="schedules"),
    path("schedules/new/", schedule_views.schedule_create, name="schedule_create"),
    path("schedules/<int:pk>/", schedule_views.schedule_edit, name="schedule_edit"),
    path("schedules/<int:pk>/delete/", schedule_views.schedule_delete_view, name="schedule_delete"),
]
