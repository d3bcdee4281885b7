"""The decision with failure isolation: what both jobs (offline and sync) call for one patient's batch.

An engine failure on one administration is reported as a :class:`~fhir_injection.errors.RecordProblem`
and the rest of the batch is still decided, together, so the same-day rules still see each other.
"""

from __future__ import annotations

from ..errors import RecordProblem, describe_failure
from .engine import decide_all
from .practice import Config
from .ruleset import Rules

__all__ = ["decide_isolated"]


def decide_isolated(admins: list, ctx, rules: Rules, config: Config, on_problem) -> list:
    """decide_all for one patient; an administration the engine fails on is reported, not fatal.

    The others are still decided together, so the same-day rules still see each other.
    """
    try:
        return decide_all(admins, ctx, rules, config)
    except Exception:
        pass
    usable = []
    for admin in admins:
        try:
            decide_all([admin], ctx, rules, config)
            usable.append(admin)
        except Exception as exc:
            on_problem(
                RecordProblem(
                    f"MedicationAdministration/{admin.get('id')}",
                    None,
                    f"could not be decided ({describe_failure(exc)}); skipped",
                )
            )
    try:
        if len(usable) < len(admins):
            return decide_all(usable, ctx, rules, config)
    except Exception:
        pass
    for admin in usable:  # each alone is fine, together they fail: none is decided on a guess
        on_problem(
            RecordProblem(
                f"MedicationAdministration/{admin.get('id')}",
                None,
                "could not be decided with the patient's other administrations; skipped",
            )
        )
    return []
