"""The browser's cryptography and the verify page, each against Python on the same inputs.

Hashing (hash-worker.js via hashing.js) against hashlib; RFC 8785 and Merkle paths
(receipt-verify.js) against the test vectors (docs/vectors) and the ``rfc8785`` package;
the browser's verifier and the verify page against :mod:`trialnotary.proof.verify` on real
receipts, issued by a real notary (registered over its API, sealed, anchored and confirmed
on anvil).
"""

from __future__ import annotations

import copy
import hashlib
import json
import random
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
import rfc8785

from tests.conftest import CHROMIUM, CHROMIUM_ARGS, Anvil, free_port, screenshot
from tests.proof.anchored import MALFORMED, make_batch, plain_receipts
from tests.proof.anchored import OTHER as FORGER
from tests.proof.vectors import load_pin_vectors, load_vectors
from tests.rpc_filter import HEADER_ONLY, RpcFilter
from tests.utils import confirm_by_mining, migrated_sqlite, serving
from trialnotary.proof.facts import IDENTITY_PATH
from trialnotary.proof.verify import ReceiptError, parse_identity, parse_receipt, verify_receipt

MiB = 1024 * 1024
CHUNK = 8 * MiB  # hashing.js CHUNK_BYTES (checked below)
THRESHOLD = 256 * MiB  # hashing.js WEBCRYPTO_MAX_BYTES (checked below)
TRIAL, SITE = "NCT01234567", "SITE-01"
SERVER_ANCHOR = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"  # the local notary's dev key

IMPORT = """async () => {
  window.hashing = await import("/static/js/hashing.js");
  window.rv = await import("/static/js/receipt-verify.js");
}"""


# --- a notary on the test anvil, for the whole module ------------------------------------

@dataclass
class Notary:
    url: str
    engine: object
    chain: object
    token: str
    folder: Path
    files: dict[str, Path] = field(default_factory=dict)
    ids: dict[str, list[str]] = field(default_factory=dict)
    receipts: dict[str, dict] = field(default_factory=dict)
    identity: object = None  # its identity document, parsed (what the page pins)

    def register(self, name: str, content: bytes) -> str:
        path = self.folder / name
        path.write_bytes(content)
        answer = requests.post(f"{self.url}/api/v1/submissions", timeout=10,
                               headers={"Authorization": f"Bearer {self.token}"},
                               json={"trial": TRIAL, "site": SITE, "kind": "dataset",
                                     "dataset": name.split(".")[0].upper(),
                                     "sha256": hashlib.sha256(content).hexdigest(),
                                     "sizeBytes": len(content), "filename": name})
        assert answer.status_code == 201, answer.text
        self.files[name] = path
        self.ids.setdefault(name, []).append(answer.json()["id"])
        return answer.json()["id"]

    def receipt(self, registration_id: str) -> dict:
        """The receipt as served, its anchor's chain evidence included."""
        answer = requests.get(f"{self.url}/api/v1/submissions/{registration_id}/receipt",
                              timeout=10)
        assert answer.status_code == 200, answer.text
        return answer.json()


def seal_anchor_confirm(notary: Notary, anvil: Anvil) -> None:
    """What the scheduler does, run by hand: seal, anchor, then confirm as blocks come."""
    confirm_by_mining(notary.engine, notary.chain, anvil, max_batch=100_000, tries=20)


@pytest.fixture(scope="module")
def notary(anvil, tmp_path_factory):
    """The app on SQLite behind waitress, with confirmed registrations and one pending."""
    from sqlmodel import Session

    from trialnotary.config import load_settings
    from trialnotary.notary.chain import ChainClient
    from trialnotary.people import sites
    from trialnotary.web.app import create_app

    folder = tmp_path_factory.mktemp("notary")
    database = migrated_sqlite(folder)
    settings = load_settings({
        "TRIALNOTARY_INSTANCE_PATH": str(folder / "instance"),
        "TRIALNOTARY_DATABASE_URL": database, "TRIALNOTARY_CHAIN": "local",
        "TRIALNOTARY_CHAIN_RPC_URL": anvil.url, "TRIALNOTARY_SEAL_INTERVAL_SECONDS": "3600",
        # notary.test: the same server by a name that is not this machine (no WebCrypto).
        "TRIALNOTARY_ALLOWED_HOSTS": "127.0.0.1, notary.test",
    })
    app = create_app(settings, {"TESTING": True})
    engine = app.extensions["trialnotary"].engine
    with Session(engine) as session:
        sites.add_trial(session, TRIAL, title="Browser trial")
        sites.add_site(session, TRIAL, SITE)
        token = sites.create_token(session, SITE)
        session.commit()
    files = tmp_path_factory.mktemp("files")
    with serving(app) as base:
        notary = Notary(base, engine, ChainClient(settings), token, files)
        rng = random.Random(20261123)
        for name in ("adsl.xpt", "adae.xpt", "lb.csv"):
            notary.register(name, rng.randbytes(2000 + len(name)))
        twice = rng.randbytes(777)
        notary.register("twice.bin", twice)
        notary.register("twice.bin", twice)
        seal_anchor_confirm(notary, anvil)
        for name, ids in notary.ids.items():
            notary.receipts[name] = notary.receipt(ids[0])
        notary.register("pending.csv", rng.randbytes(500))
        notary.identity = parse_identity(requests.get(base + IDENTITY_PATH, timeout=10).content)
        yield notary
    engine.dispose()


@pytest.fixture(scope="module")
def plain(anvil, tmp_path_factory):
    return plain_receipts(anvil, tmp_path_factory.mktemp("plain"))


@pytest.fixture
def verify_page(page, notary):
    """The verify page, its modules imported as window.hashing and window.rv for direct calls."""
    page.goto(f"{notary.url}/verify")
    page.wait_for_selector("#verify-form[data-ready]")
    page.evaluate(IMPORT)
    return page


# --- comparing with Python ---------------------------------------------------------------

def python_verdicts(receipt: dict, pin: Notary | None = None,
                    **options) -> list[tuple[str, bool | None]]:
    """Python's verdicts, pinned like the page by default: to the serving notary (``pin``)."""
    report = verify_receipt(copy.deepcopy(receipt), **options,
                            notary=pin.identity if pin is not None else None)
    return [(step.name, step.ok) for step in report.steps]


def page_verdicts(page) -> list[tuple[str, bool | None]]:
    rows = page.eval_on_selector_all(  # the steps shown (notary: only when pinned)
        "[data-step]", "rows => rows.filter(r => !r.hidden)"
                       ".map(r => [r.dataset.step, r.dataset.ok])")
    return [(name, {"true": True, "false": False, "null": None}[ok]) for name, ok in rows]


def detail(page, step: str) -> str:
    return page.inner_text(f'[data-step="{step}"] .outcome')


def write_receipt(tmp_path: Path, receipt: dict, name: str = "r.receipt.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(receipt, indent=1))
    return path


def run_page(page, *, receipt: Path | None = None, file: Path | None = None,
             rpc: list[str] | None = None, confirmations: str | None = None,
             sender: str | None = None, pin: bool = True) -> bool:
    """Fill the verify page, press Verify, wait for the verdict; True for PASS. ``pin``:
    whether the page pins the serving notary (its default)."""
    page.set_checked("#pin-notary", pin)
    if receipt is not None:
        page.set_input_files("#receipt-input", str(receipt))
        page.wait_for_selector("#receipt-status:not(:empty)")
    if file is not None:
        page.set_input_files("#file-input", str(file))
    if rpc is not None:
        page.fill("#rpc-urls", "\n".join(rpc))
    if confirmations is not None:
        page.fill("#confirmations", confirmations)
    if sender is not None:
        page.fill("#expect-sender", sender)
    page.eval_on_selector("#verdict", "v => v.removeAttribute('data-ok')")
    page.click("#verify-button")
    page.wait_for_selector("#verdict[data-ok]")
    return page.get_attribute("#verdict", "data-ok") == "true"


# --- RFC 8785, leaves and paths ------------------------------------------------------------

def test_the_shared_vectors(verify_page):
    vectors = load_vectors()
    got = verify_page.evaluate("""async (v) => {
      const hex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
      const one = async (r) => ({bytes: hex(rv.canonicalRecordBytes(r)),
                                 leaf: await rv.recordLeaf(r)});
      return {
        records: await Promise.all(v.records.map((x) => one(x.record))),
        auditHead: await one(v.auditHead.value),
        roots: await Promise.all(v.trees.map((t) => Promise.all(
          t.leaves.map((leaf, i) => rv.foldProof(leaf, t.proofs[i]))))),
        sides: v.trees.map((t) => t.leaves.map((_, i) => rv.proofSides(i, t.leaves.length))),
      };
    }""", vectors)
    for vector, mine in zip(vectors["records"], got["records"], strict=True):
        assert bytes.fromhex(mine["bytes"]) == vector["canonical"].encode()
        assert mine["leaf"] == vector["leaf"]
    assert bytes.fromhex(got["auditHead"]["bytes"]) == vectors["auditHead"]["canonical"].encode()
    assert got["auditHead"]["leaf"] == vectors["auditHead"]["leaf"]
    for tree, roots, sides in zip(vectors["trees"], got["roots"], got["sides"], strict=True):
        assert roots == [tree["root"]] * len(tree["leaves"])
        assert sides == [[side for step in proof for side in step] for proof in tree["proofs"]]


# Code point ranges to draw text from: ASCII, every control character, JSON's escapes,
# Latin-1, Greek, Hebrew, CJK, the line/paragraph separators, BOM and non-characters, and the
# astral planes (emoji, mathematical letters, CJK extension B, the last code point).
RANGES = [(0x20, 0x7E), (0x00, 0x1F), (0x7F, 0x9F), (0xA0, 0xFF), (0x370, 0x3FF), (0x5D0, 0x5EA),
          (0x4E00, 0x9FFF), (0x2028, 0x2029), (0xFEFF, 0xFEFF), (0xFFF0, 0xFFFF),
          (0xE000, 0xE0FF), (0x1F300, 0x1FAFF), (0x1D400, 0x1D7FF), (0x20000, 0x2A6DF),
          (0x10FFF0, 0x10FFFF)]
SPECIAL = ['"', "\\", "/", "\b", "\f", "\n", "\r", "\t", "\u2028", "\u2029", "😀", "\x00", "\x1f"]


def text(rng: random.Random, longest: int = 24) -> str:
    out = []
    for _ in range(rng.randrange(longest + 1)):
        if rng.random() < 0.2:
            out.append(rng.choice(SPECIAL))
        else:
            low, high = rng.choice(RANGES)
            out.append(chr(rng.randint(low, high)))
    return "".join(out)


def value(rng: random.Random, depth: int = 0):
    kind = rng.randrange(9 if depth < 2 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([0, 1, -1, 2**53 - 1, -(2**53 - 1), rng.randrange(-2**53 + 1, 2**53)])
    if kind == 3:
        return rng.choice([0.5, -0.25, 1e21, 1e-7, 123.456, 5e-324, 1.7976931348623157e308,
                           rng.uniform(-1e6, 1e6)])
    if kind in (4, 5):
        return text(rng)
    if kind == 6:
        return [value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {text(rng, 6): value(rng, depth + 1) for _ in range(rng.randrange(4))}


def record(rng: random.Random) -> dict:
    """A record-shaped object, keys in random order, with odd values and sometimes extra keys
    (unicode names that sort differently by UTF-16 unit and by code point)."""
    items = [
        ("id", str(uuid.UUID(int=rng.getrandbits(128), version=4))),
        ("trial", rng.choice(["NCT01234567", "2024-512345-12-00", "ISRCTN10175490"])),
        ("site", text(rng, 10)), ("kind", rng.choice(["dataset", "protocol", "other"])),
        ("dataset", text(rng)), ("sha256", rng.randbytes(32).hex()),
        ("sizeBytes", rng.choice([None, 0, 1, 2**53 - 1, rng.randrange(2**53)])),
        ("filename", rng.choice([None, text(rng)])),
        ("supersedes", rng.choice([None, str(uuid.UUID(int=rng.getrandbits(128), version=4))])),
        ("submittedAt", f"2026-{rng.randint(1, 12):02}-{rng.randint(1, 28):02}T"
                        f"{rng.randint(0, 23):02}:{rng.randint(0, 59):02}:"
                        f"{rng.randint(0, 59):02}.{rng.randint(0, 999):03}Z"),
    ]
    if rng.random() < 0.5:
        items += [(rng.choice(["ｶ", "😀", "\U0001d400", "é", "\x7f", "a\x00", "\u2028", "Z"])
                   + text(rng, 3), value(rng)) for _ in range(rng.randrange(1, 4))]
    rng.shuffle(items)
    return dict(items)


def test_1200_generated_records_canonicalise_like_rfc8785(verify_page):
    rng = random.Random(8785)
    records = [record(rng) for _ in range(1200)]
    got = verify_page.evaluate("""async (text) => {
      const hex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
      const records = JSON.parse(text);
      return Promise.all(records.map(async (r) =>
        [hex(rv.canonicalRecordBytes(r)), await rv.recordLeaf(r)]));
    }""", json.dumps(records, ensure_ascii=rng.random() < 0.5))
    assert len(got) == len(records)
    for index, (one, (canonical, leaf)) in enumerate(zip(records, got, strict=True)):
        expected = rfc8785.dumps(one)
        assert bytes.fromhex(canonical) == expected, (index, one)
        assert leaf == hashlib.sha256(expected).hexdigest()


def test_values_without_a_canonical_form_fail_leaf_like_python(verify_page, notary):
    """An integer beyond 2^53 and a lone surrogate: JSON.parse would round or keep them; the
    receipt reader and canonicaliser refuse them as rfc8785 does."""
    receipt = notary.receipts["adsl.xpt"]
    size = receipt["trialnotary"]["record"]["sizeBytes"]
    dataset = json.dumps(receipt["trialnotary"]["record"]["dataset"])
    texts = [json.dumps(receipt).replace(f'"sizeBytes": {size}', f'"sizeBytes": {bad}')
             for bad in ("9007199254740993", "9007199254740992")]
    texts.append(json.dumps(receipt).replace(f'"dataset": {dataset}', '"dataset": "\\ud800"'))
    assert '"\\ud800"' in texts[-1]
    got = verify_page.evaluate("""async (texts) => Promise.all(texts.map(async (t) => {
      const result = await rv.verifyReceipt(rv.parseReceiptText(t), {rpcUrls: []});
      return result.steps.map((s) => [s.name, s.ok, s.detail]);
    }))""", texts)
    for text_, steps in zip(texts, got, strict=True):
        python = verify_receipt(json.loads(text_), rpc_urls=[])
        assert [(n, ok) for n, ok, _ in steps] == [(s.name, s.ok) for s in python.steps]
        assert "has no canonical form" in steps[1][2]


def test_malformed_receipts_are_refused_like_python(verify_page, notary):
    receipts, expected = [], []
    for name, (change, _) in MALFORMED.items():
        receipt = copy.deepcopy(notary.receipts["adsl.xpt"])
        change(receipt)
        with pytest.raises(ReceiptError) as refused:
            parse_receipt(copy.deepcopy(receipt))
        receipts.append(receipt)
        expected.append((name, str(refused.value)))  # the served receipt is of version 2
    texts = ["{not json", "[1, 2]", '{"targetHash": NaN}', '{"type": "a", "type": "b"}',
             '{"a": {"k": 1, "k\\u0000": 2, "k": 3}}']
    got = verify_page.evaluate("""async ([receipts, texts, good]) => {
      const why = async (f) => {
        try { await f(); return null; } catch (e) { return [e.name, e.message]; }
      };
      return {
        shapes: await Promise.all(receipts.map((r) =>
          why(() => rv.verifyReceipt(r, {rpcUrls: []})))),
        texts: await Promise.all(texts.map((t) => why(() => rv.parseReceiptText(t)))),
        options: await Promise.all([["0", null], ["soon", null], ["1", "notary"]].map(([c, s]) =>
          why(() => rv.verifyReceipt(good, {rpcUrls: [], confirmations: c, expectSender: s})))),
      };
    }""", [receipts, texts, notary.receipts["adsl.xpt"]])
    for (name, message), answer in zip(expected, got["shapes"], strict=True):
        assert answer is not None and answer[0] == "ReceiptError", name
        assert answer[1] == message, (name, answer)
    for answer, message in zip(got["texts"], ["not valid JSON", "a receipt is a JSON object",
                                               "not valid JSON", "duplicate key 'type'",
                                               "duplicate key 'k'"], strict=True):
        assert answer[0] == "ReceiptError" and message in answer[1], answer
    assert got["options"][0][1].startswith("confirmations must be a positive number")
    assert "an address is 0x and 40 hex digits" in got["options"][2][1]


# --- hashing -------------------------------------------------------------------------------

HASH = """async ([webCrypto, extra]) => {
  const input = document.getElementById("t-files");
  const entries = [...input.files].map((file) => ({file, path: "dir/" + file.name}));
  const progress = [], done = [];
  const started = performance.now();
  const results = await hashing.hashFiles(entries, {webCrypto, ...extra,
    onProgress: (p) => progress.push(p), onFileDone: (r) => done.push(r)}).promise;
  return {results, progress, done, seconds: (performance.now() - started) / 1000};
}"""


def add_file_input(page) -> None:
    page.evaluate("""() => { const input = document.createElement("input");
        input.type = "file"; input.multiple = true; input.id = "t-files";
        document.body.append(input); }""")


def make_files(folder: Path, sizes: list[int]) -> list[Path]:
    """Files of these sizes, each different (a random block, shifted per file)."""
    block = random.Random(256).randbytes(MiB)
    paths = []
    for index, size in enumerate(sizes):
        path = folder / f"f{index:02}-{size}.bin"
        with open(path, "wb") as out:
            head = bytes([index]) * min(size, 1)
            out.write(head)
            left = size - len(head)
            while left:
                piece = block[: min(left, MiB)]
                out.write(piece)
                left -= len(piece)
        paths.append(path)
    return paths


def digest(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def test_the_constants(verify_page):
    constants = verify_page.evaluate("[hashing.CHUNK_BYTES, hashing.WEBCRYPTO_MAX_BYTES]")
    assert constants == [CHUNK, THRESHOLD]


def test_the_webcrypto_limit_grows_with_the_device_memory(verify_page):
    limits = verify_page.evaluate(
        "[null, 0.25, 1, 2, 4, 8, 16].map((memory) => hashing.webCryptoLimit(memory))")
    assert limits == [THRESHOLD, THRESHOLD, THRESHOLD, THRESHOLD, 512 * MiB, 1024 * MiB,
                      1024 * MiB]
    device = verify_page.evaluate("navigator.deviceMemory")
    assert verify_page.evaluate("hashing.webCryptoLimit()") == min(
        1024 * MiB, max(THRESHOLD, int(device * 128 * MiB)))


def test_file_hashes_equal_hashlib_at_every_boundary(verify_page, tmp_path):
    """WebCrypto below the threshold, hash-wasm streaming above it, and hash-wasm for the small
    sizes too (around the slice size), one Worker per call; progress ends at the total."""
    sizes = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, THRESHOLD - 1, THRESHOLD + 1, 300_000_000]
    paths = make_files(tmp_path, sizes)
    expected = [digest(path) for path in paths]
    add_file_input(verify_page)
    verify_page.set_input_files("#t-files", [str(p) for p in paths])
    answer = verify_page.evaluate(HASH, [True, {"threshold": THRESHOLD}])
    assert [r["sha256"] for r in answer["results"]] == expected
    assert [r["path"] for r in answer["results"]] == [f"dir/{p.name}" for p in paths]
    assert [r["size"] for r in answer["results"]] == sizes
    assert [r["method"] for r in answer["results"]] == ["webcrypto"] * 6 + ["hash-wasm"] * 2
    assert [(d["index"], d["sha256"]) for d in answer["done"]] == list(enumerate(expected))
    progress = answer["progress"]
    assert len(progress) >= 2
    totals = [p["totalBytes"] for p in progress]
    assert totals == sorted(totals) and totals[-1] == progress[-1]["totalSize"] == sum(sizes)
    assert any(p["fileIndex"] == 7 and 0 < p["fileBytes"] < p["fileSize"] for p in progress)

    verify_page.set_input_files("#t-files", [str(p) for p in paths[:5]])
    streamed = verify_page.evaluate(HASH, [False, {}])
    assert [r["sha256"] for r in streamed["results"]] == expected[:5]
    assert {r["method"] for r in streamed["results"]} == {"hash-wasm"}


def test_cancel_and_unreadable_files(verify_page, tmp_path):
    big, gone = make_files(tmp_path, [64 * MiB, 1000])
    add_file_input(verify_page)
    verify_page.set_input_files("#t-files", [str(big)])
    outcome = verify_page.evaluate("""async () => {
      const file = document.getElementById("t-files").files[0];
      const outcome = async (job) => { try { await job.promise; return "resolved"; }
                                       catch (e) { return e.name + ": " + e.message; } };
      const now = hashing.hashFiles([{file, path: "big"}]);
      now.cancel();
      const controller = new AbortController();
      const signalled = hashing.hashFiles([{file, path: "big"}], {
        signal: controller.signal, webCrypto: false, onProgress: () => controller.abort()});
      let job;
      job = hashing.hashFiles([{file, path: "big"}], {webCrypto: false, chunkSize: 1 << 20,
                                                      onProgress: () => job.cancel()});
      return [await outcome(now), await outcome(signalled), await outcome(job)];
    }""")
    assert all(text_.startswith("AbortError") for text_ in outcome), outcome

    verify_page.set_input_files("#t-files", [str(gone)])
    gone.unlink()
    error = verify_page.evaluate("""async () => {
      const file = document.getElementById("t-files").files[0];
      try { await hashing.hashFiles([{file, path: "study/gone.bin"}]).promise; return null; }
      catch (e) { return {name: e.name, message: e.message, path: e.path}; }
    }""")
    assert error is not None and error["name"] != "AbortError"
    assert error["path"] == "study/gone.bin"
    assert error["message"].startswith("cannot read study/gone.bin")


def test_without_webcrypto_everything_falls_back_to_hash_wasm(browser, notary, tmp_path):
    """Plain http from a host that is not this machine: no crypto.subtle at all, neither on the
    page nor in the worker. Files, small inputs, leaves and paths still hash right."""
    insecure = browser.browser_type.launch(
        executable_path=CHROMIUM,
        args=[*CHROMIUM_ARGS, "--host-resolver-rules=MAP notary.test 127.0.0.1"])
    try:
        page = insecure.new_page()
        page.goto(notary.url.replace("127.0.0.1", "notary.test") + "/verify")
        page.wait_for_selector("#verify-form[data-ready]")
        page.evaluate(IMPORT)
        secure = page.evaluate("[window.isSecureContext, typeof crypto.subtle]")
        assert secure == [False, "undefined"]
        paths = make_files(tmp_path, [0, 1, CHUNK + 1])
        add_file_input(page)
        page.set_input_files("#t-files", [str(p) for p in paths])
        answer = page.evaluate(HASH, [True, {}])
        assert [r["sha256"] for r in answer["results"]] == [digest(p) for p in paths]
        assert {r["method"] for r in answer["results"]} == {"hash-wasm"}
        vectors = load_vectors()
        got = page.evaluate("""async (v) => [
          await hashing.sha256Hex("abc"),
          await Promise.all(v.records.map((x) => rv.recordLeaf(x.record))),
          await Promise.all(v.trees.at(-1).leaves.map((leaf, i) =>
            rv.foldProof(leaf, v.trees.at(-1).proofs[i]))),
        ]""", vectors)
        assert got[0] == hashlib.sha256(b"abc").hexdigest()
        assert got[1] == [r["leaf"] for r in vectors["records"]]
        assert set(got[2]) == {vectors["trees"][-1]["root"]}
    finally:
        insecure.close()


# --- the verifier module on real receipts --------------------------------------------------

def test_the_module_gives_pythons_report(verify_page, notary, anvil):
    receipt = notary.receipts["adae.xpt"]
    sha256 = hashlib.sha256(notary.files["adae.xpt"].read_bytes()).hexdigest()
    dead = f"http://127.0.0.1:{free_port()}"
    size = notary.files["adae.xpt"].stat().st_size
    identity = requests.get(notary.url + IDENTITY_PATH, timeout=10).json()
    got = verify_page.evaluate("""async ([receipt, sha256, size, urls, identity]) => {
      const seen = [];
      const result = await rv.verifyReceipt(receipt, {fileSha256: sha256, fileSize: size,
        fileName: "adae.xpt", rpcUrls: urls, onStep: (s) => seen.push(s.name),
        notary: rv.parseIdentity(identity, "the notary")});
      return {result, seen};
    }""", [receipt, sha256, size, [dead, anvil.url], identity])
    python = verify_receipt(copy.deepcopy(receipt), file_path=notary.files["adae.xpt"],
                            rpc_urls=[dead, anvil.url],
                            notary=parse_identity(identity, source="the notary")).to_json()
    result = got["result"]
    assert got["seen"] == [s["name"] for s in python["steps"]]
    assert [(s["name"], s["ok"]) for s in result["steps"]] == \
        [(s["name"], s["ok"]) for s in python["steps"]]
    assert [s["name"] for s in python["steps"]][-2:] == ["notary", "evidence"]
    assert python["steps"][-1]["ok"] is True  # the served receipt carries its evidence
    for key in ("ok", "verdict", "exitCode", "pinned", "provenTime", "blockTime", "transaction",
                "chain", "chainId", "blockNumber", "targetHash", "merkleRoot", "notary"):
        assert result[key] == python[key], key
    # the local chain's default: one confirmation; the actual count grows as anvil mines
    assert result["confirmations"]["required"] == python["confirmations"]["required"] == 1
    assert abs(result["confirmations"]["actual"] - python["confirmations"]["actual"]) <= 3
    assert [(n["url"], n["answered"], n["chainId"]) for n in result["nodes"]] == \
        [(n["url"], n["answered"], n["chainId"]) for n in python["nodes"]]
    # the details read alike: the same words wherever the outcome does not depend on timing
    for mine, theirs in zip(result["steps"], python["steps"], strict=True):
        if mine["name"] != "confirmations":
            assert mine["detail"] == theirs["detail"], mine["name"]


def test_the_verdicts_read_word_for_word_like_pythons(verify_page, notary, anvil, plain,
                                                     tmp_path):
    """Every verdict state, from the module and from verify.py on the same inputs."""
    def one_byte_more(record):
        record["sizeBytes"] += 1
    misreported = make_batch(anvil, tmp_path, count=1, edit=one_byte_more)
    adsl, lb = notary.receipts["adsl.xpt"], notary.receipts["lb.csv"]
    edited = copy.deepcopy(lb)
    edited["trialnotary"]["record"]["kind"] = "protocol"
    elsewhere = copy.deepcopy(adsl)  # without evidence: its transaction names chain 31337
    elsewhere["anchors"][0]["chainId"] = 424242
    del elsewhere["anchors"][0]["evidence"]
    dead = f"http://127.0.0.1:{free_port()}"
    node = [anvil.url]
    cases = [  # receipt, file, rpc urls, expected sender, the state both must reach
        (adsl, notary.files["adsl.xpt"], node, SERVER_ANCHOR, "verified"),
        (adsl, None, node, None, "verified-no-file"),
        (adsl, notary.files["lb.csv"], node, None, "wrong-file"),
        (edited, notary.files["lb.csv"], node, SERVER_ANCHOR, "failed"),
        (adsl, notary.files["adsl.xpt"], node, "0x" + "12" * 20, "failed"),
        (adsl, None, [dead], SERVER_ANCHOR, "unchecked"),
        (elsewhere, None, [], None, "unchecked"),
        (misreported.receipts[0], misreported.files[0], node, None, "failed"),
        (plain[1][0], plain[0][0], node, None, "verified"),
        (plain[1][0], None, node, None, "verified-no-file"),
    ]
    for receipt, path, urls, sender, state in cases:
        content = path.read_bytes() if path else None
        result = verify_page.evaluate("""([receipt, sha256, size, name, urls, sender]) =>
          rv.verifyReceipt(receipt, {fileSha256: sha256, fileSize: size, fileName: name,
                                     rpcUrls: urls, expectSender: sender})""", [
            receipt, hashlib.sha256(content).hexdigest() if path else None,
            len(content) if path else None, path.name if path else None, urls, sender])
        python = verify_receipt(copy.deepcopy(receipt), file_path=path, rpc_urls=urls,
                                expect_sender=sender).to_json()
        assert python["verdict"]["state"] == state, python["verdict"]
        for key in ("verdict", "exitCode", "pinned", "ok"):
            assert result[key] == python[key], (state, key)
        assert result["steps"][0] == python["steps"][0]  # file-hash, the size included


def test_a_silent_node_times_out_and_is_reported(verify_page, notary, anvil):
    """A node that accepts the connection and never answers: the call is abandoned after the
    timeout, the node is reported unreachable, the other node decides."""
    import socket

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        result = verify_page.evaluate("""([receipt, urls]) =>
          rv.verifyReceipt(receipt, {rpcUrls: urls, timeoutMs: 300})""",
                                      [notary.receipts["adsl.xpt"], [url, anvil.url]])
    assert result["ok"] is True
    assert result["nodes"][0]["answered"] is False
    assert result["nodes"][0]["detail"] == "unreachable: no answer within 0.3 s"


# --- the verify page -----------------------------------------------------------------------

def test_file_and_receipt_pass_every_step(verify_page, notary, anvil, tmp_path):
    receipt = notary.receipts["adsl.xpt"]
    assert run_page(verify_page, receipt=write_receipt(tmp_path, receipt),
                    file=notary.files["adsl.xpt"], rpc=[anvil.url], sender=SERVER_ANCHOR)
    assert page_verdicts(verify_page) == python_verdicts(
        receipt, pin=notary, file_path=notary.files["adsl.xpt"], rpc_urls=[anvil.url],
        expect_sender=SERVER_ANCHOR)
    assert all(ok is True for _, ok in page_verdicts(verify_page))
    proven = verify_page.locator("#verdict time.t-proven")
    assert proven.get_attribute("datetime") == receipt["anchors"][0]["blockTime"]
    assert proven.get_attribute("data-local") == "1"  # localised by app.js
    assert verify_page.get_attribute("#verdict", "data-state") == "verified"
    headline = verify_page.locator("#verdict-text")
    assert headline.inner_text().startswith(
        'This file is the one registered as "ADSL" (adsl.xpt) in trial NCT01234567, site '
        'SITE-01, and it existed no later than ')
    assert headline.locator("time.t-proven").count() == 1
    assert verify_page.locator("#verdict-note").count() == 0  # pinned: nothing to add
    verdict = verify_page.inner_text("#verdict")
    assert "PASS" in verdict and "Every check passed" in verdict
    assert "0x" + receipt["anchors"][0]["sourceId"] in verdict
    claimed = verify_page.locator("#submitted-at")
    assert "the notary's claim, not proven" in claimed.inner_text()
    assert claimed.locator("time").get_attribute("datetime") == \
        receipt["trialnotary"]["record"]["submittedAt"]
    assert "expected sender" in detail(verify_page, "sender")
    screenshot(verify_page, "verify-pass")


def test_a_changed_byte_fails_only_file_hash(verify_page, notary, anvil, tmp_path):
    changed = tmp_path / "adsl.xpt"
    data = bytearray(notary.files["adsl.xpt"].read_bytes())
    data[1000] ^= 1
    changed.write_bytes(bytes(data))
    receipt = notary.receipts["adsl.xpt"]
    assert not run_page(verify_page, receipt=write_receipt(tmp_path, receipt), file=changed,
                        rpc=[anvil.url])
    verdicts = page_verdicts(verify_page)
    assert verdicts == python_verdicts(receipt, pin=notary, file_path=changed, rpc_urls=[anvil.url])
    assert [name for name, ok in verdicts if ok is not True] == ["file-hash"]
    assert "not record.sha256" in detail(verify_page, "file-hash")
    verdict = verify_page.inner_text("#verdict")
    assert verdict.startswith("This is NOT the file this receipt was issued for")
    assert verify_page.get_attribute("#verdict", "data-state") == "wrong-file"
    assert "FAIL" in verdict and "file-hash" in verdict and "not proven" in verdict
    assert verify_page.locator("#verdict time.t-proven").count() == 0
    screenshot(verify_page, "verify-fail-file")


def test_an_edited_record_fails_only_leaf(verify_page, notary, anvil, tmp_path):
    receipt = copy.deepcopy(notary.receipts["lb.csv"])
    receipt["trialnotary"]["record"]["dataset"] = "LB (corrected)"
    assert not run_page(verify_page, receipt=write_receipt(tmp_path, receipt),
                        file=notary.files["lb.csv"], rpc=[anvil.url])
    verdicts = page_verdicts(verify_page)
    assert verdicts == python_verdicts(receipt, pin=notary, file_path=notary.files["lb.csv"],
                                       rpc_urls=[anvil.url])
    assert [name for name, ok in verdicts if ok is not True] == ["leaf"]
    assert "not targetHash" in detail(verify_page, "leaf")
    assert verify_page.locator("#record-warning").is_visible()
    screenshot(verify_page, "verify-fail-leaf")


def test_dropping_the_file_and_its_receipt(verify_page, notary, anvil):
    """One drop holding both: the receipt is told apart by its content, and both land in the
    visible inputs."""
    content = notary.files["lb.csv"].read_bytes()
    transfer = verify_page.evaluate_handle("""([bytes, receipt]) => {
      const transfer = new DataTransfer();
      transfer.items.add(new File([JSON.stringify(receipt)], "lb.receipt.json",
                                  {type: "application/json"}));
      transfer.items.add(new File([new Uint8Array(bytes)], "lb.csv"));
      return transfer;
    }""", [list(content), notary.receipts["lb.csv"]])
    verify_page.dispatch_event("#dropzone", "drop", {"dataTransfer": transfer})
    verify_page.wait_for_selector("#receipt-status:not(:empty)")
    assert verify_page.eval_on_selector("#file-input", "i => i.files[0].name") == "lb.csv"
    assert verify_page.eval_on_selector("#receipt-input", "i => i.files[0].name") == \
        "lb.receipt.json"
    verify_page.fill("#rpc-urls", anvil.url)
    verify_page.click("#verify-button")
    verify_page.wait_for_selector("#verdict[data-ok]")
    assert page_verdicts(verify_page) == python_verdicts(
        notary.receipts["lb.csv"], pin=notary, file_path=notary.files["lb.csv"],
        rpc_urls=[anvil.url])
    assert verify_page.get_attribute("#verdict", "data-ok") == "true"


def test_an_unreachable_node_is_reported_and_a_node_of_another_chain_fails(
        verify_page, notary, anvil, tmp_path):
    receipt = notary.receipts["adae.xpt"]
    path = write_receipt(tmp_path, receipt)
    dead = f"http://127.0.0.1:{free_port()}"
    assert run_page(verify_page, receipt=path, rpc=[dead, anvil.url])
    assert page_verdicts(verify_page) == python_verdicts(receipt, pin=notary,
                                                         rpc_urls=[dead, anvil.url])
    assert verify_page.get_attribute(f'#nodes li[data-url="{dead}"]', "data-answered") == "false"
    assert "unreachable" in verify_page.inner_text(f'#nodes li[data-url="{dead}"]')
    good = verify_page.get_attribute(f'#nodes li[data-url="{anvil.url}"]', "data-answered")
    assert good == "true"
    assert dict(page_verdicts(verify_page))["file-hash"] is None

    other = Anvil(chain_id=999, block_time=None)
    try:
        assert not run_page(verify_page, rpc=[other.url])
        verdicts = page_verdicts(verify_page)
        assert verdicts == python_verdicts(receipt, pin=notary, rpc_urls=[other.url])
        assert [n for n, ok in verdicts if ok is False] == ["chain"]
        assert "chain 999, not the anchor's chain 31337" in detail(verify_page, "chain")
        screenshot(verify_page, "verify-fail-chain")

        assert not run_page(verify_page, rpc=[anvil.url, other.url])
        assert page_verdicts(verify_page) == python_verdicts(receipt, pin=notary,
                                                             rpc_urls=[anvil.url, other.url])
        assert detail(verify_page, "chain").startswith("nodes disagree")
    finally:
        other.stop()

    assert not run_page(verify_page, rpc=[dead])
    assert page_verdicts(verify_page) == python_verdicts(receipt, pin=notary, rpc_urls=[dead])
    assert detail(verify_page, "chain") == "no node answered"
    assert dict(page_verdicts(verify_page))["chain"] is None  # not checked, not failed
    assert verify_page.get_attribute("#verdict", "data-state") == "unchecked"
    assert verify_page.inner_text("#verdict-text") == \
        "Could not check the anchor: no node answered."
    assert "NOT CHECKED" in verify_page.inner_text("#verdict")
    assert verify_page.locator("#verdict .badge.s-fail").count() == 0
    screenshot(verify_page, "verify-unchecked")


def test_a_bad_node_url_is_refused_at_its_field(verify_page, notary, anvil, tmp_path):
    path = write_receipt(tmp_path, notary.receipts["adae.xpt"])
    verify_page.set_input_files("#receipt-input", str(path))
    verify_page.wait_for_selector("#receipt-status:not(:empty)")
    verify_page.fill("#rpc-urls", f"{anvil.url}\nnot-a-url")
    verify_page.click("#verify-button")
    error = verify_page.locator("#rpc-urls-error")
    error.wait_for()
    assert "“not-a-url” is not an http(s) URL" in error.inner_text()
    assert verify_page.get_attribute("#rpc-urls", "aria-invalid") == "true"
    assert verify_page.get_attribute("#verdict", "data-ok") is None  # nothing was checked
    assert verify_page.locator("#nodes-wrap").is_hidden()
    assert verify_page.locator("[data-step][data-ok]").count() == 0
    screenshot(verify_page, "verify-bad-node-url")

    assert run_page(verify_page, rpc=[anvil.url])  # corrected: verified, the error gone
    assert error.is_hidden()
    assert verify_page.get_attribute("#rpc-urls", "aria-invalid") is None


def test_the_page_compares_the_files_size(verify_page, notary, anvil, tmp_path):
    def one_byte_more(record):
        record["sizeBytes"] += 1
    misreported = make_batch(anvil, tmp_path / "batch", count=1, edit=one_byte_more)
    receipt, path = misreported.receipts[0], misreported.files[0]
    assert not run_page(verify_page, receipt=write_receipt(tmp_path, receipt), file=path,
                        rpc=[anvil.url])
    assert page_verdicts(verify_page) == python_verdicts(receipt, pin=notary, file_path=path,
                                                         rpc_urls=[anvil.url])
    size = path.stat().st_size
    assert detail(verify_page, "file-hash").endswith(
        f", but {path.name} is {size} bytes, not record.sizeBytes {size + 1}")
    assert verify_page.inner_text("#verdict-text").startswith(
        "This receipt does NOT verify: file-hash failed — the SHA-256 of")


def test_only_the_file_looks_it_up_on_the_server(verify_page, notary, anvil):
    assert run_page(verify_page, file=notary.files["adae.xpt"], rpc=[anvil.url])
    assert verify_page.input_value("#receipt-input") == ""
    assert "Fetched from this server" in verify_page.inner_text("#receipt-status")
    receipt = notary.receipt(notary.ids["adae.xpt"][0])
    assert page_verdicts(verify_page) == python_verdicts(
        receipt, pin=notary, file_path=notary.files["adae.xpt"], rpc_urls=[anvil.url])
    assert all(ok is True for _, ok in page_verdicts(verify_page))
    screenshot(verify_page, "verify-file-only")


def test_a_file_registered_twice_offers_a_choice(verify_page, notary, anvil):
    verify_page.set_input_files("#file-input", str(notary.files["twice.bin"]))
    verify_page.fill("#rpc-urls", anvil.url)
    verify_page.click("#verify-button")
    choices = verify_page.locator("#registrations li")
    choices.first.wait_for()
    assert choices.count() == 2
    second = notary.ids["twice.bin"][1]
    verify_page.click(f'button[data-submission-id="{second}"]')
    verify_page.wait_for_selector("#verdict[data-ok]")
    assert verify_page.get_attribute("#verdict", "data-ok") == "true"
    assert second in verify_page.inner_text("#receipt-status")
    assert second in verify_page.inner_text("#record")


def test_a_file_unknown_to_the_server_and_a_pending_registration(verify_page, notary, anvil,
                                                                   tmp_path):
    unknown = tmp_path / "unknown.bin"
    unknown.write_bytes(b"never registered")
    verify_page.set_input_files("#file-input", str(unknown))
    verify_page.click("#verify-button")
    verify_page.locator("#message", has_text="no registration of this file").wait_for()
    assert hashlib.sha256(b"never registered").hexdigest() in verify_page.inner_text("#message")

    verify_page.set_input_files("#file-input", str(notary.files["pending.csv"]))
    verify_page.click("#verify-button")
    verify_page.locator("#message", has_text="not confirmed yet").wait_for()
    assert "pending" in verify_page.inner_text("#message")
    assert verify_page.get_attribute("#verdict", "data-ok") is None


def test_an_id_in_the_address_fetches_and_verifies_its_receipt(page, notary):
    """The local default: the node field holds the notary's own node; nothing else to give."""
    registration = notary.ids["lb.csv"][0]
    page.goto(f"{notary.url}/verify?id={registration}")
    page.wait_for_selector("#verdict[data-ok]")
    assert page.get_attribute("#verdict", "data-ok") == "true"
    assert page.input_value("#rpc-urls").strip() == notary.chain.settings.rpc_urls[0]
    assert dict(page_verdicts(page))["file-hash"] is None
    assert registration in page.inner_text("#receipt-status")


def test_a_plain_chainpoint_receipt(verify_page, plain, anvil, tmp_path):
    files, receipts = plain
    # pinned to its own sender: the first line is then what a plain receipt proves
    assert run_page(verify_page, receipt=write_receipt(tmp_path, receipts[1]), file=files[1],
                    rpc=[anvil.url], pin=False, sender=receipts[1]["anchors"][0]["sender"])
    verdicts = page_verdicts(verify_page)
    assert verdicts == python_verdicts(receipts[1], file_path=files[1], rpc_urls=[anvil.url])
    assert dict(verdicts)["leaf"] is None
    assert "plain Chainpoint receipt" in detail(verify_page, "leaf")
    assert verify_page.locator("#record-wrap").is_hidden()
    headline = verify_page.inner_text("#verdict-text")
    assert headline.startswith("This file existed no later than ")
    assert headline.endswith("A plain Chainpoint receipt proves only that: no registration "
                             "(trial, site, label, notary) is bound to it.")

    assert not run_page(verify_page, file=files[0], pin=False)  # compared with targetHash
    assert page_verdicts(verify_page) == python_verdicts(receipts[1], file_path=files[0],
                                                         rpc_urls=[anvil.url])
    assert "not targetHash" in detail(verify_page, "file-hash")


def test_a_broken_receipt_is_explained(verify_page, notary, tmp_path):
    receipt = copy.deepcopy(notary.receipts["adsl.xpt"])
    del receipt["trialnotary"]["record"]["filename"]
    path = write_receipt(tmp_path, receipt)
    verify_page.set_input_files("#receipt-input", str(path))
    verify_page.wait_for_selector("#receipt-status:not(:empty)")
    verify_page.click("#verify-button")
    verify_page.wait_for_selector("#verdict[data-ok]")
    assert verify_page.get_attribute("#verdict", "data-ok") == "false"
    assert "missing: filename" in verify_page.inner_text("#verdict")

    bad = tmp_path / "bad.receipt.json"
    bad.write_text('{"type": "ChainpointSHA256v2", "type": "x"}')
    verify_page.set_input_files("#receipt-input", str(bad))
    verify_page.locator("#receipt-status", has_text="not a usable receipt").wait_for()
    assert "duplicate key" in verify_page.inner_text("#receipt-status")


# --- pinning the serving notary ----------------------------------------------------------

def test_the_page_pins_the_serving_notary_and_says_so(verify_page, notary, anvil, tmp_path):
    receipt = notary.receipts["adsl.xpt"]
    assert run_page(verify_page, receipt=write_receipt(tmp_path, receipt), rpc=[anvil.url])
    status = verify_page.inner_text("#notary-status")
    assert status == ("Pinned to this notary, “trialnotary” (identity version "
                      f"{notary.identity.version}): the anchor must come from one of the "
                      "addresses it publishes.")
    assert verify_page.locator('[data-step="notary"]').is_visible()
    assert dict(page_verdicts(verify_page))["notary"] is True
    assert SERVER_ANCHOR in detail(verify_page, "notary")
    assert verify_page.locator("#verdict-note").count() == 0  # pinned: a plain pass

    assert run_page(verify_page, pin=False) is True  # every check passes, but ...
    assert verify_page.locator('[data-step="notary"]').is_hidden()
    assert verify_page.inner_text("#verdict-text") == (
        f"The anchor is genuine, but its origin is not pinned: it was sent by {SERVER_ANCHOR}, "
        "and nothing checked that this address is the notary's.")
    assert "Not pinned to this notary" in verify_page.inner_text("#notary-status")


def test_a_forged_receipt_fails_notary_on_the_page(verify_page, notary, anvil, tmp_path):
    """A record anchored by another account, the receipt's sender set to that account:
    genuine on chain, but not the notary's."""
    forged = make_batch(anvil, tmp_path / "forged", count=1, sender=FORGER)
    receipt, path = forged.receipts[0], forged.files[0]
    assert not run_page(verify_page, receipt=write_receipt(tmp_path, receipt), file=path,
                        rpc=[anvil.url])
    verdicts = page_verdicts(verify_page)
    assert [name for name, ok in verdicts if ok is False] == ["notary"]
    assert verdicts == python_verdicts(receipt, pin=notary, file_path=path, rpc_urls=[anvil.url])
    assert verify_page.inner_text("#verdict-text").startswith(
        f"This receipt does NOT verify: notary failed — sent by {FORGER}, which is not an "
        "address of the notary")
    screenshot(verify_page, "verify-forged")


# --- a node that has expired its history --------------------------------------------------

def test_a_receipt_with_evidence_verifies_through_a_node_that_serves_only_headers(
        verify_page, notary, anvil, tmp_path):
    """Every transaction and receipt look-up refused (EIP-4444's error 4444): the receipt's
    evidence answers them, and the page asks the node only its chain id, its head and the
    block's header. The same receipt less its evidence cannot be checked there: the node
    cannot answer, which refutes nothing (not checked, like Python)."""
    receipt, file = notary.receipts["adsl.xpt"], notary.files["adsl.xpt"]
    headers_only = RpcFilter(anvil.url)
    try:
        assert run_page(verify_page, receipt=write_receipt(tmp_path, receipt), file=file,
                        rpc=[headers_only.url])
        verdicts = page_verdicts(verify_page)
        assert set(headers_only.asked) <= HEADER_ONLY and headers_only.refused == []
        assert headers_only.asked["eth_getBlockByNumber"] >= 1
        assert verdicts == python_verdicts(receipt, pin=notary, file_path=file,
                                           rpc_urls=[headers_only.url])
        assert [name for name, _ in verdicts][-2:] == ["notary", "evidence"]
        assert all(ok is True for _, ok in verdicts)
        assert "recovered from the signature" in detail(verify_page, "sender")
        assert "its header is in the receipt's evidence" in detail(verify_page, "block")

        without = copy.deepcopy(receipt)
        del without["anchors"][0]["evidence"]
        assert not run_page(verify_page, receipt=write_receipt(tmp_path, without, "v.json"),
                            file=file, rpc=[headers_only.url])
        assert "eth_getTransactionByHash" in headers_only.refused
        assert verify_page.get_attribute("#verdict", "data-state") == "unchecked"
        assert page_verdicts(verify_page) == python_verdicts(
            without, pin=notary, file_path=file, rpc_urls=[headers_only.url])
        assert "cannot answer: it has expired the history eth_getTransactionByHash asks " \
               "for (error 4444: pruned history unavailable)" in verify_page.inner_text("#nodes")
        assert verify_page.locator('[data-step="evidence"]').is_hidden()
    finally:
        headers_only.close()


def test_the_browser_pins_like_the_vectors(verify_page):
    vectors = load_pin_vectors()
    got = verify_page.evaluate("""([document, cases]) => {
      const identity = rv.parseIdentity(document);
      return cases.map((c) => rv.pinNotary(identity, c.chainId, c.sender, c.blockTime));
    }""", [vectors["identity"], vectors["cases"]])
    assert got == [[case["ok"], case["detail"]] for case in vectors["cases"]]
