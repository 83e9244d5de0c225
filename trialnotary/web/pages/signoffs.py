"""Signing a registration on its page (docs/receipt.md, "Sign-offs"): the signer chooses a
meaning and re-enters their e-mail address and password; the notary registers the sign-off
(notary/signoffs.py). Signed-in people only, with the form's CSRF token: API tokens never
sign."""

from __future__ import annotations

from flask import abort, flash, redirect, request, url_for

from trialnotary.db import utcnow
from trialnotary.notary import beacon, signoffs
from trialnotary.notary.errors import (
    AlreadySigned,
    Forbidden,
    SigningThrottled,
    UnknownRegistration,
    WrongPassword,
)
from trialnotary.people import access
from trialnotary.people.access import requires
from trialnotary.validation import ValidationError
from trialnotary.web.auth import current_principal
from trialnotary.web.context import services
from trialnotary.web.pages.blueprint import bp
from trialnotary.web.pages.public import registration_page, registration_view


@bp.post("/r/<registration_id>/sign")
@requires(access.SIGNED_IN)
def sign_registration(registration_id: str):
    """Sign: a sign-off registered, or the page again with why not."""
    view = registration_view(registration_id)
    found = services()
    chain = found.chain
    try:
        record = signoffs.sign(found.engine, current_principal(), view["id"],
                               meaning=request.form.get("meaning", ""),
                               email=request.form.get("email", ""),
                               password=request.form.get("password", ""),
                               ip=request.remote_addr,
                               beacon=None if chain is None
                               else lambda: beacon.beacon(chain, not_after=utcnow()))
    except UnknownRegistration:
        abort(404)
    except Forbidden:
        abort(403)
    except SigningThrottled as exc:
        wait = max(1, int((exc.retry_at - utcnow()).total_seconds()) + 1)
        return registration_page(view, sign_error=f"Too many wrong passwords from your "
                                 f"address: nothing was signed. Try again in {wait} seconds.",
                                 status=429)
    except WrongPassword:
        return registration_page(view, sign_error="That e-mail address or password is not "
                                 "yours: nothing was signed.", status=400)
    except AlreadySigned as exc:
        return registration_page(view, sign_error=f"Not signed: {exc.message}.", status=409)
    except ValidationError as exc:
        return registration_page(view, sign_error=f"Not signed: {exc.message}.",
                                 status=400)
    flash(f"Signed as {record['signOff']['meaning']}: the sign-off is registered and will be "
          "anchored like any registration.", "success")
    return redirect(url_for("web.registration", registration_id=view["id"]))
