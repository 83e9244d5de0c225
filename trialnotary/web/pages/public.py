"""Pages anyone may open: the home page, the reviewer's verify page, the look-up by hash,
and one registration by its id with its printable receipt and receipt PDF."""

from __future__ import annotations

import io

from flask import (
    Response,
    abort,
    flash,
    g,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)

from trialnotary.filenames import receipt_filename
from trialnotary.notary import overview, registrations, signoffs
from trialnotary.notary.states import RegistrationStatus
from trialnotary.people import access
from trialnotary.people.access import requires
from trialnotary.proof import facts
from trialnotary.proof.facts import SIGN_OFF_KIND, SIGN_OFF_MEANINGS, chain_label
from trialnotary.validation import ValidationError
from trialnotary.web.auth import current_principal
from trialnotary.web.context import (
    db_session,
    page_default_rpc,
    receipt_notary,
    served_identity,
    services,
)
from trialnotary.web.documents import verifier_page as verifier_page_document
from trialnotary.web.documents.qr import qr_svg
from trialnotary.web.documents.receipt_pdf import receipt_pdf
from trialnotary.web.pages.blueprint import KIND_LABELS, bp, expected_wait
from trialnotary.web.responses import download, verifier_page_html
from trialnotary.web.security import anonymous_lookup_wait


@bp.get("/")
@requires(access.PUBLIC)
def index():
    return render_template("index.html")


@bp.get("/verify")
@requires(access.PUBLIC)
def verify():
    """The reviewer's page: every check runs in the browser, which asks a chain node
    directly; the page needs nothing from us but itself."""
    g.csp_connect = "'self' http: https:"
    settings = services().settings
    return render_template("verify.html", standalone=False,
                           default_rpc=page_default_rpc(settings), chain_id=settings.chain_id,
                           registration_id=request.args.get("id", ""),
                           proof_facts=facts.document(), notary_url=receipt_notary()["url"],
                           identity_url=url_for("web.identity_document"),
                           identity_download_url=url_for("web.identity_document", download=1))


@bp.get("/verify/page")
@requires(access.PUBLIC)
def verifier_page():
    """The verify page as one self-contained file, to save: it verifies this notary's
    receipts opened from disk, with no server, after the notary is gone."""
    return download(verifier_page_html(), "text/html", verifier_page_document.FILENAME)


#: The name a saved identity document gets.
IDENTITY_DOWNLOAD = "trialnotary-identity.json"


@bp.get(facts.IDENTITY_PATH)
@requires(access.PUBLIC)
def identity_document():
    """The notary's identity (docs/receipt.md, "The notary's identity"): readable from any
    origin, so that a verifier page elsewhere can pin it; ``?download=1`` saves it."""
    response = Response(served_identity(), mimetype="application/json")
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.cache_control.no_cache = True
    if request.args.get("download") == "1":
        response.headers["Content-Disposition"] = f"attachment; filename={IDENTITY_DOWNLOAD}"
    return response


@bp.get("/lookup")
@requires(access.PUBLIC)
def lookup():
    sha256, found, error = request.args.get("sha256", "").strip(), None, None
    if sha256:
        wait = anonymous_lookup_wait(services().settings, current_principal().signed_in)
        if wait is not None:
            error = f"Too many look-ups from your address. Try again in {wait} seconds."
            return render_template("lookup.html", sha256=sha256, found=None, error=error), \
                429, {"Retry-After": str(wait)}
        try:
            found = registrations.find_by_sha256(db_session(), sha256)
        except ValidationError as exc:
            error = f"A SHA-256 {exc.message}."
    return render_template("lookup.html", sha256=sha256, found=found, error=error), \
        400 if error else 200


def registration_view(registration_id: str) -> dict:
    view = registrations.status_of(db_session(), registration_id)
    if view is None:
        abort(404)
    return view


def public_url(registration_id: str) -> str:
    base = services().settings.public_url or request.url_root.rstrip("/")
    return base + url_for("web.registration", registration_id=registration_id)


@bp.get("/r/<registration_id>")
@requires(access.PUBLIC)
def registration(registration_id: str):
    """One registration, by its unguessable id (a capability URL): status, record, anchor,
    receipt, sign-offs. Anyone holding the id may see it, as with the API."""
    return registration_page(registration_view(registration_id))


def registration_page(view: dict, *, sign_error: str | None = None, status: int = 200):
    """The registration's page; ``sign_error``: why signing it was refused (the form
    shows it, with ``status``)."""
    session = db_session()
    corrected_by = registrations.corrections_of(session, view["id"])
    principal = current_principal()
    record = view["record"]
    can_correct = access.can(principal, access.REGISTER, site=record["site"]) \
        and record["kind"] != SIGN_OFF_KIND
    # Reasons are free text for the people of the trial, not for whoever holds the id.
    show_reasons = access.can(principal, access.READ_SITE, site=record["site"]) or \
        access.can(principal, access.READ_TRIAL, trial=record["trial"])
    reason = registrations.reason_of(session, view["id"]) if record["supersedes"] else None
    each_anchor = overview.anchor_states(session, view["batch"]["id"]) if view["batch"] else []
    signed = None if "signOff" not in record else \
        registrations.status_of(session, record["signOff"]["signs"])
    return render_template("registration.html", view=view, corrected_by=corrected_by,
                           each_anchor=each_anchor, reason=reason, can_correct=can_correct,
                           status=view["status"],
                           wait=expected_wait()
                           if view["status"] != RegistrationStatus.CONFIRMED else None,
                           show_reasons=show_reasons,
                           qr=qr_svg(public_url(view["id"])),
                           public_url=public_url(view["id"]), kinds=KIND_LABELS,
                           explorer=_explorer(view),
                           sign_offs=_sign_offs(view["id"]),
                           signed=signed, meanings=SIGN_OFF_MEANINGS,
                           can_sign=record["kind"] != SIGN_OFF_KIND
                           and signoffs.may_sign(principal, record),
                           sign_error=sign_error), status


def _sign_offs(registration_id: str) -> list[dict]:
    """The registration's sign-offs (status views), oldest first."""
    return registrations.sign_offs_of(db_session(), [registration_id]).get(registration_id, [])


def _explorer(view: dict) -> str | None:
    anchor = view.get("anchor") or {}
    return overview.explorer_url(anchor.get("chainId"), anchor.get("txHash"))


def _receipt_or_404(registration_id: str) -> tuple[dict, dict]:
    view = registration_view(registration_id)
    found = registrations.receipt_of(db_session(), view["id"], receipt_notary())
    return view, (found.receipt if found else None)


@bp.get("/r/<registration_id>/print")
@requires(access.PUBLIC)
def registration_print(registration_id: str):
    view, receipt = _receipt_or_404(registration_id)
    return render_template("receipt_print.html", view=view, receipt=receipt,
                           sign_offs=_sign_offs(view["id"]),
                           qr=qr_svg(public_url(view["id"])),
                           public_url=public_url(view["id"]), explorer=_explorer(view),
                           chain_label=_chain_label(receipt))


@bp.get("/r/<registration_id>/receipt.pdf")
@requires(access.PUBLIC)
def registration_pdf(registration_id: str):
    view, receipt = _receipt_or_404(registration_id)
    if receipt is None:
        flash("The receipt exists once the anchor is confirmed; this one is "
              f"{view['status']}.", "info")
        return redirect(url_for("web.registration", registration_id=view["id"]))
    pdf = receipt_pdf(receipt, public_url=public_url(view["id"]), explorer_url=_explorer(view),
                      sign_offs=[sign_off["record"] for sign_off in _sign_offs(view["id"])])
    name = receipt_filename(view["record"]["trial"], view["record"]["dataset"],
                            view["id"]).removesuffix(".json") + ".pdf"
    return send_file(io.BytesIO(pdf), mimetype="application/pdf", download_name=name)


def _chain_label(receipt: dict | None) -> str | None:
    if not receipt:
        return None
    anchor = receipt["anchors"][0]
    return chain_label(anchor["chainId"], anchor["chain"])
