// A strict JSON reader for receipts: it reads a text as the Python verifier does
// (trialnotary/proof/verify/claims.py, load_receipt), so that one receipt means one thing to
// both. JSON.parse cannot: it keeps the last of two equal keys without a word, reads 32.0
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
const WHITESPACE = /[ \t\n\r]*/y;
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
    WHITESPACE.lastIndex = this.at;
    WHITESPACE.test(this.text);
    this.at = WHITESPACE.lastIndex;
  }

  /** The next value, and whether it is a number written with a fraction or an exponent. */
  value() {
    this.skipWhitespace();
    const c = this.text[this.at];
    if (c === "{") return [this.object(), false];
    if (c === "[") return [this.array(), false];
    if (c === '"') return [this.string(), false];
    for (const [word, value] of LITERALS) {
      if (this.text.startsWith(word, this.at)) {
        this.at += word.length;
        return [value, false];
      }
    }
    const constant = CONSTANTS.find((word) => this.text.startsWith(word, this.at));
    if (constant) throw new JsonError(`${constant} is not valid JSON`);
    return this.number();
  }

  number() {
    NUMBER.lastIndex = this.at;
    const match = NUMBER.exec(this.text);
    if (match === null) {
      this.fail(this.at < this.text.length ? `unexpected ${JSON.stringify(this.text[this.at])}` : "unexpected end");
    }
    this.at = NUMBER.lastIndex;
    const [literal, fraction, exponent] = match;
    if (fraction || exponent) return [Number(literal), true];
    const number = Number(literal);
    return [Number.isSafeInteger(number) ? number : BigInt(literal), false];
  }

  string() {
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
    const fractions = new Set();
    if (!this.closes("]")) {
      do {
        const [item, fraction] = this.value();
        if (fraction) fractions.add(items.length);
        items.push(item);
      } while (this.closes(",") || (this.expect("]"), false));
    }
    if (fractions.size) fractional.set(items, fractions);
    this.depth -= 1;
    return items;
  }

  object() {
    this.enter();
    const pairs = [];
    if (!this.closes("}")) {
      do {
        this.skipWhitespace();
        if (this.text[this.at] !== '"') this.fail("expected a key in double quotes");
        const key = this.string();
        this.expect(":");
        pairs.push([key, ...this.value()]);
      } while (this.closes(",") || (this.expect("}"), false));
    }
    this.depth -= 1;
    return objectOf(pairs);
  }
}

/** An object from its pairs, refusing the first key that repeats an earlier one. */
function objectOf(pairs) {
  const object = {};
  const fractions = new Set();
  for (const [key, value, fraction] of pairs) {
    if (Object.prototype.hasOwnProperty.call(object, key)) {
      throw new JsonError(`duplicate key '${key}'`);
    }
    // defineProperty, so that a key named __proto__ is a key like any other (as JSON.parse has it)
    Object.defineProperty(object, key, { value, enumerable: true, writable: true, configurable: true });
    if (fraction) fractions.add(key);
  }
  if (fractions.size) fractional.set(object, fractions);
  return object;
}

/**
 * The JSON value of `text`, read strictly (see above). Throws JsonError for what is not JSON,
 * a repeated key, NaN or Infinity, or arrays and objects nested deeper than `maxDepth`.
 */
export function parseJson(text, { maxDepth = 64 } = {}) {
  const reader = new Reader(text, maxDepth);
  const [value] = reader.value();
  reader.skipWhitespace();
  if (reader.at !== text.length) reader.fail("extra data after the value");
  return value;
}
