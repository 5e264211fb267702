"""The dispatch core's refusals in the reader's language.

The lifecycle and the checklist refuse with a stable code, the parameters its sentence
names and an English reason (the REST API answers all three). A page words the code from
the catalogue with the parameters; a code not worded here yet reads in English (its
reason), so a new refusal is never lost — only untranslated until it is added.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["tick_refusal", "transition_refusal"]

#: A page's gettext (``_(message, **params)``, newstyle: placeholders filled in).
Gettext = Callable[..., Any]


def transition_refusal(_: Gettext, code: str, params: Mapping[str, str], reason: str) -> str:
    """A lifecycle refusal (:class:`cloud.dispatch.lifecycle.RefusalCode`) for people."""
    match code:
        case "illegal_transition":
            return str(_("This step is not possible in the job's current state."))
        case "role_not_allowed":
            return str(_("Your role cannot take this step in the job's current state."))
        case "reason_required":
            return str(_("Say why."))
        case "not_assignee":
            return str(_("The job is not assigned to you."))
        case "assignee_required":
            return str(_("Name the technician."))
        case "same_assignee":
            return str(_("The job is already with %(who)s.", who=params.get("assignee", "")))
        case "safety_incomplete":
            return str(_("The safety pre-start is not complete."))
        case "checklist_incomplete":
            return str(_("The checklist is not complete."))
        case "sla_timer_stopped":
            return str(_("That due time stopped when the technician arrived."))
        case "sla_already_breached":
            return str(_("That due time has passed already."))
        case "reopen_window_passed":
            days = params.get("window_days", "")
            return str(_("Verified more than %(days)s days ago: raise a new job.", days=days))
    return reason


def tick_refusal(_: Gettext, code: str, params: Mapping[str, str], reason: str) -> str:
    """A checklist refusal (:class:`cloud.dispatch.checklists.TickRefusalCode`) for
    people. The checklist itself shows which task comes next."""
    match code:
        case "unknown_task":
            return str(_("That task is not on this job's checklist."))
        case "already_ticked":
            return str(_("That task is done already."))
        case "safety_incomplete":
            return str(_("Finish the safety pre-start first."))
        case "safety_out_of_order":
            return str(_("Safety tasks are done in the order listed."))
        case "photo_required":
            return str(_("This task needs a photo."))
    return reason
