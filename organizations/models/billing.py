"""Financial and billing data, templates and billing codes."""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.utils import timezone


class BillingCode(models.Model):
    organization = models.ForeignKey(
        "organizations.Organization", on_delete=models.CASCADE, related_name="billing_codes"
    )
    code = models.CharField(max_length=30)
    description = models.CharField(max_length=200)
    hourly_rate = models.DecimalField(max_digits=10, decimal_places=2, default=Decimal("0"))

    class Meta:
        ordering = ("organization", "code")
        constraints = [models.UniqueConstraint(fields=["organization", "code"], name="billing_code_unique")]

    def __str__(self) -> str:
        return self.code


class Template(models.Model):
    class Kind(models.TextChoices):
        LETTER = "letter", "Letter"
        INVOICE = "invoice", "Invoice"
        EMAIL = "email", "Email"
        DOCUMENT = "document", "Document"

    organization = models.ForeignKey("organizations.Organization", on_delete=models.CASCADE, related_name="templates")
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.LETTER)
    body = models.TextField(blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("organization", "name")
        constraints = [models.UniqueConstraint(fields=["organization", "name"], name="template_unique_name")]

    def __str__(self) -> str:
        return self.name


class Invoice(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        ISSUED = "issued", "Issued"
        PAID = "paid", "Paid"
        VOID = "void", "Void"

    organization = models.ForeignKey("organizations.Organization", on_delete=models.CASCADE, related_name="invoices")
    client = models.ForeignKey("organizations.Client", on_delete=models.PROTECT, related_name="invoices")
    matter = models.ForeignKey(
        "organizations.Matter", on_delete=models.PROTECT, null=True, blank=True, related_name="invoices"
    )
    number = models.CharField(max_length=30)
    issued_on = models.DateField()
    due_on = models.DateField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ISSUED)
    currency = models.CharField(max_length=3, default="GBP")
    total = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0"))

    class Meta:
        ordering = ("organization", "-issued_on", "number")
        constraints = [models.UniqueConstraint(fields=["organization", "number"], name="invoice_unique_number")]

    def __str__(self) -> str:
        return self.number


class TimeEntry(models.Model):
    organization = models.ForeignKey(
        "organizations.Organization", on_delete=models.CASCADE, related_name="time_entries"
    )
    matter = models.ForeignKey("organizations.Matter", on_delete=models.CASCADE, related_name="time_entries")
    billing_code = models.ForeignKey(
        BillingCode, on_delete=models.PROTECT, null=True, blank=True, related_name="time_entries"
    )
    invoice = models.ForeignKey(Invoice, on_delete=models.SET_NULL, null=True, blank=True, related_name="time_entries")
    user_email = models.EmailField(help_text="Who worked; kept as an email so it survives a restore.")
    worked_on = models.DateField()
    minutes = models.PositiveIntegerField()
    description = models.CharField(max_length=300, blank=True)
    rate = models.DecimalField(max_digits=10, decimal_places=2, default=Decimal("0"))

    class Meta:
        ordering = ("organization", "-worked_on", "id")
        verbose_name_plural = "time entries"

    def __str__(self) -> str:
        return f"{self.worked_on} {self.minutes} min"


class Payment(models.Model):
    class Method(models.TextChoices):
        BANK = "bank", "Bank transfer"
        CARD = "card", "Card"
        CASH = "cash", "Cash"

    organization = models.ForeignKey("organizations.Organization", on_delete=models.CASCADE, related_name="payments")
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="payments")
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    received_on = models.DateField()
    method = models.CharField(max_length=10, choices=Method.choices, default=Method.BANK)
    reference = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ("organization", "-received_on", "id")

    def __str__(self) -> str:
        return f"{self.amount} on {self.received_on}"
