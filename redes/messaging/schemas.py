"""Request and response schemas of the messaging API (names prefixed so they never clash with other apps')."""

import datetime as dt
from typing import Any
from uuid import UUID

from ninja import Field, Schema

from redes.core.api import Input


class MsgNode(Schema):
    uuid: UUID
    code: str
    name: str
    depth: int


class MsgRef(Schema):
    uuid: UUID
    name: str


# --- broadcasts -------------------------------------------------------------------------------------------------


class Segment(Input):
    min_priority: int | None = Field(None, ge=0, le=100, description="Households at or above this priority.")
    categories: list[str] = Field(
        default_factory=list, description="Households with an open need in one of these category codes."
    )
    vulnerable: bool = Field(False, description="Households at or above the registry's priority threshold.")


class BroadcastIn(Input):
    municipality: str = Field(..., description="Municipality UUID or 5-digit INEGI key.")
    node: str = Field(..., description="UUID of the territory node the broadcast covers.")
    title: str = Field(..., max_length=120, examples=["Entrega de despensas"])
    body: str = Field(..., max_length=4096, examples=["Mañana a las 9:00 en el salón ejidal."])
    target: str = Field("subtree", description="subtree, role, group or segment.")
    roles: list[str] = Field(default_factory=list, examples=[["block_liaison"]])
    group: str | None = Field(None, description="Group UUID (target group).")
    segment: Segment | None = None
    cascade: bool = Field(False, description="Down the liaison tree, with acknowledgements.")
    reach_households: bool = Field(False, description="In a cascade, the last level sends to households.")
    ack_minutes: int = Field(60, ge=1, le=10080)
    remind_minutes: int = Field(30, ge=0, le=10080)
    template: str | None = Field(None, description="Key of an approved WhatsApp template (outside 24 hours).")


class BroadcastOut(Schema):
    uuid: UUID
    title: str
    body: str
    target: str
    roles: list[str]
    group: MsgRef | None = None
    segment: dict[str, Any]
    node: MsgNode
    cascade: bool
    reach_households: bool
    ack_minutes: int
    remind_minutes: int
    status: str
    status_label: str
    recipients: int = Field(
        ..., description="Distinct contacts the messages go to (excluded ones not counted)."
    )
    created_at: dt.datetime
    created_by: str = ""
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    waiting_for_me: list[MsgNode] = Field(
        default_factory=list, description="Nodes of this cascade waiting for the caller's acknowledgement."
    )


class AckIn(Input):
    node: str | None = Field(None, description="UUID of the node; empty: the caller's oldest node waiting.")


class AckOut(Schema):
    node: MsgNode
    status: str
    acked_at: dt.datetime | None
    ack_via: str


class ProgressNode(Schema):
    uuid: UUID
    name: str
    code: str
    parent: UUID | None
    depth: int
    status: str
    liaison: str = Field("", description="Empty for callers who see aggregates only.")
    sent_at: dt.datetime | None
    due_at: dt.datetime | None
    acked_at: dt.datetime | None
    ack_via: str
    reminders: int
    escalated_at: dt.datetime | None
    lat: float | None
    lon: float | None


class BroadcastProgress(Schema):
    status: str
    cascade: bool
    recipients: int
    excluded: int = Field(..., description="Contacts not sent to: opted out or without consent.")
    totals: dict[str, int]
    depths: list[dict[str, int]]
    outbound: dict[str, int]
    outbound_by_kind: dict[str, dict[str, int]]
    nodes: list[ProgressNode]


# --- groups -----------------------------------------------------------------------------------------------------


class ChatGroupOut(Schema):
    uuid: UUID
    name: str
    kind: str
    medium: str
    node: MsgNode
    working_group: MsgRef | None = None
    invite_link: str
    rules: str
    moderators: list[MsgRef]
    members_count: int
    active: bool


class ChatGroupIn(Input):
    municipality: str = Field(..., description="Municipality UUID or 5-digit INEGI key.")
    name: str = Field(..., max_length=120, examples=["Manzana 12 — Vecinos"])
    kind: str = Field(..., description="block, sector, municipal or theme.")
    node: str = Field(..., description="Territory node UUID.")
    medium: str = "whatsapp"
    working_group: str | None = Field(None, description="Working group UUID (theme groups).")
    invite_link: str = Field("", max_length=200)
    rules: str = Field("", max_length=4000)
    moderators: list[str] = Field(default_factory=list, description="User UUIDs.")
    active: bool = True


class ChatGroupPatch(Input):
    name: str | None = Field(None, max_length=120)
    kind: str | None = None
    node: str | None = None
    medium: str | None = None
    working_group: str | None = None
    invite_link: str | None = Field(None, max_length=200)
    rules: str | None = Field(None, max_length=4000)
    moderators: list[str] | None = None
    active: bool | None = None


# --- templates and flows ----------------------------------------------------------------------------------------


class MessageTemplateOut(Schema):
    uuid: UUID
    municipality: UUID
    key: str
    name: str
    body: str
    whatsapp_name: str
    whatsapp_language: str
    whatsapp_status: str
    system: bool
    updated_at: dt.datetime


class MessageTemplateIn(Input):
    municipality: str = Field(..., description="Municipality UUID or 5-digit INEGI key.")
    name: str = Field(..., max_length=120)
    body: str = Field(
        ..., max_length=4096, examples=["Hola {nombre}, su solicitud {referencia} fue atendida."]
    )
    whatsapp_name: str = ""
    whatsapp_language: str = "es_MX"
    whatsapp_status: str = ""


class FlowOut(Schema):
    uuid: UUID
    municipality: UUID
    key: str
    name: str
    definition: dict[str, Any]
    version: int
    active: bool
    updated_at: dt.datetime


class FlowIn(Input):
    municipality: str = Field(..., description="Municipality UUID or 5-digit INEGI key.")
    definition: dict[str, Any]
    name: str = Field("", max_length=120)


class FlowCheckIn(Input):
    definition: Any = Field(..., description="The flow definition (an object, or its JSON text).")


class FlowCheckOut(Schema):
    valid: bool
    problems: list[str]


# --- contacts, outbox, inbox ------------------------------------------------------------------------------------


class ContactOut(Schema):
    uuid: UUID
    address: str
    preferred: str
    whatsapp: bool
    node: MsgNode | None = None
    household: UUID | None = None
    user: str = ""
    opted_in_at: dt.datetime | None
    opted_out_at: dt.datetime | None
    last_inbound_at: dt.datetime | None
    created_at: dt.datetime


class OutboundOut(Schema):
    id: int
    contact: UUID
    address: str
    account: str
    broadcast: UUID | None = None
    kind: str
    status: str
    template: str
    text: str = Field("", description="The text when it was written out; broadcast rows render at send time.")
    attempts: int
    error_code: str
    error: str
    created_at: dt.datetime
    sent_at: dt.datetime | None
    delivered_at: dt.datetime | None
    read_at: dt.datetime | None


class InboundOut(Schema):
    id: int
    account: str
    kind: str
    sender: str
    contact: UUID | None = None
    text: str
    state: str
    error: str
    received_at: dt.datetime
    processed_at: dt.datetime | None


# --- channel accounts -------------------------------------------------------------------------------------------


class ChannelAccountOut(Schema):
    uuid: UUID
    municipality: UUID
    provider: str
    name: str
    address: str
    medium: str
    config: dict[str, Any]
    secrets_set: list[str] = Field(..., description="Names of the secrets saved (never their values).")
    rate_per_second: float
    burst: int
    active: bool
    created_at: dt.datetime


class ChannelAccountIn(Input):
    municipality: str = Field(..., description="Municipality UUID or 5-digit INEGI key.")
    provider: str = Field(..., description="whatsapp, twilio, gateway, telegram or console.")
    name: str = Field(..., max_length=80)
    address: str = Field("", max_length=64)
    config: dict[str, Any] = Field(default_factory=dict)
    secrets: dict[str, str] = Field(default_factory=dict, description="Write-only; never returned.")
    rate_per_second: float | None = Field(None, gt=0, le=10000)
    burst: int | None = Field(None, ge=1, le=100000)
    active: bool = True


class ChannelAccountPatch(Input):
    name: str | None = Field(None, max_length=80)
    address: str | None = Field(None, max_length=64)
    config: dict[str, Any] | None = None
    secrets: dict[str, str] | None = Field(None, description="Write-only: keys left out keep their value.")
    rate_per_second: float | None = Field(None, gt=0, le=10000)
    burst: int | None = Field(None, ge=1, le=100000)
    active: bool | None = None
