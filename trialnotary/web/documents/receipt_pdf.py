"""The receipt as a one-page A4 PDF: a readable copy of the JSON receipt, which stays the
proof, with a QR code of the registration's public page."""

from __future__ import annotations

from trialnotary.proof.facts import chain_label
from trialnotary.web.documents.pdf import BOLD, MM_PER_PT, MONO, SANS, Pdf, cjk_region, or_dash
from trialnotary.web.documents.qr import draw_qr


def _hex0x(value) -> str | None:
    if not value:
        return None
    return "0x" + str(value).removeprefix("0x")


def _receipt_parts(receipt: dict) -> tuple[dict, dict, dict]:
    part = receipt.get("trialnotary") if isinstance(receipt, dict) else None
    anchors = receipt.get("anchors") if isinstance(receipt, dict) else None
    record = part.get("record") if isinstance(part, dict) else None
    if not isinstance(record, dict) or not anchors or not isinstance(anchors[0], dict):
        raise ValueError("not a trialnotary receipt: it needs trialnotary.record and an anchor")
    batch = part.get("batch")
    return record, anchors[0], batch if isinstance(batch, dict) else {}


class _Form:
    """Label/value lines down an A4 page."""

    LABEL = 44

    def __init__(self, pdf: Pdf):
        self.pdf = pdf
        self.left = pdf.l_margin
        self.width = pdf.w - pdf.l_margin - pdf.r_margin

    def heading(self, text: str) -> None:
        pdf = self.pdf
        pdf.set_y(pdf.get_y() + 3)
        pdf.use(BOLD, 11)
        pdf.put(self.left, pdf.get_y(), self.width, text)
        pdf.set_y(pdf.get_y() + 6)
        pdf.set_draw_color(160)
        pdf.line(self.left, pdf.get_y(), self.left + self.width, pdf.get_y())
        pdf.set_y(pdf.get_y() + 1.5)

    def field(self, label: str, value, *, mono: bool = False, max_lines: int = 1,
              link: str | None = None) -> None:
        pdf = self.pdf
        top = pdf.get_y()
        pdf.use(SANS, 8.5)
        pdf.set_text_color(90)
        pdf.put(self.left, top, self.LABEL - 2, label, line_height=4.6)
        pdf.set_text_color(0)
        if link:
            pdf.set_text_color(20, 60, 160)
        pdf.use(MONO if mono else SANS, 8.5)
        used = pdf.put(self.left + self.LABEL, top, self.width - self.LABEL, or_dash(value),
                       max_lines=max_lines, line_height=4.6, link=link)
        pdf.set_text_color(0)
        pdf.set_y(top + used + 0.6)

    def paragraph(self, text: str, *, width: float | None = None, size: float = 8.5,
                  face: str = SANS, max_lines: int = 12) -> None:
        pdf = self.pdf
        pdf.use(face, size)
        used = pdf.put(self.left, pdf.get_y(), width or self.width, text,
                       max_lines=max_lines, line_height=size * MM_PER_PT * 1.45)
        pdf.set_y(pdf.get_y() + used + 1)


_RECEIPT_PROVES = (
    "What it proves, without trusting anyone: this exact file (its SHA-256) existed no later "
    "than the proven time above, the time of the Ethereum block that holds the batch's Merkle "
    "root. On the notary's word, made tamper-evident by that anchor: the record above is what "
    "the notary registered. What it does not prove: who made the file, or that its content is "
    "right; the submitted time is the notary's claim, not proven."
)


def receipt_pdf(receipt: dict, *, public_url: str, explorer_url: str | None = None,
                sign_offs: list[dict] = ()) -> bytes:
    """A one-page A4 PDF of a receipt (version 1 or 2): a readable copy, not the proof
    itself. A version 2 receipt's notary is shown as its issuer; a sign-off's receipt shows
    its own signature's manifestation (21 CFR Part 11 §11.50(b)). Of ``sign_offs`` (records
    of the registration's sign-offs) the first ``MAX_SIGN_OFFS_SHOWN`` are listed, to keep
    one page; any more are counted and left to ``public_url``, the registration's page,
    which lists them all, as its printable page does."""
    record, anchor, batch = _receipt_parts(receipt)
    pdf = Pdf(footer=f"trialnotary receipt {record.get('id') or ''}: a readable copy; "
                      "the JSON receipt is the proof", region=cjk_region(record.get("trial")))
    pdf.set_title(f"Registration receipt {record.get('id') or ''}".strip())
    pdf.add_page()
    form = _Form(pdf)

    pdf.use(BOLD, 18)
    pdf.put(form.left, pdf.get_y(), form.width, "Registration receipt")
    pdf.set_y(pdf.get_y() + 9)
    pdf.set_text_color(70)
    form.paragraph("A human-readable copy of a trialnotary receipt. The JSON receipt "
                   "(.receipt.json) is the authoritative proof: verify that file, not this page.",
                   size=9)
    pdf.set_text_color(0)

    form.heading("Record")
    size = record.get("sizeBytes")
    form.field("Trial", record.get("trial"))
    form.field("Site", record.get("site"))
    form.field("Kind", record.get("kind"))
    form.field("Dataset", record.get("dataset"), max_lines=3)
    form.field("File name", record.get("filename"), max_lines=4)
    form.field("Size", None if size is None else f"{size} bytes")
    form.field("SHA-256", record.get("sha256"), mono=True, max_lines=2)
    form.field("Registration id", record.get("id"), mono=True)
    form.field("Supersedes", record.get("supersedes") or "nothing (not a correction)",
               mono=bool(record.get("supersedes")))

    _signatures(form, record.get("signOff"), sign_offs, public_url)
    _time_box(pdf, form, anchor.get("blockTime"), record.get("submittedAt"))

    notary = _notary(receipt)
    form.heading("Anchor on Ethereum")
    if notary is not None:
        form.field("Issued by", " — ".join(filter(None, [notary.get("name"),
                                                          notary.get("url")])), max_lines=2)
    chain_id = anchor.get("chainId")
    form.field("Chain", chain_label(or_dash(chain_id), or_dash(anchor.get('chain'))))
    form.field("Transaction", _hex0x(anchor.get("sourceId")), mono=True, max_lines=2)
    form.field("Block number", anchor.get("blockNumber"))
    form.field("Block hash", anchor.get("blockHash"), mono=True, max_lines=2)
    form.field("Sender (the notary)", anchor.get("sender"), mono=True)
    form.field("Merkle root", receipt.get("merkleRoot"), mono=True, max_lines=2)
    if explorer_url:
        form.field("Block explorer", explorer_url, max_lines=2, link=explorer_url)

    form.heading("Batch")
    form.field("Batch id", batch.get("id"))
    form.field("Leaf", f"index {or_dash(batch.get('leafIndex'))} of "
                       f"{or_dash(batch.get('leafCount'))} leaves")

    form.heading("How to verify")
    _how_to_verify(pdf, form, public_url, (notary or {}).get("url"))
    return bytes(pdf.output())


#: Sign-offs listed on the page, at most; a note counts the others and gives the page
#: listing them all.
MAX_SIGN_OFFS_SHOWN = 4


def _signatures(form: _Form, manifestation, sign_offs: list[dict], page_url: str) -> None:
    """A sign-off's own signature, or the registration's sign-offs, one line each."""
    if isinstance(manifestation, dict):
        form.heading("Signature")
        form.field("Signed by", f"{manifestation.get('name')} ({manifestation.get('role')})")
        form.field("Meaning", manifestation.get("meaning"))
        form.field("Signed at (UTC)", manifestation.get("signedAt"))
        form.field("Signs", manifestation.get("signs"), mono=True)
    if sign_offs:
        form.heading("Sign-offs")
        for record in sign_offs[:MAX_SIGN_OFFS_SHOWN]:
            signed = record["signOff"]
            form.field(signed["meaning"], f"{signed['name']} ({signed['role']}), "
                                          f"{signed['signedAt']} UTC; sign-off {record['id']}",
                       max_lines=2)
        more = len(sign_offs) - MAX_SIGN_OFFS_SHOWN
        if more > 0:
            form.paragraph(f"and {more} more sign-off{'s' if more > 1 else ''}: see the "
                           f"registration page {page_url}", size=9, max_lines=3)


def _notary(receipt: dict) -> dict | None:
    """A version 2 receipt's ``notary`` (its name and URL, the notary's word), if any."""
    notary = receipt["trialnotary"].get("notary")
    return notary if isinstance(notary, dict) else None


def _time_box(pdf: Pdf, form: _Form, block_time, submitted_at) -> None:
    top = pdf.get_y() + 3
    pdf.set_y(top + 2)
    pdf.use(BOLD, 10)
    used = pdf.put(form.left + 3, pdf.get_y(), form.width - 6,
                   f"Proven time (block time): {or_dash(block_time)} UTC \u2014 proven by the "
                   "Ethereum block", max_lines=2)
    pdf.set_y(pdf.get_y() + used + 0.5)
    pdf.use(SANS, 9)
    used = pdf.put(form.left + 3, pdf.get_y(), form.width - 6,
                   f"Submitted (the notary's claim, not proven): {or_dash(submitted_at)}",
                   max_lines=2)
    pdf.set_y(pdf.get_y() + used + 2)
    pdf.set_draw_color(40)
    pdf.set_line_width(0.4)
    pdf.rect(form.left, top, form.width, pdf.get_y() - top)
    pdf.set_line_width(0.2)
    pdf.set_y(pdf.get_y() + 1)


def _how_to_verify(pdf: Pdf, form: _Form, public_url: str, notary_url: str | None) -> None:
    qr_size = 38
    text_width = form.width - qr_size - 6
    top = pdf.get_y()
    form.paragraph("Anyone can check this receipt without trusting the notary, with the "
                   "receipt file, the data file and any node of the chain above:",
                   width=text_width)
    form.paragraph("trialnotary verify <file>.receipt.json --file <the file> --rpc <node> "
                   f"--notary {notary_url or '<the notary>'}",
                   width=text_width, face=MONO, size=7.5, max_lines=3)
    form.paragraph("(pip install trialnotary; --notary pins the notary's published identity: "
                   "the anchor must come from its address). The notary's web page /verify does "
                   "the same in a browser; the file never leaves the computer.",
                   width=text_width)
    form.paragraph(_RECEIPT_PROVES, width=text_width)
    text_bottom = pdf.get_y()

    qr_x = form.left + form.width - qr_size
    draw_qr(pdf, public_url, x=qr_x, y=top, size=qr_size)
    pdf.use(MONO, 6)
    pdf.set_text_color(20, 60, 160)
    pdf.put(qr_x, top + qr_size, qr_size, public_url, max_lines=6, line_height=2.6,
            link=public_url)
    pdf.set_text_color(0)
    pdf.set_y(max(text_bottom, pdf.get_y()))
