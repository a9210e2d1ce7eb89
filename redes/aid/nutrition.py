"""A package template against the Sphere reference: 2,100 kcal per person-day, ~10 % protein, ~17 % fat."""

from django.utils.translation import gettext as _

from .models import SPHERE_FAT_SHARE, SPHERE_KCAL, SPHERE_PROTEIN_SHARE


def template_warnings(template) -> list[str]:
    """Translated sentences for each way the template falls short of the Sphere reference (empty: it meets it)."""
    out = []
    if not any(line.item.kcal is not None for line in template._lines()):
        return out  # not a food package (hygiene, cleaning): no energy reference applies
    kcal = template.kcal_per_person_day
    if kcal < SPHERE_KCAL:
        out.append(
            _("%(kcal)s kcal per person per day, below the Sphere reference of %(ref)s kcal (%(pct)s %%).")
            % {"kcal": f"{kcal:,.0f}", "ref": f"{SPHERE_KCAL:,}", "pct": f"{100 * kcal / SPHERE_KCAL:.0f}"}
        )
    if kcal and template.protein_share < SPHERE_PROTEIN_SHARE:
        out.append(
            _("Protein gives %(pct)s %% of the energy, below the Sphere reference of about %(ref)s %%.")
            % {"pct": f"{100 * template.protein_share:.1f}", "ref": f"{100 * SPHERE_PROTEIN_SHARE:.0f}"}
        )
    if kcal and template.fat_share < SPHERE_FAT_SHARE:
        out.append(
            _("Fat gives %(pct)s %% of the energy, below the Sphere reference of about %(ref)s %%.")
            % {"pct": f"{100 * template.fat_share:.1f}", "ref": f"{100 * SPHERE_FAT_SHARE:.0f}"}
        )
    return out
