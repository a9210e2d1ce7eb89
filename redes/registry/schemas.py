"""Request and answer schemas of the registry's API (``registry.api``).

No schema here carries ``Person.sensitive_data`` or anything decrypted from it, except ``SensitiveOut``, which
only the case officers' endpoint returns (through ``services.read_sensitive``, audited).
"""

import datetime as dt
from typing import Any
from uuid import UUID

from django.utils import timezone
from ninja import Field, Schema

from redes.core.api import Input
from redes.territories.api import NodeRef

from . import services
from .models import Channel, Consent, DataRequest, ImportJob, Relation, Sex, Visit

# --- households -----------------------------------------------------------------------------------------------


class PhoneOut(Schema):
    number: str = Field(..., examples=["+528112345678"], description="E.164.")
    whatsapp: bool
    sms: bool
    voice: bool
    label: str = Field("", examples=["Doña Rosa"], description="Whose number it is.")


class PhoneIn(Input):
    number: str = Field(
        ...,
        max_length=30,
        examples=["81 1234 5678"],
        description="Mexican number in any common form (10 digits, +52, 044/045/01, +52 1).",
    )
    whatsapp: bool = False
    sms: bool = True
    voice: bool = True
    label: str = Field("", max_length=60)


class HouseholdOut(Schema):
    uuid: UUID
    block: NodeRef = Field(..., description="The block (territory leaf) the household belongs to.")
    external_id: str = Field("", description="The id in the source file of an import.")
    street: str = Field("", examples=["Calle Hidalgo"])
    ext_number: str = Field("", examples=["12"])
    int_number: str = Field("", examples=["B"])
    colonia: str = Field("", examples=["Centro"])
    postal_code: str = Field("", examples=["66050"])
    reference: str = Field("", examples=["Portón verde"])
    address: str = Field(..., examples=["Calle Hidalgo 12, Centro, 66050"])
    lat: float | None = None
    lon: float | None = None
    preferred_channel: str = Field(..., examples=["whatsapp"])
    phones: list[PhoneOut]
    members_count: int
    priority: int = Field(..., examples=[60], description="0 to 100; see the household's explanation.")
    last_visit_at: dt.datetime | None = None
    visited: bool
    status: str = Field(..., examples=["active"])
    created_at: dt.datetime
    updated_at: dt.datetime

    @staticmethod
    def resolve_block(obj) -> Any:
        return obj.node

    @staticmethod
    def resolve_phones(obj) -> list:
        return list(obj.phones.all())

    @staticmethod
    def resolve_visited(obj) -> bool:
        return obj.last_visit_at is not None


class ExplanationLine(Schema):
    factor: str = Field(
        ...,
        examples=["older_adult"],
        description="A factor code, or ``protected`` for the sensitive factors folded together.",
    )
    label: str = Field(..., examples=["Older adult (60 or over)"])
    points: int = Field(..., examples=[25])
    members: int | None = Field(None, description="Members with the factor (null for the folded line).")
    sensitive: bool


class PersonOut(Schema):
    """A person as field roles see them. Never includes sensitive data (see ``/persons/{uuid}/sensitive``)."""

    uuid: UUID
    household: UUID
    block: NodeRef
    external_id: str = ""
    full_name: str = Field(..., examples=["Rosa María de la Cruz Núñez"])
    given_name: str = Field("", examples=["Rosa María"])
    surname1: str = Field("", examples=["de la Cruz"])
    surname2: str = Field("", examples=["Núñez"])
    birth_date: dt.date | None = None
    birth_year: int | None = Field(None, description="From the birth date, or estimated from a stated age.")
    age_stated: bool = Field(False, description="The birth year comes from a stated age.")
    sex: str = Field("", examples=["M"], description="M woman, H man, X non-binary, empty: not stated.")
    curp: str = Field("", examples=["CUNR540312MNLRXS08"])
    phone: str = Field("", examples=["+528112345678"])
    relation: str = Field("", examples=["head"])
    factors: list[str] = Field(
        default_factory=list,
        examples=[["job_loss"]],
        description="Declared (non-sensitive) vulnerability factors.",
    )
    status: str = Field(..., examples=["active"])
    created_at: dt.datetime
    updated_at: dt.datetime

    @staticmethod
    def resolve_household(obj) -> UUID:
        return obj.household.uuid

    @staticmethod
    def resolve_block(obj) -> Any:
        return obj.node


class HouseholdDetail(HouseholdOut):
    members: list[PersonOut] = Field(..., description="Active members.")
    priority_threshold: int = Field(..., description="The municipality's threshold for priority households.")
    is_priority: bool
    explanation: list[ExplanationLine] = Field(
        ...,
        description="Why the household has its priority (sensitive factors folded for non case officers).",
    )


class HouseholdFields(Input):
    external_id: str | None = Field(None, max_length=64)
    street: str | None = Field(None, max_length=200, examples=["Calle Hidalgo"])
    ext_number: str | None = Field(None, max_length=20, examples=["12"])
    int_number: str | None = Field(None, max_length=20)
    colonia: str | None = Field(None, max_length=120, examples=["Centro"])
    postal_code: str | None = Field(None, max_length=10, examples=["66050"])
    reference: str | None = Field(None, max_length=200, examples=["Portón verde"])
    lat: float | None = Field(None, examples=[25.795])
    lon: float | None = Field(None, examples=[-100.325])
    preferred_channel: Channel | None = Field(None, examples=["whatsapp"])


class HouseholdIn(HouseholdFields):
    block: str = Field(..., description="UUID of the block (a territory leaf) where the household lives.")
    phones: list[PhoneIn] = Field(default_factory=list)


class HouseholdPatch(HouseholdFields):
    block: str | None = Field(None, description="UUID of another block in the caller's scope (a move).")
    phones: list[PhoneIn] | None = Field(None, description="Replaces every phone when given.")


class HouseholdFilters(Input):
    block: str | None = Field(None, description="Only households on this block (or under this node).")
    unvisited: bool | None = Field(None, description="true: only households never visited.")
    min_priority: int | None = Field(None, ge=0, le=100, description="Only households at or above it.")
    q: str | None = Field(None, max_length=100, description="Search in street, neighbourhood and reference.")


class VisitOut(Schema):
    uuid: UUID
    household: UUID
    visited_at: dt.datetime
    outcome: str = Field(..., examples=["contacted"])
    outcome_label: str = Field(..., examples=["Spoke with them"])
    note: str = ""
    visited_by: UUID | None = Field(None, description="The user account that recorded the visit.")

    @staticmethod
    def resolve_household(obj) -> UUID:
        return obj.household.uuid

    @staticmethod
    def resolve_outcome_label(obj) -> str:
        return str(Visit.Outcome(obj.outcome).label)

    @staticmethod
    def resolve_visited_by(obj) -> UUID | None:
        return obj.visited_by.uuid if obj.visited_by_id else None


class VisitIn(Input):
    outcome: Visit.Outcome = Field(..., examples=["contacted"])
    note: str = Field("", max_length=300)
    visited_at: dt.datetime | None = Field(None, description="Default: now. Not in the future.")


# --- persons --------------------------------------------------------------------------------------------------


class PersonFields(Input):
    full_name: str | None = Field(
        None,
        max_length=200,
        examples=["Rosa María de la Cruz Núñez"],
        description="Split when parts are missing.",
    )
    given_name: str | None = Field(None, max_length=100)
    surname1: str | None = Field(None, max_length=100)
    surname2: str | None = Field(None, max_length=100)
    birth_date: dt.date | None = Field(None, examples=["1954-03-12"])
    age: int | None = Field(None, description="A stated age, when the birth date is unknown.")
    sex: Sex | None = Field(None, examples=["M"])
    curp: str | None = Field(None, max_length=30, examples=["CUNR540312MNLRXS08"])
    phone: str | None = Field(None, max_length=30, examples=["81 1234 5678"])
    relation: Relation | None = Field(None, examples=["head"])
    factors: list[str] | None = Field(
        None,
        examples=[["job_loss"]],
        description="Declared factors: single_caregiver, job_loss, no_income, food_insecurity, no_phone.",
    )
    external_id: str | None = Field(None, max_length=64)


class PersonIn(PersonFields):
    full_name: str = Field(..., max_length=200, examples=["Rosa María de la Cruz Núñez"])


class DuplicateHint(Schema):
    candidate: UUID = Field(..., description="The review-queue entry.")
    person: UUID = Field(..., description="The other record that may be the same person.")
    score: float = Field(..., examples=[0.97])
    reasons: list[str] = Field(..., examples=[["curp_same", "birth_date_same"]])


class PersonCreated(PersonOut):
    possible_duplicates: list[DuplicateHint] = Field(
        ..., description="Records of the municipality that may be the same person (sent to the review queue)."
    )


class PersonFilters(Input):
    q: str | None = Field(
        None, max_length=100, description="Name words in any order, prefixes allowed (at most 50 matches)."
    )
    curp: str | None = Field(None, max_length=18, description="Exact CURP.")
    block: str | None = Field(None, description="Only persons on this block (or under this node).")
    household: str | None = Field(None, description="Only members of this household.")
    municipality: str | None = Field(None, description="Municipality UUID or INEGI key.")


class SensitiveFactor(Schema):
    code: str = Field(..., examples=["disability"])
    label: str = Field(..., examples=["Disability"])


class SensitiveOut(Schema):
    person: UUID
    factors: list[SensitiveFactor]
    notes: str = ""
    updated_at: dt.datetime | None = None


class SensitiveIn(Input):
    factors: list[str] = Field(
        ...,
        examples=[["disability"]],
        description="chronic_illness, disability, pregnancy, mental_health, violence_risk.",
    )
    notes: str = Field("", max_length=2000)


# --- consent --------------------------------------------------------------------------------------------------


class PurposeOut(Schema):
    code: str = Field(..., examples=["aid"])
    label: str = Field(..., examples=["Identify needs and deliver aid"])
    necessary: bool


class NoticeOut(Schema):
    uuid: UUID
    version: str = Field(..., examples=["2026-1"])
    text: str
    purposes: list[PurposeOut]
    published_at: dt.datetime

    @staticmethod
    def resolve_purposes(obj) -> list[dict]:
        return [
            {
                "code": p.get("code", ""),
                "label": p.get("label") or services.purpose_label(p.get("code", "")),
                "necessary": bool(p.get("necessary")),
            }
            for p in obj.purposes
        ]


class PurposeIn(Input):
    code: str = Field(..., max_length=40, examples=["aid"])
    label: str = Field("", max_length=200)
    necessary: bool = False


class NoticeIn(Input):
    version: str = Field(..., max_length=20, examples=["2026-1"])
    text: str = Field(..., max_length=50_000)
    purposes: list[PurposeIn] | None = Field(
        None, description="Default: aid and contact (necessary), messages and statistics (optional)."
    )


class ConsentOut(Schema):
    uuid: UUID
    person: UUID
    notice: UUID
    notice_version: str
    purposes: list[str] = Field(..., examples=[["aid", "contact"]])
    sensitive: bool = Field(..., description="Express consent for sensitive data.")
    channel: str = Field(..., examples=["in_person"])
    captured_by: UUID | None = None
    captured_at: dt.datetime
    revoked_at: dt.datetime | None = None
    revoke_reason: str = ""
    active: bool

    @staticmethod
    def resolve_person(obj) -> UUID:
        return obj.person.uuid

    @staticmethod
    def resolve_notice(obj) -> UUID:
        return obj.notice.uuid

    @staticmethod
    def resolve_notice_version(obj) -> str:
        return obj.notice.version

    @staticmethod
    def resolve_captured_by(obj) -> UUID | None:
        return obj.captured_by.uuid if obj.captured_by_id else None

    @staticmethod
    def resolve_active(obj) -> bool:
        return obj.revoked_at is None


class ConsentIn(Input):
    notice: str | None = Field(
        None, description="UUID of the privacy notice shown; default: the current one."
    )
    purposes: list[str] = Field(..., examples=[["aid", "contact"]])
    sensitive: bool = Field(False, description="Express consent to record sensitive data.")
    channel: Consent.Via = Field(..., examples=["in_person"])


class RevokeIn(Input):
    reason: str = Field("", max_length=200)


# --- data-subject requests ------------------------------------------------------------------------------------


class DataRequestOut(Schema):
    uuid: UUID
    person: UUID
    block: NodeRef
    kind: str = Field(..., examples=["access"])
    kind_label: str
    status: str = Field(..., examples=["open"])
    received_at: dt.datetime
    due_on: dt.date = Field(..., description="20 business days after it was received.")
    days_left: int = Field(..., description="Calendar days until due_on (negative: overdue).")
    details: str = ""
    purpose: str = ""
    changes: dict[str, Any] = Field(default_factory=dict)
    response: str = ""
    answered_at: dt.datetime | None = None

    @staticmethod
    def resolve_person(obj) -> UUID:
        return obj.person.uuid

    @staticmethod
    def resolve_block(obj) -> Any:
        return obj.node

    @staticmethod
    def resolve_kind_label(obj) -> str:
        return str(DataRequest.Kind(obj.kind).label)

    @staticmethod
    def resolve_days_left(obj) -> int:
        return (obj.due_on - timezone.localdate()).days


class DataRequestIn(Input):
    kind: DataRequest.Kind = Field(..., examples=["access"])
    details: str = Field("", max_length=5000)
    purpose: str = Field("", max_length=40, description="Objection: the purpose objected to.")
    changes: dict[str, Any] | None = Field(
        None, examples=[{"surname2": "Díaz"}], description="Rectification: field → correct value."
    )


class AnswerIn(Input):
    response: str = Field("", max_length=5000)


# --- duplicates -----------------------------------------------------------------------------------------------


class PersonBrief(Schema):
    uuid: UUID
    full_name: str
    birth_date: dt.date | None = None
    birth_year: int | None = None
    curp: str = ""
    household: UUID
    address: str
    block: NodeRef

    @staticmethod
    def resolve_household(obj) -> UUID:
        return obj.household.uuid

    @staticmethod
    def resolve_address(obj) -> str:
        return obj.household.address

    @staticmethod
    def resolve_block(obj) -> Any:
        return obj.node


class DuplicateOut(Schema):
    uuid: UUID
    score: float
    reasons: list[str]
    status: str
    source: str = Field(..., examples=["entry"])
    created_at: dt.datetime
    person_a: PersonBrief
    person_b: PersonBrief


class DecideIn(Input):
    same: bool = Field(..., description="true: the same person (merge); false: different persons.")
    keep: str | None = Field(
        None, description="Merging: UUID of the record to keep (default: the older one)."
    )


# --- policy and counts ----------------------------------------------------------------------------------------


class WeightOut(Schema):
    factor: str = Field(..., examples=["older_adult"])
    label: str
    weight: int
    default: int
    sensitive: bool
    derived: bool = Field(..., description="Computed from the birth date or the household, not declared.")


class PolicyOut(Schema):
    municipality: UUID
    weights: list[WeightOut]
    priority_threshold: int = Field(..., examples=[40])
    retention_days: int


class PolicyIn(Input):
    weights: dict[str, Any] = Field(
        ...,
        examples=[{"older_adult": 30}],
        description="Factor → points (0 to 100); others take the default.",
    )
    priority_threshold: int | None = Field(None, examples=[40])


class CountNumbers(Schema):
    households: int
    persons: int
    priority_households: int
    visited_households: int


class ChildCounts(CountNumbers):
    node: NodeRef


class CountsOut(CountNumbers):
    node: NodeRef
    children: list[ChildCounts] = Field(..., description="The same numbers per child of the node.")


# --- imports --------------------------------------------------------------------------------------------------


class ImportRowError(Schema):
    row: int = Field(..., examples=[7], description="Row number as in the file (the header is row 1).")
    column: str = Field("", examples=["CURP"], description="The column's name as in the file.")
    message: str = Field(..., examples=["A CURP has 18 characters; “ABC” has 3."])
    loc: list[str | int] = Field(..., examples=[["file", 7, "CURP"]])
    msg: str


class ImportJobOut(Schema):
    uuid: UUID
    municipality: UUID
    node: NodeRef = Field(..., description="Rows must fall under this node.")
    filename: str
    format: str = Field("", examples=["csv"])
    encoding: str = Field("", examples=["cp1252"])
    columns: list[str] = Field(default_factory=list, description="The file's column headers.")
    mapping: dict[str, str] = Field(
        default_factory=dict,
        examples=[{"full_name": "Nombre", "street": "Calle", "block": "Manzana"}],
        description="Field code → column header (suggested from the headers on upload).",
    )
    mode: str = Field(..., examples=[ImportJob.Mode.VALID_ROWS])
    status: str = Field(..., examples=["running"])
    status_label: str
    phase: str = Field("", examples=["validating"])
    total_rows: int
    processed_rows: int
    percent: int | None = Field(None, description="processed / total rows, once the total is known.")
    households_created: int
    households_updated: int
    persons_created: int
    persons_updated: int
    invalid_rows: int
    duplicates_flagged: int
    errors: list[ImportRowError] = Field(
        default_factory=list, description="The first row errors (at most 200)."
    )
    errors_total: int = 0
    failure: str = Field("", description="Why the import failed, when it did.")
    created_at: dt.datetime
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None

    @staticmethod
    def resolve_municipality(obj) -> UUID:
        return obj.municipality.uuid

    @staticmethod
    def resolve_status_label(obj) -> str:
        return str(ImportJob.Status(obj.status).label)

    @staticmethod
    def resolve_percent(obj) -> int | None:
        return min(100, int(100 * obj.processed_rows / obj.total_rows)) if obj.total_rows else None

    @staticmethod
    def resolve_format(obj) -> str:
        return str((obj.report or {}).get("format", ""))

    @staticmethod
    def resolve_columns(obj) -> list[str]:
        return [str(c) for c in (obj.report or {}).get("columns", [])]

    @staticmethod
    def resolve_errors(obj) -> list[dict]:
        return [import_error(e) for e in (obj.report or {}).get("errors", [])]

    @staticmethod
    def resolve_errors_total(obj) -> int:
        return int((obj.report or {}).get("errors_total", 0))

    @staticmethod
    def resolve_failure(obj) -> str:
        return str((obj.report or {}).get("failure", ""))


def import_error(error: dict) -> dict:
    """A row error of ``registry.importing`` in the API's error shape (``loc`` and ``msg`` added)."""
    row, column, message = error.get("row", 0), error.get("column", ""), error.get("message", "")
    return {
        "row": row,
        "column": column,
        "message": message,
        "loc": ["file", row, column] if column else ["file", row],
        "msg": message,
    }


class PreviewRow(Schema):
    row: int
    values: dict[str, Any] = Field(..., description="Field code → the cleaned value.")
    errors: dict[str, list[str]] = Field(..., description="Field code or column → the reasons.")


class PreviewOut(Schema):
    rows: list[PreviewRow]
    total: int
    valid: int
    invalid: int
    households: int
    errors: list[ImportRowError]
    errors_total: int


class MappingIn(Input):
    mapping: dict[str, Any] = Field(
        ..., examples=[{"calle": "street", "numero": "ext_number", "nombre": "full_name"}]
    )
    mode: ImportJob.Mode = Field(ImportJob.Mode.VALID_ROWS)
