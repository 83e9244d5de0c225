// A strict JSON reader for receipts: it reads a text as the Python verifier does
// (trialnotary/proof/verify/claims.py, load_receipt), so that one receipt means one thing to
// both. JSON.parse cannot: it keeps the last of two keys of one name without a word, reads 32.0
// and 3.2e1 as the integer 32, and rounds integers beyond 2^53.
//
// - A key repeated in one object is refused, with the words and at the moment Python's
//   object_pairs_hook refuses it: when the object closes, naming the first repeat.
// - NaN, Infinity and -Infinity are refused as "… is not valid JSON" (Python's parse_constant).
// - An integer literal beyond ±(2^53−1) becomes a BigInt, not a rounded number.
// - A number written with a fraction or an exponent is remembered as such:
//   writtenAsInteger(object, key) is false for it, as Python's json reads it as a float.
//
// npm has JSON readers that see duplicate keys (@humanwhocodes/momoa) or keep numbers' text
// (lossless-json), but the one lets raw control characters through in strings and the other
// accepts a repeated key whose values are equal; both would differ from the Python verifier,
// so this small reader is ours (docs/verification.md, "Reading a receipt").

/** The text is not JSON as a receipt may be written; the message says why, in the Python
 *  verifier's words where it has its own ("duplicate key 'k'", "NaN is not valid JSON"). */
export class JsonError extends Error {
  name = "JsonError";
}

const NUMBER = /-?(?:0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/y;
const STRING = /"(?:[^"\\\u0000-\u001f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*"/y;
const PLAIN_STRING = /[\\\u0000-\u001f]/; // what a string's text must escape, or be decoded from
const CONSTANTS = ["-Infinity", "Infinity", "NaN"];
const LITERALS = [["true", true], ["false", false], ["null", null]];

/** For each object or array read: the keys (or indexes) of its numbers written with a
 *  fraction or an exponent. */
const fractional = new WeakMap();

/** Whether `container[key]` was not written with a fraction or an exponent (values that
 *  were not read by parseJson count as written as integers). */
export function writtenAsInteger(container, key) {
  return !fractional.get(container)?.has(key);
}

/** `line L column C`, 1-based, for an offset in `text`. */
function where(text, offset) {
  const before = text.slice(0, offset);
  const line = before.split("\n").length;
  return `line ${line} column ${offset - before.lastIndexOf("\n")}`;
}

class Reader {
  constructor(text, maxDepth) {
    this.text = text;
    this.at = 0;
    this.depth = 0;
    this.maxDepth = maxDepth;
    this.fraction = false;
  }

  /** One level deeper (an array or object opens), refused past maxDepth. */
  enter() {
    this.depth += 1;
    if (this.depth > this.maxDepth) throw new JsonError(`nested deeper than ${this.maxDepth} levels`);
    this.at += 1;
  }

  fail(what) {
    throw new JsonError(`not valid JSON (${what} at ${where(this.text, this.at)})`);
  }

  skipWhitespace() {
    const { text } = this;
    let at = this.at;
    for (let c = text.charCodeAt(at); c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09; c = text.charCodeAt(at)) at += 1;
    this.at = at;
  }

  /** The next value; `this.fraction` tells whether it is a number written with a fraction or
   *  an exponent. */
  value() {
    this.skipWhitespace();
    const c = this.text[this.at];
    let value;
    if (c === '"') value = this.string();
    else if (c === "{") value = this.object();
    else if (c === "[") value = this.array();
    else if ((c === "-" || (c >= "0" && c <= "9")) && !this.text.startsWith("-Infinity", this.at)) {
      return this.number();
    } else value = this.word();
    this.fraction = false;
    return value;
  }

  /** true, false or null; NaN and Infinity refused in Python's words. */
  word() {
    for (const [word, value] of LITERALS) {
      if (this.text.startsWith(word, this.at)) {
        this.at += word.length;
        return value;
      }
    }
    const constant = CONSTANTS.find((word) => this.text.startsWith(word, this.at));
    if (constant) throw new JsonError(`${constant} is not valid JSON`);
    return this.fail(this.at < this.text.length ? `unexpected ${JSON.stringify(this.text[this.at])}` : "unexpected end");
  }

  number() {
    NUMBER.lastIndex = this.at;
    const match = NUMBER.exec(this.text);
    if (match === null) this.fail(`unexpected ${JSON.stringify(this.text[this.at])}`);
    this.at = NUMBER.lastIndex;
    const [literal, fraction, exponent] = match;
    this.fraction = Boolean(fraction || exponent);
    const number = Number(literal);
    return this.fraction || Number.isSafeInteger(number) ? number : BigInt(literal);
  }

  string() {
    const end = this.text.indexOf('"', this.at + 1);
    const plain = end < 0 ? null : this.text.slice(this.at + 1, end);
    if (plain !== null && !PLAIN_STRING.test(plain)) { // no escape, no control character
      this.at = end + 1;
      return plain;
    }
    STRING.lastIndex = this.at;
    const match = STRING.exec(this.text);
    if (match === null) this.fail("a string that is not closed, or holds a control character or a bad escape,");
    this.at = STRING.lastIndex;
    return JSON.parse(match[0]);
  }

  expect(char) {
    this.skipWhitespace();
    if (this.text[this.at] !== char) this.fail(`expected ${JSON.stringify(char)}`);
    this.at += 1;
  }

  /** Does the container close here (after skipping whitespace)? */
  closes(char) {
    this.skipWhitespace();
    if (this.text[this.at] !== char) return false;
    this.at += 1;
    return true;
  }

  array() {
    this.enter();
    const items = [];
    let fractions = null;
    if (!this.closes("]")) {
      do {
        items.push(this.value());
        if (this.fraction) (fractions ??= new Set()).add(items.length - 1);
      } while (this.closes(",") || (this.expect("]"), false));
    }
    if (fractions) fractional.set(items, fractions);
    this.depth -= 1;
    return items;
  }

  /** An object, refusing (when it closes, as Python's object_pairs_hook does) the first key
   *  that repeats an earlier one. */
  object() {
    this.enter();
    const object = {};
    let fractions = null;
    let repeated = null;
    if (!this.closes("}")) {
      do {
        this.skipWhitespace();
        if (this.text[this.at] !== '"') this.fail("expected a key in double quotes");
        const key = this.string();
        this.expect(":");
        const value = this.value();
        if (repeated === null && Object.hasOwn(object, key)) repeated = key;
        if (key === "__proto__") { // a key like any other, as JSON.parse has it, not the prototype
          Object.defineProperty(object, key, { value, enumerable: true, writable: true, configurable: true });
        } else object[key] = value;
        if (this.fraction) (fractions ??= new Set()).add(key);
      } while (this.closes(",") || (this.expect("}"), false));
    }
    if (repeated !== null) throw new JsonError(`duplicate key '${repeated}'`);
    if (fractions) fractional.set(object, fractions);
    this.depth -= 1;
    return object;
  }
}

/**
 * The JSON value of `text`, read strictly (see above). Throws JsonError for what is not JSON,
 * a repeated key, NaN or Infinity, or arrays and objects nested deeper than `maxDepth`.
 */
export function parseJson(text, { maxDepth = 64 } = {}) {
  const reader = new Reader(text, maxDepth);
  const value = reader.value();
  reader.skipWhitespace();
  if (reader.at !== text.length) reader.fail("extra data after the value");
  return value;
}
