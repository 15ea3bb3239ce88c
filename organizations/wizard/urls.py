from django.urls import path

from organizations.wizard import views

app_name = "management"

urlpatterns = [
    path("organizations/", views.organization_list, name="organizations"),
    path("organizations/new/", views.wizard_start, name="wizard"),
    path("organizations/new/company/", views.wizard_company, name="wizard_company"),
    path("organizations/new/address/", views.wizard_address, name="wizard_address"),
    path("organizations/new/contact/", views.wizard_contact, name="wizard_contact"),
    path("organizations/new/structure/", views.wizard_structure, name="wizard_structure"),
    path("organizations/new/regulations/", views.wizard_regulations, name="wizard_regulations"),
    path("organizations/new/modules/", views.wizard_modules, name="wizard_modules"),
    path("organizations/new/review/", views.wizard_review, name="wizard_review"),
]
