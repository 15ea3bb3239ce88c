"""factory_boy factories for every model the tests build."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import factory
from django.test import Client
from django.utils import timezone

from accounts.models import Membership, OURoleAssignment, Role, User
from organizations import models as org

DEMO_PASSWORD = "correct-horse-battery-staple"


def client_for(user: User | None, **kwargs: object) -> Client:
    """A test client signed in as ``user`` (anonymous for None); ``kwargs`` go to ``Client``."""
    client = Client(**kwargs)  # type: ignore[arg-type]
    if user is not None:
        client.force_login(user)
    return client


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("email",)
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    full_name = factory.Faker("name")
    password = factory.PostGenerationMethodCall("set_password", DEMO_PASSWORD)

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):  # type: ignore[no-untyped-def]
        if create:
            obj.save()


class MasterDataVersionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = org.MasterDataVersion
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"MD{2025 + n}.1")
    name = factory.LazyAttribute(lambda o: f"Master data {o.code}")
    released_on = dt.date(2025, 1, 1)


class RegulationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = org.Regulation

    master_data_version = factory.SubFactory(MasterDataVersionFactory)
    code = factory.Sequence(lambda n: f"REG-{n}")
    title = factory.Sequence(lambda n: f"Regulation {n}")


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = org.Organization

    slug = factory.Sequence(lambda n: f"org-{n}")
    name = factory.Sequence(lambda n: f"Organization {n}")
    description = "A test organization."
    license_identifier = factory.Sequence(lambda n: f"LIC-{n:05d}")
    jurisdiction = "England and Wales"
    master_data_version = factory.SubFactory(MasterDataVersionFactory)
    language_settings = factory.LazyFunction(lambda: {"default": "en", "available": ["en", "de"]})
    creation_wizard_data = factory.LazyFunction(
        lambda: {
            "company": {"legal_name": "Test Organization LLP", "employees": "11-50", "sector": "Legal"},
            "address": {"line1": "1 Test Street", "city": "London", "postcode": "EC1A 1AA", "country": "GB"},
            "contact": {"name": "Olivia Owner", "email": "contact@org.test", "phone": "+44 20 7946 0000"},
            "structure": {"enterprise": False},
            "modules": ["documents", "practice", "account_backups"],
            "completed_steps": ["profile", "structure", "regulations", "users", "review"],
            "completed_at": "2025-01-02T09:00:00Z",
        }
    )


class FacilityFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = org.Facility

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"Facility {n}")
    code = factory.Sequence(lambda n: f"F{n}")


class OUFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = org.OrganisationalUnit

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"OU {n}")
    code = factory.Sequence(lambda n: f"OU{n}")


class SubscriptionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = org.Subscription

    organization = factory.SubFactory(OrganizationFactory)
    starts_on = factory.LazyFunction(lambda: timezone.localdate() - dt.timedelta(days=30))
    ends_on = factory.LazyFunction(lambda: timezone.localdate() + dt.timedelta(days=335))


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    organization = factory.SubFactory(OrganizationFactory)
    role = Membership.Role.MEMBER


def administration_editor() -> Role:
    # Transactional tests flush the rows the data migration made; ensure them again.
    from organizations.services import system_roles_ensure

    return system_roles_ensure()


class OURoleAssignmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = OURoleAssignment

    user = factory.SubFactory(UserFactory)
    ou = factory.SubFactory(OUFactory)
    role = factory.LazyFunction(administration_editor)


class ClientFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = org.Client

    organization = factory.SubFactory(OrganizationFactory)
    ou = factory.SubFactory(OUFactory, organization=factory.SelfAttribute("..organization"))
    name = factory.Faker("company")
    email = factory.Faker("company_email")


class MatterFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = org.Matter

    organization = factory.SubFactory(OrganizationFactory)
    ou = factory.SubFactory(OUFactory, organization=factory.SelfAttribute("..organization"))
    client = factory.SubFactory(
        ClientFactory, organization=factory.SelfAttribute("..organization"), ou=factory.SelfAttribute("..ou")
    )
    reference = factory.Sequence(lambda n: f"M-{n:05d}")
    title = factory.Faker("catch_phrase")
    opened_on = dt.date(2026, 1, 5)


class BillingCodeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = org.BillingCode

    organization = factory.SubFactory(OrganizationFactory)
    code = factory.Sequence(lambda n: f"BC{n}")
    description = "Advice"
    hourly_rate = Decimal("180.00")


class ControlledDocumentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = org.ControlledDocument

    organization = factory.SubFactory(OrganizationFactory)
    ou = factory.SubFactory(OUFactory, organization=factory.SelfAttribute("..organization"))
    reference = factory.Sequence(lambda n: f"DOC-{n:05d}")
    title = factory.Faker("sentence", nb_words=4)
    status = org.ControlledDocument.Status.ACTIVE
