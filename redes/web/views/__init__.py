"""Page views, one module per feature. Thin: look up through ``scoping``, validate a form, call a service, render."""

from .audit import audit_log
from .home import home
from .liaisons import liaison_assign, liaison_end, liaison_panel, vacant
from .territory import node_detail, node_map, search
from .territory_edit import add_child, move, remove, rename
from .users import membership_end, user_create, user_detail, user_list

__all__ = [
    "add_child",
    "audit_log",
    "home",
    "liaison_assign",
    "liaison_end",
    "liaison_panel",
    "membership_end",
    "move",
    "node_detail",
    "node_map",
    "remove",
    "rename",
    "search",
    "user_create",
    "user_detail",
    "user_list",
    "vacant",
]
