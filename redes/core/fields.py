"""Foreign keys every tenant table declares the same way (registry, needs, aid)."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

MUNICIPALITY = "territories.Municipality"
NODE = "territories.Node"


def municipality_fk(related_name: str = "+", db_index: bool = True) -> models.ForeignKey:
    """The tenant: deleting a municipality deletes its rows."""
    return models.ForeignKey(
        MUNICIPALITY,
        on_delete=models.CASCADE,
        related_name=related_name,
        verbose_name=_("municipality"),
        db_index=db_index,
    )


def user_fk(verbose_name, related_name: str = "+", db_index: bool = True) -> models.ForeignKey:
    """Who did something: kept (as empty) when the account is deleted."""
    return models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name=related_name,
        verbose_name=verbose_name,
        db_index=db_index,
    )
