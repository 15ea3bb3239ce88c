from django.urls import path

from backups import browse_views, compare_views, schedule_views, views

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
    path("<int:pk>/browse/", browse_views.browse_index, name="browse"),
    path("<int:pk>/browse/select/", browse_views.browse_select, name="browse_select"),
    path("<int:pk>/browse/<slug:model>/", browse_views.browse_model, name="browse_model"),
    path("<int:pk>/browse/<slug:model>/<int:record>/", browse_views.browse_record, name="browse_record"),
    path("<int:pk>/browse/<slug:model>/<int:record>/file/", browse_views.browse_file, name="browse_file"),
    path("<int:pk>/compare/", compare_views.compare_start, name="compare"),
    path("<int:pk>/changes/", compare_views.backup_changes, name="changes"),
    path("comparisons/<int:pk>/", compare_views.comparison_detail, name="comparison"),
    path("comparisons/<int:pk>/progress/", compare_views.comparison_progress, name="comparison_progress"),
    path("comparisons/<int:pk>/csv/", compare_views.comparison_csv, name="comparison_csv"),
    path("change-alerts/", compare_views.alert_settings_view, name="alert_settings"),
    path("schedules/", schedule_views.schedule_list, name="schedules"),
    path("schedules/new/", schedule_views.schedule_create, name="schedule_create"),
    path("schedules/<int:pk>/", schedule_views.schedule_edit, name="schedule_edit"),
    path("schedules/<int:pk>/delete/", schedule_views.schedule_delete_view, name="schedule_delete"),
]
