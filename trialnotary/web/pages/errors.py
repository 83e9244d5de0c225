"""HTML error pages outside the API (the API answers JSON: see ``web.api``)."""

from __future__ import annotations

from flask import render_template
from flask_wtf.csrf import CSRFError

from trialnotary.validation import ValidationError
from trialnotary.web.security import UnknownHost

ERROR_TEXT = {
    400: ("Bad request", "The request could not be understood."),
    403: ("Not allowed", "Your account may not open this page. Ask an administrator if you "
                         "need access."),
    404: ("Not found", "There is nothing here. Check the address, or the id you followed."),
    405: ("Not allowed", "This page does not take that kind of request."),
    413: ("Too large", "The request is larger than this server accepts."),
    429: ("Slow down", "Too many requests; wait a moment and try again."),
    500: ("Something went wrong", "This is our fault, not yours; it has been logged."),
    503: ("Busy", "The server is busy; nothing was changed. Try again in a few seconds."),
}


def bad_input_page(exc: ValidationError):
    """A request whose own input is wrong, e.g. a query parameter out of range (400)."""
    text = f"{exc.field + ': ' if exc.field else ''}{exc.message}."
    return render_template("error.html", status=400, title=ERROR_TEXT[400][0], text=text), 400


def error_page(exc):
    """The HTML page of an HTTP error: its status, a title and a sentence for people."""
    status = getattr(exc, "code", 500) or 500
    if isinstance(exc, CSRFError):
        title, text = "Form expired", "The form was too old or not sent from this site. " \
                                      "Go back, reload the page and try again."
    elif isinstance(exc, UnknownHost):
        title, text = "Unknown host name", exc.description
    else:
        title, text = ERROR_TEXT.get(status, ("Error", ""))
    return render_template("error.html", status=status, title=title, text=text), status
