"""The Account Backups table's HTML pieces: a row, its status badge, progress and actions.

Rendered in Python (``format_html`` escapes every value) rather than as template includes: the
list page shows 25 rows, each with a badge, progress and up to five actions, and Django's
template engine spent about 1.4 ms of CPU per row on them, most of the page's cost under load.
The same functions serve the list, the polled row, the details page and the history dialog
(through the tags in ``backups/templatetags/backup_rows.py``), so the markup lives in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from django.template.defaultfilters import date as date_filter
from django.template.defaultfilters import filesizeformat
from django.urls import get_script_prefix, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from backups.models import Backup

EMPTY = mark_safe("")
_PK = 2147480001  # a placeholder id, reversed once per URL name


@cache
def _url_around_pk(name: str, prefix: str) -> tuple[str, str]:
    before, after = reverse(name, args=[_PK]).split(str(_PK))
    return before, after


def _url(name: str, pk: int) -> str:
    """``reverse(name, args=[pk])`` for the rows' URLs, which take one id: a row has up to eight,
    and reversing each was a tenth of the page's CPU."""
    before, after = _url_around_pk(name, get_script_prefix())
    return f"{before}{int(pk)}{after}"


def _date(value: object, fmt: str) -> str:
    """The ``date`` template filter, with its conversion to the current time zone."""
    return date_filter(timezone.localtime(value) if timezone.is_aware(value) else value, fmt)  # type: ignore[arg-type]


def status_badge(b: Backup) -> SafeString:
    status = b.status
    if status == Backup.Status.PENDING:
        return mark_safe('<span class="badge text-bg-secondary" data-testid="status-badge">Pending</span>')
    if status == Backup.Status.IN_PROGRESS:
        return mark_safe('<span class="badge text-bg-info" data-testid="status-badge">In Progress</span>')
    if status == Backup.Status.COMPLETED:
        return mark_safe('<span class="badge text-bg-success" data-testid="status-badge">Completed</span>')
    if status == Backup.Status.EXPIRED:
        return format_html(
            '<span class="badge text-bg-dark" data-testid="status-badge" title="Expired {}: the file was removed; '
            'the download history stays.">Expired</span>',
            _date(b.expired_at, "j M Y H:i") if b.expired_at else "",
        )
    if status == Backup.Status.CANCELLED:
        return mark_safe('<span class="badge text-bg-light border" data-testid="status-badge">Cancelled</span>')
    if status == Backup.Status.FAILED:
        badge = format_html(
            '<span class="badge text-bg-danger" data-testid="status-badge" title="{}" tabindex="0">Failed '
            '<i class="bi bi-info-circle"></i></span>',
            b.failure_reason or "The backup failed.",
        )
        if b.failure_reason:
            badge += format_html('<span class="visually-hidden">: {}</span>', b.failure_reason)
        return badge
    return EMPTY


def mass_change_marker(b: Backup) -> SafeString:
    """A small badge on a backup whose change summary found a mass change, linking to it."""
    if not b.mass_change:
        return EMPTY
    return format_html(
        ' <a class="badge text-bg-warning text-decoration-none" href="{}" data-testid="mass-change-marker" '
        'title="Many records were removed or changed since the previous backup">'
        '<i class="bi bi-exclamation-triangle-fill" aria-hidden="true"></i> Mass change'
        '<span class="visually-hidden">: many records were removed or changed since the previous backup</span></a>',
        _url("backups:changes", b.pk),
    )


def progress(b: Backup) -> SafeString:
    if b.status == Backup.Status.IN_PROGRESS:
        percent = b.progress_percent
        detail = format_html("{} of {} items", b.progress_items_done, b.progress_items_total)
        if b.progress_bytes_total:
            detail += format_html(
                " · {} of {}", filesizeformat(b.progress_bytes_done), filesizeformat(b.progress_bytes_total)
            )
        return format_html(
            '<div class="backup-progress mt-1" data-testid="progress">'
            '<progress max="100" value="{}" aria-label="Progress of {}">{}%</progress>'
            '<div class="small text-body-secondary">{}</div></div>',
            percent,
            b.display_name,
            percent,
            detail,
        )
    if b.status == Backup.Status.PENDING:
        return mark_safe(
            '<div class="backup-progress mt-1" data-testid="progress">'
            '<progress aria-label="Waiting for a worker"></progress>'
            '<div class="small text-body-secondary">Waiting for a worker</div></div>'
        )
    return EMPTY


@dataclass(frozen=True)
class ActionContext:
    """What the actions depend on beyond the backup: one per page, shared by its rows."""

    csrf_token: str
    can_admin: bool
    restore_enabled: bool
    next_url: str = ""
    on_detail: bool = False

    def hidden_fields(self) -> SafeString:
        return format_html(
            '<input type="hidden" name="csrfmiddlewaretoken" value="{}"><input type="hidden" name="next" value="{}">',
            self.csrf_token,
            self.next_url,
        )


def actions(b: Backup, ctx: ActionContext) -> SafeString:
    name = b.display_name
    downloadable = b.is_downloadable
    history_url = _url("backups:history", b.pk)
    parts: list[SafeString] = []
    if downloadable:
        parts.append(
            format_html(
                '<a class="btn btn-sm btn-outline-primary" href="{}" title="Download" aria-label="Download {}" '
                'data-testid="download"><i class="bi bi-download"></i></a>',
                _url("backups:download", b.pk),
                name,
            )
        )
    if b.status == Backup.Status.PENDING:
        parts.append(
            format_html(
                '<form method="post" action="{}" data-confirm="Cancel the pending backup “{}”? It will not run; '
                'you can request a new one." data-confirm-button="Cancel backup">{}'
                '<button type="submit" class="btn btn-sm btn-outline-danger" title="Cancel this pending backup" '
                'aria-label="Cancel {}" data-testid="cancel"><i class="bi bi-trash"></i></button></form>',
                _url("backups:cancel", b.pk),
                name,
                ctx.hidden_fields(),
                name,
            )
        )
    parts.append(
        format_html(
            '<a class="btn btn-sm btn-outline-secondary" href="{}" hx-get="{}" hx-target="#backup-modal-content" '
            'hx-swap="innerHTML" data-bs-toggle="modal" data-bs-target="#backup-modal" title="Download history" '
            'aria-label="Download history of {}" data-testid="history"><i class="bi bi-clock-history"></i></a>',
            history_url,
            history_url,
            name,
        )
    )
    if not ctx.on_detail:
        parts.append(
            format_html(
                '<a class="btn btn-sm btn-outline-secondary" href="{}" title="Details" aria-label="Details of {}" '
                'data-testid="details"><i class="bi bi-info-circle"></i></a>',
                _url("backups:detail", b.pk),
                name,
            )
        )
    if b.status == Backup.Status.COMPLETED and ctx.can_admin:
        parts.append(_more_actions(b, ctx, name, downloadable))
    return format_html(
        '<div class="d-inline-flex flex-nowrap justify-content-end align-items-center gap-1 backup-actions">{}</div>',
        SafeString("".join(parts)),
    )


def _more_actions(b: Backup, ctx: ActionContext, name: str, downloadable: bool) -> SafeString:
    items: list[SafeString] = []
    if ctx.restore_enabled:
        items.append(
            format_html(
                '<li><a class="dropdown-item" href="{}" data-testid="restore">'
                '<i class="bi bi-arrow-counterclockwise"></i> Restore…</a></li>',
                _url("restores:start", b.pk),
            )
        )
    if downloadable:
        items.append(
            format_html(
                '<li><form method="post" action="{}">{}<button type="submit" class="dropdown-item" '
                'data-testid="verify"><i class="bi bi-patch-check"></i> Verify now '
                '<span class="small text-body-secondary">(decrypt, '
                "check every hash)</span></button></form></li>",
                _url("backups:verify", b.pk),
                ctx.hidden_fields(),
            )
        )
    items.append(mark_safe('<li><hr class="dropdown-divider"></li>'))
    items.append(
        format_html(
            '<li><form method="post" action="{}" data-confirm="Expire “{}” now? Its file is deleted and can no longer '
            'be downloaded; the record and its download history stay." data-confirm-button="Expire now">{}'
            '<button type="submit" class="dropdown-item text-danger" data-testid="expire">'
            '<i class="bi bi-calendar-x"></i> Expire early…</button></form></li>',
            _url("backups:expire", b.pk),
            name,
            ctx.hidden_fields(),
        )
    )
    return format_html(
        '<div class="dropdown"><button type="button" class="btn btn-sm btn-outline-secondary" '
        'data-bs-toggle="dropdown" aria-expanded="false" title="More actions" aria-label="More actions for {}" '
        'data-testid="more-actions"><i class="bi bi-three-dots-vertical"></i></button>'
        '<ul class="dropdown-menu dropdown-menu-end">{}</ul></div>',
        name,
        SafeString("".join(items)),
    )


def row(b: Backup, ctx: ActionContext) -> SafeString:
    polling = EMPTY
    if b.status in (Backup.Status.PENDING, Backup.Status.IN_PROGRESS):
        polling = format_html(
            ' hx-get="{}?was={}" hx-trigger="every 2s" hx-swap="outerHTML"',
            _url("backups:row", b.pk),
            b.status,
        )
    user = b.requested_by
    creator = format_html('<span title="{}">{}</span>', user.email, user.get_full_name()) if user else "System"
    if b.all_ous:
        ous: SafeString | str = "All OUs"
    else:
        names = [ou.name for ou in b.ous.all()]
        ous = format_html_join(", ", "{}", ((n,) for n in names)) if names else "—"
    if b.status == Backup.Status.COMPLETED and b.download_expires_at:
        expires: SafeString | str = _date(b.download_expires_at, "j M Y")
    elif b.status == Backup.Status.EXPIRED:
        expires = mark_safe('<span class="text-body-secondary">Expired</span>')
    else:
        expires = "—"
    if b.last_verified_at:
        icon = (
            '<i class="bi bi-patch-check-fill text-success" title="{}"></i> {}'
            if b.verification_ok
            else '<i class="bi bi-x-octagon-fill text-danger" title="{}"></i> {}'
        )
        verified = format_html(icon, b.verification_message, _date(b.last_verified_at, "j M Y"))
    else:
        verified = mark_safe('<span class="text-body-secondary">Never</span>')
    return format_html(
        '<tr id="backup-{}" data-status="{}" data-testid="backup-row"{}>'
        '<td><a class="fw-semibold text-decoration-none" href="{}">{}</a>{}</td>'
        "<td>{}{}</td>"
        '<td class="text-nowrap">{}</td>'
        "<td>{}</td>"
        "<td>{}</td>"
        "<td>{}</td>"
        '<td class="text-end">{}</td>'
        '<td class="text-end text-nowrap">{}</td>'
        '<td class="text-nowrap">{}</td>'
        '<td class="text-nowrap">{}</td>'
        '<td class="text-end">{}</td></tr>',
        b.pk,
        b.status,
        polling,
        _url("backups:detail", b.pk),
        b.display_name,
        mass_change_marker(b),
        status_badge(b),
        progress(b),
        _date(b.created_at, "j M Y H:i"),
        creator,
        b.get_kind_display(),
        ous,
        "—" if b.document_count is None else b.document_count,
        "—" if b.size is None else filesizeformat(b.size),
        expires,
        verified,
        actions(b, ctx),
    )
