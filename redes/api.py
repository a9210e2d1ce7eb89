"""The JSON API under /api/v1/: one NinjaAPI, with a router per app (each app's ``api.py``).

OpenAPI 3 at ``/api/v1/openapi.json``, interactive docs at ``/api/v1/docs``. Every operation needs
``Authorization: Bearer <token>`` (tokens: ``redes token create USERNAME``); errors share one shape, see
``redes.core.api``.
"""

from ninja import NinjaAPI

from redes.accounts.api import router as accounts_router
from redes.aid.api import router as aid_router
from redes.core.api import BearerToken, install_error_handlers
from redes.liaisons.api import router as liaisons_router
from redes.messaging.api import router as messaging_router
from redes.needs.api import router as needs_router
from redes.registry.api import router as registry_router
from redes.territories.api import router as territories_router

DESCRIPTION = """\
Territory, liaisons and access for neighbourhood solidarity networks (REVES/REDES).

**Authentication.** Send `Authorization: Bearer <token>`; create tokens with `redes token create USERNAME`.

**Scope.** Every answer is limited to the territory under the caller's memberships. A record that does not
exist, that lies outside the caller's territory, or whose id is malformed answers **404**; a record the caller
sees but may not change answers **403**. Observers see aggregates (counts, coverage) and never personal data.

**Errors** have one shape: `{"detail": "...", "errors": [{"loc": [...], "msg": "..."}]}`; 400 when a rule
refuses the input, 422 when the request does not fit the schema, 401 with the reason when the token is
missing, unknown, expired or revoked.
"""

TAGS = [
    {"name": "Municipalities", "description": "Tenants, their level schemas and territory import."},
    {
        "name": "Territory nodes",
        "description": "The territory tree: search, create, move, remove, coverage, maps.",
    },
    {"name": "Liaisons", "description": "Liaison posts (personal data: not for observers)."},
    {"name": "Accounts", "description": "The caller, users and memberships (roles at nodes)."},
    {
        "name": "Registry",
        "description": "Households and persons, consent, sensitive data (case officers), data-subject "
        "requests, duplicates and bulk imports.",
    },
    {
        "name": "Needs",
        "description": "Needs and cases: intake from every channel, triage, assignment, deadlines, escalation up "
        "the liaison tree, referrals to offices and hotlines (violence cases: case officers only).",
    },
    {
        "name": "Aid",
        "description": "Donors, donations, sites and kitchens, the stock ledger, package templates, fair "
        "distribution campaigns, entitlements and deliveries, public reports.",
    },
    {
        "name": "Messaging",
        "description": "WhatsApp, SMS, Telegram and console channels: broadcasts to a territory, a role, a group or "
        "a segment, cascades down the liaison tree with acknowledgements, the outbox and inbox, groups, message "
        "templates and conversation flows.",
    },
]

api = NinjaAPI(
    title="redes API",
    version="1",
    description=DESCRIPTION,
    auth=BearerToken(),
    urls_namespace="api",
    openapi_extra={"tags": TAGS},
)
install_error_handlers(api)
api.add_router("", territories_router)
api.add_router("", liaisons_router)
api.add_router("", accounts_router)
api.add_router("", registry_router)
api.add_router("", needs_router)
api.add_router("", aid_router)
api.add_router("", messaging_router)
