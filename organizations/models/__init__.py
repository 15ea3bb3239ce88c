"""Tenant models, one module per concern."""

from .billing import BillingCode, Invoice, Payment, Template, TimeEntry
from .documents import ControlledDocument, DocumentVersion
from .practice import Client, Matter
from .profile import MasterDataVersion, Organization, OrganizationSetting, Regulation, Subscription
from .structure import Facility, OrganisationalUnit

__all__ = [
    "BillingCode",
    "Client",
    "ControlledDocument",
    "DocumentVersion",
    "Facility",
    "Invoice",
    "MasterDataVersion",
    "Matter",
    "OrganisationalUnit",
    "Organization",
    "OrganizationSetting",
    "Payment",
    "Regulation",
    "Subscription",
    "Template",
    "TimeEntry",
]
