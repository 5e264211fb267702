"""Checklists per work-order type: the shipped files, the loader's refusals, and ticking
(the safety pre-start first, in order; photos where asked)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloud.dispatch.checklists import (
    CHECKLISTS_DIR,
    Checklist,
    ChecklistError,
    ChecklistProgress,
    Task,
    TaskTick,
    TickRefusal,
    TickRefusalCode,
    WorkOrderType,
    load_checklists,
    parse_checklist,
    parse_pre_start,
)
from cloud.portal.web.i18n import LANGUAGES

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
MOSIE = "E1001"
#: The pre-start as business.md §6 lists it, in the order it is done.
PRE_START_IDS = [
    "swms-reviewed",
    "isolate-ac",
    "isolate-dc",
    "isolate-battery",
    "lockout-tagout",
    "test-for-dead",
]
TYPES = {
    "isolator_fault",
    "inverter_fault",
    "battery_fault",
    "production_shortfall",
    "meter_replacement",
    "inspection",
}
PRE = (
    Task(id="isolate-ac", title="AC isolated", safety=True),
    Task(id="test-for-dead", title="Tested for dead", safety=True),
)


def type_file(*tasks: Any, kind: str = "inspection") -> dict[str, Any]:
    return {"type": kind, "tasks": [{"include": "safety_pre_start"}, *tasks]}


def refusal(raw: Any, file: str = "inspection.yaml") -> ChecklistError:
    with pytest.raises(ChecklistError) as caught:
        parse_checklist(raw, PRE, file)
    return caught.value


# -- the shipped files --------------------------------------------------------------------


def test_every_type_has_a_checklist_that_starts_with_the_safety_pre_start() -> None:
    checklists = load_checklists()
    assert {t.value for t in checklists.by_type} == TYPES
    for kind in TYPES:
        checklist = checklists[kind]
        assert [t.id for t in checklist.tasks[:6]] == PRE_START_IDS, kind
        assert all(t.safety for t in checklist.tasks[:6])
        assert any(not t.safety for t in checklist.tasks), kind
        assert len({t.title for t in checklist.tasks}) == len(checklist.tasks), kind


def test_lock_out_tag_out_is_photographed_and_battery_work_checks_the_enclosure_first() -> None:
    checklists = load_checklists()
    assert checklists["inspection"].task("lockout-tagout") == Task(
        id="lockout-tagout",
        title="Lock-out and tag-out applied at every isolation point",
        translations={"es": "Bloqueo y etiquetado aplicados en cada punto de aislamiento"},
        photo=True,
        safety=True,
    )
    battery = checklists[WorkOrderType.BATTERY_FAULT].safety_tasks
    assert [t.id for t in battery] == [*PRE_START_IDS, "battery-enclosure-checked"]


# -- refusals -----------------------------------------------------------------------------


def test_a_duplicate_task_id_is_refused_naming_file_and_task() -> None:
    dup = {"id": "array-inspected", "title": "Array inspected"}
    err = refusal(type_file(dup, dup))
    assert (err.file, err.task, err.reason) == (
        "inspection.yaml",
        "'array-inspected'",
        ("duplicate task id"),
    )


def test_reusing_a_pre_start_id_is_refused_naming_where_it_was() -> None:
    err = refusal(type_file({"id": "isolate-ac", "title": "AC isolated again"}))
    assert str(err) == (
        "inspection.yaml: task 'isolate-ac': duplicate task id (already in safety_pre_start.yaml)"
    )


def test_an_unknown_type_is_refused() -> None:
    err = refusal(type_file({"id": "x", "title": "Something"}, kind="roof_cleaning"))
    assert err.file == "inspection.yaml"
    assert err.reason.startswith("unknown work-order type 'roof_cleaning' (known: isolator_fault")


def test_a_file_named_for_another_type_is_refused() -> None:
    err = refusal(type_file({"id": "x", "title": "Something"}), file="battery_fault.yaml")
    assert err.reason == "the checklist of inspection is named inspection.yaml"


def test_a_type_without_the_safety_pre_start_first_is_refused() -> None:
    raw = {"type": "inspection", "tasks": [{"id": "array-inspected", "title": "Array seen"}]}
    err = refusal(raw)
    assert (err.task, err.reason) == (
        "'array-inspected'",
        "the safety pre-start comes first: - include: safety_pre_start",
    )
    late = {"type": "inspection", "tasks": [{"id": "a", "title": "Aaa"}, type_file()["tasks"][0]]}
    assert refusal(late).task == "'a'"


def test_the_pre_start_is_included_once_and_nothing_else_is() -> None:
    twice = type_file({"include": "safety_pre_start"}, {"id": "a", "title": "Aaa"})
    assert (refusal(twice).task, refusal(twice).reason) == (
        "#2",
        "only safety_pre_start is included, first",
    )
    other = {"type": "inspection", "tasks": [{"include": "roof_pre_start"}]}
    assert refusal(other).reason == "only safety_pre_start can be included"


def test_a_safety_task_after_the_work_has_started_is_refused() -> None:
    raw = type_file(
        {"id": "array-inspected", "title": "Array inspected"},
        {"id": "harness-on", "title": "Harness on", "safety": True},
    )
    err = refusal(raw)
    assert (err.task, err.reason) == (
        "'harness-on'",
        "a safety task comes before the work: move it up",
    )


def test_a_checklist_of_safety_alone_is_refused() -> None:
    err = refusal(type_file())
    assert err.reason == "a checklist needs tasks of its own after the safety"


def test_a_malformed_task_is_refused_naming_it_and_the_field() -> None:
    err = refusal(type_file({"id": "Bad Id", "title": "Something"}))
    assert err.task == "'Bad Id'"
    assert err.reason.startswith("id: String should match pattern")
    err = refusal(type_file({"id": "a", "title": "Aaa", "photo_needed": True}))
    assert err.reason == "photo_needed: Extra inputs are not permitted"


def test_every_pre_start_task_is_a_safety_task() -> None:
    with pytest.raises(ChecklistError) as caught:
        parse_pre_start({"tasks": [{"id": "isolate-ac", "title": "AC isolated"}]})
    assert str(caught.value) == (
        "safety_pre_start.yaml: task 'isolate-ac': every pre-start task is a safety task"
    )


def copy_shipped(tmp: Path) -> Path:
    for path in CHECKLISTS_DIR.glob("*.yaml"):
        (tmp / path.name).write_text(path.read_text("utf-8"), "utf-8")
    return tmp


def test_every_shipped_task_has_a_title_in_each_of_the_portals_languages() -> None:
    checklists = load_checklists()
    others = set(LANGUAGES) - {"en"}
    assert others == {"es"}
    for kind in TYPES:
        for task in checklists[kind].tasks:
            assert set(task.translations) == others, (kind, task.id)
            assert task.title_in("es") != task.title, (kind, task.id)
            assert task.title_in("en") == task.title
    isolator = checklists["isolator_fault"]
    assert (
        isolator.tasks[-1].title_in("es")
        == "El inversor vuelve a producir tras volver a dar tensión"
    )
    assert isolator.tasks[-1].title_in("fr") == "Inverter producing again after re-energising"


def test_a_task_without_a_language_the_others_have_is_refused_naming_it(tmp_path: Path) -> None:
    path = copy_shipped(tmp_path) / "isolator_fault.yaml"
    text = path.read_text("utf-8")
    spanish = "    translations:\n      es: Seccionador reparado o sustituido\n"
    assert spanish in text
    path.write_text(text.replace(spanish, ""), "utf-8")
    with pytest.raises(ChecklistError) as caught:
        load_checklists(tmp_path)
    assert str(caught.value) == (
        "isolator_fault.yaml: task 'isolator-repaired': no es title (other tasks have one)"
    )


def test_english_is_the_title_not_a_translation() -> None:
    task = {"id": "fixed", "title": "Fixed", "translations": {"en": "Fixed"}}
    assert "the English title is `title`" in refusal(type_file(task)).reason
    long = {"id": "fixed", "title": "Fixed", "translations": {"es": "x" * 101}}
    assert "translations.es" in refusal(type_file(long)).reason


def test_a_type_without_a_file_is_refused_naming_the_directory(tmp_path: Path) -> None:
    (copy_shipped(tmp_path) / "meter_replacement.yaml").unlink()
    with pytest.raises(ChecklistError) as caught:
        load_checklists(tmp_path)
    assert (caught.value.file, caught.value.reason) == (
        tmp_path.name,
        "no checklist for meter_replacement",
    )


def test_a_file_that_is_not_yaml_is_refused_naming_it(tmp_path: Path) -> None:
    (copy_shipped(tmp_path) / "inspection.yaml").write_text("tasks: [unclosed", "utf-8")
    with pytest.raises(ChecklistError, match=r"^inspection\.yaml: task -: not YAML"):
        load_checklists(tmp_path)


# -- ticking ------------------------------------------------------------------------------


def small() -> ChecklistProgress:
    tasks = (
        *PRE,
        Task(id="photo-taken", title="Photo taken", photo=True),
        Task(id="fixed", title="Fixed"),
    )
    return ChecklistProgress(checklist=Checklist(type=WorkOrderType.INSPECTION, tasks=tasks))


def tick(progress: ChecklistProgress, task_id: str, **kw: Any) -> ChecklistProgress:
    after = progress.tick(task_id, MOSIE, T0, **kw)
    assert isinstance(after, ChecklistProgress), str(after)
    return after


def refused(result: ChecklistProgress | TickRefusal, code: TickRefusalCode) -> TickRefusal:
    assert isinstance(result, TickRefusal), "expected a refusal"
    assert result.code is code, str(result)
    return result


def test_no_task_of_the_work_before_the_safety_pre_start_is_complete() -> None:
    progress = tick(small(), "isolate-ac")
    result = refused(progress.tick("fixed", MOSIE, T0), TickRefusalCode.SAFETY_INCOMPLETE)
    assert (
        str(result)
        == "cannot tick fixed: the safety pre-start is not complete (next: test-for-dead)"
    )
    assert result.params == {"next": "test-for-dead"}
    assert not progress.safety_complete
    progress = tick(progress, "test-for-dead")
    assert progress.safety_complete
    assert not progress.complete
    assert tick(progress, "fixed").ticked == {"isolate-ac", "test-for-dead", "fixed"}


def test_safety_tasks_are_ticked_in_the_order_written() -> None:
    refused(small().tick("test-for-dead", MOSIE, T0), TickRefusalCode.SAFETY_OUT_OF_ORDER)


def test_a_task_that_needs_a_photo_is_refused_without_one() -> None:
    safe = tick(tick(small(), "isolate-ac"), "test-for-dead")
    refused(safe.tick("photo-taken", MOSIE, T0), TickRefusalCode.PHOTO_REQUIRED)
    done = tick(tick(safe, "photo-taken", photo="photos/wo1/1.jpg"), "fixed", note="reset")
    assert done.complete
    assert done.remaining == ()
    assert done.ticks[-2:] == (
        TaskTick(task_id="photo-taken", by=MOSIE, at=T0, photo="photos/wo1/1.jpg"),
        TaskTick(task_id="fixed", by=MOSIE, at=T0, note="reset"),
    )


def test_a_task_is_ticked_once_and_an_unknown_one_not_at_all() -> None:
    progress = tick(small(), "isolate-ac")
    refused(progress.tick("isolate-ac", MOSIE, T0), TickRefusalCode.ALREADY_TICKED)
    refused(progress.tick("wash-car", MOSIE, T0), TickRefusalCode.UNKNOWN_TASK)


def test_a_malformed_tick_or_a_stored_sequence_out_of_order_raises() -> None:
    with pytest.raises(ValueError, match="timezone"):
        small().tick("isolate-ac", MOSIE, datetime(2026, 3, 2, 9, 0))
    bad = (TaskTick(task_id="fixed", by=MOSIE, at=T0),)
    with pytest.raises(ValueError, match="safety pre-start is not complete"):
        ChecklistProgress(checklist=small().checklist, ticks=bad)


@settings(
    max_examples=60, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    st.lists(st.sampled_from(["isolate-ac", "test-for-dead", "photo-taken", "fixed"]), max_size=8),
    st.lists(st.booleans(), min_size=8, max_size=8),
)
def test_whatever_is_tried_the_accepted_ticks_put_safety_first_in_order(
    attempts: list[str], photos: list[bool]
) -> None:
    progress = small()
    for task_id, with_photo in zip(attempts, photos, strict=False):
        after = progress.tick(
            task_id, MOSIE, T0 + timedelta(minutes=1), photo=("p.jpg" if with_photo else None)
        )
        progress = after if isinstance(after, ChecklistProgress) else progress
    order = [t.task_id for t in progress.ticks]
    assert order[:2] == ["isolate-ac", "test-for-dead"][: len(order[:2])]
    assert len(set(order)) == len(order)
    # rebuilding from the stored ticks accepts what ticking accepted
    assert ChecklistProgress(checklist=progress.checklist, ticks=progress.ticks) == progress
