"""Conversation flows: menus as data, validated, edited per municipality, and run one message at a time.

A flow definition is JSON::

    {"start": "inicio", "timeout_minutes": 30, "nodes": {"inicio": {...}, ...}}

Node types (every text may use ``{placeholders}``: ``municipality`` and the conversation's variables):

- ``menu``: ``text``, ``options`` (1–9) ``[{"label", "next", "words": [...]}]``. The reply lists the options
  numbered ("1 Reportar una necesidad"); the person answers with the number, the label, or one of ``words``.
- ``choose_category``: ``text``, ``var``, ``next``, optional ``sensitive_next``. The options are the
  municipality's active need categories (top level; a category with sub-categories opens them), the
  non-sensitive ones first and the sensitive ones (violence) last, marked confidential; choosing a sensitive
  one goes to ``sensitive_next`` (a careful wording) and the need is registered for case officers only.
  Sets ``var`` (the category code), ``<var>_label`` and ``sensitive``.
- ``input``: ``text``, ``var``, ``next``, ``input`` = ``"text"`` (with ``max_length``, default 500) or
  ``"location"`` (a shared WhatsApp/Telegram location or a typed address; ``skip_if_known``: skipped when the
  contact's household is known, its block being known). Sets ``var`` and ``<var>_label``.
- ``confirm``: ``text``, ``yes``, ``no`` (answers 1/sí or 2/no).
- ``action``: ``action`` (a name in ``actions.ACTIONS``), optional ``next``. An action may ask a follow-up
  question (a numbered pick) and stay on its node until answered.
- ``message``: ``text``, optional ``next``.

A node without ``next`` ends the conversation; the next message starts again from ``start``.

State: ``contact.state = {"flow", "version", "node", "vars", "data", "expires_at"}``. A conversation idle
longer than ``timeout_minutes`` (default 30), a state written for another flow or version, or a malformed one
start again from ``start``.

``run(contact, inbound)`` returns a list of ``Reply`` objects. A ``Reply`` is a ``str`` (the text to send,
with the options already numbered in it, so that it works as typed SMS) with an ``options`` attribute: ``[]``
or up to 9 ``{"id": "1", "title": "Reportar una necesidad"}`` that WhatsApp or Telegram may show as buttons or
a list; the ``id`` is the number, so a button press and a typed number are the same answer.
``intake`` passes them to the outbox as ``Outbound.variables["options"]``.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from dataclasses import dataclass, field

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from redes.accounts import scoping
from redes.accounts.roles import Perm, Role
from redes.audit.models import Outcome as AuditOutcome
from redes.audit.services import record, record_denied
from redes.core import clock

from . import defaults, texts
from .models import Contact, Flow, Inbound

NODE_TYPES = ("menu", "choose_category", "input", "confirm", "action", "message")
INPUT_KINDS = ("text", "location")
MAX_OPTIONS = 9
DEFAULT_TIMEOUT = 30
DEFAULT_MAX_LENGTH = 500
MAX_STEPS = 30
#: Roles whose holders get the liaison flow.
LIAISON_ROLES = (Role.COORDINATOR, Role.SECTOR_LIAISON, Role.BLOCK_LIAISON)

KEYWORDS = {
    "optout": {"BAJA", "STOP", "ALTO", "CANCELAR SUSCRIPCION"},
    "optin": {"ALTA", "START", "ALTA SI"},
    "menu": {"MENU", "INICIO", "0", "MENU PRINCIPAL"},
    "ack": {"OK", "RECIBIDO", "ENTERADO", "ENTERADA"},
}
YES = {"1", "SI", "S", "YES", "CLARO", "ENVIAR", "CONFIRMAR"}
NO = {"2", "NO", "N", "CANCELAR"}


class Reply(str):
    """A text to send, with the options a rich channel may show as buttons (``[{"id", "title"}]``)."""

    options: list[dict]

    def __new__(cls, text: str, options: list[dict] | None = None):
        obj = super().__new__(cls, text)
        obj.options = list(options or [])
        return obj


def normalize(text: str) -> str:
    """Upper case, no accents, single spaces, no trailing punctuation: how keywords and options compare."""
    text = unicodedata.normalize("NFKD", str(text or ""))
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = " ".join(text.upper().split())
    return text.strip(" .!¡?¿,;:")


def keyword(text: str) -> str | None:
    """Which global keyword ``text`` is ("optout", "optin", "menu", "ack"), or None."""
    value = normalize(text)
    for name, words in KEYWORDS.items():
        if value in words:
            return name
    return None


# --------------------------------------------------------------------------------------------- validation


def validate(definition) -> list[str]:
    """Readable problems of a flow definition (translated); empty when it can be saved."""
    from . import actions

    if not isinstance(definition, dict):
        return [_("The flow must be a JSON object with “start” and “nodes”.")]
    found: list[str] = []
    nodes = definition.get("nodes")
    if not isinstance(nodes, dict) or not nodes:
        return [_("The flow has no nodes (“nodes” must be an object of named nodes).")]
    start = definition.get("start")
    if not start:
        found.append(_("The flow has no “start” node."))
    elif start not in nodes:
        found.append(_("The start node “%(node)s” does not exist.") % {"node": start})
    timeout = definition.get("timeout_minutes", DEFAULT_TIMEOUT)
    if not isinstance(timeout, int) or isinstance(timeout, bool) or not 1 <= timeout <= 1440:
        found.append(_("“timeout_minutes” must be a whole number from 1 to 1440."))
    edges: dict[str, list[str]] = {}

    def target(node_id: str, key: str, value, required: bool = False):
        if value in (None, ""):
            if required:
                found.append(_("Node “%(node)s”: “%(key)s” is missing.") % {"node": node_id, "key": key})
            return
        if not isinstance(value, str) or value not in nodes:
            found.append(
                _("Node “%(node)s”: “%(key)s” leads to “%(target)s”, which does not exist.")
                % {"node": node_id, "key": key, "target": value}
            )
            return
        edges[node_id].append(value)

    for node_id, node in nodes.items():
        edges[node_id] = []
        if not isinstance(node, dict):
            found.append(_("Node “%(node)s” is not an object.") % {"node": node_id})
            continue
        kind = node.get("type")
        if kind not in NODE_TYPES:
            found.append(
                _("Node “%(node)s” has an unknown type “%(type)s” (known: %(known)s).")
                % {"node": node_id, "type": kind, "known": ", ".join(NODE_TYPES)}
            )
            continue
        text = node.get("text", "")
        if not isinstance(text, str):
            found.append(_("Node “%(node)s”: “text” must be text.") % {"node": node_id})
        elif kind in ("menu", "choose_category", "input", "confirm", "message") and not text.strip():
            found.append(_("Node “%(node)s” has no text.") % {"node": node_id})
        if kind == "menu":
            options = node.get("options")
            if not isinstance(options, list) or not options:
                found.append(_("Menu “%(node)s” has no options.") % {"node": node_id})
                continue
            if len(options) > MAX_OPTIONS:
                found.append(
                    _("Menu “%(node)s” has %(count)s options; at most %(max)s (one digit each).")
                    % {"node": node_id, "count": len(options), "max": MAX_OPTIONS}
                )
            for position, option in enumerate(options, start=1):
                if not isinstance(option, dict) or not str(option.get("label") or "").strip():
                    found.append(
                        _("Menu “%(node)s”: option %(n)s has no label.") % {"node": node_id, "n": position}
                    )
                    continue
                words = option.get("words", [])
                if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
                    found.append(
                        _("Menu “%(node)s”: the words of option %(n)s must be a list of texts.")
                        % {"node": node_id, "n": position}
                    )
                target(node_id, f"options[{position}].next", option.get("next"), required=True)
        elif kind == "choose_category":
            _check_var(node_id, node, found)
            target(node_id, "next", node.get("next"), required=True)
            target(node_id, "sensitive_next", node.get("sensitive_next"))
        elif kind == "input":
            _check_var(node_id, node, found)
            if node.get("input", "text") not in INPUT_KINDS:
                found.append(
                    _("Input “%(node)s”: unknown input kind “%(kind)s” (known: %(known)s).")
                    % {"node": node_id, "kind": node.get("input"), "known": ", ".join(INPUT_KINDS)}
                )
            max_length = node.get("max_length", DEFAULT_MAX_LENGTH)
            if not isinstance(max_length, int) or isinstance(max_length, bool) or not 1 <= max_length <= 4000:
                found.append(
                    _("Input “%(node)s”: “max_length” must be a whole number from 1 to 4000.")
                    % {"node": node_id}
                )
            target(node_id, "next", node.get("next"), required=True)
        elif kind == "confirm":
            target(node_id, "yes", node.get("yes"), required=True)
            target(node_id, "no", node.get("no"), required=True)
        elif kind == "action":
            name = node.get("action")
            if name not in actions.ACTIONS:
                found.append(
                    _("Node “%(node)s” calls an unknown action “%(action)s” (known: %(known)s).")
                    % {"node": node_id, "action": name, "known": ", ".join(sorted(actions.ACTIONS))}
                )
            target(node_id, "next", node.get("next"))
        elif kind == "message":
            target(node_id, "next", node.get("next"))
    if start in nodes:
        seen = {start}
        todo = [start]
        while todo:
            for nxt in edges.get(todo.pop(), []):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        unreachable = [n for n in nodes if n not in seen]
        if unreachable:
            found.append(
                _("These nodes cannot be reached from the start: %(nodes)s.")
                % {"nodes": ", ".join(unreachable)}
            )
    return found


def _check_var(node_id: str, node: dict, found: list[str]) -> None:
    var = node.get("var")
    if not isinstance(var, str) or not var.isidentifier():
        found.append(
            _("Node “%(node)s”: “var” must name a variable (letters, digits, underscores).")
            % {"node": node_id}
        )


def parse_definition(raw) -> dict:
    """A definition from JSON text (or a dict); ValidationError with a readable reason when it is not JSON.
    Duplicate node ids in the text are refused (JSON would silently keep the last one)."""
    import json

    if isinstance(raw, dict):
        return raw

    def no_duplicates(pairs):
        keys = [k for k, _v in pairs]
        repeated = sorted({k for k in keys if keys.count(k) > 1})
        if repeated:
            raise ValidationError(_("Repeated ids: %(ids)s.") % {"ids": ", ".join(repeated)})
        return dict(pairs)

    try:
        value = json.loads(raw or "", object_pairs_hook=no_duplicates)
    except (TypeError, ValueError) as exc:
        raise ValidationError(_("The flow is not valid JSON: %(error)s") % {"error": exc}) from None
    if not isinstance(value, dict):
        raise ValidationError(_("The flow must be a JSON object with “start” and “nodes”."))
    return value


def save_flow(municipality, *, actor, key: str, definition, name: str = "") -> Flow:
    """Create or change the flow ``key`` (``MANAGE_MESSAGING``): refused with every problem listed when it is
    not valid; the version goes up, so conversations in progress start again; audited."""
    action = "messaging.flow.save"
    if actor is not None and not scoping.can(actor, Perm.MANAGE_MESSAGING, municipality.node):
        record_denied(action, actor=actor, municipality=municipality, reason="forbidden")
        raise PermissionDenied(_("You may not change the conversation flows of this municipality."))
    from django.utils.text import slugify

    try:
        definition = parse_definition(definition)
        problems = validate(definition)
        key = (key or "").strip()
        if not key or slugify(key) != key or len(key) > 40:
            problems.insert(0, _("Give the flow a short key (lowercase letters, digits, dashes)."))
        if problems:
            raise ValidationError(problems)
    except ValidationError:
        record_denied(
            action,
            actor=actor,
            municipality=municipality,
            reason="invalid input",
            outcome=AuditOutcome.REJECTED,
        )
        raise
    with transaction.atomic():
        flow = Flow.objects.select_for_update().filter(municipality=municipality, key=key).first()
        created = flow is None
        if created:
            default = defaults.FLOWS.get(key)
            flow = Flow(municipality=municipality, key=key, version=0, name=default[0] if default else key)
        if name.strip():
            flow.name = name.strip()[:120]
        flow.definition = definition
        flow.version += 1
        flow.updated_at = clock.now()
        flow.updated_by = actor if getattr(actor, "is_authenticated", False) else None
        flow.save()
        record(
            action,
            actor=actor,
            obj=flow,
            municipality=municipality,
            summary=_("Conversation flow saved"),
            changes={"key": key, "version": flow.version, "created": created},
        )
    return flow


# --------------------------------------------------------------------------------------------- which flow


def is_liaison(contact: Contact) -> bool:
    """Is the contact linked to an active account holding a liaison or coordinator role in its municipality?"""
    user = contact.user
    if user is None or not user.is_active:
        return False
    return any(
        g.role in LIAISON_ROLES and g.municipality_id == contact.municipality_id for g in scoping.grants(user)
    )


def flow_for(contact: Contact) -> Flow:
    """``liaison`` for liaisons and coordinators, else ``neighbour`` (the defaults are created when missing)."""
    wanted = ["liaison", "neighbour"] if is_liaison(contact) else ["neighbour"]
    rows = {
        f.key: f
        for f in Flow.objects.filter(municipality_id=contact.municipality_id, key__in=wanted, active=True)
    }
    if (
        "neighbour" not in rows
        and not Flow.objects.filter(municipality_id=contact.municipality_id, key="neighbour").exists()
    ):
        defaults.ensure_defaults(contact.municipality_id)
        rows = {
            f.key: f
            for f in Flow.objects.filter(municipality_id=contact.municipality_id, key__in=wanted, active=True)
        }
    for key in wanted:
        if key in rows:
            return rows[key]
    # Even a deactivated neighbour flow answers with the built-in one rather than with silence.
    name, definition = defaults.FLOWS["neighbour"]
    return Flow(municipality_id=contact.municipality_id, key="neighbour", name=name, definition=definition)


# --------------------------------------------------------------------------------------------- running


@dataclass
class Conversation:
    """What one step of a flow works with: the contact, its flow, the message, variables and replies."""

    contact: Contact
    flow: Flow
    inbound: Inbound | None
    medium: str
    vars: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)
    node: str | None = None
    replies: list[Reply] = field(default_factory=list)

    @property
    def municipality_id(self) -> int:
        return self.contact.municipality_id

    @property
    def nodes(self) -> dict:
        return self.flow.definition.get("nodes", {})

    def context(self, extra: dict | None = None) -> dict:
        values = {"municipality": _municipality_name(self.contact)}
        values.update({k: v for k, v in self.vars.items() if isinstance(v, str | int | float)})
        values.update(extra or {})
        return values

    def say(self, text: str, options: list[dict] | None = None) -> None:
        if text:
            self.replies.append(Reply(text, options))

    def say_template(self, key: str, variables: dict | None = None) -> None:
        self.say(texts.render(self.municipality_id, key, self.context(variables)))

    def text(self, template_text: str) -> str:
        return texts.substitute(template_text, self.context())


def _municipality_name(contact: Contact) -> str:
    from redes.territories.models import Municipality

    cached = getattr(contact, "_redes_municipality_name", None)
    if cached is None:
        cached = (
            Municipality.objects.filter(pk=contact.municipality_id).values_list("name", flat=True).first()
            or ""
        )
        contact._redes_municipality_name = cached
    return cached


def _input_of(inbound: Inbound | None) -> str:
    if inbound is None:
        return ""
    if inbound.kind == Inbound.Kind.INTERACTIVE:
        data = inbound.data or {}
        return str(data.get("id") or data.get("title") or inbound.text or "")
    return inbound.text or ""


def _timeout(flow: Flow) -> dt.timedelta:
    minutes = flow.definition.get("timeout_minutes", DEFAULT_TIMEOUT)
    if not isinstance(minutes, int) or isinstance(minutes, bool) or minutes < 1:
        minutes = DEFAULT_TIMEOUT
    return dt.timedelta(minutes=minutes)


def _load(contact: Contact, flow: Flow, now: dt.datetime) -> tuple[dict | None, bool]:
    """The state in progress for this flow, or None; and whether a state was dropped for being idle."""
    state = contact.state
    if not isinstance(state, dict) or not state.get("node"):
        return None, False
    try:
        if state.get("flow") != flow.key or int(state.get("version", -1)) != flow.version:
            return None, False
        expires = dt.datetime.fromisoformat(str(state["expires_at"]))
        if expires.tzinfo is None:
            return None, False
        if expires <= now:
            return None, True
        if state["node"] not in flow.definition.get("nodes", {}):
            return None, False
        if not isinstance(state.get("vars", {}), dict) or not isinstance(state.get("data", {}), dict):
            return None, False
    except (KeyError, TypeError, ValueError):
        return None, False
    return state, False


def _save_state(conv: Conversation, now: dt.datetime) -> None:
    contact = conv.contact
    if conv.node is None:
        contact.state = {}
    else:
        contact.state = {
            "flow": conv.flow.key,
            "version": conv.flow.version,
            "node": conv.node,
            "vars": conv.vars,
            "data": conv.data,
            "expires_at": (now + _timeout(conv.flow)).isoformat(),
        }
    if contact.pk:
        Contact.objects.filter(pk=contact.pk).update(state=contact.state)


def run(contact: Contact, inbound: Inbound | None, *, medium: str | None = None) -> list[Reply]:
    """Answer one message of ``contact``: global keywords first, then the flow; returns the replies (see the
    module docstring) and saves ``contact.state``."""
    from . import actions

    now = clock.now()
    if medium is None:
        medium = inbound.account.medium if inbound is not None and inbound.account_id else contact.preferred
    flow = flow_for(contact)
    conv = Conversation(contact=contact, flow=flow, inbound=inbound, medium=medium)
    answer = _input_of(inbound)
    word = keyword(answer) if inbound is None or inbound.kind != Inbound.Kind.LOCATION else None
    state, idle = _load(contact, flow, now)

    if word == "optout":
        actions.call("opt_out", conv)
        conv.node = None
    elif contact.opted_out:
        if word == "optin" or normalize(answer) in {"SI", "SÍ"}:
            actions.call("opt_in", conv)
        else:
            conv.say_template("optout_active")
        conv.node = None
    elif word == "optin":
        actions.call("opt_in", conv)
        conv.node = None
    elif word == "menu":
        _enter(conv, flow.definition.get("start"))
    elif word == "ack" and _acknowledged(conv):
        conv.node = None
    elif state is None:
        if idle:
            conv.say_template("expired")
        start = flow.definition.get("start")
        conv.node = start
        if not (_is_menu(conv, start) and _answer(conv, start, answer, fresh=True)):
            conv.replies = conv.replies[:1] if idle else []
            _enter(conv, start)
    else:
        conv.node = state["node"]
        conv.vars = dict(state.get("vars") or {})
        conv.data = dict(state.get("data") or {})
        _answer(conv, conv.node, answer)
    _save_state(conv, now)
    return conv.replies


def _acknowledged(conv: Conversation) -> bool:
    """OK/RECIBIDO: acknowledge the cascade broadcast waiting for this contact, if any."""
    from . import actions

    result = actions.acknowledge_cascade(conv)
    return result


def _is_menu(conv: Conversation, node_id) -> bool:
    node = conv.nodes.get(node_id)
    return isinstance(node, dict) and node.get("type") in ("menu", "choose_category")


def _enter(conv: Conversation, node_id) -> None:
    """Go to ``node_id`` and run nodes that need no answer (messages, actions) until one asks a question."""
    from . import actions

    steps = 0
    while node_id:
        steps += 1
        node = conv.nodes.get(node_id)
        if steps > MAX_STEPS or not isinstance(node, dict):
            conv.say_template("action_failed")
            node_id = None
            break
        conv.node = node_id
        kind = node.get("type")
        if kind == "message":
            conv.say(conv.text(node.get("text", "")))
            node_id = node.get("next")
        elif kind == "menu":
            _prompt_menu(conv, node)
            return
        elif kind == "choose_category":
            conv.data.pop("parent", None)
            _prompt_categories(conv, node)
            return
        elif kind == "input":
            if node.get("input") == "location" and node.get("skip_if_known") and conv.contact.household_id:
                conv.vars[node["var"]] = {"household": True}
                conv.vars[f"{node['var']}_label"] = ""
                node_id = node.get("next")
                continue
            conv.say(conv.text(node.get("text", "")))
            return
        elif kind == "confirm":
            conv.say(conv.text(node.get("text", "")) + "\n1 Sí\n2 No", _options(["Sí", "No"]))
            return
        elif kind == "action":
            conv.data = {}
            result = actions.call(node.get("action"), conv)
            if result.wait:
                return
            node_id = result.next or node.get("next")
        else:
            conv.say_template("action_failed")
            node_id = None
    conv.node = None
    conv.vars = {}
    conv.data = {}


def _options(labels: list[str]) -> list[dict]:
    return [{"id": str(i), "title": label} for i, label in enumerate(labels, start=1)]


def numbered(labels: list[str]) -> str:
    return "\n".join(f"{i} {label}" for i, label in enumerate(labels, start=1))


def _prompt_menu(conv: Conversation, node: dict) -> None:
    labels = [conv.text(str(o.get("label", ""))) for o in node.get("options", [])][:MAX_OPTIONS]
    conv.say(conv.text(node.get("text", "")) + "\n" + numbered(labels), _options(labels))


def pick(answer: str, labels: list[str], words: list[list[str]] | None = None) -> int | None:
    """The 0-based option an answer chooses: its number, its label, one of its words, or a unique label
    starting with the answer (4 letters or more); None when it chooses nothing or is ambiguous."""
    value = normalize(answer)
    if not value:
        return None
    if value.isdigit():
        n = int(value)
        return n - 1 if 1 <= n <= len(labels) else None
    names = [normalize(label) for label in labels]
    for i, name in enumerate(names):
        if value == name or (words and value in {normalize(w) for w in words[i]}):
            return i
    if len(value) >= 4:
        hits = [i for i, name in enumerate(names) if name.startswith(value) or f" {value}" in f" {name}"]
        if len(hits) == 1:
            return hits[0]
    return None


def _answer(conv: Conversation, node_id, answer: str, *, fresh: bool = False) -> bool:
    """Handle ``answer`` at the node waiting for it; returns whether it was understood (a fresh conversation
    only tries the start menu and otherwise shows it, without an error)."""
    from . import actions

    node = conv.nodes.get(node_id)
    if not isinstance(node, dict):
        _enter(conv, conv.flow.definition.get("start"))
        return False
    kind = node.get("type")
    inbound = conv.inbound
    if kind == "menu":
        options = node.get("options", [])[:MAX_OPTIONS]
        labels = [conv.text(str(o.get("label", ""))) for o in options]
        chosen = pick(answer, labels, [o.get("words", []) for o in options])
        if chosen is None:
            if not fresh:
                conv.say_template("menu_invalid")
                _prompt_menu(conv, node)
            return False
        _enter(conv, options[chosen].get("next"))
        return True
    if kind == "choose_category":
        return _answer_category(conv, node, answer, fresh=fresh)
    if fresh:
        return False
    if kind == "input":
        var = node["var"]
        if node.get("input") == "location" and inbound is not None and inbound.kind == Inbound.Kind.LOCATION:
            data = inbound.data or {}
            try:
                lat, lon = float(data.get("lat")), float(data.get("lon"))
            except (TypeError, ValueError):
                lat = lon = None
            if lat is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
                conv.say(conv.text(node.get("text", "")))
                return False
            address = str(data.get("address") or data.get("name") or "")[:300]
            conv.vars[var] = {"lat": lat, "lon": lon, "address": address}
            conv.vars[f"{var}_label"] = address or f"{lat:.5f}, {lon:.5f}"
            _enter(conv, node.get("next"))
            return True
        value = (
            " ".join((answer or "").split()) if node.get("input") == "location" else (answer or "").strip()
        )
        if not value:
            conv.say_template("empty_answer")
            conv.say(conv.text(node.get("text", "")))
            return False
        limit = node.get("max_length", DEFAULT_MAX_LENGTH)
        if len(value) > limit:
            conv.say_template("too_long", {"max": limit})
            return False
        if node.get("input") == "location":
            conv.vars[var] = {"address": value}
            conv.vars[f"{var}_label"] = value
        else:
            conv.vars[var] = value
        _enter(conv, node.get("next"))
        return True
    if kind == "confirm":
        value = normalize(answer)
        if value in YES or value.startswith("SI "):
            _enter(conv, node.get("yes"))
            return True
        if value in NO:
            _enter(conv, node.get("no"))
            return True
        conv.say_template("menu_invalid")
        conv.say(conv.text(node.get("text", "")) + "\n1 Sí\n2 No", _options(["Sí", "No"]))
        return False
    if kind == "action":
        result = actions.call(node.get("action"), conv, answer)
        if not result.wait:
            _enter(conv, result.next or node.get("next"))
        return True
    _enter(conv, node.get("next"))
    return True


def category_options(municipality_id: int, parent_id: int | None = None) -> list:
    """Active categories under ``parent_id`` (top level: None) for a menu: non-sensitive first (by order),
    sensitive ones last, at most 9 (sensitive ones are never cut)."""
    from redes.needs.models import NeedCategory

    rows = list(
        NeedCategory.objects.filter(
            municipality_id=municipality_id, active=True, parent_id=parent_id
        ).order_by("order", "code")
    )
    if (
        not rows
        and parent_id is None
        and not NeedCategory.objects.filter(municipality_id=municipality_id).exists()
    ):
        from redes.needs import services as need_services
        from redes.territories.models import Municipality

        need_services.ensure_defaults(Municipality.objects.get(pk=municipality_id))
        return category_options(municipality_id, parent_id)
    sensitive = [c for c in rows if c.sensitive]
    plain = [c for c in rows if not c.sensitive]
    return plain[: MAX_OPTIONS - len(sensitive[:MAX_OPTIONS])] + sensitive[:MAX_OPTIONS]


def category_label(category) -> str:
    """A category's name in Spanish (built-in names are msgids; the conversation is Spanish-first)."""
    from django.utils import translation

    with translation.override("es-mx"):
        return str(category.label)


def _category_labels(rows) -> list[str]:
    return [category_label(c) + (defaults.SENSITIVE_SUFFIX if c.sensitive else "") for c in rows]


def _prompt_categories(conv: Conversation, node: dict) -> None:
    rows = category_options(conv.municipality_id, conv.data.get("parent"))
    labels = _category_labels(rows)
    conv.say(conv.text(node.get("text", "")) + "\n" + numbered(labels), _options(labels))


def _answer_category(conv: Conversation, node: dict, answer: str, *, fresh: bool = False) -> bool:
    from redes.needs.models import NeedCategory

    parent = conv.data.get("parent")
    rows = category_options(conv.municipality_id, parent)
    labels = _category_labels(rows)
    words = [[c.code, category_label(c)] for c in rows]
    chosen = pick(answer, labels, words)
    if chosen is None:
        if not fresh:
            conv.say_template("menu_invalid")
            _prompt_categories(conv, node)
        return False
    category = rows[chosen]
    if NeedCategory.objects.filter(parent=category, active=True).exists() and conv.data.get("parent") is None:
        conv.data["parent"] = category.pk
        _prompt_categories(conv, node)
        return True
    conv.data.pop("parent", None)
    var = node["var"]
    conv.vars[var] = category.code
    conv.vars[f"{var}_label"] = category_label(category)
    conv.vars["sensitive"] = bool(category.sensitive)
    nxt = (
        node.get("sensitive_next") if category.sensitive and node.get("sensitive_next") else node.get("next")
    )
    _enter(conv, nxt)
    return True
