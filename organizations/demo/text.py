"""A seeded corpus of compliance prose, document titles and CSV rows.

Paragraphs come from a pool built once per seed, so padding a file with hundreds of megabytes
of text costs a few list look-ups per paragraph, while the text still compresses like prose
(the pool is far larger than deflate's 32 KiB window).
"""

from __future__ import annotations

import random
import textwrap
from collections.abc import Iterator

_SUBJECTS = (
    "The document owner",
    "Each fee earner",
    "The compliance officer",
    "The head of department",
    "Every member of staff",
    "The money laundering reporting officer",
    "The quality manager",
    "The data protection lead",
    "The practice manager",
    "The responsible partner",
    "The warehouse supervisor",
    "The finance team",
)
_VERBS = (
    "must review",
    "shall record",
    "is responsible for approving",
    "should verify",
    "will retain",
    "must escalate",
    "shall document",
    "is required to reconcile",
    "should archive",
    "must confirm",
)
_OBJECTS = (
    "the client due diligence file",
    "all changes to controlled documents",
    "the conflict check results",
    "client account balances",
    "the risk assessment for the matter",
    "any suspected breach of this policy",
    "the retention schedule",
    "records of training completed",
    "the version history of this procedure",
    "access rights to confidential information",
    "the monthly reconciliation report",
    "incident reports and corrective actions",
    "supplier certificates and audit evidence",
    "backups of the document register",
)
_QUALIFIERS = (
    "before the engagement letter is issued",
    "at least once every twelve months",
    "within five working days",
    "in accordance with the retention schedule",
    "before any funds are transferred",
    "as part of the annual management review",
    "whenever the regulatory position changes",
    "and keep evidence on the matter file",
    "using the approved template",
    "without undue delay",
)
_FIRST_NAMES = (
    "Aisha",
    "Ben",
    "Chloe",
    "Daniel",
    "Elena",
    "Farid",
    "Grace",
    "Hugo",
    "Isla",
    "Jonas",
    "Keira",
    "Liam",
    "Maya",
    "Noah",
    "Olga",
    "Pedro",
    "Quinn",
    "Rosa",
    "Samir",
    "Tara",
    "Umar",
    "Vera",
    "Wei",
    "Yusuf",
    "Zoe",
)
_SURNAMES = (
    "Adeyemi",
    "Brennan",
    "Castillo",
    "Dubois",
    "Eriksen",
    "Fischer",
    "Gallagher",
    "Hughes",
    "Iqbal",
    "Jankowski",
    "Kowalczyk",
    "Lindqvist",
    "Mensah",
    "Novak",
    "O'Connor",
    "Patel",
    "Rossi",
    "Schmidt",
    "Takahashi",
    "Unwin",
    "Varga",
    "Whitfield",
    "Yilmaz",
    "Zielinski",
)
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_FORM_PREFIXES = ("QF", "HR", "AML", "IS", "FIN", "OPS", "HS", "DP")
_CONDITIONS = (
    "a client is a politically exposed person",
    "the matter value exceeds the delegated authority",
    "a supplier fails its annual assessment",
    "a personal data breach is suspected",
    "funds are received from an unexpected third party",
    "a vehicle defect is reported by the driver",
    "the audit trail is incomplete",
    "the retention period has expired",
)
_ITEMS = ("client files", "ledger entries", "access requests", "training records", "delivery notes", "invoices")
_CURRENCIES = ("£", "€", "GBP ", "EUR ")
_JOB_TITLES = (
    "Compliance Partner",
    "Head of Risk",
    "Quality Manager",
    "Finance Director",
    "Operations Lead",
    "Data Protection Officer",
    "Practice Manager",
)
_ARTEFACTS = ("procedure", "policy", "revision", "checklist", "risk assessment", "register")
_REGISTERS = ("the breach register", "the exceptions log", "the risk register", "the gifts register")
_TOPICS = (
    "Anti-Money Laundering",
    "Client Onboarding",
    "Conflict of Interest",
    "Data Protection",
    "Information Security",
    "Business Continuity",
    "Complaints Handling",
    "Client Account",
    "File Retention",
    "Document Control",
    "Supplier Management",
    "Training and Competence",
    "Health and Safety",
    "Incident Management",
    "Access Control",
    "Backup and Recovery",
    "Whistleblowing",
    "Expenses and Gifts",
    "Remote Working",
    "Risk Management",
    "Quality Management",
    "Vehicle Inspection",
    "Customs Declarations",
    "Payroll Processing",
)
# Document kinds that suit each file type, so titles read like what the file is.
_KINDS_BY_FILE = {
    "pdf": ("Policy", "Procedure", "Guidance Note", "Manual", "Audit Report"),
    "docx": ("Procedure", "Work Instruction", "Template", "Policy Draft", "Checklist"),
    "txt": ("Work Instruction", "Checklist", "Meeting Minutes", "Notes"),
    "md": ("Guidance Note", "Checklist", "Runbook"),
    "csv": ("Register", "Log", "Training Matrix", "Asset Inventory"),
    "png": ("Process Map", "Organisation Chart", "Floor Plan", "Flow Diagram"),
    "jpeg": ("Site Photo", "Signed Certificate Scan", "Inspection Photo", "Notice Board Photo"),
}
_NOTES = (
    "Initial issue",
    "Annual review, no material changes",
    "Updated after internal audit findings",
    "Aligned with the new master data version",
    "Clarified responsibilities",
    "Reformatted to the house template",
)


class Corpus:
    """Deterministic text for one seed."""

    def __init__(self, seed: int, pool_size: int = 1500) -> None:
        rng = random.Random(f"{seed}:corpus")
        self.paragraphs: tuple[str, ...] = tuple(self._paragraph(rng) for _ in range(pool_size))
        self.csv_rows: tuple[str, ...] = tuple(self._csv_row(rng) for _ in range(pool_size))
        self._wrapped: dict[tuple[int, int], tuple[str, ...]] = {}

    @staticmethod
    def _sentence(rng: random.Random) -> str:
        # Several sentence shapes with names, dates, numbers and amounts: the text then
        # compresses about as well as real prose (roughly 3:1), not like a repeated template.
        subject, verb, obj = rng.choice(_SUBJECTS), rng.choice(_VERBS), rng.choice(_OBJECTS)
        person = f"{rng.choice(_FIRST_NAMES)} {rng.choice(_SURNAMES)}"
        day = f"{rng.randint(1, 28)} {rng.choice(_MONTHS)} {rng.randint(2019, 2026)}"
        shape = rng.randrange(6)
        if shape == 0:
            return f"{subject} {verb} {obj} {rng.choice(_QUALIFIERS)}."
        if shape == 1:
            form = f"{rng.choice(_FORM_PREFIXES)}-{rng.randint(100, 9999)}"
            return (
                f"{subject} {verb} {obj} {rng.choice(_QUALIFIERS)} "
                f"(see section {rng.randint(1, 12)}.{rng.randint(1, 9)} and form {form})."
            )
        if shape == 2:
            return f"Where {rng.choice(_CONDITIONS)}, {subject.lower()} {verb} {obj} and informs {person} by {day}."
        if shape == 3:
            total = rng.randint(5, 400)
            return (
                f"During the review of {day}, {total} {rng.choice(_ITEMS)} were examined, "
                f"{rng.randint(0, total)} of which needed follow-up at an estimated cost of "
                f"{rng.choice(_CURRENCIES)}{rng.randint(100, 250_000):,}.{rng.randint(0, 99):02d}."
            )
        if shape == 4:
            return f"{person} ({rng.choice(_JOB_TITLES)}) approved this {rng.choice(_ARTEFACTS)} on {day}."
        return f"{subject} {verb} {obj}; exceptions are recorded in {rng.choice(_REGISTERS)} {rng.choice(_QUALIFIERS)}."

    def _paragraph(self, rng: random.Random) -> str:
        return " ".join(self._sentence(rng) for _ in range(rng.randint(2, 6)))

    @staticmethod
    def _csv_row(rng: random.Random) -> str:
        day = f"2026-{rng.randint(1, 10):02d}-{rng.randint(1, 28):02d}"
        topic = rng.choice(_TOPICS)
        status = rng.choice(("open", "closed", "in review", "overdue"))
        owner = rng.choice(("A. Adler", "E. Evans", "M. Miller", "P. Shah", "T. Becker", "H. Lee"))
        return f'{day},"{topic}",{owner},{status},{rng.randint(1, 5)},{rng.randint(0, 99999) / 100:.2f}'

    def title(self, rng: random.Random, file_kind: str) -> str:
        """A document title that suits the file kind."""
        return f"{rng.choice(_TOPICS)} {rng.choice(_KINDS_BY_FILE[file_kind])}"

    @staticmethod
    def note(rng: random.Random, number: int) -> str:
        """A version note; version 1 is always the initial issue."""
        return _NOTES[0] if number == 1 else rng.choice(_NOTES[1:])

    def paragraph_indexes(self, rng: random.Random, nbytes: int) -> Iterator[int]:
        """Indexes into the paragraph pool until about ``nbytes`` of text (at least one)."""
        produced = 0
        pool = self.paragraphs
        while True:
            index = rng.randrange(len(pool))
            produced += len(pool[index]) + 2
            yield index
            if produced >= nbytes:
                return

    def paragraphs_for(self, rng: random.Random, nbytes: int) -> Iterator[str]:
        """Paragraphs until about ``nbytes`` of text were produced (at least one)."""
        pool = self.paragraphs
        return (pool[i] for i in self.paragraph_indexes(rng, nbytes))

    def wrapped(self, index: int, width: int = 100) -> tuple[str, ...]:
        """A pool paragraph wrapped to ``width`` columns (cached: wrapping is the slow part)."""
        key = (index, width)
        lines = self._wrapped.get(key)
        if lines is None:
            lines = tuple(textwrap.wrap(self.paragraphs[index], width))
            self._wrapped[key] = lines
        return lines

    def csv_lines(self, rng: random.Random, nbytes: int) -> Iterator[str]:
        """Numbered register rows until about ``nbytes`` were produced."""
        produced, n = 0, 0
        pool = self.csv_rows
        while produced < nbytes or n == 0:
            n += 1
            line = f"{n},{pool[rng.randrange(len(pool))]}\n"
            produced += len(line)
            yield line
