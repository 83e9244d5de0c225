"""A trial's proven timeline as a landscape A4 PDF: a title block, the pre-specification
checks, then one table line per registration in proven order (the audit report's tables),
each signed registration with its signatures' manifestations."""

from __future__ import annotations

from trialnotary.notary.timeline import TrialTimeline
from trialnotary.proof.timeline import SIGN_OFF, Check, Entry, duration
from trialnotary.web.documents.pdf import BOLD, SANS, Pdf, cjk_region, shorten
from trialnotary.web.documents.report_pdf import Column, draw_table, labelled_lines

_MARKS = {True: "holds", False: "FAILS", None: "n/a"}

_CHECKS = (
    Column("Check", 12, lambda c: _MARKS[c.ok]),
    Column("Rule", 60, lambda c: c.rule.statement + (f" (site {c.site})" if c.site else ""), 2),
    Column("Earlier: proven", 45, lambda c: _side(c.earlier), 2),
    Column("Later: proven", 45, lambda c: _side(c.later), 2),
    Column("Margin", 20, lambda c: None if c.margin_seconds is None else
           ("" if c.margin_seconds > 0 else "-") + duration(c.margin_seconds)),
    Column("Detail", 80, lambda c: c.detail, 3),
)


def _side(entry: Entry | None) -> str | None:
    if entry is None:
        return None
    return f"{entry.kind} {entry.field('dataset')}: {entry.proven_time or 'not proven'}"


def manifestation(sign_off: Entry) -> str:
    """A signature's manifestation (21 CFR Part 11 §11.50) and the sign-off's proven time."""
    field = sign_off.sign_off_field
    proven = (f"proven no later than {sign_off.proven_time}" if sign_off.proven_time
              else "not yet proven")
    return (f"{field('meaning')} by {field('name')} ({field('role')}), signed "
            f"{field('signedAt')} UTC, {proven}")


def _entries(labels: dict[str, str], reasons: dict[str, str],
             signatures: dict[str, list[Entry]]) -> tuple[Column, ...]:
    def version(entry: Entry) -> str | None:
        if entry.versions == 1 and not entry.field("supersedes"):
            return None
        reason = reasons.get(entry.id)
        return (f"v{entry.version} of {entry.versions}" + (" (final)" if entry.final else "")
                + (f": {reason}" if reason else ""))

    return (
        Column("Proven (no later than)", 30, lambda e: e.proven_time or
               f"not yet proven ({e.verified.state})", 2),
        Column("Submitted (claim)", 33, lambda e: e.field("submittedAt"), 2),
        Column("Kind", 25, lambda e: labels.get(e.kind, e.kind), 2),
        Column("Label", 40, lambda e: _label(e, signatures), 8),
        Column("Version", 45, version, 3),
        Column("Site", 18, lambda e: e.field("site"), 2),
        Column("SHA-256", 27, lambda e: shorten(e.field("sha256"), 16)),
        Column("Id", 27, lambda e: shorten(e.id, 13)),
    )


def _label(entry: Entry, signatures: dict[str, list[Entry]]) -> str | None:
    parts = [entry.field("dataset") or ""]
    if entry.kind == SIGN_OFF:
        parts.append(manifestation(entry))
    parts += [f"Signed: {manifestation(sign_off)}" for sign_off in signatures.get(entry.id, ())]
    return "; ".join(parts)


def timeline_pdf(*, trial: str, title: str | None, generated_at: str, chain: str,
                 timeline: TrialTimeline, entries: list[Entry],
                 labels: dict[str, str]) -> bytes:
    pdf = Pdf(orientation="L", margin=10, region=cjk_region(trial),
              footer=f"trialnotary proven timeline of {trial}, generated {generated_at} UTC")
    pdf.set_title(f"Proven timeline {trial}")
    pdf.add_page()
    _title(pdf, trial=trial, title=title, generated_at=generated_at, chain=chain,
           count=len(entries), checks=timeline.timeline.checks)
    draw_table(pdf, _CHECKS, list(timeline.timeline.checks), empty="No rule.")
    pdf.on_new_page = None
    pdf.set_y(pdf.get_y() + 6)
    draw_table(pdf, _entries(labels, timeline.reasons, timeline.signatures(entries)), entries,
               empty="No registration.")
    return bytes(pdf.output())


def _title(pdf: Pdf, *, trial, title, generated_at, chain, count, checks: list[Check]) -> None:
    left, width = pdf.l_margin, pdf.w - pdf.l_margin - pdf.r_margin
    pdf.use(BOLD, 16)
    pdf.put(left, pdf.get_y(), width, f"Proven timeline \u2014 {trial}")
    pdf.set_y(pdf.get_y() + 8)
    failed = sum(check.ok is False for check in checks)
    labelled_lines(pdf, (("Trial", trial, 1), ("Title", title, 2),
                         ("Generated", f"{generated_at} (UTC)", 1), ("Chain", chain, 1),
                         ("Registrations", str(count), 1),
                         ("Checks", f"{len(checks)}, {failed} failed", 1)))
    pdf.use(SANS, 7.5)
    pdf.set_text_color(70)
    pdf.put(left, pdf.get_y() + 1.5, width,
            "A proven time is a 'no later than': the earliest confirmed anchor of the "
            "registration's batch. Submitted is the notary's claim. The checks are judged over "
            "every registration of the trial (docs/verification.md, 'Was it pre-specified?').",
            max_lines=2, line_height=3.4)
    pdf.set_text_color(0)
    pdf.set_y(pdf.get_y() + 10)
