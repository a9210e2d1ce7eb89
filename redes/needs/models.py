"""Needs and cases: categories, intake, triage, deadlines, escalation, referrals (see docs/needs.md)."""

from django.db import models  # noqa: F401
