"""Admin pages: trials, sites and enrolment, people and their grants, tokens, sign-ins and
lock-outs, batches and anchors, the anchoring account, and the audit trail.

Every page requires the admin role; every change goes through the domain modules, which
write the audit trail in the same transaction.
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from flask import (
    Blueprint,
    Flask,
    abort,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from sqlmodel import select

from trialnotary.db import utcnow, write_session
from trialnotary.notary import anchoring, audit_check, batches
from trialnotary.notary.models import Anchor, Batch
from trialnotary.notary.overview import batch_detail
from trialnotary.people import access, accounts, audit, sites
from trialnotary.people.access import requires
from trialnotary.people.models import Enrolment, Site, Trial, User
from trialnotary.proof.receipt import rfc3339_ms
from trialnotary.validation import ValidationError
from trialnotary.web import query
from trialnotary.web.auth import current_principal, show_after_redirect, take_shown_once
from trialnotary.web.context import db_session, services
from trialnotary.web.documents.tables import to_csv
from trialnotary.web.responses import download, wants_bom

bp = Blueprint("admin", __name__, url_prefix="/admin")
AUDIT_PAGE = 100
BATCH_PAGE = 100


def _change(action, done: str, back: str, **back_args):
    """Run ``action(session, actor)`` in a write transaction; flash what happened."""
    try:
        with write_session(services().engine) as session:
            result = action(session, current_principal().actor)
            session.commit()
    except ValidationError as exc:
        flash(f"{exc.field + ': ' if exc.field else ''}{exc.message}", "error")
        return redirect(url_for(back, **back_args)), None
    if done:
        flash(done, "success")
    return redirect(url_for(back, **back_args)), result


# --- overview ------------------------------------------------------------------------

@bp.get("/")
@requires(access.ADMIN)
def overview():
    session = db_session()
    counts = {
        "trials": session.scalar(select(sa.func.count()).select_from(Trial)),
        "sites": session.scalar(select(sa.func.count()).select_from(Site)),
        "users": session.scalar(select(sa.func.count()).select_from(User)),
        "pending": batches.pending_count(session),
    }
    states = dict(session.execute(select(Batch.state, sa.func.count())
                                  .group_by(Batch.state)).all())
    chain = services().chain
    health = chain.health()  # a dead node is not asked again for the balance
    return render_template("admin/overview.html", counts=counts, states=states,
                           health=health,
                           funding=chain.funding() if health["reachable"] else {},
                           anchorer=anchoring.chain_status(session),
                           settings=services().settings)


# --- trials and sites ----------------------------------------------------------------

@bp.route("/trials", methods=["GET", "POST"])
@requires(access.ADMIN)
def trials():
    if request.method == "POST":
        form = request.form
        return _change(lambda s, actor: sites.add_trial(
            s, form.get("trial", ""), title=form.get("title") or None,
            protocol_id=form.get("protocol_id") == "on", actor=actor),
            f"Trial {form.get('trial', '').strip().upper()} created.", "admin.trials")[0]
    rows = db_session().execute(
        select(Trial, sa.func.count(Enrolment.site_id))
        .outerjoin(Enrolment, Enrolment.trial_id == Trial.id)
        .group_by(Trial.id).order_by(Trial.registry_id)).all()
    return render_template("admin/trials.html", rows=rows)


@bp.route("/sites", methods=["GET", "POST"])
@requires(access.ADMIN)
def sites_page():
    if request.method == "POST":
        form = request.form
        return _change(lambda s, actor: sites.add_site(
            s, form.get("trial", ""), form.get("site", "").strip(),
            name=form.get("name") or None, actor=actor),
            f"Site {form.get('site', '').strip()} is enrolled in "
            f"{form.get('trial', '').strip().upper()}.", "admin.sites_page")[0]
    session = db_session()
    rows = session.execute(
        select(Site.code, Site.name, Trial.registry_id)
        .outerjoin(Enrolment, Enrolment.site_id == Site.id)
        .outerjoin(Trial, Trial.id == Enrolment.trial_id)
        .order_by(Site.code, Trial.registry_id)).all()
    enrolled: dict[tuple, list[str]] = {}
    for code, name, trial in rows:
        enrolled.setdefault((code, name), [])
        if trial:
            enrolled[(code, name)].append(trial)
    trial_ids = session.scalars(select(Trial.registry_id).order_by(Trial.registry_id)).all()
    return render_template("admin/sites.html", enrolled=enrolled, trial_ids=trial_ids)


# --- people --------------------------------------------------------------------------

@bp.route("/users", methods=["GET", "POST"])
@requires(access.ADMIN)
def users():
    session = db_session()
    if request.method == "POST":
        form = request.form

        def create(s, actor):
            user, password = accounts.create_user(
                s, form.get("email", ""), form.get("role", ""), name=form.get("name") or None,
                actor=actor)
            show_after_redirect(s, password, "password", user_id=user.id, reset=False)
            return user.id, f"{user.email} is created as {user.role}. Give them the " \
                            "temporary password below; they choose their own at first sign-in."
        response, created = _change(create, "", "admin.users")
        if created is None:
            return response
        user_id, message = created
        flash(message, "success")
        return redirect(url_for("admin.user", user_id=user_id))
    people = session.exec(select(User).order_by(User.email)).all()
    grants = {user.id: accounts.grants_of(session, user.id) for user in people}
    return render_template("admin/users.html", people=people, grants=grants,
                           roles=access.ROLES)


def _user_or_404(session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        abort(404)
    return user


@bp.get("/users/<int:user_id>")
@requires(access.ADMIN)
def user(user_id: int):
    session = db_session()
    person = _user_or_404(session, user_id)
    trials_granted, sites_granted = accounts.grants_of(session, person.id)
    return render_template(
        "admin/user.html", person=person, roles=access.ROLES,
        trials_granted=sorted(trials_granted), sites_granted=sorted(sites_granted),
        trial_ids=session.scalars(select(Trial.registry_id).order_by(Trial.registry_id)).all(),
        site_codes=session.scalars(select(Site.code).order_by(Site.code)).all(),
        throttled=accounts.throttled_clients(session, [person.email]),
        endings=accounts.token_endings(session, person),
        passwords=take_shown_once("password", user_id=person.id),
        myself=person.id == current_principal().user_id)


def _ended(tokens: list) -> str:
    """The part of a message that names the site tokens a change ended, if any."""
    if not tokens:
        return ""
    return (f" {len(tokens)} site token{'s' if len(tokens) > 1 else ''} ended: "
            f"{', '.join(item.token.prefix + '…' for item in tokens)}. The API refuses them "
            "from now on, whatever changes later.")


@bp.post("/users/<int:user_id>")
@requires(access.ADMIN)
def update_user(user_id: int):
    """One change to a person (``action``); says what it did."""
    form = request.form
    what = form.get("action")

    def act(session, actor) -> str:
        person = _user_or_404(session, user_id)
        if person.id == current_principal().user_id and what in ("disable", "role",
                                                                  "reset-password"):
            raise ValidationError(None, "you cannot change your own role, disable yourself "
                                        "or reset your own password here (change it under "
                                        "Change password)")
        email = person.email
        if what == "role":
            before = person.role
            change = accounts.update_user(session, person, role=form.get("role"),
                                          actor=actor)
            if person.role == before:
                return f"{email} is already {before}: nothing changed."
            dropped = change.dropped_grants
            return f"{email} is now {person.role} (was {before})." + (
                f" Grants of the old role removed: {', '.join(dropped)}." if dropped else "") \
                + _ended(change.ended_tokens)
        if what in ("disable", "enable"):
            change = accounts.update_user(session, person, disabled=what == "disable",
                                          actor=actor)
            return (f"{email} is disabled: their sessions ended and they cannot sign in."
                    if what == "disable" else f"{email} is enabled: they can sign in again.") \
                + _ended(change.ended_tokens)
        if what in ("grant", "revoke-grant"):
            trial, site = form.get("trial") or None, form.get("site") or None
            scope = f"trial {trial}" if trial else f"site {site}"
            if what == "grant":
                accounts.grant(session, person, trial=trial, site=site, actor=actor)
                return f"{email} is granted {scope}."
            ended = accounts.revoke_grant(session, person, trial=trial, site=site, actor=actor)
            return f"{email} no longer has {scope}." + _ended(ended)
        if what == "reset-password":
            password = accounts.generated_password()
            accounts.set_password(session, person, password, actor=actor, temporary=True)
            show_after_redirect(session, password, "password", user_id=person.id, reset=True)
            return f"{email} has a new temporary password, shown below once. Their " \
                   "sessions ended; they choose their own password at sign-in."
        if what == "unlock":
            accounts.unlock(session, email, actor=actor)
            return f"{email} can sign in again from every address."
        raise ValidationError("action", "is not one this page knows")

    response, message = _change(act, "", "admin.user", user_id=user_id)
    if message:
        flash(message, "success")
    return response


@bp.get("/logins")
@requires(access.ADMIN)
def logins():
    session = db_session()
    attempts = accounts.recent_attempts(session)
    throttled = accounts.throttled_clients(session, {attempt.email for attempt in attempts})
    return render_template("admin/logins.html", attempts=attempts, throttled=throttled)


@bp.post("/logins/unlock")
@requires(access.ADMIN)
def unlock():
    email = request.form.get("email", "")
    return _change(lambda s, actor: accounts.unlock(s, email, actor=actor),
                   f"{email} can sign in again from every address.", "admin.logins")[0]


# --- tokens --------------------------------------------------------------------------

@bp.get("/tokens")
@requires(access.ADMIN)
def tokens():
    session = db_session()
    owners = dict(session.execute(select(User.id, User.email)).all())
    return render_template("admin/tokens.html", site_tokens=sites.tokens_of_sites(session, None),
                           user_tokens=accounts.tokens_of_user(session, None), owners=owners,
                           site_codes=session.scalars(select(Site.code).order_by(Site.code))
                           .all())


# --- batches and the audit trail -----------------------------------------------------

@bp.get("/batches")
@requires(access.ADMIN)
def batches_page():
    session = db_session()
    rows = session.exec(select(Batch).order_by(Batch.id.desc()).limit(200)).all()
    anchors: dict[int, list[Anchor]] = {}
    for anchor in session.exec(select(Anchor).where(Anchor.batch_id.in_([b.id for b in rows]))
                               .order_by(Anchor.id)):
        anchors.setdefault(anchor.batch_id, []).append(anchor)
    return render_template("admin/batches.html", rows=rows, anchors=anchors,
                           pending=batches.pending_count(session))


@bp.get("/batches/<int:batch_id>")
@requires(access.ADMIN)
def batch(batch_id: int):
    """One batch: its root, every anchor attempt, and its registrations, a page at a time."""
    page = query.integer("page", low=1, high=query.DB_INT_MAX) or 1
    found = batch_detail(db_session(), batch_id, page=page, page_size=BATCH_PAGE)
    if found is None:
        abort(404)
    return render_template("admin/batch.html", **found, page=page, page_size=BATCH_PAGE)


def _audit_filters() -> audit.Filters:
    """The audit trail's filters from the query (a bad one is a 400 naming it)."""
    date_from, date_to = query.day("from"), query.day("to")
    return audit.Filters(actor=query.text("actor", max_chars=300),
                         action=query.text("action", max_chars=64),
                         entity=query.text("entity", max_chars=32),
                         date_from=date_from.isoformat() if date_from else None,
                         date_to=date_to.isoformat() if date_to else None)


@bp.get("/audit")
@requires(access.ADMIN)
def audit_trail():
    session = db_session()
    filters = _audit_filters()
    before = query.integer("before", low=1, high=query.DB_INT_MAX)
    after = query.integer("after", low=1, high=query.DB_INT_MAX)
    page = audit.page(session, filters, before=before, after=after, size=AUDIT_PAGE)
    for entry in page.entries:
        entry["changes"] = audit.changes(entry["old"], entry["new"])
    # Reading every entry takes a while on a long trail: only when asked.
    check = audit_check.verify_chain(session) if request.args.get("check") else None
    actions, entities = audit.kinds(session)
    kept = {key: value for key, value in request.args.items()
            if key in ("actor", "action", "entity", "from", "to") and value}
    return render_template("admin/audit.html", page=page, check=check,
                           anchored=check.anchored() if check else None, filters=filters,
                           kept=kept, actions=actions, entities=entities,
                           families=sorted({a.split(".")[0] + "." for a in actions if "." in a}))


AUDIT_COLUMNS = ("seq", "at", "actor", "action", "entity", "entityId", "old", "new", "reason",
                 "prev", "hash")


@bp.get("/audit.<fmt>")
@requires(access.ADMIN)
def audit_export(fmt: str):
    """The trail (or the entries the filters keep) as CSV or JSON."""
    if fmt not in ("csv", "json"):
        abort(404)
    filters = _audit_filters()
    entries = audit.entries(db_session(), filters=filters)
    name = f"audit-trail_{rfc3339_ms(utcnow())[:10]}.{fmt}"
    if fmt == "json":
        return download(json.dumps({"generatedAt": rfc3339_ms(utcnow()), "entries": entries},
                                   indent=2), "application/json", name)
    lines = ([json.dumps(entry[c]) if c in ("old", "new") and entry[c] is not None
              else entry[c] for c in AUDIT_COLUMNS] for entry in entries)
    return download(to_csv([AUDIT_COLUMNS, *lines], bom=wants_bom()), "text/csv", name)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
