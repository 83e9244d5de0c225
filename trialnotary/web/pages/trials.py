"""The sponsors' (and admins') pages of trials: the list, a trial's dashboard, its
receipts zip and its audit report as a page, CSV, JSON or PDF."""

from __future__ import annotations

import json
import re

from flask import abort, render_template

from trialnotary.db import utcnow
from trialnotary.filenames import safe_filename
from trialnotary.notary import overview
from trialnotary.people import access, sites
from trialnotary.people.access import requires
from trialnotary.proof.facts import chain_label
from trialnotary.proof.receipt import rfc3339_ms
from trialnotary.validation import KINDS
from trialnotary.web import query
from trialnotary.web.auth import current_principal
from trialnotary.web.context import db_session, services
from trialnotary.web.documents.report_pdf import report_pdf
from trialnotary.web.documents.tables import report_csv, report_json
from trialnotary.web.pages.blueprint import KIND_LABELS, STATUSES, bp, page_number
from trialnotary.web.responses import download, trial_bundle_response, wants_bom


@bp.get("/trials")
@requires(access.READ_TRIAL)
def trials():
    return render_template("trials.html",
                           trials=overview.visible_trials(db_session(), current_principal()))


def trial_or_404(trial: str):
    found = sites.find_trial(db_session(), trial)
    if found is None:
        abort(404)
    return found


@bp.get("/trials/<path:trial>")
@requires(access.READ_TRIAL, "trial")
def trial_dashboard(trial: str):
    found = trial_or_404(trial)
    search = query.text("q") or ""
    filters = overview.Filters(trial=found.registry_id, site=query.site_id("site"),
                               kind=query.choice("kind", KINDS), label=search or None,
                               status=query.choice("status", STATUSES))
    if re.fullmatch(r"[0-9a-fA-F]{64}", search):
        filters = overview.Filters(trial=found.registry_id, sha256=search)
    session = db_session()
    page = page_number()
    rows, total = overview.list_registrations(session, current_principal(), filters, page=page)
    return render_template("trial.html", trial=found,
                           stats=overview.trial_dashboard(session, found.registry_id),
                           rows=rows, total=total, page=page,
                           page_size=overview.PAGE_SIZE, search=search, kinds=KIND_LABELS,
                           statuses=STATUSES, filters=filters)


@bp.get("/trials/<path:trial>/receipts.zip")
@requires(access.READ_TRIAL, "trial")
def trial_bundle(trial: str):
    return trial_bundle_response(trial_or_404(trial).registry_id)


@bp.get("/trials/<path:trial>/report")
@requires(access.READ_TRIAL, "trial")
def trial_report(trial: str):
    found = trial_or_404(trial)
    rows = overview.report_rows(db_session(), found.registry_id)
    return render_template("report.html", trial=found, rows=rows,
                           generated_at=rfc3339_ms(utcnow()), kinds=KIND_LABELS)


@bp.get("/trials/<path:trial>/report.<fmt>")
@requires(access.READ_TRIAL, "trial")
def trial_report_file(trial: str, fmt: str):
    found = trial_or_404(trial)
    rows = overview.report_rows(db_session(), found.registry_id)
    generated_at = rfc3339_ms(utcnow())
    name = safe_filename(f"{found.registry_id}_audit-report_{generated_at[:10]}")
    if fmt == "csv":
        return download(report_csv(rows, bom=wants_bom()), "text/csv", f"{name}.csv")
    if fmt == "json":
        return download(json.dumps(report_json(
            trial=found.registry_id, title=found.title, generated_at=generated_at, rows=rows),
            indent=2), "application/json", f"{name}.json")
    if fmt == "pdf":
        return download(report_pdf(
            trial=found.registry_id, title=found.title, generated_at=generated_at,
            chain=chain_text(), rows=rows), "application/pdf", f"{name}.pdf")
    abort(404)


def chain_text() -> str:
    settings = services().settings
    return chain_label(settings.chain_id)
