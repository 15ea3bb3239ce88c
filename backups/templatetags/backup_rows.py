"""``{% backup_row b %}``, ``{% backup_actions b %}``, ``{% backup_status_badge b %}`` and
``{% backup_progress b %}``: the markup of ``backups/rows.py`` in templates."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.safestring import SafeString

from backups import rows
from backups.models import Backup
from backupsvc.lib.sizes import human_size

register = template.Library()


def _action_context(context: Any) -> rows.ActionContext:
    """Built once per rendering and kept in the context, so a page's rows share it."""
    cached = context.render_context.get("backup_action_context")
    if cached is None:
        cached = rows.ActionContext(
            csrf_token=str(context.get("csrf_token") or ""),
            can_admin=bool(context.get("can_admin")),
            restore_enabled=bool(context.get("restore_enabled")),
            next_url=str(context.get("next_url") or ""),
            on_detail=bool(context.get("on_detail")),
        )
        context.render_context["backup_action_context"] = cached
    return cached


@register.simple_tag(takes_context=True)
def backup_row(context: Any, b: Backup) -> SafeString:
    return rows.row(b, _action_context(context))


@register.simple_tag(takes_context=True)
def backup_actions(context: Any, b: Backup) -> SafeString:
    return rows.actions(b, _action_context(context))


@register.simple_tag
def backup_status_badge(b: Backup) -> SafeString:
    return rows.status_badge(b)


@register.simple_tag
def backup_progress(b: Backup) -> SafeString:
    return rows.progress(b)


@register.filter
def size(value: int | None) -> str:
    """``{{ backup.size|size }}``: the one size format of pages, emails and the CLI."""
    return human_size(value)
