"""Controlled documents, their versions and stored files."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from django.db import models
from django.utils import timezone


def document_file_upload_to(instance: DocumentVersion, filename: str) -> str:
    # Opaque keys: nothing about the tenant or the document leaks into storage paths.
    return f"documents/{uuid.uuid4().hex}"


class ControlledDocument(models.Model):
    """A controlled document held in one OU."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        INACTIVE = "inactive", "Inactive"
        SUPERSEDED = "superseded", "Superseded"

    organization = models.ForeignKey("organizations.Organization", on_delete=models.CASCADE, related_name="documents")
    ou = models.ForeignKey("organizations.OrganisationalUnit", on_delete=models.PROTECT, related_name="documents")
    reference = models.CharField(max_length=50)
    title = models.CharField(max_length=300)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.ACTIVE, db_index=True)
    owner_email = models.EmailField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("organization", "reference")
        constraints = [
            models.UniqueConstraint(fields=["organization", "reference"], name="document_unique_reference"),
        ]

    def __str__(self) -> str:
        return f"{self.reference} {self.title}"


class DocumentVersion(models.Model):
    """One version of a document with its stored file."""

    document = models.ForeignKey(ControlledDocument, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    file = models.FileField(upload_to=document_file_upload_to, max_length=255)
    filename = models.CharField(max_length=255, help_text="The name the file had when uploaded.")
    content_type = models.CharField(max_length=100, blank=True)
    size = models.PositiveBigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    note = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("document", "number")
        constraints = [models.UniqueConstraint(fields=["document", "number"], name="version_unique_number")]

    def __str__(self) -> str:
        return f"{self.document.reference} v{self.number}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        """A newly attached file (an upload, the admin's "change" of the file) records its own size
        and SHA-256, so the recorded pair always describes the stored bytes: restores trust it to
        tell an unchanged file without reading it back from storage."""
        if self.file and not self.file._committed:
            digest, size = hashlib.sha256(), 0
            for chunk in self.file.chunks():
                digest.update(chunk)
                size += len(chunk)
            self.sha256, self.size = digest.hexdigest(), size
        super().save(*args, **kwargs)
