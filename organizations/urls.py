from django.urls import path

from organizations import views

app_name = "organizations"

urlpatterns = [
    path("switch/", views.organization_switch, name="switch"),
    path("<slug:slug>/", views.organization_detail, name="detail"),
]
