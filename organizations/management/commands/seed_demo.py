"""``manage.py seed_demo``: deterministic demo data, safe to run again and again."""

from __future__ import annotations

from argparse import ArgumentParser, ArgumentTypeError
from typing import Any

from django.core.management.base import BaseCommand

from backupsvc.lib.sizes import human_size
from organizations.demo import catalog
from organizations.demo.seeder import SeedOptions, SeedReport, seed_demo


def _non_negative_int(value: str) -> int:
    number = int(value)
    if number < 0:
        raise ArgumentTypeError("must be 0 or more")
    return number


def _positive_float(value: str) -> float:
    number = float(value)
    if number <= 0:
        raise ArgumentTypeError("must be more than 0")
    return number


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = "  ".join("-" * w for w in widths)
    out = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip(), line]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(out)


class Command(BaseCommand):
    help = (
        "Create deterministic demo data: master data, three organizations (acme: enterprise with "
        "facilities; brightside: small; nordwind: no subscription), a user per actor, practice and "
        "billing records and controlled documents with real stored files. Only missing rows are "
        "added, so running it again changes nothing. --documents/--gigabytes build a large tenant."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--seed", type=int, default=catalog.DEFAULT_SEED, help="Random seed (default %(default)s).")
        parser.add_argument(
            "--org",
            default="acme",
            choices=catalog.ORG_SLUGS,
            help="The organization --documents and --gigabytes apply to (default %(default)s).",
        )
        parser.add_argument(
            "--documents",
            type=_non_negative_int,
            help="Number of documents of --org (default: acme 300, brightside 80, nordwind 40).",
        )
        parser.add_argument(
            "--gigabytes",
            type=_positive_float,
            help="Total size of --org's stored document files in GB (10^9 bytes); new versions share "
            "what is missing. Without it files have natural sizes (a few KB).",
        )
        parser.add_argument("--batch-size", type=int, default=200, help="Documents per insert batch.")
        parser.add_argument("--quiet", action="store_true", help="Print nothing.")

    def handle(self, *args: Any, **options: Any) -> None:
        quiet = options["quiet"] or options["verbosity"] == 0
        seed_options = SeedOptions(
            seed=options["seed"],
            org=options["org"],
            documents=options["documents"],
            gigabytes=options["gigabytes"],
            batch_size=max(options["batch_size"], 1),
        )
        report = seed_demo(seed_options, log=None if quiet else self.stdout.write)
        if not quiet:
            self.stdout.write(self._render(report))

    def _render(self, report: SeedReport) -> str:
        logins = _table(
            ["email", "password", "actor", "organizations"],
            [[lg.email, lg.password, lg.actor, lg.organizations] for lg in report.logins],
        )
        keys = list(report.organizations[0].counts) if report.organizations else []
        counts = _table(
            ["", *(o.slug for o in report.organizations)],
            [["subscription", *(o.subscription for o in report.organizations)]]
            + [[key, *(f"{o.counts[key]:,}" for o in report.organizations)] for key in keys],
        )
        return (
            f"\nDemo logins (passwords are set when a user is first created):\n{logins}\n\n"
            f"Organizations:\n{counts}\n\n"
            f"Added {report.files_created:,} files ({human_size(report.bytes_created)}) "
            f"in {report.seconds:.1f} s.\n"
        )
