from django.contrib import admin

from organizations.models import (
    BillingCode,
    Client,
    ControlledDocument,
    DocumentVersion,
    Facility,
    Invoice,
    MasterDataVersion,
    Matter,
    OrganisationalUnit,
    Organization,
    OrganizationSetting,
    Payment,
    Regulation,
    Subscription,
    Template,
    TimeEntry,
)


class TenantAdmin(admin.ModelAdmin):
    """Tenant records: always filterable by organization."""

    list_filter: tuple = ("organization",)
    list_select_related: tuple = ("organization",)


class RegulationInline(admin.TabularInline):
    model = Regulation
    extra = 0


@admin.register(MasterDataVersion)
class MasterDataVersionAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "released_on")
    search_fields = ("code", "name")
    inlines = (RegulationInline,)


@admin.register(Regulation)
class RegulationAdmin(admin.ModelAdmin):
    list_display = ("code", "title", "jurisdiction", "master_data_version")
    list_filter = ("master_data_version", "jurisdiction")
    search_fields = ("code", "title")


class SubscriptionInline(admin.StackedInline):
    model = Subscription
    extra = 0


class FacilityInline(admin.TabularInline):
    model = Facility
    extra = 0


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "jurisdiction", "master_data_version", "subscription_ends", "created_at")
    list_filter = ("master_data_version", "jurisdiction")
    search_fields = ("name", "slug", "license_identifier")
    prepopulated_fields = {"slug": ("name",)}
    filter_horizontal = ("regulations",)
    inlines = (SubscriptionInline, FacilityInline)
    list_select_related = ("master_data_version", "subscription")

    @admin.display(description="Subscription ends", ordering="subscription__ends_on")
    def subscription_ends(self, obj: Organization) -> object:
        sub = getattr(obj, "subscription", None)
        return sub.ends_on if sub else "—"


@admin.register(Subscription)
class SubscriptionAdmin(TenantAdmin):
    list_display = ("organization", "plan", "starts_on", "ends_on")
    search_fields = ("organization__name",)
    date_hierarchy = "ends_on"
    autocomplete_fields = ("organization",)


@admin.register(OrganizationSetting)
class OrganizationSettingAdmin(TenantAdmin):
    list_display = ("organization", "key", "value")
    search_fields = ("key",)


@admin.register(Facility)
class FacilityAdmin(TenantAdmin):
    list_display = ("name", "code", "organization")
    search_fields = ("name", "code")


@admin.register(OrganisationalUnit)
class OrganisationalUnitAdmin(TenantAdmin):
    list_display = ("name", "code", "facility", "organization")
    list_filter = ("organization", "facility")
    search_fields = ("name", "code", "organization__name")
    list_select_related = ("organization", "facility")


class VersionInline(admin.TabularInline):
    model = DocumentVersion
    extra = 0
    readonly_fields = ("size", "sha256", "created_at")


@admin.register(ControlledDocument)
class ControlledDocumentAdmin(TenantAdmin):
    list_display = ("reference", "title", "status", "ou", "organization", "updated_at")
    list_filter = ("status", "organization")
    search_fields = ("reference", "title")
    list_select_related = ("organization", "ou")
    inlines = (VersionInline,)


@admin.register(DocumentVersion)
class DocumentVersionAdmin(admin.ModelAdmin):
    list_display = ("document", "number", "filename", "content_type", "size", "created_at")
    list_filter = ("content_type", "document__organization")
    search_fields = ("document__reference", "filename", "sha256")
    list_select_related = ("document",)


@admin.register(Client)
class ClientAdmin(TenantAdmin):
    list_display = ("name", "email", "ou", "organization")
    search_fields = ("name", "email")


@admin.register(Matter)
class MatterAdmin(TenantAdmin):
    list_display = ("reference", "title", "client", "status", "opened_on", "organization")
    list_filter = ("status", "organization")
    search_fields = ("reference", "title", "client__name")
    list_select_related = ("organization", "client")


@admin.register(Invoice)
class InvoiceAdmin(TenantAdmin):
    list_display = ("number", "client", "status", "issued_on", "due_on", "total", "currency", "organization")
    list_filter = ("status", "currency", "organization")
    search_fields = ("number", "client__name")
    date_hierarchy = "issued_on"
    list_select_related = ("organization", "client")


@admin.register(TimeEntry)
class TimeEntryAdmin(TenantAdmin):
    list_display = ("worked_on", "user_email", "matter", "minutes", "billing_code", "organization")
    search_fields = ("user_email", "description", "matter__reference")
    date_hierarchy = "worked_on"
    list_select_related = ("organization", "matter", "billing_code")


@admin.register(Payment)
class PaymentAdmin(TenantAdmin):
    list_display = ("invoice", "amount", "received_on", "method", "organization")
    list_filter = ("method", "organization")
    search_fields = ("invoice__number", "reference")
    list_select_related = ("organization", "invoice")


@admin.register(Template)
class TemplateAdmin(TenantAdmin):
    list_display = ("name", "kind", "updated_at", "organization")
    list_filter = ("kind", "organization")
    search_fields = ("name",)


@admin.register(BillingCode)
class BillingCodeAdmin(TenantAdmin):
    list_display = ("code", "description", "hourly_rate", "organization")
    search_fields = ("code", "description")
