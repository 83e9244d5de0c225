"""The timeline drawn as an inline SVG (no script): one lane per kind, each proven entry a
dot at its proven time, each version chain one line through its versions. The page, its
HTML export and the public page draw the same chart from the same entries."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from trialnotary.proof.timeline import Entry
from trialnotary.validation import KINDS

WIDTH, LANE, LEFT, RIGHT, TOP = 1000, 34, 170, 20, 24


def _seconds(proven_time: str) -> float:
    return datetime.fromisoformat(proven_time.replace("Z", "+00:00")).timestamp()


def chart(entries: Iterable[Entry], labels: dict[str, str]) -> dict | None:
    """Lanes, dots and chain lines of the proven entries in SVG user units (``None``
    when none is proven): ``{"width", "height", "lanes": [{"label", "y"}], "dots": [{"x",
    "y", "title", "final"}], "lines": ["x,y x,y …"], "start", "end"}``."""
    proven = [entry for entry in entries if entry.proven_time is not None]
    if not proven:
        return None
    kinds = sorted({entry.kind for entry in proven},
                   key=lambda kind: KINDS.index(kind) if kind in KINDS else len(KINDS))
    lane_y = {kind: TOP + LANE * index + LANE // 2 for index, kind in enumerate(kinds)}
    first, last = _seconds(proven[0].proven_time), _seconds(proven[-1].proven_time)
    span = (last - first) or 1.0
    inner = WIDTH - LEFT - RIGHT

    def x_of(entry: Entry) -> float:
        if last == first:
            return LEFT + inner / 2
        return round(LEFT + inner * (_seconds(entry.proven_time) - first) / span, 1)

    dots, chains = [], {}
    for entry in proven:
        x, y = x_of(entry), lane_y[entry.kind]
        version = f" v{entry.version} of {entry.versions}" if entry.versions > 1 else ""
        dots.append({"x": x, "y": y, "final": entry.final,
                     "title": f"{labels.get(entry.kind, entry.kind)}: "
                              f"{entry.field('dataset')}{version}, proven {entry.proven_time}"})
        if entry.versions > 1:
            chains.setdefault(entry.chain, []).append(f"{x},{y}")
    return {"width": WIDTH, "height": TOP + LANE * len(kinds) + 10,
            "lanes": [{"label": labels.get(kind, kind), "y": lane_y[kind]} for kind in kinds],
            "dots": dots, "lines": [" ".join(points) for points in chains.values()
                                    if len(points) > 1],
            "left": LEFT, "right": WIDTH - RIGHT, "bottom": TOP + LANE * len(kinds),
            "start": proven[0].proven_time, "end": proven[-1].proven_time}
