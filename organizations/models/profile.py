"""The organization itself: profile, master data, regulations, settings and subscription."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from django.db import models
from django.urls import reverse
from django.utils import timezone

if TYPE_CHECKING:
    from accounts.models import User


class MasterDataVersion(models.Model):
    """A release of the global catalog (regulations) that organizations are aligned with."""

    code = models.CharField(max_length=20, unique=True)
    name = models.CharField(max_length=100)
    released_on = models.DateField()

    class Meta:
        ordering = ("-released_on",)

    def __str__(self) -> str:
        return self.name


class Regulation(models.Model):
    """One entry of a master data version's regulation catalog."""

    master_data_version = models.ForeignKey(MasterDataVersion, on_delete=models.CASCADE, related_name="regulations")
    code = models.CharField(max_length=50)
    title = models.CharField(max_length=200)
    jurisdiction = models.CharField(max_length=50, blank=True)

    class Meta:
        ordering = ("master_data_version", "code")
        constraints = [
            models.UniqueConstraint(fields=["master_data_version", "code"], name="regulation_unique_code"),
        ]

    def __str__(self) -> str:
        return f"{self.code} – {self.title}"


class OrganizationQuerySet(models.QuerySet["Organization"]):
    def for_user(self, user: User) -> OrganizationQuerySet:
        """Organizations the user may open: Site Admins see all, others their memberships."""
        if not user.is_authenticated or not user.is_active:
            return self.none()
        if user.is_site_admin:
            return self.all()
        return self.filter(memberships__user=user).distinct()


def logo_upload_to(instance: Organization, filename: str) -> str:
    # Opaque names: storage keys must not carry tenant data.
    import uuid

    return f"logos/{uuid.uuid4().hex}"


class Organization(models.Model):
    """A tenant. Every record in the system belongs to exactly one organization."""

    slug = models.SlugField(max_length=60, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    logo = models.FileField(upload_to=logo_upload_to, blank=True)
    license_identifier = models.CharField(max_length=100, blank=True)
    jurisdiction = models.CharField(max_length=100, blank=True)
    master_data_version = models.ForeignKey(MasterDataVersion, on_delete=models.PROTECT, related_name="organizations")
    language_settings = models.JSONField(
        default=dict, blank=True, help_text='e.g. {"default": "en", "available": ["en", "de"]}'
    )
    creation_wizard_data = models.JSONField(default=dict, blank=True)
    regulations = models.ManyToManyField(Regulation, blank=True, related_name="organizations")
    created_at = models.DateTimeField(default=timezone.now)

    # Restores (the restores app writes these): who may start one, and the maintenance window
    # during which a restore replaces the data (a banner shows, changes are refused).
    class RestorePolicy(models.TextChoices):
        OWNER_AND_ADMINS = "owner_and_admins", "The Owner and Admins"
        OWNER_ONLY = "owner_only", "The Owner only"

    restore_policy = models.CharField(
        max_length=20,
        choices=RestorePolicy.choices,
        default=RestorePolicy.OWNER_AND_ADMINS,
        help_text="Who may start an in-place restore (always with the Owner's code). Changed by the Owner only.",
    )
    maintenance_since = models.DateTimeField(null=True, blank=True)
    maintenance_reason = models.CharField(max_length=200, blank=True)

    objects = OrganizationQuerySet.as_manager()

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("organizations:detail", args=[self.slug])

    @property
    def in_maintenance(self) -> bool:
        return self.maintenance_since is not None

    @property
    def is_enterprise(self) -> bool:
        """Enterprise accounts are those organised in facilities."""
        return self.facilities.exists()


class OrganizationSetting(models.Model):
    """Configuration and settings of an organization, one key per row."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="settings")
    key = models.CharField(max_length=100)
    # Nullable: a JSON null value is stored as SQL NULL and must survive a round trip.
    value = models.JSONField(default=dict, blank=True, null=True)

    class Meta:
        ordering = ("organization", "key")
        constraints = [models.UniqueConstraint(fields=["organization", "key"], name="setting_unique_key")]

    def __str__(self) -> str:
        return self.key


class Subscription(models.Model):
    """The backup subscription, kept by operators in the Django admin."""

    organization = models.OneToOneField(Organization, on_delete=models.CASCADE, related_name="subscription")
    plan = models.CharField(max_length=50, default="Account Backups")
    starts_on = models.DateField()
    ends_on = models.DateField()
    notes = models.TextField(blank=True)

    class Meta:
        ordering = ("organization",)
        constraints = [
            models.CheckConstraint(
                condition=models.Q(ends_on__gte=models.F("starts_on")), name="subscription_ends_after_start"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.organization}: {self.starts_on} → {self.ends_on}"

    def is_valid(self, on: dt.date | None = None) -> bool:
        day = on or timezone.localdate()
        return self.starts_on <= day <= self.ends_on
