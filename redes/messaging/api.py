"""JSON API of messaging (tag Messaging): broadcasts and their cascade, groups, templates, flows, contacts,
the outbox, the inbox and channel accounts.

Reads go through ``messaging.queries`` (``accounts.scoping``); writes through the services (``broadcasts``,
``groups``, ``texts``, ``flows``, ``accounts``), which check permissions and audit their refusals; lookups that
answer 404 are audited here (``core.api.attempt``).

Access: broadcasts are created, started and cancelled by holders of ``BROADCAST`` over their node (coordinators,
sector liaisons for their sector); a liaison sees the broadcasts whose cascade reached them and acknowledges only
their own node. Progress is an aggregate: observers (``VIEW_AGGREGATES`` over the broadcast's territory) get its
counts, never titles, texts or liaison names. Groups, contacts, the outbox and the inbox are personal data
(``VIEW_PERSONAL``); channel accounts, templates and flows are for ``MANAGE_MESSAGING`` (coordinators); secrets
are write-only.
"""

from django.core.exceptions import PermissionDenied, ValidationError
from django.utils.translation import gettext as _
from ninja import Router, Status
from ninja.pagination import paginate

from redes.accounts import scoping
from redes.accounts.roles import Perm
from redes.core.api import ERRORS, READ_403, WRITE_ERRORS, NotFound, Paginator, attempt, user_of
from redes.territories.api import find_municipality, find_node
from redes.territories.models import Municipality, Node

from . import broadcasts as services
from . import groups as group_services
from . import queries
from .models import Broadcast, CascadeNode, ChannelAccount, Contact, Group, Inbound, Outbound
from .schemas import (
    AckIn,
    AckOut,
    BroadcastIn,
    BroadcastOut,
    BroadcastProgress,
    ChannelAccountIn,
    ChannelAccountOut,
    ChannelAccountPatch,
    ChatGroupIn,
    ChatGroupOut,
    ChatGroupPatch,
    ContactOut,
    FlowCheckIn,
    FlowCheckOut,
    FlowIn,
    FlowOut,
    InboundOut,
    MessageTemplateIn,
    MessageTemplateOut,
    OutboundOut,
)

router = Router(tags=["Messaging"])


# --- helpers ------------------------------------------------------------------------------------------------------


def _by_uuid(qs, key, loc):
    try:
        return qs.get(uuid=key)
    except (qs.model.DoesNotExist, ValidationError, ValueError, TypeError) as exc:
        raise NotFound(loc) from exc


def _node(node):
    return (
        None
        if node is None
        else {"uuid": node.uuid, "code": node.code, "name": node.name, "depth": node.depth}
    )


def _choice(value: str, choices, loc: str) -> str:
    if value and value not in choices:
        raise ValidationError({loc: _("Unknown value “%(v)s”.") % {"v": value}})
    return value


def _require_list(user, perm: str, message: str) -> None:
    if not scoping.can(user, perm):
        raise PermissionDenied(message)


def _managed(request, key: str, loc) -> Municipality:
    """A municipality the caller manages messaging of (404 unseen, 403 seen but not managed)."""
    municipality = find_municipality(request, key, loc=loc)
    if not scoping.can(user_of(request), Perm.MANAGE_MESSAGING, municipality.node):
        raise PermissionDenied(_("Your role does not allow managing messaging in this municipality."))
    return municipality


def _require_manager(user) -> None:
    _require_list(user, Perm.MANAGE_MESSAGING, _("Your role does not allow managing messaging."))


# --- broadcasts ---------------------------------------------------------------------------------------------------


def broadcast_out(b: Broadcast, user) -> dict:
    waiting = []
    if b.cascade and b.status == Broadcast.Status.SENDING:
        waiting = [_node(r.node) for r in queries.waiting_acks(user).filter(broadcast=b)]
    return {
        "uuid": b.uuid,
        "title": b.title,
        "body": b.body,
        "target": b.target,
        "roles": b.roles,
        "group": {"uuid": b.group.uuid, "name": b.group.name} if b.group_id else None,
        "segment": b.segment,
        "node": _node(b.node),
        "cascade": b.cascade,
        "reach_households": b.reach_households,
        "ack_minutes": b.ack_minutes,
        "remind_minutes": b.remind_minutes,
        "status": b.status,
        "status_label": str(b.get_status_display()),
        "recipients": b.recipients,
        "created_at": b.created_at,
        "created_by": b.created_by.display_name if b.created_by_id else "",
        "started_at": b.started_at,
        "finished_at": b.finished_at,
        "waiting_for_me": waiting,
    }


def _visible_broadcasts(user):
    return queries.broadcasts_for(user).select_related("node", "group", "created_by")


def _find_broadcast(request, key) -> Broadcast:
    return _by_uuid(_visible_broadcasts(user_of(request)), key, ["path", "uuid"])


@router.get(
    "/messaging/broadcasts",
    response={200: list[BroadcastOut], **READ_403},
    summary="Broadcasts",
    description="Those the caller may send (BROADCAST) and those whose cascade reached them. Not for observers.",
)
@paginate(Paginator)
def list_broadcasts(request, municipality: str | None = None, status: str | None = None):
    user = user_of(request)
    if not queries.may_list_broadcasts(user):
        raise PermissionDenied(_("Your role does not see broadcasts."))
    qs = _visible_broadcasts(user)
    if municipality:
        qs = qs.filter(municipality=find_municipality(request, municipality, loc=["query", "municipality"]))
    if status:
        qs = qs.filter(status=_choice(status, Broadcast.Status.values, "query.status"))
    return [broadcast_out(b, user) for b in qs.order_by("-created_at", "-id")]


@router.post(
    "/messaging/broadcasts", response={201: BroadcastOut, **WRITE_ERRORS}, summary="Write a broadcast"
)
def create_broadcast(request, payload: BroadcastIn):
    user = user_of(request)
    with attempt(request, "messaging.broadcast.create"):
        municipality = find_municipality(request, payload.municipality, loc=["body", "municipality"])
        node = find_node(request, payload.node, loc=["body", "node"])
        group = None
        if payload.group:
            group = _by_uuid(
                Group.objects.filter(municipality=municipality), payload.group, ["body", "group"]
            )
        template = None
        if payload.template:
            from .models import MessageTemplate

            template = MessageTemplate.objects.filter(municipality=municipality, key=payload.template).first()
            if template is None:
                raise NotFound(["body", "template"])
    segment = payload.segment.model_dump(exclude_defaults=True) if payload.segment else None
    broadcast = services.create_broadcast(
        actor=user,
        municipality=municipality,
        node=node,
        title=payload.title,
        body=payload.body,
        target=payload.target,
        roles=payload.roles,
        group=group,
        segment=segment,
        cascade=payload.cascade,
        reach_households=payload.reach_households,
        ack_minutes=payload.ack_minutes,
        remind_minutes=payload.remind_minutes,
        template=template,
    )
    return Status(201, broadcast_out(broadcast, user))


@router.get("/messaging/broadcasts/{uuid}", response={200: BroadcastOut, **ERRORS}, summary="One broadcast")
def get_broadcast(request, uuid: str):
    return broadcast_out(_find_broadcast(request, uuid), user_of(request))


@router.post(
    "/messaging/broadcasts/{uuid}/start",
    response={200: BroadcastOut, **WRITE_ERRORS},
    summary="Send a draft broadcast",
    description="Once: a second start (double click, another client) answers 400 and sends nothing twice.",
)
def start_broadcast(request, uuid: str):
    user = user_of(request)
    with attempt(request, "messaging.broadcast.start"):
        broadcast = _find_broadcast(request, uuid)
    return broadcast_out(services.start_broadcast(broadcast, actor=user), user)


@router.post(
    "/messaging/broadcasts/{uuid}/cancel",
    response={200: BroadcastOut, **WRITE_ERRORS},
    summary="Cancel a broadcast",
    description="Messages not yet taken by a worker are cancelled.",
)
def cancel_broadcast(request, uuid: str):
    user = user_of(request)
    with attempt(request, "messaging.broadcast.cancel"):
        broadcast = _find_broadcast(request, uuid)
    return broadcast_out(services.cancel(broadcast, actor=user), user)


@router.get(
    "/messaging/broadcasts/{uuid}/progress",
    response={200: BroadcastProgress, **ERRORS},
    summary="The live progress of a broadcast",
    description="Cascade counts per depth and status, one entry per node, outbox counts per status. Observers of "
    "the territory get the counts and the nodes without liaison names.",
)
def broadcast_progress(request, uuid: str):
    user = user_of(request)
    broadcast = _visible_broadcasts(user).filter(uuid=uuid).first() if _is_uuid(uuid) else None
    personal = True
    if broadcast is None:
        broadcast = (
            Broadcast.objects.select_related("node").filter(uuid=uuid).first() if _is_uuid(uuid) else None
        )
        if broadcast is None or not scoping.can(user, Perm.VIEW_AGGREGATES, broadcast.node):
            raise NotFound(["path", "uuid"])
        personal = False
    if personal and not scoping.can(user, Perm.VIEW_PERSONAL, broadcast.node):
        # A liaison reached by the cascade: liaison names of the nodes under their own territory only.
        result = services.progress(broadcast, personal=True)
        mine = set(
            scoping.scoped(Node.objects.subtree(broadcast.node), user, Perm.VIEW_PERSONAL).values_list(
                "uuid", flat=True
            )
        )
        for row in result["nodes"]:
            if row["uuid"] not in mine:
                row["liaison"] = ""
        return result
    return services.progress(broadcast, personal=personal)


def _is_uuid(value: str) -> bool:
    import uuid as uuid_module

    try:
        uuid_module.UUID(str(value))
    except ValueError:
        return False
    return True


@router.post(
    "/messaging/broadcasts/{uuid}/ack",
    response={200: AckOut, **WRITE_ERRORS},
    summary="Acknowledge a cascade message",
    description="The caller acknowledges the message for a node they are the liaison of; the level below gets it.",
)
def acknowledge(request, uuid: str, payload: AckIn):
    user = user_of(request)
    with attempt(request, "messaging.cascade.ack") as a:
        broadcast = _find_broadcast(request, uuid)
        a.obj = broadcast
        rows = CascadeNode.objects.filter(broadcast=broadcast).select_related("node")
        if payload.node:
            row = rows.filter(node__uuid=payload.node).first() if _is_uuid(payload.node) else None
            if row is None:
                raise NotFound(["body", "node"])
        else:
            row = queries.waiting_acks(user).filter(broadcast=broadcast).first()
            if row is None:
                raise ValidationError(_("Nothing of this broadcast is waiting for your acknowledgement."))
    row = services.acknowledge(row, actor=user, via="web")
    return {"node": _node(row.node), "status": row.status, "acked_at": row.acked_at, "ack_via": row.ack_via}


# --- groups -------------------------------------------------------------------------------------------------------


def group_out(g: Group) -> dict:
    return {
        "uuid": g.uuid,
        "name": g.name,
        "kind": g.kind,
        "medium": g.medium,
        "node": _node(g.node),
        "working_group": {"uuid": g.working_group.uuid, "name": g.working_group.name}
        if g.working_group_id
        else None,
        "invite_link": g.invite_link,
        "rules": g.rules,
        "moderators": [{"uuid": u.uuid, "name": u.display_name} for u in g.moderators.all()],
        "members_count": g.members_count,
        "active": g.active,
    }


def _groups(user):
    return queries.groups_for(user).select_related("node", "working_group").prefetch_related("moderators")


def _group_args(request, municipality, payload, loc_prefix="body") -> dict:
    from redes.needs.models import WorkingGroup

    data = payload.model_dump(exclude_unset=True, exclude={"municipality"})
    if "node" in data:
        data["node"] = find_node(request, data["node"], loc=[loc_prefix, "node"])
        if data["node"].municipality_id != municipality.pk:
            raise NotFound([loc_prefix, "node"])
    if data.get("working_group"):
        data["working_group"] = _by_uuid(
            WorkingGroup.objects.filter(municipality=municipality),
            data["working_group"],
            [loc_prefix, "working_group"],
        )
    if "moderators" in data:
        users = []
        for i, key in enumerate(data["moderators"] or []):
            users.append(
                _by_uuid(
                    scoping.users(user_of(request), Perm.VIEW_PERSONAL), key, [loc_prefix, "moderators", i]
                )
            )
        data["moderators"] = users
    return data


@router.get(
    "/messaging/groups",
    response={200: list[ChatGroupOut], **READ_403},
    summary="The group registry",
    description="WhatsApp and Telegram groups of the network under the caller's territory (not for observers).",
)
@paginate(Paginator)
def list_groups(request, municipality: str | None = None, kind: str | None = None):
    user = user_of(request)
    _require_list(user, Perm.VIEW_PERSONAL, _("Your role does not see the group registry."))
    qs = _groups(user)
    if municipality:
        qs = qs.filter(municipality=find_municipality(request, municipality, loc=["query", "municipality"]))
    if kind:
        qs = qs.filter(kind=_choice(kind, Group.Kind.values, "query.kind"))
    return [group_out(g) for g in qs.order_by("kind", "name", "id")]


@router.post("/messaging/groups", response={201: ChatGroupOut, **WRITE_ERRORS}, summary="Register a group")
def create_group(request, payload: ChatGroupIn):
    with attempt(request, "messaging.group.save"):
        municipality = find_municipality(request, payload.municipality, loc=["body", "municipality"])
        data = _group_args(request, municipality, payload)
    group = group_services.save_group(municipality, actor=user_of(request), **data)
    return Status(201, group_out(group))


@router.get("/messaging/groups/{uuid}", response={200: ChatGroupOut, **ERRORS}, summary="One group")
def get_group(request, uuid: str):
    return group_out(_by_uuid(_groups(user_of(request)), uuid, ["path", "uuid"]))


@router.patch(
    "/messaging/groups/{uuid}", response={200: ChatGroupOut, **WRITE_ERRORS}, summary="Change a group"
)
def update_group(request, uuid: str, payload: ChatGroupPatch):
    with attempt(request, "messaging.group.save") as a:
        a.obj = group = _by_uuid(_groups(user_of(request)), uuid, ["path", "uuid"])
        municipality = Municipality.objects.get(pk=group.municipality_id)
        data = _group_args(request, municipality, payload)
    current = {
        "name": group.name,
        "kind": group.kind,
        "node": group.node,
        "medium": group.medium,
        "working_group": group.working_group,
        "invite_link": group.invite_link,
        "rules": group.rules,
        "moderators": list(group.moderators.all()),
        "active": group.active,
    }
    current.update({k: v for k, v in data.items() if v is not None or k == "working_group"})
    saved = group_services.save_group(municipality, actor=user_of(request), group=group, **current)
    return group_out(saved)


# --- templates and flows ------------------------------------------------------------------------------------------


def template_out(t) -> dict:
    return {
        "uuid": t.uuid,
        "municipality": t.municipality.uuid,
        "key": t.key,
        "name": t.name,
        "body": t.body,
        "whatsapp_name": t.whatsapp_name,
        "whatsapp_language": t.whatsapp_language,
        "whatsapp_status": t.whatsapp_status,
        "system": t.system,
        "updated_at": t.updated_at,
    }


@router.get(
    "/messaging/templates",
    response={200: list[MessageTemplateOut], **READ_403},
    summary="Message templates",
    description="The municipality's texts in Spanish (coordinators). Missing defaults are created on first read.",
)
@paginate(Paginator)
def list_templates(request, municipality: str):
    from .defaults import ensure_defaults

    user = user_of(request)
    _require_manager(user)
    found = _managed(request, municipality, ["query", "municipality"])
    ensure_defaults(found)
    return [
        template_out(t)
        for t in queries.templates_for(user)
        .filter(municipality=found)
        .select_related("municipality")
        .order_by("key")
    ]


@router.put(
    "/messaging/templates/{key}",
    response={200: MessageTemplateOut, **WRITE_ERRORS},
    summary="Write a message template",
    description="Creates the template or changes it; the placeholders of system templates are checked.",
)
def save_template(request, key: str, payload: MessageTemplateIn):
    from .texts import save_template as save

    with attempt(request, "messaging.template.save"):
        municipality = find_municipality(request, payload.municipality, loc=["body", "municipality"])
    data = payload.model_dump(exclude={"municipality"})
    template = save(municipality, actor=user_of(request), key=key, **data)
    template.municipality = municipality
    return template_out(template)


def flow_out(f) -> dict:
    return {
        "uuid": f.uuid,
        "municipality": f.municipality.uuid,
        "key": f.key,
        "name": f.name,
        "definition": f.definition,
        "version": f.version,
        "active": f.active,
        "updated_at": f.updated_at,
    }


@router.post(
    "/messaging/flows/validate",
    response={200: FlowCheckOut, **ERRORS},
    summary="Check a conversation flow",
    description="Lists every problem of a definition without saving it.",
)
def validate_flow(request, payload: FlowCheckIn):
    from .flows import parse_definition, validate

    _require_manager(user_of(request))
    try:
        problems = validate(parse_definition(payload.definition))
    except ValidationError as exc:
        problems = [str(m) for m in exc.messages]
    return {"valid": not problems, "problems": problems}


@router.get("/messaging/flows/{key}", response={200: FlowOut, **READ_403}, summary="A conversation flow")
def get_flow(request, key: str, municipality: str):
    from .defaults import ensure_defaults

    user = user_of(request)
    found = _managed(request, municipality, ["query", "municipality"])
    ensure_defaults(found)
    flow = queries.flows_for(user).filter(municipality=found, key=key).select_related("municipality").first()
    if flow is None:
        raise NotFound(["path", "key"])
    return flow_out(flow)


@router.put(
    "/messaging/flows/{key}",
    response={200: FlowOut, **WRITE_ERRORS},
    summary="Write a conversation flow",
    description="Refused with every problem listed when invalid; the version goes up.",
)
def save_flow(request, key: str, payload: FlowIn):
    from .flows import save_flow as save

    with attempt(request, "messaging.flow.save"):
        municipality = find_municipality(request, payload.municipality, loc=["body", "municipality"])
    flow = save(
        municipality, actor=user_of(request), key=key, definition=payload.definition, name=payload.name
    )
    flow.municipality = municipality
    return flow_out(flow)


# --- contacts, outbox, inbox --------------------------------------------------------------------------------------


def contact_out(c: Contact) -> dict:
    return {
        "uuid": c.uuid,
        "address": c.address,
        "preferred": c.preferred,
        "whatsapp": c.whatsapp,
        "node": _node(c.node),
        "household": c.household.uuid if c.household_id else None,
        "user": c.user.display_name if c.user_id else "",
        "opted_in_at": c.opted_in_at,
        "opted_out_at": c.opted_out_at,
        "last_inbound_at": c.last_inbound_at,
        "created_at": c.created_at,
    }


def _require_personal(user) -> None:
    _require_list(user, Perm.VIEW_PERSONAL, _("Your role does not see personal data."))


@router.get(
    "/messaging/contacts",
    response={200: list[ContactOut], **READ_403},
    summary="Contacts",
    description="Phones and chats the network writes to (personal data: not for observers).",
)
@paginate(Paginator)
def list_contacts(request, municipality: str | None = None, opted_out: bool | None = None, q: str = ""):
    user = user_of(request)
    _require_personal(user)
    qs = queries.contacts_for(user).select_related("node", "household", "user")
    if municipality:
        qs = qs.filter(municipality=find_municipality(request, municipality, loc=["query", "municipality"]))
    if opted_out is not None:
        qs = qs.filter(opted_out_at__isnull=not opted_out)
    if q.strip():
        qs = qs.filter(address__contains=q.strip()[:64])
    return [contact_out(c) for c in qs.order_by("-created_at", "-id")]


def _set_opt(request, uuid: str, opted_out: bool) -> dict:
    action = "messaging.contact.opt_out" if opted_out else "messaging.contact.opt_in"
    with attempt(request, action):
        contact = _by_uuid(
            queries.contacts_for(user_of(request)).select_related("node", "household", "user"),
            uuid,
            ["path", "uuid"],
        )
    return contact_out(services.set_opted_out(contact, actor=user_of(request), opted_out=opted_out))


@router.post(
    "/messaging/contacts/{uuid}/opt-out",
    response={200: ContactOut, **WRITE_ERRORS},
    summary="Record an opt-out",
    description="The person asked to receive no more messages (queued broadcast messages are not sent).",
)
def opt_out(request, uuid: str):
    return _set_opt(request, uuid, True)


@router.post(
    "/messaging/contacts/{uuid}/opt-in",
    response={200: ContactOut, **WRITE_ERRORS},
    summary="Lift an opt-out",
    description="Lifts the opt-out only: consent still comes from the registry or the person's own “ALTA”.",
)
def opt_in(request, uuid: str):
    return _set_opt(request, uuid, False)


def outbound_out(o: Outbound) -> dict:
    return {
        "id": o.pk,
        "contact": o.contact.uuid,
        "address": o.contact.address,
        "account": o.account.name,
        "broadcast": o.broadcast.uuid if o.broadcast_id else None,
        "kind": o.kind,
        "status": o.status,
        "template": o.template,
        "text": o.body,
        "attempts": o.attempts,
        "error_code": o.error_code,
        "error": o.error,
        "created_at": o.created_at,
        "sent_at": o.sent_at,
        "delivered_at": o.delivered_at,
        "read_at": o.read_at,
    }


@router.get(
    "/messaging/outbox",
    response={200: list[OutboundOut], **READ_403},
    summary="The outbox",
    description="Messages to send and sent, with their delivery status (personal data: not for observers).",
)
@paginate(Paginator)
def list_outbox(request, broadcast: str | None = None, status: str = "", kind: str = ""):
    user = user_of(request)
    _require_personal(user)
    found = None
    if broadcast:
        found = _by_uuid(queries.broadcasts_for(user), broadcast, ["query", "broadcast"])
    qs = queries.outbox_for(
        user,
        broadcast=found,
        status=_choice(status, Outbound.Status.values, "query.status"),
        kind=_choice(kind, Outbound.Kind.values, "query.kind"),
    )
    return [outbound_out(o) for o in qs.select_related("contact", "account", "broadcast").order_by("-id")]


def inbound_out(i: Inbound) -> dict:
    return {
        "id": i.pk,
        "account": i.account.name,
        "kind": i.kind,
        "sender": i.sender,
        "contact": i.contact.uuid if i.contact_id else None,
        "text": i.text,
        "state": i.state,
        "error": i.error,
        "received_at": i.received_at,
        "processed_at": i.processed_at,
    }


@router.get(
    "/messaging/inbox",
    response={200: list[InboundOut], **READ_403},
    summary="Received messages",
    description="Messages and statuses received (personal data: not for observers); unknown senders for coordinators.",
)
@paginate(Paginator)
def list_inbox(request, state: str = "", kind: str = ""):
    user = user_of(request)
    _require_personal(user)
    qs = queries.inbox_for(
        user,
        state=_choice(state, Inbound.State.values, "query.state"),
        kind=_choice(kind, Inbound.Kind.values, "query.kind"),
    )
    return [inbound_out(i) for i in qs.select_related("contact", "account").order_by("-id")]


# --- channel accounts ---------------------------------------------------------------------------------------------


def account_out(a: ChannelAccount) -> dict:
    from .accounts import secrets_set

    return {
        "uuid": a.uuid,
        "municipality": a.municipality.uuid,
        "provider": a.provider,
        "name": a.name,
        "address": a.address,
        "medium": a.medium,
        "config": a.config,
        "secrets_set": secrets_set(a),
        "rate_per_second": a.rate_per_second,
        "burst": a.burst,
        "active": a.active,
        "created_at": a.created_at,
    }


@router.get(
    "/messaging/accounts",
    response={200: list[ChannelAccountOut], **READ_403},
    summary="Channel accounts",
    description="WhatsApp numbers, SMS providers, Telegram bots and the console (coordinators). Secrets are never "
    "returned, only the names of those saved.",
)
@paginate(Paginator)
def list_accounts(request, municipality: str | None = None):
    user = user_of(request)
    _require_manager(user)
    qs = queries.accounts_for(user).select_related("municipality")
    if municipality:
        qs = qs.filter(municipality=find_municipality(request, municipality, loc=["query", "municipality"]))
    return [account_out(a) for a in qs.order_by("municipality__code", "provider", "name")]


@router.post(
    "/messaging/accounts", response={201: ChannelAccountOut, **WRITE_ERRORS}, summary="Add a channel account"
)
def create_account(request, payload: ChannelAccountIn):
    from .accounts import save_account

    with attempt(request, "messaging.account.create"):
        municipality = find_municipality(request, payload.municipality, loc=["body", "municipality"])
    data = payload.model_dump(exclude={"municipality"})
    account = save_account(municipality, actor=user_of(request), **data)
    return Status(201, account_out(account))


@router.patch(
    "/messaging/accounts/{uuid}",
    response={200: ChannelAccountOut, **WRITE_ERRORS},
    summary="Change a channel account",
    description="Secrets are write-only: keys left out keep their saved value.",
)
def update_account(request, uuid: str, payload: ChannelAccountPatch):
    from .accounts import save_account

    user = user_of(request)
    with attempt(request, "messaging.account.update"):
        _require_manager(user)
        account = _by_uuid(queries.accounts_for(user).select_related("municipality"), uuid, ["path", "uuid"])
    data = payload.model_dump(exclude_unset=True)
    merged = {
        "name": account.name,
        "address": account.address,
        "config": account.config,
        "secrets": {},
        "rate_per_second": account.rate_per_second,
        "burst": account.burst,
        "active": account.active,
    }
    merged.update({k: v for k, v in data.items() if v is not None})
    saved = save_account(account.municipality, actor=user, account=account, **merged)
    return account_out(saved)
