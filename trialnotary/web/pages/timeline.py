"""A trial's proven timeline (docs/api.md, "Timeline"): the sponsors' page, its exports
(JSON as ``trialnotary timeline --json`` writes it, a printable HTML file, a PDF), the form
that publishes it, and the public, citable page ``/t/<trial>`` with its receipts."""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from werkzeug.exceptions import TooManyRequests

from trialnotary.db import utcnow, write_session
from trialnotary.filenames import safe_filename
from trialnotary.notary import overview, publication
from trialnotary.notary import timeline as trial_timelines
from trialnotary.notary.chain import ChainClient
from trialnotary.people import access
from trialnotary.people.access import requires
from trialnotary.proof.receipt import rfc3339_ms
from trialnotary.proof.timeline import duration
from trialnotary.proof.verify.report import status_marks
from trialnotary.validation import KINDS
from trialnotary.web import query
from trialnotary.web.auth import current_principal
from trialnotary.web.context import db_session, receipt_notary, services
from trialnotary.web.documents.timeline_chart import chart
from trialnotary.web.documents.timeline_pdf import timeline_pdf
from trialnotary.web.pages.blueprint import KIND_LABELS, bp, page_number
from trialnotary.web.pages.trials import chain_text, trial_or_404
from trialnotary.web.responses import download, send_bundle
from trialnotary.web.security import anonymous_lookup_wait

#: Seconds the page waits for the notary's node for a ``notBefore`` block's time.
BLOCK_TIME_TIMEOUT = 2.0


def _filters() -> dict:
    return {"kind": query.choice("kind", KINDS), "site": query.site_id("site")}


def _block_chain() -> ChainClient | None:
    """The notary's chain client with a short timeout, one per app."""
    extensions = current_app.extensions
    if "trialnotary.timeline_chain" not in extensions:
        try:
            extensions["trialnotary.timeline_chain"] = ChainClient(
                services().settings, timeout=BLOCK_TIME_TIMEOUT)
        except StopIteration:  # no EVM anchor configured
            extensions["trialnotary.timeline_chain"] = None
    return extensions["trialnotary.timeline_chain"]


def _shown(found, *, entries, everything, **extra) -> dict:
    """What the timeline templates show: the chart and rows of ``entries``, the checks of
    ``everything`` (a ``TrialTimeline``)."""
    return {"trial": found, "entries": entries, "tl": everything,
            "checks": everything.timeline.checks, "marks": status_marks(),
            "chart": chart(entries, KIND_LABELS), "kinds": KIND_LABELS,
            "duration": duration, "made_after": trial_timelines.made_after(_block_chain(),
                                                                           entries),
            "signatures": everything.signatures(entries), **extra}


@bp.get("/trials/<path:trial>/timeline")
@requires(access.READ_TRIAL, "trial")
def trial_timeline(trial: str):
    found = trial_or_404(trial)
    session = db_session()
    everything = trial_timelines.checked_timeline(session, found.registry_id, _block_chain())
    filters = _filters()
    listed = everything.listed(**filters)
    page = page_number()
    return render_template(
        "timeline.html", **_shown(found, entries=trial_timelines.page_of(listed, page),
                                  everything=everything),
        filters=filters, page=page, total=len(listed), page_size=trial_timelines.PAGE_SIZE,
        published=publication.choice_of(publication.find(session, found.registry_id)),
        can_publish=access.can(current_principal(), access.READ_TRIAL,
                               trial=found.registry_id))


@bp.get("/trials/<path:trial>/timeline.<fmt>")
@requires(access.READ_TRIAL, "trial")
def trial_timeline_file(trial: str, fmt: str):
    """The timeline (narrowed by ``kind`` and ``site`` where given, every check judged
    over all) as JSON, a self-standing HTML page or a PDF."""
    found = trial_or_404(trial)
    if fmt not in ("json", "html", "pdf"):
        abort(404)
    everything = trial_timelines.checked_timeline(db_session(), found.registry_id,
                                                  _block_chain(), limit=None)
    filters = _filters()
    entries = everything.listed(**filters)
    generated_at = rfc3339_ms(utcnow())
    name = safe_filename(f"{found.registry_id}_timeline_{generated_at[:10]}")
    if fmt == "json":
        made_after = trial_timelines.made_after(_block_chain(), entries, limit=None)
        body = everything.json_text(
            entries, made_after, generatedAt=generated_at,
            filters={key: value for key, value in filters.items() if value})
        return download(body, "application/json", f"{name}.json")
    if fmt == "html":
        return download(render_template(
            "timeline_export.html", **_shown(found, entries=entries, everything=everything),
            filters=filters, generated_at=generated_at, chain=chain_text()),
            "text/html", f"{name}.html")
    return download(timeline_pdf(trial=found.registry_id, title=found.title,
                                 generated_at=generated_at, chain=chain_text(),
                                 timeline=everything, entries=entries, labels=KIND_LABELS),
                    "application/pdf", f"{name}.pdf")


@bp.post("/trials/<path:trial>/timeline/publication")
@requires(access.READ_TRIAL, "trial")
def publish_timeline(trial: str):
    """Publish the timeline at ``/t/<trial>`` with the kinds and options chosen, or take
    it off (``action=unpublish``)."""
    found = trial_or_404(trial)
    principal = current_principal()
    with write_session(services().engine) as session:
        if request.form.get("action") == "unpublish":
            done = publication.unpublish(session, found.registry_id, actor=principal.actor)
            message = "The public timeline is taken off." if done else "It was not published."
        else:
            kinds = [kind for kind in request.form.getlist("kinds") if kind in KINDS]
            choice = publication.Choice(tuple(kinds), request.form.get("show_sites") == "1",
                                        request.form.get("offer_receipts") == "1")
            try:
                publication.publish(session, found.registry_id, choice, actor=principal.actor,
                                    user_id=principal.user_id)
            except ValueError as exc:
                flash(str(exc), "error")
                return redirect(url_for("web.trial_timeline", trial=found.registry_id))
            message = "The timeline is published."
        session.commit()
    flash(message, "success")
    return redirect(url_for("web.trial_timeline", trial=found.registry_id))


#: What a published receipts zip's index leaves out: who registered (people's addresses),
#: and correction reasons and links, which may name what is not published.
_UNPUBLISHED = {"registeredBy": None, "reason": None, "supersededBy": None,
                "supersededReason": None}


def _published_or_404(trial: str):
    """The published timeline and the choice; 404 alike for an unknown trial and an
    unpublished one. Anonymous requests are rate-limited per address (429)."""
    wait = anonymous_lookup_wait(services().settings, current_principal().signed_in,
                                 scope="public-timeline")
    if wait is not None:
        raise TooManyRequests(f"Too many requests from your address. Try again in {wait} "
                              "seconds.", retry_after=wait)
    found = publication.public_timeline(db_session(), trial, _block_chain())
    if found is None:
        abort(404)
    return found


@bp.get("/t/<path:trial>")
@requires(access.PUBLIC)
def public_timeline(trial: str):
    published, choice = _published_or_404(trial)
    entries = published.timeline.entries
    page = page_number()
    return render_template(
        "public_timeline.html",
        **_shown(None, entries=trial_timelines.page_of(entries, page), everything=published),
        registry_id=published.trial, choice=choice, page=page, total=len(entries),
        page_size=trial_timelines.PAGE_SIZE)


@bp.get("/t/<path:trial>/receipts.zip")
@requires(access.PUBLIC)
def public_receipts(trial: str):
    """Every published receipt (when the sponsor offers them): those the public page
    shows, no other."""
    published, choice = _published_or_404(trial)
    if not choice.offer_receipts:
        abort(404)
    session = db_session()
    shown = publication.published_ids(published)
    rows = [{**row, **_UNPUBLISHED} for row in overview.report_rows(session, published.trial)
            if row["id"] in shown]
    receipts = overview.trial_receipts(session, published.trial, receipt_notary(),
                                       kinds=choice.kinds)
    return send_bundle(f"{published.trial}_published-receipts", trial=published.trial,
                       receipts=((name, receipt) for name, receipt in receipts
                                 if receipt["trialnotary"]["record"]["id"] in shown),
                       rows=rows)
