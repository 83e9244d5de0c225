"""The browser's strict JSON reader (static/js/strict-json.js, through parseReceiptText) reads
every text as the Python verifier's ``load_receipt`` does: what one refuses the other refuses,
in the same words where the words are ours, and a number is an integer to both or to neither.
Run in Node, one process for every text."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from tests.conftest import ROOT
from trialnotary.proof.facts import FACTS_FILE
from trialnotary.proof.verify import ReceiptError, load_receipt
from trialnotary.proof.verify.claims import EXACT_INTEGER

SCRIPT = Path(__file__).with_name("read-receipt-texts.mjs")
FACTS = (ROOT / "trialnotary" / "proof" / FACTS_FILE).read_text(encoding="utf-8")

TEXTS = [
    '{"a": 1, "b": 32.0, "c": 3.2e1, "d": -0, "e": 1E2, "f": 0.5, "g": -12}',
    '{"big": 9007199254740993, "edge": 9007199254740991, "neg": -9007199254740993}',
    '{"a": 1, "a": 1}',
    '{"a": {"b": 1, "c": 2, "b": 3}, "a": 2}',
    '{"outer": 1, "outer": {"inner": 1, "inner": 2}}',
    '{"b": 1, "a": 2, "a": 3, "b": 4}',
    '{"__proto__": 1, "x": 2}',
    '{"__proto__": {"polluted": true}}',
    '{"k": 1, "k\\u0000": 2}',
    '{"a": NaN}', '{"a": Infinity}', '{"a": -Infinity}', '{"a": [1, NaN]}',
    '{"a": "tab\there"}', '{"a": "nul\u0001"}', '{"a": "\\ud800"}', '{"a": "\\u00e9\\n"}',
    '{"a": 01}', '{"a": 1.}', '{"a": .5}', '{"a": +1}', '{"a": -}', '{"a": 0x10}',
    '{"a": [1,]}', '{"a": 1,}', "{'a': 1}", '{"a": 1} x', '{"a": 1}\n\t\r ', ' \n{"a": true}',
    '{"a": "\\x41"}', '{"a": tru}', '{"a": nul}', '', '[]', '"text"', '12', 'null',
    '{"a\\"b": 1, "c": "d\\"e"}', '{"\\u0041": 1, "A": 2}', '{"a": "x', '{"a": "x\\"}',
    '{"a": 1e5, "b": 1E+2, "c": -1.0e-2, "d": 0}', '{"a": -01}', '{"a": 1.5e}', '{"a": -x}',
    '\ufeff{"bom": 1}', '{"a": 1}\u00a0', '{"a" 1}', '{"a": 1 "b": 2}',
    '{"a": ' + "[" * 63 + "]" * 63 + "}", '{"a": ' + "[" * 64 + "]" * 64 + "}",
    '{"a": "' + "[" * 100 + '"}', '{"a": "\\\"[[[" ' + "}",
    '{"a": ' + "[" * 100_000 + "]" * 100_000 + "}",
]


def python_reads(text: str, folder: Path) -> list:
    """``[error or None, the top level's numbers as int/float/big]``, as Python reads them."""
    path = folder / "r.json"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    try:
        value = load_receipt(path)
    except ReceiptError as exc:
        return [str(exc), None]
    kinds = {}
    for key, item in value.items():
        if isinstance(item, bool) or not isinstance(item, int | float):
            continue
        kinds[key] = ("float" if isinstance(item, float)
                      else "int" if abs(item) <= EXACT_INTEGER else "big")
    return [None, kinds]


def same_refusal(python: str | None, browser: str | None) -> bool:
    """Equal words, except for a syntax error: each parser says where in its own words."""
    if python is None or browser is None:
        return python == browser
    syntax = "not valid JSON ("
    if python.startswith(syntax) or browser.startswith(syntax):
        return python.startswith(syntax) and browser.startswith(syntax)
    return python == browser


def test_the_browser_reads_every_text_as_python_does(tmp_path):
    node = shutil.which("node")
    assert node, "node (>= 20) is needed to run the browser's reader outside a browser"
    ran = subprocess.run([node, "--disable-warning=MODULE_TYPELESS_PACKAGE_JSON", str(SCRIPT)],
                         input=json.dumps({"facts": FACTS, "texts": TEXTS}),
                         capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr
    browser = json.loads(ran.stdout)
    python = [python_reads(text, tmp_path) for text in TEXTS]
    differ = [(text[:80], p, b) for text, p, b in zip(TEXTS, python, browser, strict=True)
              if not same_refusal(p[0], b[0]) or p[1] != b[1]]
    assert not differ
    refused = dict(zip(TEXTS, (p[0] for p in python), strict=True))
    assert refused['{"a": 1, "a": 1}'] == "duplicate key 'a'"
    assert refused['{"a": {"b": 1, "c": 2, "b": 3}, "a": 2}'] == "duplicate key 'b'"
    assert refused['{"a": [1, NaN]}'] == "NaN is not valid JSON"
    assert refused['{"\\u0041": 1, "A": 2}'] == "duplicate key 'A'"
    assert refused['{"a": ' + "[" * 100_000 + "]" * 100_000 + "}"] == \
        "nested deeper than 64 levels"
    assert refused['{"a": ' + "[" * 63 + "]" * 63 + "}"] is None
    assert python[0][1] == {"a": "int", "b": "float", "c": "float", "d": "int", "e": "float",
                            "f": "float", "g": "int"}
