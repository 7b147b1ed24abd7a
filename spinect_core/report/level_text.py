"""How sure the level is, in words: one wording for the report, the app and the CLI.

The level identification (:mod:`spinect_core.anatomy.counting`) produces a
:class:`~spinect_core.anatomy.counting.LevelEvidence` with a ``confidence`` of ``"high"``,
``"moderate"`` or ``"low"``. A plan may only *name* its level "L5/S1" plainly when that level is
established: high confidence, or levels named by per-level instance labels (no count was needed;
then there is no evidence record). Otherwise every title says "the level identified as L5/S1" with
the confidence next to it, and the reasons are shown, so a wrong-level plan never reads as a
confident L5/S1 plan "clear of nerves and dura".

:func:`level_status` turns the evidence (the record, its ``to_dict()``, or None) into a
:class:`LevelStatus` holding every phrase; :func:`level_status_from_plan` reads a ``plan.json``
document (``anatomy.level_evidence`` and ``anatomy.source``). :func:`refusal_lines` words a
refused scan (an :class:`~spinect_core.errors.AnatomyError`, whose ``evidence`` says where the
scan ends). :func:`plan_summary_lines` is the one console summary of a plan (``spinect plan``,
``spinect demo`` and ``spinect-app --plan`` print it): the level first, then per side the windows
at their plateau views, the roots and the needle. Plain strings only: no HTML, no Qt.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from spinect_core.vocabulary import WINDOW_KINDS

__all__ = ["CONFIDENCES", "LevelStatus", "level_status", "level_status_from_plan",
           "evidence_dict", "refusal_lines", "summary_lines", "plan_summary_lines"]

#: The confidences of :class:`~spinect_core.anatomy.counting.LevelEvidence`, surest first.
CONFIDENCES = ("high", "moderate", "low")

_COUNTED_FROM = {
    "sacrum+ribs": "counted up from the sacrum and checked against the rib count",
    "sacrum": "counted up from the sacrum; no rib count to check it against",
    "ribs": "counted down from the last rib-bearing vertebra, T12, only",
    "instances": "named by the per-level instance labels",
    "none": "not counted",
}

_ADVICE = {
    "moderate": "check the count: confirm that this is L5/S1 on a full-spine view or a sagittal "
                "localiser before injecting",
    "low": "the level may be wrong: confirm the level count on a full-spine view before using "
           "this plan",
    None: "the plan does not record how the level was established: confirm that this is L5/S1 "
          "on a full-spine view before injecting",
}


def evidence_dict(evidence: Any) -> dict[str, Any] | None:
    """The evidence as a plain dict: a ``LevelEvidence`` (its ``to_dict()``), a mapping (the
    ``plan.json`` block) or None."""
    if evidence is None:
        return None
    if isinstance(evidence, Mapping):
        return dict(evidence)
    to_dict = getattr(evidence, "to_dict", None)
    if callable(to_dict):
        return dict(to_dict())
    raise TypeError(f"not a level evidence record: {type(evidence).__name__}")


@dataclass(frozen=True)
class LevelStatus:
    """How sure the plan's level is, with every phrase the displays use.

    Attributes
    ----------
    established : bool
        "L5/S1" may be named plainly (high confidence, or named by instance labels).
    confidence : str or None
        ``"high"``, ``"moderate"``, ``"low"``; None when no evidence record exists.
    counted_from : str
        How the level was found, in words (``"counted up from the sacrum; ..."``).
    sentence : str
        ``"L5/S1 established with high confidence"`` or ``"Level identified as L5/S1 with
        moderate confidence"`` (the report's box heading and the CLI's first line).
    level_name : str
        ``"L5/S1"`` when established, else ``"the level identified as L5/S1 (moderate
        confidence)"``: what titles call the level.
    headline : str
        The app's line: ``"L5/S1 established with high confidence"`` or ``"Level identified as
        L5/S1 (moderate confidence): check the count"``.
    advice : str
        What to do when not established (empty otherwise).
    reasons, warnings : tuple of str
        The evidence's reasons (what set the confidence) and warnings (transitional anatomy).
    lumbar_count : int or None
        Lumbar vertebrae between T12 and the sacrum when both were in view.
    """

    established: bool
    confidence: str | None
    counted_from: str
    sentence: str
    level_name: str
    headline: str
    advice: str = ""
    reasons: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    lumbar_count: int | None = None

    def plan_title(self, what: str = "plan", *, capital: bool = True) -> str:
        """``"L5/S1 plan"`` when established, else ``"Plan at the level identified as L5/S1
        (moderate confidence)"`` (``capital=False``: ``"plan at ..."``)."""
        if self.established:
            return f"L5/S1 {what}"
        head = f"{what[:1].upper()}{what[1:]}" if capital else what
        return f"{head} at {self.level_name}"

    def side_label(self) -> str:
        """What a side's section names its level: ``"L5/S1"``, or ``"level identified as L5/S1,
        moderate confidence"``."""
        if self.established:
            return "L5/S1"
        return f"level identified as L5/S1, {self.confidence or 'unrecorded'} confidence"

    def qualifier(self) -> str:
        """Words to put after a verdict such as "clear of nerves and dura": empty when
        established, else ``" at the level identified as L5/S1 (moderate confidence: check the
        count)"``."""
        if self.established:
            return ""
        return f" at the level identified as L5/S1 ({self._short()})"

    def _short(self) -> str:
        if self.confidence is None:
            return "confidence not recorded: confirm the level"
        if self.confidence == "moderate":
            return "moderate confidence: check the count"
        return f"{self.confidence} confidence: confirm the level"


def level_status(evidence: Any, *, anatomy_source: str = "") -> LevelStatus:
    """Words for the level evidence of a plan.

    Parameters
    ----------
    evidence : LevelEvidence, mapping or None
        The record, its ``to_dict()`` (``plan.json`` ``anatomy.level_evidence``), or None.
    anatomy_source : str
        ``LumbosacralAnatomy.source``: ``"instances"`` when per-level instance labels named the
        levels (no evidence record: L5/S1 is taken as established by the labels).

    Returns
    -------
    LevelStatus
    """
    ev = evidence_dict(evidence)
    if ev is None:
        if anatomy_source == "instances":
            how = _COUNTED_FROM["instances"]
            return LevelStatus(established=True, confidence=None, counted_from=how,
                               sentence="L5/S1 named by the per-level instance labels",
                               level_name="L5/S1",
                               headline="L5/S1 named by the per-level instance labels")
        return LevelStatus(
            established=False, confidence=None, counted_from="not recorded",
            sentence="L5/S1 identified; how sure is not recorded",
            level_name="the level identified as L5/S1 (confidence not recorded)",
            headline="Level identified as L5/S1 (confidence not recorded): check the count",
            advice=_ADVICE[None])
    confidence = str(ev.get("confidence") or "low")
    if confidence not in CONFIDENCES:
        confidence = "low"   # an unknown word never reads as established
    counted = str(ev.get("counted_from") or "none")
    how = _COUNTED_FROM.get(counted, counted)
    reasons = tuple(str(r) for r in ev.get("reasons") or ())
    warnings = tuple(str(w) for w in ev.get("warnings") or ())
    lumbar = ev.get("lumbar_count")
    # Only a high confidence "establishes" the level; the others name it as identified.
    sentence = (f"L5/S1 established with {confidence} confidence" if confidence == "high"
                else f"Level identified as L5/S1 with {confidence} confidence")
    if confidence == "high":
        return LevelStatus(established=True, confidence=confidence, counted_from=how,
                           sentence=sentence, level_name="L5/S1", headline=sentence,
                           reasons=reasons, warnings=warnings, lumbar_count=lumbar)
    name = f"the level identified as L5/S1 ({confidence} confidence)"
    tail = "check the count" if confidence == "moderate" else "confirm the level"
    return LevelStatus(established=False, confidence=confidence, counted_from=how,
                       sentence=sentence, level_name=name,
                       headline=f"Level identified as L5/S1 ({confidence} confidence): {tail}",
                       advice=_ADVICE[confidence], reasons=reasons, warnings=warnings,
                       lumbar_count=lumbar)


def level_status_from_plan(doc: Mapping[str, Any]) -> LevelStatus:
    """:func:`level_status` of a ``plan.json`` document (``anatomy.level_evidence`` and
    ``anatomy.source``; an older document without them is "not recorded")."""
    anat = doc.get("anatomy") or {}
    return level_status(anat.get("level_evidence"), anatomy_source=str(anat.get("source") or ""))


def summary_lines(status: LevelStatus) -> list[str]:
    """Console lines: the confidence first, then (when not established) what to do and why."""
    lines = [f"level: {status.sentence} ({status.counted_from})"]
    if not status.established:
        lines.append(f"level: {status.advice}")
        lines += [f"level:   - {r}" for r in status.reasons]
    return lines


def refusal_lines(message: str, evidence: Any = None) -> list[str]:
    """A refused plan in words: the refusal's message and, when the evidence knows it and the
    message does not say it, where the scan ends.

    Parameters
    ----------
    message : str
        The :class:`~spinect_core.errors.AnatomyError`'s one-line message.
    evidence : LevelEvidence, mapping or None
        The error's ``evidence`` attribute (set when the count refused the scan).
    """
    lines = [message]
    ev = evidence_dict(evidence) or {}
    last = ev.get("last_level")
    if last and last != "?" and "scan ends" not in message:
        lines.append(f"The scan ends at {last} (the lowest vertebra in view, "
                     f"{_COUNTED_FROM.get(str(ev.get('counted_from')), 'by the count')}).")
    return lines


#: Root names of ``plan.json``'s ``sides.<side>.roots``, in words.
_ROOT_WORDS = {"exiting_l5": "exiting L5", "exiting_l4": "exiting L4",
               "traversing_s1": "traversing S1"}


def plan_summary_lines(plan: Any) -> list[str]:
    """The plan in a few console lines: how sure the level is (first), then per side each
    window's plateau view (area, C-arm angles, local angles, a search-edge note), the roots when
    recorded, and the needle (length, window, nerve clearance, safe or why not).

    Parameters
    ----------
    plan : Plan or mapping
        A :class:`~spinect_core.planning.plan.Plan` or its ``plan.json`` document
        (``Plan.to_dict()``, or the file as written); only ``anatomy`` and ``sides`` are read.

    Returns
    -------
    list of str
        One line each, no trailing newline; callers add their own prefix.
    """
    doc: Mapping[str, Any] = plan if isinstance(plan, Mapping) else plan.to_dict()
    lines = summary_lines(level_status_from_plan(doc))
    for side, sp in doc["sides"].items():
        for kind in WINDOW_KINDS:
            w = sp[kind]
            if not w["found"]:
                lines.append(f"{side:5s} {kind:6s}: not found ({w['reason']})")
                continue
            v = w["plateau_view"]
            lines.append(f"{side:5s} {kind:6s}: {v['area_mm2'] or 0.0:6.1f} mm^2 at C-arm "
                         f"{v['carm']['description']} (local alpha {v['alpha_deg']:.1f}, beta "
                         f"{v['beta_deg']:.1f} deg)")
            if w.get("search_edge_note"):
                lines.append(f"{'':14s}note: {w['search_edge_note']}")
        roots = sp.get("roots")
        if roots:
            lines.append(f"{side:5s} roots : " + ", ".join(
                f"{_ROOT_WORDS.get(n, n)} " + ("not found" if r is None else
                                               f"{r['source']} (confidence {r['confidence']:.2f})")
                for n, r in roots.items()))
        t = sp["trajectory"]
        if t is None:
            lines.append(f"{side:5s} needle: none ({sp['trajectory_reason']})")
        else:
            state = "safe" if t["safe"] else f"NOT safe: {t['reason']}"
            clearance = t["min_nerve_clearance_mm"]
            lines.append(f"{side:5s} needle via the {t['window']} window: {t['length_mm']:.1f} mm, "
                         f"nerve clearance {'n/a' if clearance is None else f'{clearance:.1f} mm'}, "
                         f"{state}")
    return lines
