"""Task checklists per work-order type, as data, and a technician's progress through one.

``checklist_files/safety_pre_start.yaml`` is the safety pre-start every job begins with
(safe work method for roofs and heights, isolation of AC, DC strings and battery,
lock-out/tag-out, test for dead: ``business.md`` §6); ``checklist_files/<type>.yaml`` is
one work-order type's checklist, which includes the pre-start first
(``- include: safety_pre_start``) and then lists its own tasks. A type may add safety
tasks of its own right after the pre-start (a battery's enclosure checked before it is
opened); every safety task comes before the first task of the work.

Everything is validated when it loads; a refusal is a :class:`ChecklistError` naming the
file, the task and the reason, so a bad checklist stops the service at start-up rather
than letting a technician work without isolating.

:class:`ChecklistProgress` is pure: ticking returns a new progress or a
:class:`TickRefusal` (never an exception for a business refusal). Safety tasks are ticked
in the order written — testing for dead means nothing before isolating — and no task of
the work before the whole pre-start is ticked.

Pure: the loader reads files only when asked; nothing happens at import.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Self

import yaml
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

__all__ = [
    "CHECKLISTS_DIR",
    "PRE_START",
    "PRE_START_FILE",
    "Checklist",
    "ChecklistError",
    "ChecklistProgress",
    "Checklists",
    "Task",
    "TaskTick",
    "TickRefusal",
    "TickRefusalCode",
    "WorkOrderType",
    "load_checklists",
    "parse_checklist",
    "parse_pre_start",
]

#: The checklist files shipped with the service.
CHECKLISTS_DIR = Path(__file__).resolve().parent / "checklist_files"
#: The name a type's checklist includes the pre-start by, and its file.
PRE_START = "safety_pre_start"
PRE_START_FILE = f"{PRE_START}.yaml"


class WorkOrderType(StrEnum):
    """What a work order is for; each has its checklist, ``<type>.yaml``."""

    ISOLATOR_FAULT = "isolator_fault"
    INVERTER_FAULT = "inverter_fault"
    BATTERY_FAULT = "battery_fault"
    PRODUCTION_SHORTFALL = "production_shortfall"
    METER_REPLACEMENT = "meter_replacement"
    INSPECTION = "inspection"


class ChecklistError(ValueError):
    """A checklist file that must not load: ``file``, ``task`` (its id, its position when
    it has none, ``-`` for the file as a whole) and ``reason``."""

    def __init__(self, file: str, task: str, reason: str) -> None:
        self.file, self.task, self.reason = file, task, reason
        super().__init__(f"{file}: task {task}: {reason}")


#: A task's id: a lowercase slug, stable (ticks and photos refer to it).
TaskId = Annotated[str, Field(pattern=r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$", max_length=64)]
Title = Annotated[str, Field(min_length=3, max_length=100, pattern=r"^\S(?:.*\S)?$")]
#: A language of a title's translation (ISO 639-1); English is ``title`` itself.
Language = Annotated[str, Field(pattern=r"^[a-z]{2}$")]
PersonId = Annotated[str, Field(min_length=1, max_length=64)]
#: Where the storage interface keeps a photo (its key), not the photo.
PhotoRef = Annotated[str, Field(min_length=1, max_length=200)]
Note = Annotated[str, Field(min_length=1, max_length=1000)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Task(_Strict):
    """One checklist task. ``title`` is English; ``translations`` its title in other
    languages (``{es: …}``), written beside it in the checklist file; ``photo``: ticking
    it needs a photo; ``safety``: part of the safety pre-start."""

    id: TaskId
    title: Title
    translations: Mapping[Language, Title] = Field(default_factory=dict, max_length=8)
    photo: bool = False
    safety: bool = False

    @model_validator(mode="after")
    def _english_is_the_title(self) -> Self:
        if "en" in self.translations:
            raise ValueError("the English title is `title`, not a translation")
        return self

    def title_in(self, language: str) -> str:
        """The title in ``language``, English when it has no translation."""
        return self.translations.get(language, self.title)


class Checklist(_Strict):
    """One work-order type's tasks in order: the safety tasks (the pre-start, then any of
    the type's own), then the work."""

    type: WorkOrderType
    tasks: tuple[Task, ...] = Field(min_length=2)

    @model_validator(mode="after")
    def _safety_first_and_unique(self) -> Self:
        ids = [task.id for task in self.tasks]
        if len(set(ids)) != len(ids):
            raise ValueError("task ids must be unique")
        if not self.tasks[0].safety:
            raise ValueError("the safety pre-start must come first")
        flags = [task.safety for task in self.tasks]
        if flags != sorted(flags, reverse=True) or all(flags):
            raise ValueError("safety tasks first, then at least one task of the work")
        return self

    @property
    def safety_tasks(self) -> tuple[Task, ...]:
        return tuple(task for task in self.tasks if task.safety)

    def task(self, task_id: str) -> Task | None:
        return next((task for task in self.tasks if task.id == task_id), None)


# -- loading ------------------------------------------------------------------------------
class _PreStartFile(_Strict):
    tasks: list[Any] = Field(min_length=1)


class _TypeFile(_Strict):
    type: str
    tasks: list[Any] = Field(min_length=1)


def _reason(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


def _label(raw: Any, index: int) -> str:
    task_id = raw.get("id") if isinstance(raw, Mapping) else None
    return repr(task_id) if isinstance(task_id, str) else f"#{index + 1}"


def _file(model: type[_PreStartFile] | type[_TypeFile], raw: Any, file: str) -> Any:
    try:
        return model.model_validate({} if raw is None else raw)
    except ValidationError as exc:
        raise ChecklistError(file, "-", _reason(exc)) from None


def _task(raw: Any, file: str, index: int) -> Task:
    if not isinstance(raw, Mapping):
        raise ChecklistError(file, f"#{index + 1}", "a task is a mapping of fields")
    try:
        return Task.model_validate(raw)
    except ValidationError as exc:
        raise ChecklistError(file, _label(raw, index), _reason(exc)) from None


def _is_include(raw: Any) -> bool:
    return isinstance(raw, Mapping) and "include" in raw


def _unique(tasks: Iterable[tuple[Task, str]], file: str) -> None:
    """Refuse a task id seen before, naming where (``tasks``: each with its file)."""
    seen: dict[str, str] = {}
    for task, origin in tasks:
        if task.id in seen:
            where = "" if seen[task.id] == origin == file else f" (already in {seen[task.id]})"
            raise ChecklistError(origin, repr(task.id), f"duplicate task id{where}")
        seen[task.id] = origin


def parse_pre_start(raw: Any, file: str = PRE_START_FILE) -> tuple[Task, ...]:
    """The safety pre-start from parsed YAML (``{tasks: [...]}``), every task a safety
    task. Raises :class:`ChecklistError` naming the file and the task."""
    tasks = []
    for index, item in enumerate(_file(_PreStartFile, raw, file).tasks):
        task = _task(item, file, index)
        if not task.safety:
            raise ChecklistError(file, repr(task.id), "every pre-start task is a safety task")
        tasks.append(task)
    _unique(((task, file) for task in tasks), file)
    return tuple(tasks)


def parse_checklist(
    raw: Any, pre_start: tuple[Task, ...], file: str, pre_start_file: str = PRE_START_FILE
) -> Checklist:
    """One type's checklist from parsed YAML (``{type: …, tasks: [{include:
    safety_pre_start}, …]}``) with ``pre_start`` in place of the include. ``file`` must be
    named for its type. Raises :class:`ChecklistError` naming the file and the task."""
    parsed: _TypeFile = _file(_TypeFile, raw, file)
    try:
        kind = WorkOrderType(parsed.type)
    except ValueError:
        known = ", ".join(t.value for t in WorkOrderType)
        raise ChecklistError(
            file, "-", f"unknown work-order type {parsed.type!r} (known: {known})"
        ) from None
    if Path(file).stem != kind.value:
        raise ChecklistError(file, "-", f"the checklist of {kind} is named {kind}.yaml")
    first, *rest = parsed.tasks
    if _is_include(first) and first != {"include": PRE_START}:
        raise ChecklistError(file, "#1", f"only {PRE_START} can be included")
    if first != {"include": PRE_START}:
        raise ChecklistError(
            file, _label(first, 0), f"the safety pre-start comes first: - include: {PRE_START}"
        )
    own = []
    for index, item in enumerate(rest, start=1):
        if _is_include(item):
            raise ChecklistError(file, f"#{index + 1}", f"only {PRE_START} is included, first")
        own.append(_task(item, file, index))
    _unique([(t, pre_start_file) for t in pre_start] + [(t, file) for t in own], file)
    _check_order(own, file)
    return Checklist(type=kind, tasks=(*pre_start, *own))


def _check_order(own: list[Task], file: str) -> None:
    work = [task for task in own if not task.safety]
    if not work:
        raise ChecklistError(file, "-", "a checklist needs tasks of its own after the safety")
    late = next((t for t in own[own.index(work[0]) :] if t.safety), None)
    if late is not None:
        raise ChecklistError(file, repr(late.id), "a safety task comes before the work: move it up")


class Checklists(_Strict):
    """Every work-order type's checklist."""

    by_type: Mapping[WorkOrderType, Checklist]

    @model_validator(mode="after")
    def _every_type(self) -> Self:
        missing = sorted(set(WorkOrderType) - set(self.by_type))
        if missing:
            raise ValueError(f"no checklist for {', '.join(missing)}")
        return self

    def __getitem__(self, kind: WorkOrderType | str) -> Checklist:
        return self.by_type[WorkOrderType(kind)]


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text("utf-8"))
    except yaml.YAMLError as exc:
        raise ChecklistError(path.name, "-", f"not YAML: {exc}") from None


def load_checklists(directory: Path = CHECKLISTS_DIR) -> Checklists:
    """Every type's checklist from ``directory``: the pre-start file, then one file per
    type (every other ``*.yaml``). Raises :class:`ChecklistError` naming the file and the
    task, or the directory when a type has no file."""
    pre_start = parse_pre_start(_read_yaml(directory / PRE_START_FILE))
    found: dict[WorkOrderType, Checklist] = {}
    for path in sorted(directory.glob("*.yaml")):
        if path.name != PRE_START_FILE:
            checklist = parse_checklist(_read_yaml(path), pre_start, path.name)
            found[checklist.type] = checklist
    missing = sorted(set(WorkOrderType) - set(found))
    if missing:
        raise ChecklistError(directory.name, "-", f"no checklist for {', '.join(missing)}")
    ids = {t.id for t in pre_start}
    own = [(t, f"{c.type.value}.yaml") for c in found.values() for t in c.tasks if t.id not in ids]
    _translated_alike([(t, PRE_START_FILE) for t in pre_start] + own)
    return Checklists(by_type=found)


def _translated_alike(tasks: list[tuple[Task, str]]) -> None:
    """Refuse a task without a language another task has (each with its file): a page
    in that language would show it alone in English."""
    languages = sorted({lang for task, _ in tasks for lang in task.translations})
    for task, file in tasks:
        lacking = [lang for lang in languages if lang not in task.translations]
        if lacking:
            raise ChecklistError(
                file, repr(task.id), f"no {', '.join(lacking)} title (other tasks have one)"
            )


# -- progress -----------------------------------------------------------------------------
class TaskTick(_Strict):
    """A task done: by whom, when (aware), with its photo (the storage key) and a note."""

    task_id: TaskId
    by: PersonId
    at: AwareDatetime
    photo: PhotoRef | None = None
    note: Note | None = None


class TickRefusalCode(StrEnum):
    UNKNOWN_TASK = "unknown_task"
    ALREADY_TICKED = "already_ticked"
    SAFETY_INCOMPLETE = "safety_incomplete"
    SAFETY_OUT_OF_ORDER = "safety_out_of_order"
    PHOTO_REQUIRED = "photo_required"


@dataclass(frozen=True, slots=True)
class TickRefusal:
    """A tick refused (the progress stays as it was): ``code`` and ``params`` (``next``:
    the safety task to tick first; ``type``: the checklist's work-order type) for
    programs and for a screen that words it in its reader's language; ``reason`` (and
    ``str()``) in English."""

    task_id: str
    code: TickRefusalCode
    reason: str
    params: Mapping[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"cannot tick {self.task_id}: {self.reason}"


def _refusal(checklist: Checklist, done: frozenset[str], tick: TaskTick) -> TickRefusal | None:
    """Why ``tick`` cannot follow the ticks ``done`` on ``checklist``, or None."""

    def refuse(code: TickRefusalCode, reason: str, **params: str) -> TickRefusal:
        return TickRefusal(tick.task_id, code, reason, params)

    task = checklist.task(tick.task_id)
    if task is None:
        return refuse(
            TickRefusalCode.UNKNOWN_TASK,
            f"no such task on the {checklist.type} list",
            type=checklist.type.value,
        )
    if task.id in done:
        return refuse(TickRefusalCode.ALREADY_TICKED, "it is ticked already")
    pending = [t for t in checklist.safety_tasks if t.id not in done]
    if not task.safety and pending:
        return refuse(
            TickRefusalCode.SAFETY_INCOMPLETE,
            f"the safety pre-start is not complete (next: {pending[0].id})",
            next=pending[0].id,
        )
    if task.safety and pending[0].id != task.id:
        return refuse(
            TickRefusalCode.SAFETY_OUT_OF_ORDER,
            f"safety tasks are done in order (next: {pending[0].id})",
            next=pending[0].id,
        )
    if task.photo and tick.photo is None:
        return refuse(TickRefusalCode.PHOTO_REQUIRED, "this task needs a photo")
    return None


class ChecklistProgress(_Strict):
    """A work order's checklist and the ticks on it so far, in the order they were made.
    Built from stored ticks, it refuses any sequence :meth:`tick` would have refused."""

    checklist: Checklist
    ticks: tuple[TaskTick, ...] = ()

    @model_validator(mode="after")
    def _ticks_replay(self) -> Self:
        done: set[str] = set()
        for tick in self.ticks:
            refusal = _refusal(self.checklist, frozenset(done), tick)
            if refusal is not None:
                raise ValueError(str(refusal))
            done.add(tick.task_id)
        return self

    @property
    def ticked(self) -> frozenset[str]:
        return frozenset(tick.task_id for tick in self.ticks)

    @property
    def remaining(self) -> tuple[Task, ...]:
        done = self.ticked
        return tuple(task for task in self.checklist.tasks if task.id not in done)

    @property
    def safety_complete(self) -> bool:
        """Every safety task ticked: the work may start."""
        return all(task.id in self.ticked for task in self.checklist.safety_tasks)

    @property
    def complete(self) -> bool:
        """Every task ticked: the job may be resolved."""
        return not self.remaining

    def tick(
        self,
        task_id: str,
        by: str,
        at: datetime,
        *,
        photo: str | None = None,
        note: str | None = None,
    ) -> ChecklistProgress | TickRefusal:
        """The progress with ``task_id`` ticked by ``by`` at ``at`` (aware), or a
        :class:`TickRefusal` saying why not. ``ValueError`` for a malformed tick (a naive
        time, an empty ``by``, a task id that is no id)."""
        tick = TaskTick(task_id=task_id, by=by, at=at, photo=photo, note=note)
        refusal = _refusal(self.checklist, self.ticked, tick)
        if refusal is not None:
            return refusal
        # Already checked: skip replaying every tick again.
        return type(self).model_construct(checklist=self.checklist, ticks=(*self.ticks, tick))
