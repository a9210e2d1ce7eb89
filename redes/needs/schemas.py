"""Request and answer schemas of the needs API (``needs.api``).

A sensitive need answers as a *stub* (``stub: true``: status and dates only, no category, description, person
or location) to everyone but case officers; its description reaches case officers only through
``services.read_sensitive`` (audited).
"""

import datetime as dt
from typing import Any
from uuid import UUID

from ninja import Field, Schema

from redes.core.api import Input

from .models import NeedChannel, NeedStatus, Office, Outcome, Referral, RoutingRule, Urgency


class NodeBrief(Schema):
    uuid: UUID
    code: str = Field(..., examples=["S01-M001"])
    name: str = Field(..., examples=["Manzana 1"])
    depth: int = Field(..., examples=[4])


class PersonRef(Schema):
    uuid: UUID
    name: str = Field(..., examples=["Blanca Manzana"])


class NamedRef(Schema):
    uuid: UUID
    name: str


class NeedOut(Schema):
    uuid: UUID
    stub: bool = Field(
        False,
        description="A sensitive report seen by someone other than a case officer: only its status and dates.",
    )
    status: str = Field(..., examples=["new"])
    status_label: str = Field(..., examples=["New"])
    sensitive: bool
    category: str | None = Field(None, examples=["alimentacion"])
    category_label: str | None = Field(None, examples=["Food"])
    urgency: str | None = Field(None, examples=["high"])
    channel: str | None = Field(None, examples=["field"])
    node: NodeBrief | None = Field(None, description="The block (or smallest known unit) of the need.")
    holder: NodeBrief | None = Field(None, description="The node whose liaison holds it now.")
    holder_label: str | None = None
    escalation_level: int | None = Field(None, examples=[1])
    assigned_user: PersonRef | None = None
    assigned_group: NamedRef | None = None
    assigned_office: NamedRef | None = None
    due_at: dt.datetime | None = Field(None, description="Acknowledge by, then resolve by.")
    overdue: bool = False
    created_at: dt.datetime
    updated_at: dt.datetime


class NeedPage(Schema):
    items: list["NeedOut"]
    count: int = Field(..., description="How many needs match (all pages).")


class EventOut(Schema):
    at: dt.datetime
    kind: str = Field(..., examples=["escalated"])
    kind_label: str = Field(..., examples=["Escalated"])
    actor: PersonRef | None = None
    from_status: str = ""
    to_status: str = ""
    node: NodeBrief | None = Field(None, description="For escalations: the node the need went to.")
    note: str = Field("", description="The note (decrypted for case officers on sensitive needs).")
    data: dict[str, Any] = Field(default_factory=dict, description="level, outcome, category, urgency, ids…")


class ReferralOut(Schema):
    uuid: UUID
    need: UUID
    office: NamedRef
    status: str = Field(..., examples=["sent"])
    note: str = ""
    outcome: str = ""
    created_at: dt.datetime
    updated_at: dt.datetime


NeedPage.model_rebuild()


class NeedDetail(NeedOut):
    description: str | None = Field(
        None, description="For sensitive needs: only for case officers (audited)."
    )
    address: str | None = None
    lat: float | None = None
    lon: float | None = None
    contact_phone: str | None = None
    household: UUID | None = None
    person: UUID | None = None
    ack_due: dt.datetime | None = None
    resolve_due: dt.datetime | None = None
    acknowledged_at: dt.datetime | None = None
    resolved_at: dt.datetime | None = None
    closed_at: dt.datetime | None = None
    outcome: str | None = None
    outcome_note: str | None = None
    satisfaction: int | None = None
    duplicate_of: UUID | None = None
    events: list[EventOut] = Field(default_factory=list, description="The timeline, oldest first.")
    referrals: list[ReferralOut] = Field(default_factory=list)


class NeedFilters(Schema):
    status: str | None = Field(
        None, description="open (default), closed, all, or one status: " + ", ".join(NeedStatus.values)
    )
    category: str | None = Field(None, description="A category code (its sub-categories included).")
    urgency: Urgency | None = None
    node: str | None = Field(None, description="Only needs under this node (UUID).")
    municipality: str | None = Field(None, description="Only this municipality (INEGI key or UUID).")
    overdue: bool | None = None
    mine: bool = Field(False, description="Only those held by the caller's posts or assigned to them.")
    level: int | None = Field(None, ge=0, le=50, description="Escalation level.")


class NeedIn(Input):
    municipality: str = Field(..., examples=["19021"], description="INEGI key or UUID.")
    category: str = Field(..., max_length=40, examples=["alimentacion"])
    description: str = Field(..., max_length=5000, examples=["Adulta mayor sin despensa esta semana"])
    urgency: Urgency = Urgency.NORMAL
    channel: NeedChannel = Field(
        NeedChannel.API, description="How the need came in (messaging channels too)."
    )
    node: str | None = Field(
        None,
        description="A block or other unit (UUID); else the household's block, or "
        "the block containing lat/lon, or the municipality.",
    )
    household: str | None = Field(None, description="UUID of a household the caller sees.")
    person: str | None = Field(None, description="UUID of a person the caller sees.")
    lat: float | None = Field(None, ge=-90, le=90)
    lon: float | None = Field(None, ge=-180, le=180)
    address: str = Field("", max_length=300)
    contact_phone: str = Field("", max_length=30, examples=["81 1234 5678"])


class TriageIn(Input):
    category: str | None = Field(None, max_length=40)
    urgency: Urgency | None = None
    note: str = Field("", max_length=5000)


class AssignIn(Input):
    user: str | None = Field(None, description="UUID of a user working in the need's territory.")
    group: str | None = Field(None, description="UUID of a working group covering the need.")
    office: str | None = Field(None, description="UUID of an office or hotline of the municipality.")
    note: str = Field("", max_length=5000)


class ResolveIn(Input):
    outcome: Outcome
    note: str = Field("", max_length=5000)


class CloseIn(Input):
    outcome: Outcome | None = Field(None, description="Required unless the need was resolved with one.")
    satisfaction: int | None = Field(None, description="The person's satisfaction, 1 to 5.")
    note: str = Field("", max_length=5000)


class CancelIn(Input):
    reason: str = Field(..., max_length=500)


class DuplicateIn(Input):
    of: str = Field(..., description="UUID of the need this one repeats.")


class NoteIn(Input):
    text: str = Field(..., max_length=5000)


class OptionalNoteIn(Input):
    note: str = Field("", max_length=5000)


class ReferIn(Input):
    office: str = Field(..., description="UUID of an office or hotline of the municipality.")
    note: str = Field("", max_length=5000)


class ReferralPatch(Input):
    status: Referral.Status
    note: str = Field("", max_length=5000)


class NotificationOut(Schema):
    id: int
    kind: str = Field(..., examples=["escalated"])
    kind_label: str
    need: UUID | None = Field(None, description="Empty for a summary (``data.count`` needs).")
    data: dict[str, Any] = Field(default_factory=dict)
    created_at: dt.datetime
    read_at: dt.datetime | None = None

    @staticmethod
    def resolve_need(obj) -> UUID | None:
        return obj.need.uuid if obj.need_id else None

    @staticmethod
    def resolve_kind_label(obj) -> str:
        return str(obj.get_kind_display())


class ReadIn(Input):
    ids: list[int] | None = Field(None, description="Notification ids; empty: all.")


class ReadOut(Schema):
    marked: int


# --- settings -------------------------------------------------------------------------------------------------


class CategoryOut(Schema):
    code: str
    label: str
    name: str = Field("", description="Empty: the built-in (translated) name of a default category.")
    parent: str | None = None
    sensitive: bool
    active: bool
    order: int


class CategoryIn(Input):
    code: str = Field(..., max_length=40, examples=["leche-infantil"])
    name: str = Field("", max_length=120)
    parent: str | None = Field(None, description="The parent's code.")
    sensitive: bool = False
    active: bool = True
    order: int = Field(0, ge=0, le=32000)


class OfficeOut(Schema):
    uuid: UUID
    kind: str
    name: str
    phone: str
    hours: str
    categories: list[str]
    active: bool


class OfficeIn(Input):
    name: str = Field(..., max_length=200, examples=["Instituto Municipal de la Mujer"])
    kind: Office.Kind = Office.Kind.OFFICE
    phone: str = Field("", max_length=40, examples=["800 108 4053"])
    hours: str = Field("", max_length=200, examples=["24 h"])
    categories: list[str] = Field(default_factory=list, description="Category codes.")
    active: bool = True


class GroupOut(Schema):
    uuid: UUID
    name: str
    node: NodeBrief
    theme: str | None = None
    members: list[PersonRef]
    active: bool


class GroupIn(Input):
    name: str = Field(..., max_length=200)
    node: str | None = Field(None, description="UUID of the node it covers (default: the municipality).")
    theme: str | None = Field(None, description="A category code.")
    members: list[str] = Field(default_factory=list, description="User UUIDs.")
    active: bool = True


class RuleOut(Schema):
    uuid: UUID
    category: str
    node: NodeBrief | None = None
    target: str
    user: PersonRef | None = None
    group: NamedRef | None = None
    office: NamedRef | None = None
    order: int


class RuleIn(Input):
    category: str = Field(..., max_length=40)
    target: RoutingRule.Target
    node: str | None = Field(None, description="UUID of the node it applies under (default: everywhere).")
    user: str | None = None
    group: str | None = None
    office: str | None = None
    order: int = Field(0, ge=0, le=32000)


class DeadlineOut(Schema):
    category: str | None = Field(None, description="Empty: every category without its own deadline.")
    urgency: str
    ack_minutes: int
    resolve_minutes: int


class DeadlineIn(Input):
    category: str | None = None
    urgency: Urgency
    ack_minutes: int = Field(..., ge=1, le=525600)
    resolve_minutes: int = Field(..., ge=1, le=525600)


# --- aggregates -----------------------------------------------------------------------------------------------


class EscalationCount(Schema):
    node: NodeBrief
    count: int | None


class CountsOut(Schema):
    node: NodeBrief
    open: int | None = Field(None, description="null: fewer than 5, hidden from observers.")
    overdue: int | None = None
    by_status: dict[str, int | None]
    by_category: dict[str, int | None]
    by_urgency: dict[str, int | None]
    escalations: list[EscalationCount] = Field(
        ..., description="Escalations of the needs under the node, per node they reached."
    )
    suppressed: bool = Field(..., description="Small counts are hidden (observers).")
