"""Facilities and organisational units (OUs)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models


class Facility(models.Model):
    """A site of an enterprise organization grouping several OUs."""

    organization = models.ForeignKey("organizations.Organization", on_delete=models.CASCADE, related_name="facilities")
    name = models.CharField(max_length=200)
    code = models.CharField(max_length=30)

    class Meta:
        ordering = ("organization", "name")
        verbose_name_plural = "facilities"
        constraints = [models.UniqueConstraint(fields=["organization", "code"], name="facility_unique_code")]

    def __str__(self) -> str:
        return self.name


class OrganisationalUnit(models.Model):
    """An organisational unit; OU-scoped records and permissions hang off it."""

    organization = models.ForeignKey("organizations.Organization", on_delete=models.CASCADE, related_name="ous")
    facility = models.ForeignKey(Facility, on_delete=models.PROTECT, null=True, blank=True, related_name="ous")
    name = models.CharField(max_length=200)
    code = models.CharField(max_length=30)

    class Meta:
        ordering = ("organization", "name")
        verbose_name = "organisational unit"
        constraints = [models.UniqueConstraint(fields=["organization", "code"], name="ou_unique_code")]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.facility_id and self.facility.organization_id != self.organization_id:
            raise ValidationError({"facility": "The facility belongs to another organization."})
