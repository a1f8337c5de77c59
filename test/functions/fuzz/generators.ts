/**
 * Generators (fast-check arbitraries) of hostile values for the HTTP edge: bodies written
 * byte for byte (`Raw`, `MISSING`, `toJson`), percent-encoding that may be malformed, ids,
 * numbers, texts, enums, currencies, instants, URLs and metadata that each schema must
 * refuse, JSON that does not parse, unknown fields, bad and good `Authorization` and
 * `Content-Type` headers, header values that cannot be read, bodies over 1 MB, and bad
 * page limits. A `bad...` generator makes only invalid values, a `good...` one only valid
 * ones; `someText` and `printable` make ordinary text of either kind.
 */
import fc from "fast-check";
import { MAX_BODY_BYTES } from "../../../functions/http.js";
import { API_KEYS, WEBHOOK_SECRET } from "./secrets.js";

/** JSON text written as is (`1e999`, `-0`, `9007199254740993` survive no JSON.stringify). */
export class Raw {
  constructor(readonly text: string) {}
}
/** A body field left out. */
export const MISSING = Symbol("missing");

/** JSON text of a value that may hold Raw parts and MISSING fields (kept as own keys, `__proto__` included). */
export function toJson(value: unknown): string {
  if (value instanceof Raw) return value.text;
  if (Array.isArray(value)) return `[${value.map(toJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const fields = Object.entries(value).filter(([, item]) => item !== MISSING);
    return `{${fields.map(([key, item]) => `${JSON.stringify(key)}:${toJson(item)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

/** An object with exactly these own fields (`__proto__` stays a field). */
export const fields = (entries: Array<[string, unknown]>): Record<string, unknown> => Object.fromEntries(entries);

/** Percent-encodes a path segment or query part; a lone surrogate becomes its (invalid) WTF-8 bytes, `%ED%A0%80`. */
export function encode(text: string): string {
  let out = "";
  for (const char of text) {
    const code = char.codePointAt(0)!;
    if (code >= 0xd800 && code <= 0xdfff) {
      out += [0xe0 | (code >> 12), 0x80 | ((code >> 6) & 0x3f), 0x80 | (code & 0x3f)].map((b) => `%${b.toString(16).toUpperCase()}`).join("");
    } else out += encodeURIComponent(char);
  }
  return out;
}

/** Characters of category \p{C} (controls, bidi and zero-width format characters, BOM, lone surrogates, private use, noncharacters): never in a user id. */
const UNPRINTABLE = ["\u0000", "\u0001", "\u0008", "\t", "\n", "\r", "\u001b", "\u007f", "\u0085", "\u009f", "\u00ad", "\u200b", "\u200d", "\u200e", "\u200f", "\u202a", "\u202e", "\u2066", "\u2069", "\ufeff", "\ud800", "\udbff", "\udc00", "\udfff", "\ue000", "\uf8ff", "\ufff9", "\uffff", "\u{e0001}", "\u{10ffff}"];
/** Characters outside `[A-Za-z0-9_.:-]`, so never in an offer id or offerGroup. */
const NOT_ID_CHARS = [" ", "/", "#", "%", "?", "+", "&", "=", "é", "😀", "ש", "ل", "\u0000", "\u202e", "\ud800", "|", "@", "*", "~", "'", "(", "!", "\\", "\u00a0", "\n"];
/** Percent-escapes that are not UTF-8 (bare `%`, non-hex, truncated, lone surrogate, overlong, 0xFF); `~` after each keeps a following hex digit from completing it. */
const MALFORMED_ESCAPES = ["%", "%Z", "%ZZ", "%E0%A4%A", "%C3", "%ED%A0%80", "%ED%B0%80", "%FF", "%C0%AF", "%%"].map((escape) => `${escape}~`);

/** Ordinary text: ASCII, emoji, right-to-left scripts, URL-special characters, any grapheme. */
export const someText = (maxLength = 12) =>
  fc.string({
    unit: fc.oneof(fc.constantFrom("a", "Z", "0", "-", "_", "|", "@", ".", "😀", "👍🏽", "שלום", "مرحبا", "é", "中", " ", "%", "/", "?", "#", "+", "&"), fc.string({ unit: "grapheme", minLength: 1, maxLength: 1 })),
    maxLength,
  });

/** Printable ASCII (safe as a header value). */
export const printable = (minLength: number, maxLength: number) => fc.stringMatching(new RegExp(`^[ -~]{${minLength},${maxLength}}$`));

/** Text around one unprintable character. */
const withUnprintable = fc.tuple(someText(), fc.constantFrom(...UNPRINTABLE), someText()).map(([a, bad, b]) => a + bad + b);

/** A user id over 128 UTF-16 units (ASCII, accented, emoji or Hebrew), after some text. */
const overlongUserId = fc.tuple(someText(6), fc.constantFrom("u", "é", "😀", "ש", "|"), fc.integer({ min: 129, max: 400 })).map(([head, char, length]) => head + char.repeat(length));

/** A raw path segment whose percent-encoding is malformed. */
export const malformedSegment = fc.tuple(someText(), fc.constantFrom(...MALFORMED_ESCAPES), someText()).map(([a, escape, b]) => encode(a) + escape + encode(b));

/** A user id that is invalid: too long, or with an unprintable character (as a decoded string). */
export const badUserId = fc.oneof(overlongUserId, withUnprintable);
/** An offer id / offerGroup that is invalid, never empty: too long, or with a character outside the set. */
export const badOperatorIdNonEmpty = fc.oneof(
  fc.stringMatching(/^[A-Za-z0-9_.:-]{65,120}$/),
  fc.tuple(fc.stringMatching(/^[A-Za-z0-9_.:-]{0,20}$/), fc.constantFrom(...NOT_ID_CHARS), fc.stringMatching(/^[A-Za-z0-9_.:-]{0,20}$/)).map(([a, bad, b]) => a + bad + b),
);
/** An offer id / offerGroup that is invalid, the empty string included. */
export const badOperatorId = fc.oneof(fc.constant(""), badOperatorIdNonEmpty);
/** An order id that is not a ULID (never empty). */
export const badOrderId = fc.oneof(
  fc.stringMatching(/^[0-9A-HJKMNP-TV-Z]{1,25}$/),
  fc.stringMatching(/^[0-9A-HJKMNP-TV-Z]{27,40}$/),
  fc.tuple(fc.stringMatching(/^[0-9A-HJKMNP-TV-Z]{25}$/), fc.constantFrom("I", "L", "O", "U", "a", "z", "-", "_", "é", "😀", "\u0000"), fc.nat(25)).map(([id, bad, at]) => id.slice(0, at) + bad + id.slice(at)),
  // Not "." or "..": those are dot-segments, removed from the path before routing.
  someText(40).filter((text) => text.length > 0 && text !== "." && text !== ".." && !/^[0-9A-HJKMNP-TV-Z]{26}$/.test(text)),
);

/** A JSON value of none of `types` (number-looking strings, deep nesting and arrays included). */
export function wrongType(...types: Array<"string" | "number" | "boolean" | "null" | "array" | "object">): fc.Arbitrary<unknown> {
  const deep = fc.integer({ min: 2, max: 400 });
  const all = {
    string: fc.oneof(fc.constantFrom("1", "NaN", "Infinity", "-0", "1e308", "", "true", "null", "9007199254740993"), someText()),
    number: fc.oneof(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.constantFrom(new Raw("1e308"), new Raw("-0"), new Raw("9007199254740993"))),
    boolean: fc.boolean(),
    null: fc.constant(null),
    array: fc.oneof(fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 3 }), deep.map((n) => new Raw("[".repeat(n) + "]".repeat(n)))),
    object: fc.oneof(fc.dictionary(someText(6), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 }), deep.map((n) => new Raw('{"a":'.repeat(n) + "1" + "}".repeat(n)))),
  };
  return fc.oneof(...Object.entries(all).filter(([type]) => !types.includes(type as never)).map(([, arbitrary]) => arbitrary));
}

/** A number field's invalid values: below or above [min, max], fractional, beyond JSON doubles, or not a number. */
export function badInteger(min: number, max: number, options: { nullable?: boolean } = {}): fc.Arbitrary<unknown> {
  return fc.oneof(
    fc.integer({ min: -(2 ** 31), max: min - 1 }),
    fc.double({ min: max + 1, max: Number.MAX_VALUE, noNaN: true }),
    fc.double({ min, max, noNaN: true }).filter((x) => !Number.isInteger(x)),
    fc.constantFrom(new Raw("1e308"), new Raw("9007199254740993"), new Raw("1e999"), new Raw("-1e999"), new Raw("1E400"), new Raw(String(max + 0.5)), ...(min > 0 ? [new Raw("-0"), new Raw("0.0"), new Raw("-1")] : [])),
    options.nullable ? wrongType("number", "null") : wrongType("number"),
  );
}

/** A free-text field's invalid values: empty (when min is 1), too long, with a lone surrogate, or not a string. */
export function badText(min: number, max: number, options: { nullable?: boolean } = {}): fc.Arbitrary<unknown> {
  return fc.oneof(
    ...(min > 0 ? [fc.constant("")] : []),
    fc.tuple(fc.integer({ min: max + 1, max: max + 300 }), someText(3)).map(([length, tail]) => "é".repeat(length) + tail),
    fc.tuple(someText(), fc.constantFrom("\ud800", "\udbff", "\udc00", "\udfff"), someText()).map(([a, lone, b]) => a + lone + b),
    fc.tuple(someText(), fc.constantFrom("\ud800", "\udfff")).map(([a, lone]) => a.slice(0, max - 1) + lone),
    options.nullable ? wrongType("string", "null") : wrongType("string"),
  );
}

/** An enum field's invalid values. */
export const badEnum = (values: readonly string[]) =>
  fc.oneof(fc.constantFrom(...values.map((v) => v.toUpperCase()), "fortnightly", "", " tokens"), someText(), wrongType("string")).filter((v) => !values.includes(v as string));

/** A lowercase ISO 4217 code's invalid values. */
export const badCurrency = fc.oneof(fc.constantFrom("USD", "us", "usdd", "", "€", "u5d", "usd ", "eur\u0000"), someText(5), wrongType("string")).filter((v) => !(typeof v === "string" && /^[a-z]{3}$/.test(v)));

/** An ISO 8601 instant's invalid values (no zone, impossible dates, words, epoch numbers). */
export const badInstant = (options: { nullable?: boolean } = {}) =>
  fc.oneof(
    fc.constantFrom("2026-02-30T00:00:00Z", "2026-13-01T00:00:00Z", "2026-01-01", "2026-01-01T00:00:00", "2026-01-01T24:00:00Z", "2026-01-01T00:00:60Z", "yesterday", "", "1700000000", "275760-09-13T00:00:00Z", "2026-01-01T00:00:00.000Z\u0000"),
    someText(30).filter((text) => !/^\d{4}-\d\d-\d\dT/.test(text)),
    options.nullable ? wrongType("string", "null") : wrongType("string"),
  );

/** A checkout URL's invalid values: no scheme, too long, a lone surrogate, not a string. */
export const badUrl = fc.oneof(
  someText(30).filter((text) => !text.includes(":")),
  fc.constant(`https://example.com/${"a".repeat(2100)}`),
  fc.constant("https://example.com/\ud800"),
  fc.constantFrom("javascript:alert(1)", "data:text/html,<script>alert(1)</script>", "ftp://example.com/ok"),
  wrongType("string"),
);

/** JSON metadata DynamoDB cannot store or the contract refuses: not an object, over 4 KB, over 8 levels deep (to 20000), numbers beyond safe integers or under 1e-130, empty keys, keys over 128 characters, lone surrogates, `__proto__` or `constructor` keys at any depth. */
export const badMetadata = fc.oneof(
  wrongType("object"),
  fc.constant(new Raw("[]")),
  fc.nat(3000).map((extra) => ({ blob: "x".repeat(4097 + extra) })),
  fc.constantFrom(9, 12, 40, 1000, 20_000).map((n) => new Raw('{"a":'.repeat(n) + "1" + "}".repeat(n))),
  fc.constantFrom(9, 33).map((n) => ({ list: new Raw("[".repeat(n) + "]".repeat(n)) })),
  fc.constantFrom(new Raw("1e308"), new Raw("9007199254740993"), new Raw("5e-324"), new Raw("-1e200"), new Raw("1e20"), new Raw("1e999")).map((n) => fields([["n", { deeper: [1, n] }]])),
  fc.constant(fields([["", 1]])),
  fc.constant({ nested: fields([["", "x"]]) }),
  fc.nat(50).map((extra) => fields([["k".repeat(129 + extra), 1]])),
  fc.constantFrom({ s: "\ud800" }, fields([["\udc00", 1]]), { a: ["ok", "\udfff"] }),
  // Keys the DynamoDB marshaller cannot store as sent, anywhere (functions/schemas.ts UNSTORABLE_KEYS).
  fc.tuple(fc.constantFrom("__proto__", "constructor"), fc.jsonValue({ maxDepth: 1 }), fc.nat(2)).map(([key, value, depth]) => {
    const inner = `{"callId":"c1",${JSON.stringify(key)}:${JSON.stringify(value)}}`;
    return new Raw(depth === 0 ? inner : depth === 1 ? `{"a":${inner}}` : `{"list":[${inner}]}`);
  }),
);

/** JSON text that does not parse (after UTF-8 decoding): truncated, NaN, single quotes, trailing commas, BOM, garbage. */
export const invalidJsonText = fc
  .oneof(
    fc.constantFrom("{", '{"a":}', "[1,]", "NaN", "{'a':1}", "undefined", '"unterminated', '{"a":1}}', "\u0000", "tru", "\ufeff{}", " ", "{\"tokens\": 1e}", "--1", "{\"a\":01}"),
    someText(40),
    fc.uint8Array({ minLength: 1, maxLength: 64 }).map((bytes) => Buffer.from(bytes)),
  )
  .filter((body) => {
    const bytes = Buffer.from(body as never);
    if (bytes.byteLength === 0) return false;
    try {
      JSON.parse(bytes.toString("utf8"));
      return false;
    } catch {
      return true;
    }
  });

/** A JSON body that is not an object: arrays, primitives, null, deep arrays. */
export const notAnObject = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }).filter((v) => v === null || typeof v !== "object" || Array.isArray(v)).map((v) => JSON.stringify(v)),
  fc.integer({ min: 1, max: 5000 }).map((n) => "[".repeat(n) + "]".repeat(n)),
  fc.constantFrom("null", "1e308", '"{}"', "-0", "[{}]"),
);

/** Field names no body schema has (prototype names included). */
export const unknownField = (known: readonly string[]) =>
  fc.oneof(fc.constantFrom("__proto__", "constructor", "toString", "hasOwnProperty", "extra", "userId", "amount", "balance", "isAdmin"), someText(10)).filter((key) => key.length > 0 && !known.includes(key));

/** An `Authorization` header that is not a valid key: missing, wrong, near misses, other schemes. */
export const badAuthorization = fc.constantFrom<string | undefined>(
  undefined,
  "",
  "Bearer wrong",
  `Bearer ${API_KEYS[0].slice(0, -1)}7`,
  `Bearer ${API_KEYS[0].slice(0, -1)}`,
  `Bearer ${API_KEYS[0].toUpperCase()}`,
  "Bearer",
  "Bearer ",
  `Basic ${Buffer.from(API_KEYS[0]).toString("base64")}`,
  API_KEYS[0],
  `Bearer ${API_KEYS[0]}x`,
  `Bearer ${API_KEYS.join(",")}`,
  `Token ${API_KEYS[0]}`,
  `Bearer ${WEBHOOK_SECRET}`,
  `Bearer \u200b${API_KEYS[0]}`,
);
/** A valid `Authorization` header (either key of the rotation, scheme in any case). */
export const goodAuthorization = fc.tuple(fc.constantFrom(...API_KEYS), fc.constantFrom("Bearer", "bearer", "BEARER")).map(([key, scheme]) => `${scheme} ${key}`);

/** A header value the Fetch API refuses (NUL, CR or LF inside) or the adapter cannot encode (lone surrogate). */
export const unreadableHeader = fc.record({
  name: fc.constantFrom("idempotency-key", "stripe-signature", "x-request-id", "x-forwarded-for", "authorization", "content-type"),
  value: fc.tuple(printable(0, 10), fc.constantFrom("\u0000", "\r", "\n", "\r\n", "\ud800", "\udfff"), printable(0, 10)).map(([a, bad, b]) => `x${a}${bad}${b}x`),
});

/** A content type that is not `application/json` (or none). */
export const badContentType = fc.oneof(
  fc.constantFrom<string | undefined>(undefined, "", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/jsonp", "application/json-patch+json", "text/json", "json", "application/xml", "*/*", "application/json, text/plain"),
  printable(1, 30).filter((type) => type.split(";")[0]!.trim().toLowerCase() !== "application/json"),
);
/** `application/json`, as clients spell it. */
export const goodContentType = fc.constantFrom("application/json", "application/json; charset=utf-8", "Application/JSON", "application/json;charset=UTF-8");

/** The kinds of body over 1 MB: ASCII JSON, multibyte JSON, or unclosed brackets. */
export const OVERSIZE = ["ascii", "multibyte", "brackets"] as const;
/** A body over 1 MB, by kind (materialized only when sent, so that failure reports stay short). */
export type Oversize = { oversize: (typeof OVERSIZE)[number] };
/** The text of a body over 1 MB of this kind. */
export function oversizeBody(kind: Oversize["oversize"]): string {
  if (kind === "ascii") return `{"offerGroup":"calls","tokens":1,"metadata":{"blob":"${"x".repeat(MAX_BODY_BYTES)}"}}`;
  if (kind === "multibyte") return `{"name":"${"é".repeat(MAX_BODY_BYTES / 2 + 1)}"}`;
  return "[".repeat(MAX_BODY_BYTES + 1);
}

/** A limit query value that is not an integer in 1-1000. */
export const badLimit = fc
  .oneof(fc.constantFrom("abc", "0", "-1", "1001", "100000", "1.5", "", "1e9", "NaN", "Infinity", "-0", "9007199254740993", "10 0", "½"), someText(8), fc.integer().map(String))
  .filter((value) => !(Number.isInteger(Number(value)) && Number(value) >= 1 && Number(value) <= 1000));
