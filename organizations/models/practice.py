"""Clients and matters."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class Client(models.Model):
    organization = models.ForeignKey("organizations.Organization", on_delete=models.CASCADE, related_name="clients")
    ou = models.ForeignKey("organizations.OrganisationalUnit", on_delete=models.PROTECT, related_name="clients")
    name = models.CharField(max_length=200)
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=50, blank=True)
    address = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("organization", "name")

    def __str__(self) -> str:
        return self.name


class Matter(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed"

    organization = models.ForeignKey("organizations.Organization", on_delete=models.CASCADE, related_name="matters")
    ou = models.ForeignKey("organizations.OrganisationalUnit", on_delete=models.PROTECT, related_name="matters")
    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="matters")
    reference = models.CharField(max_length=50)
    title = models.CharField(max_length=300)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    opened_on = models.DateField()
    closed_on = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ("organization", "reference")
        constraints = [
            models.UniqueConstraint(fields=["organization", "reference"], name="matter_unique_reference"),
        ]

    def __str__(self) -> str:
        return f"{self.reference} {self.title}"
