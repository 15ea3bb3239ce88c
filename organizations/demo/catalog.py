"""The fixed cast of the demo: master data, three organizations and one user per actor.

Everything here is plain data; ``seeder`` turns it into rows. Changing a value here changes
the demo deterministically for everybody.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

DEMO_PASSWORD = "demo-password-2026"  # noqa: S105 - printed on purpose, demo data only
DEFAULT_SEED = 2026
# Records are dated relative to this fixed day so every run produces the same rows;
# only subscriptions follow the real calendar (they must be valid "today").
ANCHOR_DATE = dt.date(2026, 10, 31)


@dataclass(frozen=True)
class RegulationSpec:
    code: str
    title: str
    jurisdiction: str


@dataclass(frozen=True)
class MasterDataSpec:
    code: str
    name: str
    released_on: dt.date
    regulations: tuple[RegulationSpec, ...]


_BASE_REGULATIONS: tuple[RegulationSpec, ...] = (
    RegulationSpec("GDPR", "Regulation (EU) 2016/679 General Data Protection Regulation", "EU"),
    RegulationSpec("UK-GDPR", "UK GDPR and Data Protection Act 2018", "United Kingdom"),
    RegulationSpec("ISO9001-7.5", "ISO 9001:2015 §7.5 Documented information", "International"),
    RegulationSpec("ISO27001-A5", "ISO/IEC 27001:2022 Annex A.5 Organizational controls", "International"),
    RegulationSpec("ISO27001-A8.13", "ISO/IEC 27001:2022 Annex A.8.13 Information backup", "International"),
    RegulationSpec("ISO14001", "ISO 14001:2015 Environmental management systems", "International"),
    RegulationSpec("ISO45001", "ISO 45001:2018 Occupational health and safety", "International"),
    RegulationSpec("SRA-AR-2019", "SRA Accounts Rules 2019", "England & Wales"),
    RegulationSpec("SRA-COC-2019", "SRA Code of Conduct for Firms 2019", "England & Wales"),
    RegulationSpec(
        "MLR-2017",
        "Money Laundering, Terrorist Financing and Transfer of Funds Regulations 2017",
        "United Kingdom",
    ),
    RegulationSpec("POCA-2002", "Proceeds of Crime Act 2002, Part 7", "United Kingdom"),
    RegulationSpec("BRIBERY-2010", "Bribery Act 2010 §7 Failure to prevent bribery", "United Kingdom"),
    RegulationSpec("ICAEW-COE", "ICAEW Code of Ethics", "United Kingdom"),
    RegulationSpec("HMRC-MTD", "HMRC Making Tax Digital for VAT", "United Kingdom"),
    RegulationSpec(
        "CMR", "Convention on the Contract for the International Carriage of Goods by Road", "International"
    ),
    RegulationSpec("EU-UCC", "Regulation (EU) No 952/2013 Union Customs Code", "EU"),
    RegulationSpec("LKSG", "Lieferkettensorgfaltspflichtengesetz (Supply Chain Due Diligence Act)", "Germany"),
)

MASTER_DATA: tuple[MasterDataSpec, ...] = (
    MasterDataSpec("2025.1", "MD 2025.1", dt.date(2025, 1, 15), _BASE_REGULATIONS),
    MasterDataSpec(
        "2026.1",
        "MD 2026.1",
        dt.date(2026, 1, 20),
        (
            *_BASE_REGULATIONS,
            RegulationSpec("EU-AI-ACT", "Regulation (EU) 2024/1689 Artificial Intelligence Act", "EU"),
            RegulationSpec("DORA", "Regulation (EU) 2022/2554 Digital Operational Resilience Act", "EU"),
            RegulationSpec("NIS2", "Directive (EU) 2022/2555 on a high common level of cybersecurity", "EU"),
            RegulationSpec("ECCTA-2023", "Economic Crime and Corporate Transparency Act 2023", "United Kingdom"),
        ),
    ),
)


@dataclass(frozen=True)
class OUSpec:
    code: str
    name: str
    facility: str | None = None  # facility code


@dataclass(frozen=True)
class OrgSpec:
    """One demo organization and the size of its records."""

    slug: str
    name: str
    prefix: str  # used in references and invoice numbers
    description: str
    license_identifier: str
    jurisdiction: str
    master_data: str
    languages: tuple[str, ...]
    regulations: tuple[str, ...]
    created_at: dt.datetime
    colour: tuple[int, int, int]
    industry: str
    currency: str
    has_subscription: bool
    documents: int
    clients_per_ou: int
    facilities: tuple[tuple[str, str], ...] = ()
    ous: tuple[OUSpec, ...] = ()
    billing_codes: tuple[tuple[str, str, Decimal], ...] = ()
    client_stems: tuple[str, ...] = ()
    client_suffixes: tuple[str, ...] = ()
    matter_topics: tuple[str, ...] = ()
    fee_earners: tuple[str, ...] = ()
    wizard: dict[str, object] = field(default_factory=dict)


def _utc(year: int, month: int, day: int, hour: int = 9) -> dt.datetime:
    return dt.datetime(year, month, day, hour, 0, tzinfo=dt.UTC)


ORGANIZATIONS: tuple[OrgSpec, ...] = (
    OrgSpec(
        slug="acme",
        name="Acme Legal & Compliance",
        prefix="ACME",
        description=(
            "Full-service commercial law firm with offices in London and Manchester, advising "
            "mid-market companies on corporate transactions, disputes, employment and real estate."
        ),
        license_identifier="SRA-612345",
        jurisdiction="England & Wales",
        master_data="2026.1",
        languages=("en", "fr", "de"),
        regulations=(
            "UK-GDPR",
            "GDPR",
            "ISO9001-7.5",
            "ISO27001-A5",
            "ISO27001-A8.13",
            "SRA-AR-2019",
            "SRA-COC-2019",
            "MLR-2017",
            "POCA-2002",
            "BRIBERY-2010",
            "ECCTA-2023",
        ),
        created_at=_utc(2023, 3, 14),
        colour=(32, 78, 140),
        industry="Legal services",
        currency="GBP",
        has_subscription=True,
        documents=300,
        clients_per_ou=5,
        facilities=(("LON", "London HQ"), ("MAN", "Manchester Office")),
        ous=(
            OUSpec("LON-CORP", "Corporate & Commercial", "LON"),
            OUSpec("LON-LIT", "Litigation & Disputes", "LON"),
            OUSpec("LON-COMP", "Compliance & Risk", "LON"),
            OUSpec("LON-PC", "Private Client", "LON"),
            OUSpec("MAN-EMP", "Employment", "MAN"),
            OUSpec("MAN-RE", "Real Estate", "MAN"),
            OUSpec("MAN-FIN", "Finance & Accounts", "MAN"),
            OUSpec("KM", "Knowledge Management"),
        ),
        billing_codes=(
            ("ADV", "Legal advice", Decimal("285.00")),
            ("DRAFT", "Drafting and review", Decimal("250.00")),
            ("LIT", "Litigation and hearings", Decimal("320.00")),
            ("MTG", "Client meetings", Decimal("240.00")),
            ("RES", "Legal research", Decimal("180.00")),
            ("TRAVEL", "Travel time", Decimal("120.00")),
            ("ADMIN", "File administration", Decimal("75.00")),
        ),
        client_stems=(
            "Harrington",
            "Pemberton",
            "Whitcombe",
            "Ashdown",
            "Carrow",
            "Kestrel",
            "Bramley",
            "Fairholme",
            "Lockwood",
            "Redmayne",
            "Osterley",
            "Quill",
            "Thornbury",
            "Valence",
            "Greyfriars",
            "Marlowe",
            "Northgate",
            "Sable",
            "Tamsin",
            "Wexford",
        ),
        client_suffixes=("Holdings Ltd", "Group plc", "& Sons Ltd", "Capital LLP", "Estates Ltd", "Trust"),
        matter_topics=(
            "Acquisition of share capital",
            "Employment tribunal claim",
            "Commercial lease renewal",
            "Shareholders' agreement",
            "Debt recovery",
            "Data protection audit",
            "Supply agreement dispute",
            "Probate and estate administration",
            "Trademark opposition",
            "Restructuring advice",
        ),
        fee_earners=("priya.shah@acme.example.com", "tom.becker@acme.example.com"),
        wizard={
            "company": {"legal_name": "Acme Legal & Compliance LLP", "employees": "201-500", "sector": "Legal"},
            "address": {"line1": "12 Fleet Street", "city": "London", "postcode": "EC4Y 1AA", "country": "GB"},
            "contact": {"name": "Olivia Owen", "email": "owner@acme.example.com", "phone": "+44 20 7946 0101"},
            "structure": {"enterprise": True, "facilities": ["London HQ", "Manchester Office"]},
            "modules": ["documents", "practice", "billing", "account_backups"],
            "completed_steps": ["profile", "structure", "regulations", "users", "review"],
            "completed_at": "2023-03-14T09:00:00Z",
        },
    ),
    OrgSpec(
        slug="brightside",
        name="Brightside Accounting",
        prefix="BRT",
        description="Chartered accountants for owner-managed businesses: bookkeeping, payroll, tax and advisory.",
        license_identifier="ICAEW-C008812",
        jurisdiction="United Kingdom",
        master_data="2026.1",
        languages=("en",),
        regulations=("UK-GDPR", "ICAEW-COE", "HMRC-MTD", "MLR-2017", "ISO27001-A8.13"),
        created_at=_utc(2024, 6, 3),
        colour=(230, 140, 30),
        industry="Accounting",
        currency="GBP",
        has_subscription=True,
        documents=80,
        clients_per_ou=6,
        ous=(OUSpec("BKP", "Bookkeeping & Payroll"), OUSpec("TAX", "Tax & Advisory")),
        billing_codes=(
            ("BOOK", "Bookkeeping", Decimal("65.00")),
            ("PAYROLL", "Payroll bureau", Decimal("55.00")),
            ("VAT", "VAT returns", Decimal("95.00")),
            ("YEAREND", "Year-end accounts", Decimal("120.00")),
            ("TAXADV", "Tax advisory", Decimal("160.00")),
        ),
        client_stems=(
            "Greenleaf",
            "Hollybush",
            "Kingfisher",
            "Larkspur",
            "Meadowbank",
            "Oakridge",
            "Primrose",
            "Riverside",
            "Stonebridge",
            "Willowmere",
            "Foxglove",
            "Heathcote",
        ),
        client_suffixes=("Bakery Ltd", "Dental Practice", "Motors Ltd", "Design Studio", "Cafe", "Joinery Ltd"),
        matter_topics=(
            "Year-end accounts FY2025",
            "VAT return Q3",
            "Payroll onboarding",
            "Self assessment 2024/25",
            "R&D tax credit claim",
            "Management accounts",
            "Company formation",
        ),
        fee_earners=("hannah.lee@brightside.example.com",),
        wizard={
            "company": {"legal_name": "Brightside Accounting Ltd", "employees": "11-50", "sector": "Accounting"},
            "address": {"line1": "4 Market Square", "city": "York", "postcode": "YO1 8RS", "country": "GB"},
            "contact": {"name": "Bella Bright", "email": "owner@brightside.example.com", "phone": "+44 1904 555010"},
            "structure": {"enterprise": False},
            "modules": ["documents", "practice", "billing", "account_backups"],
            "completed_steps": ["profile", "structure", "regulations", "users", "review"],
            "completed_at": "2024-06-03T09:00:00Z",
        },
    ),
    OrgSpec(
        slug="nordwind",
        name="Nordwind Logistics",
        prefix="NWL",
        description="Road freight and warehousing between Hamburg, Rotterdam and the Baltic ports.",
        license_identifier="DE-HRB-219876",
        jurisdiction="Germany",
        master_data="2025.1",
        languages=("en", "de"),
        regulations=("GDPR", "ISO9001-7.5", "ISO14001", "ISO45001", "CMR", "EU-UCC", "LKSG"),
        created_at=_utc(2025, 2, 10),
        colour=(20, 120, 110),
        industry="Logistics",
        currency="EUR",
        has_subscription=False,
        documents=40,
        clients_per_ou=3,
        ous=(OUSpec("OPS", "Operations"), OUSpec("FLEET", "Fleet"), OUSpec("QHSE", "Quality, Health & Safety")),
        billing_codes=(
            ("FTL", "Full truck load", Decimal("95.00")),
            ("WH", "Warehousing", Decimal("45.00")),
            ("CUST", "Customs clearance", Decimal("110.00")),
        ),
        client_stems=("Baltic", "Elbe", "Hanse", "Kiel", "Lübeck", "Rhein", "Weser", "Ostsee", "Nordsee"),
        client_suffixes=("Freight GmbH", "Handel AG", "Foods GmbH", "Chemie GmbH"),
        matter_topics=("Framework contract", "Customs audit", "Warehouse lease", "Damage claim", "Tender 2026"),
        fee_earners=("jan.vogel@nordwind.example.com",),
        wizard={
            "company": {"legal_name": "Nordwind Logistics GmbH", "employees": "51-200", "sector": "Logistics"},
            "address": {"line1": "Am Sandtorkai 5", "city": "Hamburg", "postcode": "20457", "country": "DE"},
            "contact": {"name": "Nils Nord", "email": "owner@nordwind.example.com", "phone": "+49 40 555 0199"},
            "structure": {"enterprise": False},
            "modules": ["documents", "practice"],
            "completed_steps": ["profile", "structure", "regulations", "users", "review"],
            "completed_at": "2025-02-10T09:00:00Z",
        },
    ),
)

ORG_SLUGS: tuple[str, ...] = tuple(o.slug for o in ORGANIZATIONS)


@dataclass(frozen=True)
class UserSpec:
    """A demo login. ``editor_in`` maps an org slug to "all" or a facility code."""

    email: str
    full_name: str
    actor: str
    memberships: tuple[tuple[str, str], ...] = ()  # (org slug, owner/admin/member)
    editor_in: tuple[tuple[str, str], ...] = ()
    is_site_admin: bool = False
    is_staff: bool = False
    is_superuser: bool = False


USERS: tuple[UserSpec, ...] = (
    UserSpec("owner@acme.example.com", "Olivia Owen", "Organization Owner", (("acme", "owner"),)),
    UserSpec(
        "admin@acme.example.com",
        "Adam Adler",
        "Organization Admin; Administration Editor in every OU",
        (("acme", "admin"),),
        (("acme", "all"),),
    ),
    UserSpec(
        "editor@acme.example.com",
        "Edith Evans",
        "Member; Administration Editor in the London HQ OUs only",
        (("acme", "member"),),
        (("acme", "LON"),),
    ),
    UserSpec("member@acme.example.com", "Max Miller", "Member without backup permission", (("acme", "member"),)),
    UserSpec("owner@brightside.example.com", "Bella Bright", "Organization Owner", (("brightside", "owner"),)),
    UserSpec(
        "admin@brightside.example.com",
        "Ben Barker",
        "Organization Admin; Administration Editor in every OU",
        (("brightside", "admin"),),
        (("brightside", "all"),),
    ),
    UserSpec("owner@nordwind.example.com", "Nils Nord", "Organization Owner", (("nordwind", "owner"),)),
    UserSpec("siteadmin@example.com", "Sam Site", "Site Admin (sees every organization)", is_site_admin=True),
    UserSpec(
        "operator@example.com",
        "Oscar Operator",
        "Operator (Django admin, superuser)",
        is_staff=True,
        is_superuser=True,
    ),
)
