"""Restores: the request guarded by the Owner's code, its codes, and uploaded backup files."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from accounts.models import Membership, User


def upload_to(instance: RestoreUpload, filename: str) -> str:
    # Opaque storage keys: no organization, file name or date in them.
    return f"restore-uploads/{uuid.uuid4().hex}.zip"


class RestoreQuerySet(models.QuerySet["Restore"]):
    def visible_to(self, user: User) -> RestoreQuerySet:
        """Restores the user may look at: their own requests, every restore of an organization
        they own or administer, and (Site Admins) every restore into a new organization."""
        if not user.is_authenticated or not user.is_active:
            return self.none()
        managed = Membership.objects.filter(user=user, role__in=(Membership.Role.OWNER, Membership.Role.ADMIN)).values(
            "organization_id"
        )
        visible = Q(requested_by=user) | Q(
            kind__in=(Restore.Kind.IN_PLACE, Restore.Kind.SELECTIVE), organization_id__in=managed
        )
        if user.is_site_admin:
            visible |= Q(kind=Restore.Kind.NEW_ORGANIZATION)
        return self.filter(visible)


class Restore(models.Model):
    """One restore: in place (guarded by the Owner's code) or into a new organization (wizard).

    In place: ``awaiting_code`` → ``queued`` (code and password accepted) → ``running`` →
    ``completed`` | ``failed``; ``awaiting_code`` → ``locked`` (too many wrong entries) |
    ``cancelled``. Selective (picked records of a backup, merged into the live organization):
    the same states and code; its selection is in ``options``. Into a new organization:
    created ``queued`` by the wizard.
    """

    class Kind(models.TextChoices):
        IN_PLACE = "in_place", "In place"
        NEW_ORGANIZATION = "new_organization", "Into a new organization"
        SELECTIVE = "selective", "Selected records"

    class Status(models.TextChoices):
        AWAITING_CODE = "awaiting_code", "Waiting for the Owner's code"
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"
        LOCKED = "locked", "Locked (too many wrong codes)"
        CANCELLED = "cancelled", "Cancelled"

    OPEN_STATUSES = (Status.AWAITING_CODE,)
    ACTIVE_STATUSES = (Status.QUEUED, Status.RUNNING)

    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.IN_PLACE)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.AWAITING_CODE, db_index=True)
    # In place: the organization restored. New organization: set when it was created.
    organization = models.ForeignKey(
        "organizations.Organization", on_delete=models.CASCADE, null=True, blank=True, related_name="restores"
    )
    backup = models.ForeignKey(
        "backups.Backup", on_delete=models.SET_NULL, null=True, blank=True, related_name="restores"
    )
    upload = models.ForeignKey(
        "restores.RestoreUpload", on_delete=models.SET_NULL, null=True, blank=True, related_name="restores"
    )
    requested_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    attempts = models.PositiveIntegerField(default=0, help_text="Wrong code or password entries.")
    options = models.JSONField(
        default=dict,
        blank=True,
        help_text="Wizard: the new organization's profile. Selective: the picked records and the choices.",
    )
    pre_restore_backup = models.ForeignKey(
        "backups.Backup", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True, help_text="Last sign of life of its worker.")
    completed_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    locked_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True)

    failure_reason = models.TextField(blank=True)
    row_counts = models.JSONField(default=dict, blank=True)
    files_restored = models.PositiveIntegerField(default=0)

    objects = RestoreQuerySet.as_manager()

    class Meta:
        ordering = ("-created_at", "-id")
        constraints = [
            # One request waiting for a code, and one restore queued or running, per organization.
            models.UniqueConstraint(
                fields=["organization"], condition=Q(status="awaiting_code"), name="restore_one_open_per_org"
            ),
            models.UniqueConstraint(
                fields=["organization"],
                condition=Q(status__in=["queued", "running"], kind="in_place"),
                name="restore_one_active_per_org",
            ),
        ]

    def __str__(self) -> str:
        return f"Restore #{self.pk} ({self.get_kind_display()}, {self.get_status_display()})"

    def get_absolute_url(self) -> str:
        return reverse("restores:detail", args=[self.pk])

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.COMPLETED, self.Status.FAILED, self.Status.LOCKED, self.Status.CANCELLED)

    @property
    def attempts_left(self) -> int:
        from django.conf import settings

        return max(0, settings.RESTORE_CODE_MAX_ATTEMPTS - self.attempts)


class RestoreCode(models.Model):
    """A code sent to the Owner for one restore request. Only its HMAC is stored.

    The HMAC (``settings.RESTORE_CODE_KEY``) covers the restore, backup, target organization
    and requester together with the code, so a code is worth nothing for any other request.
    Only the newest code of a request counts; sending a new one retires the previous.
    """

    restore = models.ForeignKey(Restore, on_delete=models.CASCADE, related_name="codes")
    organization = models.ForeignKey("organizations.Organization", on_delete=models.CASCADE, related_name="+")
    digest = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    sent_to = models.EmailField(blank=True)

    class Meta:
        ordering = ("-created_at", "-id")

    def __str__(self) -> str:
        return f"Code for restore #{self.restore_id} sent {self.created_at:%Y-%m-%d %H:%M}"

    @property
    def is_expired(self) -> bool:
        return self.expires_at <= timezone.now()


class RestoreUpload(models.Model):
    """A backup file uploaded for disaster recovery, verified, waiting for the wizard."""

    file = models.FileField(upload_to=upload_to, max_length=255)
    password_wrapped = models.TextField(help_text="The file's password, wrapped with BACKUP_KEYS.")
    uploaded_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    original_name = models.CharField(max_length=255, blank=True)
    size = models.PositiveBigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    manifest_summary = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ("-created_at", "-id")

    def __str__(self) -> str:
        return f"Upload #{self.pk} ({self.original_name})"
