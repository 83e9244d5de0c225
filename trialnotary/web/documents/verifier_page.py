"""The self-contained verifier page: /verify as one HTML file that works opened from disk.

Everything the page runs is inside it: the style sheet, app.js, the verify page's script
bundled with every module it imports (``vendor/verify-page.bundle.js``, built by
build_vendor.py), hash-wasm and the hashing worker's source, the proof facts and the
notary's identity as it is when the page is made. It loads nothing from any server and asks
only the chain node(s) the reviewer names, so it verifies the notary's receipts after the
notary is gone (docs/verification.md, "The self-contained verifier page").
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

from trialnotary.proof import facts
from trialnotary.web.documents.bundle import PAGE_NAME

STATIC = Path(__file__).resolve().parents[1] / "static"
#: What the page embeds, by the name the template gives it.
PARTS = {
    "css": "app.css",
    "app": "js/app.js",
    "page": "vendor/verify-page.bundle.js",
    "hash_wasm": "vendor/hash-wasm-sha256.umd.min.js",
    "worker": "js/hash-worker.js",
}
#: The name the page is saved under (in every receipts zip too: ``bundle.PAGE_NAME``).
FILENAME = PAGE_NAME

_CLOSING_TAG = re.compile(r"</(script|style)", re.IGNORECASE)


def _embeddable(text: str) -> str:
    """``text`` safe inside a ``<script>`` or ``<style>`` element: no closing tag can end it
    early (``<\\/`` means the same in scripts and is never a tag in style sheets)."""
    return _CLOSING_TAG.sub(lambda match: "<\\/" + match.group(1), text)


@functools.cache
def _parts() -> dict[str, str]:
    return {name: _embeddable((STATIC / path).read_text(encoding="utf-8"))
            for name, path in PARTS.items()}


#: The page's template; :func:`template_values` are what it is rendered with.
TEMPLATE = "verify_standalone.html"


def template_values(*, identity_text: str, default_rpc: str, chain_id: int) -> dict:
    """What the page is rendered with, pinning the notary whose identity document is
    ``identity_text``."""
    identity = json.loads(identity_text)
    notary = {"name": identity.get("name"), "url": identity.get("url")}
    identity_url = (notary["url"] or "").rstrip("/") + facts.IDENTITY_PATH
    return {"standalone": True, "parts": _parts(), "identity": identity, "notary": notary,
            "notary_url": notary["url"], "identity_url": identity_url,
            "identity_download_url": identity_url, "default_rpc": default_rpc,
            "chain_id": chain_id, "proof_facts": facts.document()}
