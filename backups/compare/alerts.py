"""Change alerts: a backup whose change summary shows a mass change (by default more than 20 %
and at least 50 records of one kind removed or changed) is marked, and its organization's Owner
and Admins hear about it by email and in-app, with a link to the comparison."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.urls import reverse

from accounts.models import Membership
from accounts.services import notification_send
from backups import datasets as ds
from backups.models import BackupComparison, ChangeAlertSettings
from backups.notify import send_templated_mail
from organizations.models import Organization

logger = logging.getLogger(__name__)

DEFAULTS = ChangeAlertSettings(percent=20, min_records=50, enabled=True)


def alert_settings(organization: Organization) -> ChangeAlertSettings:
    """The organization's thresholds (the defaults until the Owner saves them)."""
    found = ChangeAlertSettings.objects.filter(organization=organization).first()
    if found is not None:
        return found
    return ChangeAlertSettings(
        organization=organization, percent=DEFAULTS.percent, min_records=DEFAULTS.min_records, enabled=True
    )


def heavy_models(
    thresholds: ChangeAlertSettings, summary: dict[str, Any], counts: dict[str, Any]
) -> list[dict[str, Any]]:
    """The models whose removed + changed records pass both thresholds."""
    heavy = []
    for dataset, per_model in summary.items():
        for model, tally in per_model.items():
            touched = int(tally.get("removed", 0)) + int(tally.get("changed", 0))
            before = int(((counts.get(dataset) or {}).get(model) or {}).get("earlier", 0))
            if touched >= thresholds.min_records and before and touched * 100 > thresholds.percent * before:
                heavy.append(
                    {
                        "dataset": dataset,
                        "model": model,
                        "label": model_label(model),
                        "removed": int(tally.get("removed", 0)),
                        "changed": int(tally.get("changed", 0)),
                        "before": before,
                        "percent": round(touched * 100 / before),
                    }
                )
    return heavy


def is_mass_change(organization: Organization, summary: dict[str, Any], counts: dict[str, Any]) -> bool:
    return bool(heavy_models(alert_settings(organization), summary, counts))


def model_label(key: str) -> str:
    special = {"profile": "Profile", "regulation": "Regulations", "ou_role": "OU role assignments", "ou": "OUs"}
    if key in special:
        return special[key]
    for dataset in ds.REGISTRY.values():
        for spec in dataset.models:
            if spec.key == key:
                return str(spec.model._meta.verbose_name_plural).capitalize()
    return key


def notify_mass_change(comparison: BackupComparison) -> int:
    """Email and in-app message to the Owner and Admins; returns how many were told. Mail
    trouble is logged, never raised: the mark on the backup is already recorded."""
    thresholds = alert_settings(comparison.organization)
    if not thresholds.enabled:
        return 0
    backup = comparison.later
    heavy = heavy_models(thresholds, comparison.summary, comparison.counts)
    path = reverse("backups:comparison", args=[comparison.pk])
    context = {
        "backup": backup,
        "previous": comparison.earlier,
        "organization": comparison.organization,
        "heavy": heavy,
        "thresholds": thresholds,
        "url": settings.SITE_URL.rstrip("/") + path,
    }
    body = "; ".join(f"{h['label']}: {h['removed']} removed, {h['changed']} changed of {h['before']}" for h in heavy)
    people = Membership.objects.filter(
        organization=comparison.organization, role__in=(Membership.Role.OWNER, Membership.Role.ADMIN)
    ).select_related("user")
    told = 0
    for membership in people:
        user = membership.user
        if not user.is_active:
            continue
        notification_send(
            user=user,
            organization=comparison.organization,
            title=f"Mass change in backup {backup.display_name if backup else ''}".strip(),
            body=f"Since the previous backup: {body}.",
            url=path,
            level="warning",
        )
        try:
            send_templated_mail(template="backups/email/mass_change", to=[user.email], context=context)
        except Exception:
            logger.exception("comparison %s: could not send the mass-change email", comparison.pk)
        told += 1
    return told
