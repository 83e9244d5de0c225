"""The timeline drawn as an inline SVG (no script): one lane per kind, each proven entry a
dot at its proven time, each version chain one line through its versions, each sign-off
(on its own lane, the last) tied by a dashed line to the registration it signs. The page,
its HTML export and the public page draw the same chart from the same entries."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from trialnotary.proof.timeline import SIGN_OFF, Entry
from trialnotary.validation import KINDS

WIDTH, LANE, LEFT, RIGHT, TOP = 1000, 34, 170, 20, 24


def _seconds(proven_time: str) -> float:
    return datetime.fromisoformat(proven_time.replace("Z", "+00:00")).timestamp()


def _lane_order(kind: str) -> tuple[bool, int]:
    """The kinds' order, the sign-offs' lane last (under what they sign)."""
    return kind == SIGN_OFF, KINDS.index(kind) if kind in KINDS else len(KINDS)


def chart(entries: Iterable[Entry], labels: dict[str, str]) -> dict | None:
    """Lanes, dots and chain lines of the proven entries in SVG user units (``None``
    when none is proven): ``{"width", "height", "lanes": [{"label", "y"}], "dots": [{"x",
    "y", "title", "final"}], "lines": ["x,y x,y …"], "ties": [{"x1", "y1", "x2", "y2"}]
    (sign-off to signed, both drawn), "start", "end"}``."""
    proven = [entry for entry in entries if entry.proven_time is not None]
    if not proven:
        return None
    kinds = sorted({entry.kind for entry in proven}, key=_lane_order)
    lane_y = {kind: TOP + LANE * index + LANE // 2 for index, kind in enumerate(kinds)}
    first, last = _seconds(proven[0].proven_time), _seconds(proven[-1].proven_time)
    span = (last - first) or 1.0
    inner = WIDTH - LEFT - RIGHT

    def x_of(entry: Entry) -> float:
        if last == first:
            return LEFT + inner / 2
        return round(LEFT + inner * (_seconds(entry.proven_time) - first) / span, 1)

    dots, chains, placed = [], {}, {}
    for entry in proven:
        x, y = x_of(entry), lane_y[entry.kind]
        placed[entry.id] = (x, y)
        dots.append({"x": x, "y": y, "final": entry.final,
                     "title": f"{labels.get(entry.kind, entry.kind)}: {_title(entry)}, "
                              f"proven {entry.proven_time}"})
        if entry.versions > 1:
            chains.setdefault(entry.chain, []).append(f"{x},{y}")
    ties = [{"x1": placed[entry.id][0], "y1": placed[entry.id][1],
             "x2": placed[entry.signs][0], "y2": placed[entry.signs][1]}
            for entry in proven if entry.kind == SIGN_OFF and entry.signs in placed]
    return {"width": WIDTH, "height": TOP + LANE * len(kinds) + 10,
            "lanes": [{"label": labels.get(kind, kind), "y": lane_y[kind]} for kind in kinds],
            "dots": dots, "lines": [" ".join(points) for points in chains.values()
                                    if len(points) > 1], "ties": ties,
            "left": LEFT, "right": WIDTH - RIGHT, "bottom": TOP + LANE * len(kinds),
            "start": proven[0].proven_time, "end": proven[-1].proven_time}


def _title(entry: Entry) -> str:
    if entry.kind == SIGN_OFF:
        return (f"{entry.field('dataset')}, signed by {entry.sign_off_field('name')} "
                f"({entry.sign_off_field('role')})")
    version = f" v{entry.version} of {entry.versions}" if entry.versions > 1 else ""
    return f"{entry.field('dataset')}{version}"
