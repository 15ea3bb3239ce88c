"""The Account Backups table's HTML pieces: a row, its status badge, progress and actions.

Rendered in Python (``format_html`` escapes every value) rather than as template includes: the
list page shows 25 rows, each with a badge, progress and up to five actions, and Django's
template engine spent about 1.4 ms of CPU per row on them, most of the page's cost under load.
The same functions serve the list, the polled row, the details page and the history dialog
(through the tags in ``backups/templatetags/backup_rows.py``), so the markup lives in one place.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache

from django.conf import settings
from django.template.defaultfilters import date as date_filter
from django.urls import get_script_prefix, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from backups.models import Backup
from backupsvc.lib.queue import next_aligned_run
from backupsvc.lib.sizes import human_size

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
        return mark_safe('<span class="badge text-bg-danger" data-testid="status-badge">Failed</span>')
    return EMPTY


def failure_reason(b: Backup) -> SafeString:
    """A failed backup's reason under its badge: a sentence of its own, readable on a phone."""
    if b.status != Backup.Status.FAILED:
        return EMPTY
    reason = (b.failure_reason or "The backup failed; no reason was recorded.").strip()
    if reason[-1:] not in ".!?":
        reason += "."
    return format_html(
        '<div class="small text-danger-emphasis backup-reason" data-testid="failure-reason">{}</div>', reason
    )


def queue_note(b: Backup, now: object = None) -> str:
    """When a pending backup starts: at once when requests are dispatched immediately, else at
    the queue's next run (beat runs it at multiples of BACKUP_QUEUE_INTERVAL since the epoch:
    ``backupsvc.lib.queue``). A backup still pending after that says it waits for a worker."""
    current: dt.datetime = now or timezone.now()  # type: ignore[assignment]
    waited = (current - b.created_at).total_seconds()
    if settings.BACKUP_DISPATCH_IMMEDIATELY:
        return "Starting now" if waited < 60 else "Waiting for a free worker: every worker is busy"
    interval = float(settings.BACKUP_QUEUE_INTERVAL)
    due = next_aligned_run(current, interval)
    previous_run = due.timestamp() - interval
    if b.created_at.timestamp() < previous_run - 60:
        return "Waiting for a free worker: the queue is busy"
    minutes = max(1, int((due - current).total_seconds() + 59) // 60)
    if minutes <= 1:
        return "Starts within a minute"
    return f"Starts within about {minutes} minutes"


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
            detail += format_html(" · {} of {}", human_size(b.progress_bytes_done), human_size(b.progress_bytes_total))
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
        note = queue_note(b)
        return format_html(
            '<div class="backup-progress mt-1" data-testid="progress">'
            '<progress aria-label="{}"></progress>'
            '<div class="small text-body-secondary" data-testid="queue-note">{}</div></div>',
            note,
            note,
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
    """The row's visible icons (Download, Cancel, Download history, Details) and its ⋮ menu, which
    repeats Download and the history (seed 004: "Click ⋮ … Select Download") and holds the Owner's
    and Admins' actions."""
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
    parts.append(_more_actions(b, ctx, name, downloadable, history_url))
    return format_html(
        '<div class="d-inline-flex flex-nowrap justify-content-end align-items-center gap-1 backup-actions">{}</div>',
        SafeString("".join(parts)),
    )


def _more_actions(b: Backup, ctx: ActionContext, name: str, downloadable: bool, history_url: str) -> SafeString:
    items: list[SafeString] = []
    if downloadable:
        items.append(
            format_html(
                '<li><a class="dropdown-item" href="{}" data-testid="menu-download">'
                '<i class="bi bi-download"></i> Download</a></li>',
                _url("backups:download", b.pk),
            )
        )
    items.append(
        format_html(
            '<li><a class="dropdown-item" href="{}" hx-get="{}" hx-target="#backup-modal-content" hx-swap="innerHTML" '
            'data-bs-toggle="modal" data-bs-target="#backup-modal" data-testid="menu-history">'
            '<i class="bi bi-clock-history"></i> Download history</a></li>',
            history_url,
            history_url,
        )
    )
    if not ctx.on_detail:
        items.append(
            format_html(
                '<li><a class="dropdown-item" href="{}"><i class="bi bi-info-circle"></i> Details</a></li>',
                _url("backups:detail", b.pk),
            )
        )
    if b.status == Backup.Status.COMPLETED and ctx.can_admin:
        items.append(mark_safe('<li><hr class="dropdown-divider"></li>'))
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
        items.append(
            format_html(
                '<li><form method="post" action="{}" data-confirm="Expire “{}” now? Its file is deleted and can no '
                'longer be downloaded; the record and its download history stay." data-confirm-button="Expire now">{}'
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
    """One ``<tr>``; every cell names its column (``data-label``) for the stacked phone layout."""
    polling = EMPTY
    if b.status in (Backup.Status.PENDING, Backup.Status.IN_PROGRESS):
        polling = format_html(
            ' hx-get="{}?was={}" hx-trigger="every 2s" hx-swap="outerHTML"',
            _url("backups:row", b.pk),
            b.status,
        )
    user = b.requested_by
    if user is not None:
        creator: SafeString | str = format_html('<span title="{}">{}</span>', user.email, b.requester_display)
    else:
        creator = b.requester_display
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
    not_checked_at = getattr(b, "not_checked_at", None)  # annotated on the list (verify.with_not_checked)
    if not_checked_at:
        verified = format_html(
            '<span class="text-warning-emphasis" data-testid="not-checked" title="{} The archive is not known to be '
            'damaged."><i class="bi bi-exclamation-triangle-fill"></i> Not checked {}</span>',
            getattr(b, "not_checked_message", ""),
            _date(not_checked_at, "j M Y"),
        )
    elif b.last_verified_at:
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
        '<td class="cell-name" data-label="Backup"><a class="fw-semibold text-decoration-none" href="{}">{}</a>{}</td>'
        '<td data-label="Status">{}{}{}</td>'
        '<td class="text-nowrap" data-label="Created at">{}</td>'
        '<td data-label="Created by">{}</td>'
        '<td data-label="Type">{}</td>'
        '<td data-label="OUs">{}</td>'
        '<td class="text-end" data-label="Documents">{}</td>'
        '<td class="text-end text-nowrap" data-label="Size">{}</td>'
        '<td class="text-nowrap" data-label="Download expires">{}</td>'
        '<td class="text-nowrap col-verified" data-label="Last verified">{}</td>'
        '<td class="text-end cell-actions" data-label="Actions">{}</td></tr>',
        b.pk,
        b.status,
        polling,
        _url("backups:detail", b.pk),
        b.display_name,
        mass_change_marker(b),
        status_badge(b),
        failure_reason(b),
        progress(b),
        _date(b.created_at, "j M Y H:i"),
        creator,
        b.get_kind_display(),
        ous,
        "—" if b.document_count is None else b.document_count,
        human_size(b.size),
        expires,
        verified,
        actions(b, ctx),
    )
