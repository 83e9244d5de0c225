"""Admin pages: trials, sites and enrolment, people and their grants, tokens, sign-ins and
lock-outs, batches and anchors, the anchoring account, and the audit trail.

Every page requires the admin role; every change goes through the domain modules, which
write the audit trail in the same transaction.
"""

from __future__ import annotations

import csv
import io
import json

import sqlalchemy as sa
from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from sqlmodel import select

from . import access, accounts, anchoring, audit, batches, reports, sites
from .access import requires
from .auth import current_principal
from .context import db_session, services
from .db import write_session
from .models import Anchor, Batch, Enrolment, Site, Trial, User, rfc3339_ms, utcnow
from .validation import ValidationError

bp = Blueprint("admin", __name__, url_prefix="/admin")
AUDIT_PAGE = 100


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
        response, created = _change(lambda s, actor: accounts.create_user(
            s, form.get("email", ""), form.get("role", ""), name=form.get("name") or None,
            actor=actor), "", "admin.users")
        if created is None:
            return response
        user, password = created
        return render_template("admin/user_created.html", user=user, password=password)
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
        endings=accounts.token_endings(session, person))


@bp.post("/users/<int:user_id>")
@requires(access.ADMIN)
def update_user(user_id: int):
    form = request.form
    what = form.get("action")

    def act(session, actor):
        person = _user_or_404(session, user_id)
        if person.id == current_principal().user_id and what in ("disable", "role"):
            raise ValidationError(None, "you cannot change your own role or disable yourself")
        if what == "role":
            return accounts.update_user(session, person, role=form.get("role"), actor=actor)
        if what in ("disable", "enable"):
            return accounts.update_user(session, person, disabled=what == "disable",
                                        actor=actor)
        if what == "grant":
            accounts.grant(session, person, trial=form.get("trial") or None,
                           site=form.get("site") or None, actor=actor)
        elif what == "revoke-grant":
            return accounts.revoke_grant(session, person, trial=form.get("trial") or None,
                                         site=form.get("site") or None, actor=actor)
        elif what == "reset-password":
            password = accounts.generated_password()
            accounts.set_password(session, person, password, actor=actor, temporary=True)
            return password
        elif what == "unlock":
            accounts.unlock(session, person.email, actor=actor)
        else:
            raise ValidationError("action", "is not one this page knows")
        return None

    response, result = _change(act, "Saved.", "admin.user", user_id=user_id)
    if isinstance(result, str):
        session = db_session()
        return render_template("admin/user_created.html", user=_user_or_404(session, user_id),
                               password=result, reset=True)
    if result:
        flash(f"{len(result)} site token{'s' if len(result) > 1 else ''} ended: "
              f"{', '.join(item.token.prefix + '…' for item in result)}. The API refuses "
              "them from now on, whatever changes later.", "info")
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


@bp.get("/audit")
@requires(access.ADMIN)
def audit_trail():
    session = db_session()
    try:
        before = int(request.args.get("before", 0)) or None
    except ValueError:
        before = None
    page = audit.entries(session, before=before, limit=AUDIT_PAGE, descending=True)
    # Reading every entry takes a while on a long trail: only when asked.
    check = audit.verify_chain(session) if request.args.get("check") else None
    return render_template("admin/audit.html", entries=page, check=check,
                           anchored=check.anchored() if check else None,
                           older=page[-1]["seq"] if page and page[-1]["seq"] > 1 else None)


AUDIT_COLUMNS = ("seq", "at", "actor", "action", "entity", "entityId", "old", "new", "reason",
                 "prev", "hash")


@bp.get("/audit.<fmt>")
@requires(access.ADMIN)
def audit_export(fmt: str):
    entries = audit.entries(db_session())
    stamp = rfc3339_ms(utcnow())[:10]
    if fmt == "json":
        body = json.dumps({"generatedAt": rfc3339_ms(utcnow()), "entries": entries}, indent=2)
        mimetype = "application/json"
    elif fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(AUDIT_COLUMNS)
        for entry in entries:
            writer.writerow([reports.csv_cell(json.dumps(entry[c]) if c in ("old", "new")
                                        and entry[c] is not None else entry[c])
                             for c in AUDIT_COLUMNS])
        body, mimetype = out.getvalue(), "text/csv; charset=utf-8"
    else:
        abort(404)
    return Response(body, mimetype=mimetype, headers={
        "Content-Disposition": f"attachment; filename=audit-trail_{stamp}.{fmt}"})


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
