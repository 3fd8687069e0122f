"""The policy timeline: which program applies when, what replaces what, and when awards are paid.

Data, like dated parameters: ``scenarios/catalogue/timeline.yaml`` holds the
catalogue's stated assumptions (validity of open-ended documents, program
families with the quote that links predecessor and successor, what happens when
a fixed-term document expires, payment lags and instalments); a scenario's
``timeline:`` block changes any of them. :func:`resolve` turns both into
effective programs (in-force dates, schedules, non-cumulation groups) and a list
of :class:`Assumption` records that ``programs show`` and the run manifest print.

Rules, applied in this order to each program:

1. **After expiry** (fixed-term documents): ``lapse`` keeps the end date;
   ``renew`` extends it (to ``until``, open-ended by default) on the same terms;
   ``renew_with`` adds a renewed copy of each program (id ``<id>.renewed``) in
   force from the day after expiry, with overrides (parameter paths, as in
   ``overrides:``); awards before expiry keep the original terms.
2. **Validity** of open-ended documents: ``in_force``, or ``superseded`` from a
   date (no new awards from that day).
3. **Families**: ``stack`` (both apply), ``successor_replaces`` (no new
   predecessor awards from the successors' first day in force; a lapsed
   successor does not revive the predecessor), ``highest_only`` (both apply,
   one applicant gets only the higher: the members share a non-cumulation group).
4. **Timing**: the payment lag (years from the award decision to the first
   payment) and instalments, by program, else by document, else the default.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import Field, ValidationError, model_validator

from fiscal_sim.catalogue.schema import group_names
from fiscal_sim.errors import InputError, Problem
from fiscal_sim.rules.formula import Strict
from fiscal_sim.rules.schedule import Lag, with_timing
from fiscal_sim.yamlfile import YamlDoc

RENEWED = ".renewed"
"""suffix of the program id of a document's renewal with changes (``renew_with``)"""
FamilyMode = Literal["stack", "successor_replaces", "highest_only"]
Basis = Literal["quote", "assumption"]


class Link(Strict):
    """Why predecessor and successor pay for the same thing: a quote, or a labelled assumption."""

    basis: Basis
    quote: str | None = None
    source: str | None = Field(default=None, description="document and section of the quote")
    note: str

    @model_validator(mode="after")
    def _quoted(self):
        if self.basis == "quote" and not (self.quote and self.source):
            raise ValueError("a link based on a quote needs the quote and its source")
        return self


class Family(Strict):
    title: str
    predecessors: list[str] = Field(min_length=1)
    successors: list[str] = Field(min_length=1)
    link: Link
    mode: FamilyMode
    reason: str = Field(description="why this mode is the default")


class Validity(Strict):
    """An open-ended document: still in force, or superseded from a date (no new awards from that day)."""

    status: Literal["in_force", "superseded"]
    from_: dt.date | None = Field(default=None, alias="from")
    basis: Basis = "assumption"
    note: str = ""

    @model_validator(mode="after")
    def _dated(self):
        if (self.status == "superseded") != (self.from_ is not None):
            raise ValueError("superseded needs 'from' (the first day without new awards); in_force takes none")
        return self


class Renewal(Strict):
    """What happens after a fixed-term document's end date: lapse, renew (same terms), renew_with (overrides)."""

    mode: Literal["lapse", "renew", "renew_with"] = "lapse"
    until: dt.date | None = Field(default=None, description="end of the renewal; null = open-ended")
    overrides: dict[str, dict[str, Any]] = {}
    note: str = ""

    @model_validator(mode="after")
    def _overrides_only_with(self):
        if self.overrides and self.mode != "renew_with":
            raise ValueError("overrides need mode: renew_with")
        return self


class Timing(Strict):
    """Award decision → payment: ``lag`` years to the first payment; ``instalments`` split a one-off award."""

    lag: Lag | None = None
    instalments: list[Annotated[float, Field(gt=0, le=1)]] | None = None
    basis: Basis = "assumption"
    quote: str | None = None
    note: str = ""

    @model_validator(mode="after")
    def _sum(self):
        if self.instalments is not None and abs(sum(self.instalments) - 1) > 1e-9:
            raise ValueError(f"instalments must sum to 1, got {sum(self.instalments):g}")
        return self


class TimingTable(Strict):
    default: Timing = Timing(lag=0)
    documents: dict[str, Timing] = {}
    programs: dict[str, Timing] = {}


class TimelineFile(Strict):
    validity: dict[str, Validity] = {}
    after_expiry: dict[str, Renewal] = {}
    families: dict[str, Family] = {}
    timing: TimingTable = TimingTable()


class TimelineSettings(Strict):
    """A scenario's ``timeline:`` block; every key changes the catalogue's assumption of the same name.

    ``after_expiry`` takes ``lapse`` / ``renew`` or a mapping (``mode``, ``until``, ``overrides``), keyed by
    document number or family id; ``timing`` is keyed by ``default``, a document number or a program id.
    """

    families: dict[str, FamilyMode] = {}
    validity: dict[str, Validity] = {}
    after_expiry: dict[str, Union[Literal["lapse", "renew"], Renewal]] = {}
    timing: dict[str, Timing] = {}


@dataclass(frozen=True)
class Assumption:
    """One timeline or timing assumption as applied: what, to which subject, on what basis, set by whom."""

    kind: str
    subject: str
    setting: str
    basis: str
    text: str
    set_by: str  # "catalogue" or "scenario"

    def line(self) -> str:
        return f"{self.kind} {self.subject}: {self.setting} [{self.basis}, {self.set_by}] {self.text}".rstrip()


def load_timeline(path: Path) -> TimelineFile:
    """Read and validate ``timeline.yaml``; an absent file is an empty timeline (no families, lag 0)."""
    if not path.exists():
        return TimelineFile()
    doc = YamlDoc(path)
    try:
        return TimelineFile.model_validate(doc.data or {})
    except ValidationError as e:
        raise InputError(doc.problems_from(e, (), None, doc.data)) from None


def check_settings(
    st: TimelineSettings, base: TimelineFile, programs: dict, documents: set[str], problem
) -> list[Problem]:
    """References of a scenario's ``timeline:`` block (``problem(path, message)`` locates each)."""
    out = []
    for fid in st.families:
        if fid not in base.families:
            out.append(problem(("families", fid), f"unknown family {fid!r} (known: {', '.join(base.families)})"))
    for key in ("validity", "after_expiry"):
        for name in getattr(st, key):
            if name not in documents and not (key == "after_expiry" and name in base.families):
                out.append(problem((key, name), f"unknown document {name!r}"))
    out += renewal_problems(st.after_expiry, programs, base.families, problem)
    for name in st.timing:
        if name != "default" and name not in documents and name not in programs:
            out.append(problem(("timing", name), f"{name!r} is neither 'default', a document number nor a program id"))
    return out


def renewal_problems(after_expiry: dict, programs: dict, families: dict, problem) -> list[Problem]:
    """A renewal's ``overrides`` name programs of the document (or family) it renews, and its ``until`` falls after
    that document's expiry (an earlier date would silently end the plan)."""
    out = []
    for name, ren in after_expiry.items():
        if not isinstance(ren, Renewal):
            continue
        fam = families.get(name)
        members = (
            set(fam.successors)
            if fam
            else {pid for pid, p in programs.items() if getattr(p, "document", None) and p.document.number == name}
        )
        for pid in ren.overrides:
            if pid not in programs:
                out.append(problem(("after_expiry", name, "overrides", pid), f"unknown program {pid!r}"))
            elif pid not in members:
                out.append(
                    problem(
                        ("after_expiry", name, "overrides", pid),
                        f"program {pid!r} is not one of {name}'s: a renewal changes only its own programs",
                    )
                )
        ends = [programs[pid].spec.in_force.to for pid in members if programs[pid].spec.in_force.to is not None]
        if ren.until is not None and ends and ren.mode != "lapse" and ren.until <= max(ends):
            out.append(
                problem(
                    ("after_expiry", name, "until"),
                    f"{ren.until} is not after {name}'s expiry {max(ends)}: a renewal runs after it",
                )
            )
    return out


def successor_cycles(families: dict) -> list[list[str]]:
    """Cycles in predecessor → successor links across families (a program succeeding itself, directly or not)."""
    nxt: dict[str, set[str]] = {}
    for fam in families.values():
        for a in fam.predecessors:
            nxt.setdefault(a, set()).update(fam.successors)
    cycles, state = [], {}

    def visit(v: str, path: list[str]) -> None:
        state[v] = 1
        for w in sorted(nxt.get(v, ())):
            if state.get(w) == 1:
                cycles.append(path[path.index(w) :] + [w] if w in path else [v, w])
            elif w not in state:
                visit(w, path + [w])
        state[v] = 2

    for v in sorted(nxt):
        if v not in state:
            visit(v, [v])
    return cycles


def check_timeline(tl: TimelineFile, programs: dict, documents: set[str], problem) -> list[Problem]:
    """References of the catalogue's timeline file to programs, documents and families; renewals; cycles."""
    out = []
    out += renewal_problems(tl.after_expiry, programs, tl.families, problem)
    for cycle in successor_cycles(tl.families):
        out.append(problem(("families",), f"successor cycle {' → '.join(cycle)}: a program cannot succeed itself"))
    for fid, fam in tl.families.items():
        for role in ("predecessors", "successors"):
            for i, pid in enumerate(getattr(fam, role)):
                if pid not in programs:
                    out.append(problem(("families", fid, role, i), f"unknown program {pid!r}"))
    for key in ("validity", "after_expiry"):
        for number in getattr(tl, key):
            if number not in documents and number not in tl.families:
                out.append(
                    problem((key, number), f"unknown document {number!r} (known: {', '.join(sorted(documents))})")
                )
    for name in tl.timing.documents:
        if name not in documents:
            out.append(problem(("timing", "documents", name), f"unknown document {name!r}"))
    for name in tl.timing.programs:
        if name not in programs:
            out.append(problem(("timing", "programs", name), f"unknown program {name!r}"))
    return out


def merged(
    base: TimelineFile, settings: TimelineSettings | None, documents: set[str]
) -> tuple[TimelineFile, set[tuple[str, str]]]:
    """The catalogue timeline with a scenario's settings over it; also which (kind, key) the scenario set."""
    if settings is None:
        return base, set()
    by_scenario = {("family", k) for k in settings.families} | {("validity", k) for k in settings.validity}
    by_scenario |= {("after_expiry", k) for k in settings.after_expiry} | {("timing", k) for k in settings.timing}
    families = {
        fid: (f.model_copy(update={"mode": settings.families[fid]}) if fid in settings.families else f)
        for fid, f in base.families.items()
    }
    after = dict(base.after_expiry)
    for k, v in settings.after_expiry.items():
        after[k] = Renewal(mode=v) if isinstance(v, str) else v
    timing = base.timing
    table = {k: v for k, v in settings.timing.items() if k != "default"}
    timing = TimingTable(
        default=settings.timing.get("default", timing.default),
        documents=timing.documents | {k: v for k, v in table.items() if k in documents},
        programs=timing.programs | {k: v for k, v in table.items() if k not in documents},
    )
    return TimelineFile(
        validity=base.validity | settings.validity, after_expiry=after, families=families, timing=timing
    ), by_scenario


def _day_before(d: dt.date) -> dt.date:
    return d - dt.timedelta(days=1)


def _earlier(a: dt.date | None, b: dt.date) -> dt.date:
    return b if a is None or b < a else a


def resolve(
    programs: dict, tl: TimelineFile, by_scenario: set[tuple[str, str]] = frozenset()
) -> tuple[dict[str, dict], list[Assumption]]:
    """Effective changes per program id (``in_force_to``, ``schedule``, ``exclusive_group``, ``renew_overrides``,
    ``notes``) and the assumptions applied. ``programs``: id → compiled program (``.spec``, ``.document``)."""
    who = lambda kind, key: "scenario" if (kind, key) in by_scenario else "catalogue"  # noqa: E731
    changes: dict[str, dict] = {pid: {"notes": []} for pid in programs}
    out: list[Assumption] = []
    families_of: dict[str, list[str]] = {}
    for fid, fam in tl.families.items():
        for pid in fam.predecessors + fam.successors:
            families_of.setdefault(pid, []).append(fid)
    to = {pid: p.spec.in_force.to for pid, p in programs.items()}

    # 1. after expiry (by document, or by family for its successors)
    for key, ren in tl.after_expiry.items():
        fam = tl.families.get(key)
        members = fam.successors if fam else [pid for pid, p in programs.items() if p.document.number == key]
        setting = ren.mode + (f" until {ren.until}" if ren.until and ren.mode != "lapse" else "")
        out.append(Assumption("after_expiry", key, setting, "assumption", ren.note, who("after_expiry", key)))
        if ren.mode == "lapse":
            continue
        for pid in members:
            p = programs[pid]
            end = p.spec.in_force.to
            if end is None or end != p.document.in_force.to:
                continue
            if ren.mode == "renew":
                to[pid] = ren.until
                changes[pid]["notes"].append(
                    f"{key} renewed on the same terms: in force to {ren.until or 'open'} (was {end})"
                )
            else:  # a renewed copy from the day after expiry, with the overrides; the original keeps its dates
                changes[pid]["renewal"] = {
                    "from": end + dt.timedelta(days=1),
                    "to": ren.until,
                    "overrides": ren.overrides.get(pid, {}),
                }
                changes[pid]["notes"].append(
                    f"{key} renewed with changes: program {pid}{RENEWED} from "
                    f"{end + dt.timedelta(days=1)} to {ren.until or 'open'}"
                )
    # 2. validity of open-ended documents
    for number, val in tl.validity.items():
        setting = val.status + (f" from {val.from_}" if val.from_ else "")
        out.append(Assumption("validity", number, setting, val.basis, val.note, who("validity", number)))
        if val.status == "superseded":
            for pid, p in programs.items():
                if p.document.number == number:
                    to[pid] = _earlier(to[pid], _day_before(val.from_))  # type: ignore[arg-type]
                    changes[pid]["notes"].append(f"{number} superseded from {val.from_}: no new awards from then")
    # 3. families
    groups = {pid: group_names(p.spec.exclusive_group) for pid, p in programs.items()}
    for fid, fam in tl.families.items():
        link = fam.link.quote and f"「{fam.link.quote}」 ({fam.link.source}) " or ""
        out.append(
            Assumption(
                "family",
                fid,
                f"{fam.mode}: {', '.join(fam.predecessors)} → {', '.join(fam.successors)}",
                fam.link.basis,
                f"{link}{fam.link.note} Default because: {fam.reason}",
                who("family", fid),
            )
        )
        start = min(programs[s].spec.in_force.from_ for s in fam.successors)
        if fam.mode == "successor_replaces":
            for pid in fam.predecessors:
                to[pid] = _earlier(to[pid], _day_before(start))
                changes[pid]["notes"].append(f"family {fid}: replaced by {', '.join(fam.successors)} from {start}")
        elif fam.mode == "highest_only":
            old = {g for m in fam.predecessors + fam.successors for g in groups[m]}
            new = f"family:{fid}"
            for pid in programs:
                if pid in fam.predecessors or pid in fam.successors or set(groups[pid]) & old:
                    groups[pid] = [g for g in groups[pid] if g not in old] + [new]
                    changes[pid]["exclusive_group"] = groups[pid][0] if len(groups[pid]) == 1 else groups[pid]
                    changes[pid]["notes"].append(f"family {fid}: highest only (non-cumulation group {new})")
    for pid, p in programs.items():
        if to[pid] != p.spec.in_force.to:
            if to[pid] is not None and to[pid] < p.spec.in_force.from_:
                to[pid] = p.spec.in_force.from_ - dt.timedelta(days=1)
            changes[pid]["in_force_to"] = to[pid]
    # 4. timing
    out.append(
        Assumption(
            "timing",
            "default",
            _describe(tl.timing.default),
            tl.timing.default.basis,
            tl.timing.default.note,
            who("timing", "default"),
        )
    )
    for key, t in list(tl.timing.documents.items()) + list(tl.timing.programs.items()):
        out.append(
            Assumption(
                "timing",
                key,
                _describe(t),
                t.basis,
                (f"「{t.quote}」 " if t.quote else "") + t.note,
                who("timing", key),
            )
        )
    for pid, p in programs.items():
        src = (
            pid
            if pid in tl.timing.programs
            else p.document.number
            if p.document.number in tl.timing.documents
            else "default"
        )
        t = tl.timing.programs.get(pid) or tl.timing.documents.get(p.document.number) or tl.timing.default
        sched = with_timing(p.spec.schedule, t.lag, t.instalments)
        if sched != p.spec.schedule:
            changes[pid]["schedule"] = sched
            changes[pid]["notes"].append(f"timing ({src}): {_describe(t)} [{t.basis}]")
    return {pid: c for pid, c in changes.items() if len(c) > 1 or c["notes"]}, out


def _describe(t: Timing) -> str:
    s = f"lag {t.lag}" if t.lag is not None else "lag as the program"
    return s + (f", instalments {'/'.join(f'{f:.0%}' for f in t.instalments)}" if t.instalments else "")
