"""The base test case: two municipalities, a small tree, and named personas.

World (``self.w``):

- General Escobedo, N.L. (19021), levels Sector / Manzana:
  sector S01 (blocks S01-M001, S01-M002), sector S02 (block S02-M001).
- Acapulco de Juárez, Gro. (12001), levels Sector / Zona / Grupo / Manzana: A1 > A1-Z1 > A1-Z1-G1 > A1-Z1-G1-M1.

Personas (password ``PASSWORD``):

- ``coord``: coordinator of Escobedo; ``sector1`` / ``sector2``: liaisons of S01 / S02;
  ``block1``: liaison of block S01-M001; ``operator``: hotline operator; ``caseworker``: case officer;
  ``volunteer``: volunteer in S01; ``observer``: national observer; ``state_observer``: observer of N.L.;
  ``other_coord``: coordinator of Acapulco (another tenant); ``nobody``: no membership; ``root``: superuser.

Liaison posts: S01 and S01-M001 are held; S02, S01-M002 and S02-M001 are vacant.
"""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

from django.test import Client, TestCase

from redes.accounts.models import User
from redes.accounts.roles import Role
from redes.accounts.services import create_token, create_user, grant_membership
from redes.liaisons.services import assign_liaison
from redes.territories.services import create_municipality, create_node

PASSWORD = "una-clave-de-prueba-1"


def build_world() -> SimpleNamespace:
    w = SimpleNamespace()
    w.esc = create_municipality("19021", "General Escobedo", ["Sector", "Manzana"], state_name="Nuevo León")
    w.aca = create_municipality(
        "12001", "Acapulco de Juárez", ["Sector", "Zona", "Grupo", "Manzana"], state_name="Guerrero"
    )
    w.esc_node = w.esc.node
    w.aca_node = w.aca.node
    w.state_nl = w.esc_node.parent
    w.nation = w.state_nl.parent
    square = {
        "type": "Polygon",
        "coordinates": [
            [[-100.33, 25.79], [-100.32, 25.79], [-100.32, 25.80], [-100.33, 25.80], [-100.33, 25.79]]
        ],
    }
    w.s1 = create_node(w.esc, w.esc_node, "S01", "Sector 1", geometry=square)
    w.s2 = create_node(w.esc, w.esc_node, "S02", "Sector 2")
    w.b11 = create_node(w.esc, w.s1, "S01-M001", "Manzana 1")
    w.b12 = create_node(w.esc, w.s1, "S01-M002", "Manzana 2")
    w.b21 = create_node(w.esc, w.s2, "S02-M001", "Manzana 1")
    w.a1 = create_node(w.aca, w.aca_node, "A1", "Sector Centro")
    w.az = create_node(w.aca, w.a1, "A1-Z1", "Zona 1")
    w.ag = create_node(w.aca, w.az, "A1-Z1-G1", "Grupo 1")
    w.ab = create_node(w.aca, w.ag, "A1-Z1-G1-M1", "Manzana 1")

    def persona(username, role=None, node=None, **extra):
        user = create_user(
            username,
            password=PASSWORD,
            full_name=extra.pop("full_name", username.title()),
            check_password=False,
        )
        if role:
            grant_membership(user, node, role)
        return user

    w.coord = persona("coord", Role.COORDINATOR, w.esc_node, full_name="Carmen Coordinadora")
    w.sector1 = persona("sector1", Role.SECTOR_LIAISON, w.s1, full_name="Sergio Sector")
    w.sector2 = persona("sector2", Role.SECTOR_LIAISON, w.s2)
    w.block1 = persona("block1", Role.BLOCK_LIAISON, w.b11, full_name="Blanca Manzana")
    w.operator = persona("operator", Role.HOTLINE_OPERATOR, w.esc_node)
    w.caseworker = persona("caseworker", Role.CASE_OFFICER, w.esc_node)
    w.volunteer = persona("volunteer", Role.VOLUNTEER, w.s1)
    w.observer = persona("observer", Role.NATIONAL_OBSERVER, w.nation)
    w.state_observer = persona("state_observer", Role.STATE_OBSERVER, w.state_nl)
    w.other_coord = persona("other_coord", Role.COORDINATOR, w.aca_node)
    w.nobody = persona("nobody")
    w.root = User.objects.create_superuser("root", "root@example.org", PASSWORD)

    start = dt.date(2026, 1, 5)
    w.s1_post = assign_liaison(
        w.s1, full_name="Sergio Sector", phone="8112345678", user=w.sector1, start_date=start
    )
    w.b11_post = assign_liaison(
        w.b11, full_name="Blanca Manzana", phone="+52 1 81 1234 5679", user=w.block1, start_date=start
    )
    w.a1_post = assign_liaison(w.a1, full_name="Alma Acapulco", phone="7441234567", start_date=start)
    return w


class RedesTestCase(TestCase):
    """Base for tests: ``self.w`` is the world above; ``client_for`` and ``api`` act as a persona."""

    w: SimpleNamespace

    @classmethod
    def setUpTestData(cls):
        cls.w = build_world()

    def client_for(self, user: User | None) -> Client:
        client = Client()
        if user is not None:
            client.force_login(user)
        return client

    def token_for(self, user: User) -> str:
        _, raw = create_token(user, name="test")
        return raw

    def api(self, user: User | None, method: str, path: str, data=None, **extra):
        """Call the JSON API as ``user`` (None: no token). ``path`` is below /api/v1/."""
        client = Client()
        headers = {}
        if user is not None:
            headers["Authorization"] = f"Bearer {self.token_for(user)}"
        url = f"/api/v1/{path.lstrip('/')}"
        call = getattr(client, method.lower())
        if data is not None and method.lower() in ("post", "put", "patch"):
            return call(url, data=data, content_type="application/json", headers=headers, **extra)
        return call(url, data=data, headers=headers, **extra)
