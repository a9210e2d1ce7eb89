"""Default message templates and conversation flows of a municipality, as Spanish DATA (not msgids).

The texts below are what a neighbour reads on a basic phone: Spanish (Mexico), *usted*, short lines that fit an
SMS. They are seeded per municipality by ``ensure_defaults`` (idempotent: what a coordinator has edited is never
overwritten) and are edited afterwards as data (``texts.save_template``, ``flows.save_flow``). Only the names
shown in pages are translatable msgids.

``TEMPLATES``: key → (name msgid, Spanish body, placeholders the body may use). ``FLOWS``: key → (name msgid,
definition); the definition schema is described in ``flows``.
"""

from __future__ import annotations

from django.db import transaction
from django.utils.translation import gettext_noop

from .models import Flow, MessageTemplate

#: key → (name (msgid), body (Spanish data), allowed placeholders).
TEMPLATES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "welcome": (
        gettext_noop("Welcome"),
        "Bienvenido a la Red Vecinal de {municipality}.",
        ("municipality",),
    ),
    "unknown_sender": (
        gettext_noop("Unknown sender"),
        "Hola, gracias por escribir a la Red Vecinal de {municipality}. "
        "Su número aún no está en nuestro registro, pero con gusto le atendemos.",
        ("municipality",),
    ),
    "menu_invalid": (
        gettext_noop("Option not understood"),
        "No entendimos su respuesta. Responda con el número de una opción.",
        (),
    ),
    "media_unsupported": (
        gettext_noop("Media not supported"),
        "Por ahora solo podemos leer mensajes de texto y ubicaciones. "
        "Escriba su mensaje, o MENU para ver las opciones.",
        (),
    ),
    "optout_done": (
        gettext_noop("Opt-out confirmed"),
        "Listo: ya no le enviaremos avisos. Para volver a recibirlos responda ALTA.",
        (),
    ),
    "optin_done": (
        gettext_noop("Opt-in confirmed"),
        "Listo: volverá a recibir avisos de la Red Vecinal de {municipality}. Para dejar de recibirlos "
        "responda BAJA.",
        ("municipality",),
    ),
    "optout_active": (
        gettext_noop("Reply while opted out"),
        "Usted pidió no recibir mensajes. Para volver a usar este número responda ALTA.",
        (),
    ),
    "flood": (
        gettext_noop("Too many messages"),
        "Recibimos muchos mensajes seguidos de su número. Espere unos minutos y vuelva a escribir.",
        (),
    ),
    "expired": (
        gettext_noop("Conversation timed out"),
        "Su conversación anterior terminó por falta de respuesta. Empecemos de nuevo.",
        (),
    ),
    "too_long": (
        gettext_noop("Answer too long"),
        "Su respuesta es muy larga (máximo {max} letras). Escríbala más corta, por favor.",
        ("max",),
    ),
    "empty_answer": (
        gettext_noop("Empty answer"),
        "No recibimos texto. Escriba su respuesta, por favor.",
        (),
    ),
    "need_registered": (
        gettext_noop("Need registered"),
        "Su reporte quedó registrado con el folio {reference} ({category}). Le avisaremos cuando lo "
        "atiendan. Escriba MENU para volver al inicio.",
        ("reference", "category"),
    ),
    "need_registered_sensitive": (
        gettext_noop("Confidential report registered"),
        "Recibimos su reporte de forma confidencial; solo lo verá personal especializado. Folio {reference}. "
        "Si está en peligro, llame al 911.",
        ("reference",),
    ),
    "need_status": (
        gettext_noop("Status of my reports"),
        "Sus reportes:\n{lines}\nEscriba MENU para volver al inicio.",
        ("lines",),
    ),
    "need_status_line": (
        gettext_noop("One report in the status list"),
        "{reference} {category}: {status} ({updated})",
        ("reference", "category", "status", "updated"),
    ),
    "no_needs": (
        gettext_noop("No reports yet"),
        "No encontramos reportes de su número. Escriba MENU para reportar una necesidad.",
        (),
    ),
    "need_notification": (
        gettext_noop("Need notification"),
        "Red Vecinal: {kind} {reference} ({category}) en {node}. Revise la aplicación.",
        ("kind", "reference", "category", "node"),
    ),
    "cascade_prompt": (
        gettext_noop("Cascade broadcast"),
        "AVISO ({node}): {title}\n{body}\nResponda OK cuando lo reciba y páselo a su red.",
        ("title", "body", "node"),
    ),
    "cascade_reminder": (
        gettext_noop("Cascade reminder"),
        "Recordatorio ({node}): {title}\n{body}\nResponda OK para confirmar que lo recibió.",
        ("title", "body", "node"),
    ),
    "cascade_ack_thanks": (
        gettext_noop("Cascade acknowledged"),
        "Gracias, quedó confirmado que recibió el aviso «{title}».",
        ("title", "node"),
    ),
    "cascade_escalated": (
        gettext_noop("Cascade not acknowledged"),
        "Sin confirmar: {node} no ha confirmado el aviso «{title}». Por favor comuníquese con su enlace.",
        ("title", "node"),
    ),
    "no_cascade_pending": (
        gettext_noop("No broadcast waiting"),
        "No tiene avisos pendientes de confirmar.",
        (),
    ),
    "broadcast": (
        gettext_noop("Broadcast"),
        "{title}\n{body}",
        ("title", "body"),
    ),
    "not_allowed": (
        gettext_noop("Option for liaisons only"),
        "Esta opción es solo para enlaces de la red. Escriba MENU para ver sus opciones.",
        (),
    ),
    "action_refused": (
        gettext_noop("Request refused"),
        "No se pudo completar: {reason}",
        ("reason",),
    ),
    "action_failed": (
        gettext_noop("Request failed"),
        "Tuvimos un problema al atender su mensaje. Intente de nuevo en unos minutos.",
        (),
    ),
    "ack_need_list": (
        gettext_noop("Needs to acknowledge"),
        "Necesidades por atender. Responda con el número para darla por recibida:\n{lines}",
        ("lines",),
    ),
    "ack_need_none": (
        gettext_noop("No needs to acknowledge"),
        "No tiene necesidades pendientes de recibir. Escriba MENU para volver al inicio.",
        (),
    ),
    "ack_need_done": (
        gettext_noop("Need acknowledged"),
        "Listo: la necesidad {reference} quedó como recibida por usted.",
        ("reference",),
    ),
    "delivery_done": (
        gettext_noop("Delivery confirmed"),
        "Entrega confirmada: código {code}. Gracias.",
        ("code",),
    ),
    "vacant_list": (
        gettext_noop("Households to report vacant"),
        "Viviendas de su zona sin visita reciente. Responda con el número de la que está deshabitada:\n{lines}",
        ("lines",),
    ),
    "vacant_none": (
        gettext_noop("No households to report vacant"),
        "No hay viviendas sin visita reciente en su zona. Escriba MENU para volver al inicio.",
        (),
    ),
    "vacant_done": (
        gettext_noop("Vacant household recorded"),
        "Listo: registramos la vivienda {address} como deshabitada.",
        ("address",),
    ),
}

#: Categories of need that the neighbour menu marks as confidential.
SENSITIVE_SUFFIX = " (confidencial)"

_REPORT_NODES: dict[str, dict] = {
    "reportar": {
        "type": "choose_category",
        "text": "¿Qué tipo de necesidad quiere reportar? Responda con un número:",
        "var": "category",
        "next": "descripcion",
        "sensitive_next": "descripcion_confidencial",
    },
    "descripcion": {
        "type": "input",
        "input": "text",
        "text": "Describa brevemente qué necesita y para cuántas personas.",
        "var": "description",
        "max_length": 500,
        "next": "lugar",
    },
    "descripcion_confidencial": {
        "type": "input",
        "input": "text",
        "text": "Su reporte será confidencial: solo lo verá personal especializado. Si está en peligro, "
        "llame al 911. Cuéntenos brevemente qué pasa (puede borrar esta conversación después).",
        "var": "description",
        "max_length": 500,
        "next": "lugar_confidencial",
    },
    "lugar": {
        "type": "input",
        "input": "location",
        "text": "Comparta su ubicación o escriba su dirección (calle, número, colonia).",
        "var": "place",
        "max_length": 300,
        "skip_if_known": True,
        "next": "confirmar",
    },
    "lugar_confidencial": {
        "type": "input",
        "input": "location",
        "text": "Comparta su ubicación o escriba una dirección o punto de referencia donde podamos "
        "buscarle con seguridad.",
        "var": "place",
        "max_length": 300,
        "skip_if_known": True,
        "next": "confirmar_confidencial",
    },
    "confirmar": {
        "type": "confirm",
        "text": "Su reporte: {category_label}. {description}\n¿Lo enviamos?",
        "yes": "registrar",
        "no": "cancelado",
    },
    "confirmar_confidencial": {
        "type": "confirm",
        "text": "¿Enviamos su reporte confidencial?",
        "yes": "registrar",
        "no": "cancelado",
    },
    "registrar": {"type": "action", "action": "report_need"},
    "cancelado": {
        "type": "message",
        "text": "Su reporte no se envió. Escriba MENU cuando quiera empezar de nuevo.",
    },
    "estado": {"type": "action", "action": "my_needs"},
    "baja": {"type": "action", "action": "opt_out"},
}

NEIGHBOUR_FLOW: dict = {
    "start": "inicio",
    "timeout_minutes": 30,
    "nodes": {
        "inicio": {
            "type": "menu",
            "text": "Red Vecinal de {municipality}. Responda con un número:",
            "options": [
                {"label": "Reportar una necesidad", "next": "reportar", "words": ["reportar", "necesidad"]},
                {"label": "Consultar mis reportes", "next": "estado", "words": ["consultar", "estado"]},
                {"label": "Dejar de recibir mensajes (BAJA)", "next": "baja", "words": []},
            ],
        },
        **_REPORT_NODES,
    },
}

LIAISON_FLOW: dict = {
    "start": "inicio",
    "timeout_minutes": 30,
    "nodes": {
        "inicio": {
            "type": "menu",
            "text": "Red Vecinal de {municipality} (enlaces). Responda con un número:",
            "options": [
                {"label": "Reportar una necesidad", "next": "reportar", "words": ["reportar"]},
                {"label": "Consultar mis reportes", "next": "estado", "words": ["consultar", "estado"]},
                {"label": "Recibir necesidad escalada", "next": "atender", "words": ["atender", "escalada"]},
                {"label": "Confirmar una entrega", "next": "entrega_codigo", "words": ["entrega"]},
                {"label": "Reportar vivienda deshabitada", "next": "deshabitada", "words": ["deshabitada"]},
                {"label": "Confirmar un aviso (OK)", "next": "aviso", "words": ["aviso"]},
                {"label": "Dejar de recibir mensajes (BAJA)", "next": "baja", "words": []},
            ],
        },
        **_REPORT_NODES,
        "atender": {"type": "action", "action": "ack_need"},
        "entrega_codigo": {
            "type": "input",
            "input": "text",
            "text": "Escriba el código de la entrega (8 letras y números).",
            "var": "code",
            "max_length": 20,
            "next": "entrega",
        },
        "entrega": {"type": "action", "action": "confirm_delivery"},
        "deshabitada": {"type": "action", "action": "report_vacant"},
        "aviso": {"type": "action", "action": "ack_broadcast"},
    },
}

#: key → (name (msgid), definition).
FLOWS: dict[str, tuple[str, dict]] = {
    "neighbour": (gettext_noop("Neighbours' menu"), NEIGHBOUR_FLOW),
    "liaison": (gettext_noop("Liaisons' menu"), LIAISON_FLOW),
}


def template_placeholders(key: str) -> tuple[str, ...] | None:
    """Placeholders a system template may use; None for a key that is not a system one."""
    entry = TEMPLATES.get(key)
    return entry[2] if entry else None


def ensure_defaults(municipality) -> None:
    """Create the municipality's missing default templates and flows (idempotent; edits are kept)."""
    import copy

    municipality_id = getattr(municipality, "pk", municipality)
    with transaction.atomic():
        have = set(
            MessageTemplate.objects.filter(municipality_id=municipality_id).values_list("key", flat=True)
        )
        MessageTemplate.objects.bulk_create(
            [
                MessageTemplate(municipality_id=municipality_id, key=key, name=name, body=body, system=True)
                for key, (name, body, _vars) in TEMPLATES.items()
                if key not in have
            ],
            ignore_conflicts=True,
        )
        have = set(Flow.objects.filter(municipality_id=municipality_id).values_list("key", flat=True))
        Flow.objects.bulk_create(
            [
                Flow(
                    municipality_id=municipality_id, key=key, name=name, definition=copy.deepcopy(definition)
                )
                for key, (name, definition) in FLOWS.items()
                if key not in have
            ],
            ignore_conflicts=True,
        )
