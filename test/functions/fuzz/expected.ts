/**
 * Hostile requests, and the one answer each must get. A request to a route is put
 * together from layers (header, key, size, route, path, content type, body, query,
 * Idempotency-Key, webhook signature), each in its valid or its invalid form; at least
 * one is invalid (a defect), and the defects decide the answer by the edge's precedence:
 * unreadable header 400 > API key 401 > size 413 > no route 404 > path 400 > content
 * type 415 > body 400 > query 400 > Idempotency-Key 400 (the webhook: signature 400).
 * Requests to the `$default` route (no route matched) get 404.
 */
import fc from "fast-check";
import Stripe from "stripe";
import type { ErrorCode } from "../../../core/errors.js";
import { PORTAL_ROUTES, ROUTES, UNAUTHENTICATED_ROUTES, type HttpFunctionName } from "../../../functions/routes.js";
import {
  OVERSIZE,
  badAuthorization,
  badContentType,
  badOperatorIdNonEmpty,
  badOrderId,
  badUserId,
  encode,
  fields,
  goodAuthorization,
  goodContentType,
  invalidJsonText,
  malformedSegment,
  notAnObject,
  printable,
  someText,
  toJson,
  unknownField,
  unreadableHeader,
  type Oversize,
} from "./generators.js";
import { anyInstant, type RouteKey, type RouteSpec, type Seeded } from "./routes.js";
import { API_KEYS, WEBHOOK_SECRET } from "./secrets.js";

/** What a request carries that makes it invalid. */
export type Defect = "header" | "auth" | "size" | "route" | "path" | "contentType" | "body" | "query" | "idempotency" | "signature";

/** The answer a hostile request must get; for a 400 `validation_error`, one of `fields` must be named. */
export interface Expected {
  status: number;
  code: ErrorCode;
  fields?: string[];
}

/** A request as sent. */
export interface Hostile {
  fn: HttpFunctionName;
  routeKey: string;
  method: string;
  /** Raw (percent-encoded) path and query string. */
  path: string;
  query: string;
  headers: Record<string, string>;
  body?: string | Buffer | Oversize;
  base64: boolean;
  defects: Defect[];
  expected: Expected;
}

/** The methods hostile requests use (each route serves some of them, the others are no route). */
const METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/** How often each defect is a request's first one (the body, query and path layers hold the most kinds of hostile values). */
const DEFECT_WEIGHTS: Record<Defect, number> = { body: 6, query: 6, path: 3, idempotency: 2, contentType: 1, size: 1, auth: 1, route: 1, header: 1, signature: 1 };

/** A layer of a request: its valid and its invalid form (each a patch, with the fields an invalid form should be named by). */
type Patch = { method?: string; shape?: "trailingSlash" | "emptyParam"; params?: Record<string, string>; query?: Array<[string, string]>; headers?: Record<string, string | undefined>; body?: string | Buffer | Oversize; contentType?: string | undefined; names?: string[] };

/** The query string of `[key, value]` pairs (both already encoded). */
const queryString = (pairs: Array<[string, string]>) => pairs.map(([key, value]) => `${key}=${value}`).join("&");

/** Query parameters that every route ignores or that are harmless, for routes that read no query. */
const junkQuery = fc.array(fc.tuple(fc.constantFrom("limit", "cursor", "allTags", "x", "userId", "__proto__"), fc.oneof(fc.constantFrom("abc", "0", "maybe", "garbage"), someText(8)).map(encode)), { maxLength: 3 });

/** Hostile requests for `route`: at least one defect among those the route can have, others valid. */
export function hostileRequests(route: RouteKey, fn: HttpFunctionName, spec: RouteSpec, seeded: Seeded): fc.Arbitrary<Hostile> {
  // A. What the route is: method, path parameters, whether it takes an API key and reads a body, the methods its path serves.
  const [method, template] = route.split(" ") as [string, string];
  const params = [...template.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!);
  const isWebhook = route === "POST /webhooks/stripe";
  const needsKey = !UNAUTHENTICATED_ROUTES.includes(route);
  const readsBody = method !== "GET";
  const served = ROUTES.filter((r) => r.route.split(" ")[1] === template).map((r) => r.route.split(" ")[0]!);

  // B. Path parameters: seeded (valid) values, and invalid ones.
  const goodParam: Record<string, fc.Arbitrary<string>> = {
    userId: fc.constantFrom(...seeded.users.map(encode)),
    offerId: fc.constantFrom(...seeded.offerIds),
    orderId: fc.constantFrom(...seeded.orderIds),
    reservationId: fc.constantFrom(...seeded.reservationIds),
    entryId: fc.constantFrom(...seeded.entryIds),
    offerGroup: fc.constantFrom("calls", "trial"),
  };
  const badParam: Record<string, fc.Arbitrary<string>> = {
    userId: fc.oneof(badUserId.map(encode), malformedSegment),
    offerId: fc.oneof(badOperatorIdNonEmpty.map(encode), malformedSegment),
    orderId: fc.oneof(badOrderId.map(encode), malformedSegment),
    reservationId: fc.oneof(badOrderId.map(encode), malformedSegment),
    entryId: fc.oneof(badOrderId.map(encode), malformedSegment),
    offerGroup: fc.oneof(badOperatorIdNonEmpty.map(encode), malformedSegment),
  };

  // C. The layers the route has, each with its valid and its invalid form.
  const layers: Partial<Record<Defect, { good: fc.Arbitrary<Patch>; bad: fc.Arbitrary<Patch> }>> = {};
  layers.header = {
    good: fc.record({ "x-request-id": printable(0, 30), "x-forwarded-for": fc.constantFrom("203.0.113.7", "::1") }).map((headers) => ({ headers })),
    bad: unreadableHeader.map(({ name, value }) => ({ headers: { [name]: value }, names: [name] })),
  };
  layers.route = {
    good: fc.constant({}),
    bad: fc.oneof(
      fc.constantFrom(...METHODS.filter((m) => !served.includes(m))).map((m) => ({ method: m })),
      fc.constant<Patch>({ shape: "trailingSlash" }),
      ...(params.length > 0 ? [fc.constant<Patch>({ shape: "emptyParam" })] : []),
    ),
  };
  if (needsKey && PORTAL_ROUTES.includes(route)) {
    // The portal's routes take the seeded user's portal token; an API key is refused there like any wrong one.
    layers.auth = {
      good: fc.constantFrom("Bearer", "bearer").map((scheme) => ({ headers: { authorization: `${scheme} ${seeded.portalToken}` } })),
      bad: fc.oneof(badAuthorization, goodAuthorization, fc.constant(`Bearer ${seeded.portalToken.slice(0, -2)}xx`)).map((authorization) => ({ headers: { authorization } })),
    };
  } else if (needsKey) {
    layers.auth = {
      good: goodAuthorization.map((authorization) => ({ headers: { authorization } })),
      bad: badAuthorization.map((authorization) => ({ headers: { authorization } })),
    };
  }
  if (params.length > 0 && !isWebhook) {
    const all = fc.record(Object.fromEntries(params.map((p) => [p, goodParam[p]!])));
    layers.path = {
      good: all.map((values) => ({ params: values })),
      bad: fc.tuple(all, fc.subarray(params, { minLength: 1 })).chain(([values, broken]) =>
        fc.tuple(...broken.map((p) => badParam[p]!)).map((bad) => ({ params: { ...values, ...Object.fromEntries(broken.map((p, i) => [p, bad[i]!])) }, names: broken })),
      ),
    };
  }
  if (readsBody) {
    layers.size = { good: fc.constant({}), bad: fc.constantFrom(...OVERSIZE).map((oversize) => ({ body: { oversize } })) };
  }
  if (readsBody && !isWebhook) {
    layers.contentType = { good: goodContentType.map((contentType) => ({ contentType })), bad: badContentType.map((contentType) => ({ contentType })) };
  }
  if (spec.body?.kind === "schema") {
    const { base, fields: specs } = spec.body;
    const names = Object.keys(specs);
    const fieldDefects = fc.uniqueArray(fc.constantFrom(...(names.length > 0 ? names : ["-"])), { minLength: 1, maxLength: 3 }).chain((chosen) =>
      fc.tuple(...chosen.map((name) => specs[name]!.bad)).map((values) => ({
        body: toJson(fields([...Object.entries(base).filter(([k]) => !chosen.includes(k)), ...chosen.map((k, i) => [k, values[i]] as [string, unknown])])),
        names: chosen.includes("cycle") ? [...chosen, "customCycleSeconds"] : chosen,
      })),
    );
    const extraFields = fc.uniqueArray(unknownField(names), { minLength: 1, maxLength: 3 }).chain((extra) =>
      fc.tuple(...extra.map(() => fc.jsonValue({ maxDepth: 2 }))).map((values) => ({
        body: toJson(fields([...Object.entries(base), ...extra.map((k, i) => [k, values[i]] as [string, unknown])])),
        names: extra,
      })),
    );
    layers.body = {
      good: fc.constant({ body: toJson(base) }),
      bad: fc.oneof(
        ...(names.length > 0 ? [{ weight: 6, arbitrary: fieldDefects }] : []),
        { weight: 2, arbitrary: extraFields },
        { weight: 1, arbitrary: notAnObject.map((body) => ({ body, names: ["body"] })) },
        { weight: 1, arbitrary: invalidJsonText.map((body) => ({ body: body as string | Buffer, names: ["body"] })) },
      ),
    };
  } else if (spec.body?.kind === "ignored") {
    layers.body = {
      good: fc.option(fc.json({ maxDepth: 2 }), { nil: undefined }).map((body) => ({ body })),
      bad: invalidJsonText.map((body) => ({ body: body as string | Buffer, names: ["body"] })),
    };
  }
  if (spec.query) {
    const q = spec.query;
    const names = Object.keys(q);
    // Valid parts; a valid `from` is never after a valid `to`.
    const good = fc.subarray(names.filter((n) => q[n]!.good)).chain((chosen) =>
      fc.tuple(...chosen.map((n) => q[n]!.good!)).map((values) => {
        const pairs = chosen.map((n, i) => [n, values[i]!] as [string, string]);
        const from = pairs.find(([n]) => n === "from");
        const to = pairs.find(([n]) => n === "to");
        if (from && to && from[1] > to[1]) [from[1], to[1]] = [to[1], from[1]];
        return pairs;
      }),
    );
    const defective = names.filter((n) => n !== "tags");
    const badPair = fc.oneof(
      { weight: 4, arbitrary: fc.constantFrom(...defective).chain((n) => q[n]!.bad.map((value) => ({ pair: [encode(n), encode(value)] as [string, string], name: n, value }))) },
      fc.tuple(unknownField(names), someText(8)).map(([n, value]) => ({ pair: [encode(n), encode(value)] as [string, string], name: n })),
      fc.tuple(fc.constantFrom(...names), malformedSegment).map(([n, value]) => ({ pair: [encode(n), value] as [string, string], name: n })),
      // A malformed key is named as the URL carries it (which percent-encodes `'`).
      fc.tuple(malformedSegment, someText(8)).map(([key, value]) => ({ pair: [key, encode(value)] as [string, string], name: new URL(`https://h/?${key}`).search.slice(1) })),
    );
    layers.query = {
      good: good.map((pairs) => ({ query: pairs.map(([n, v]) => [encode(n), encode(v)] as [string, string]) })),
      bad: fc.tuple(good, badPair).map(([pairs, bad]) => {
        const kept = pairs.filter(([n]) => n !== bad.name);
        return { query: [...kept.map(([n, v]) => [encode(n), encode(v)] as [string, string]), bad.pair], names: [bad.name] };
      }),
    };
    // `from` after `to` is invalid too (both valid instants).
    if (q.from && q.to) {
      const reversed = fc.tuple(anyInstant, anyInstant).filter(([a, b]) => a !== b).map(([a, b]) => (a > b ? [a, b] : [b, a]));
      layers.query.bad = fc.oneof(
        { weight: 9, arbitrary: layers.query.bad },
        { weight: 1, arbitrary: reversed.map(([from, to]) => ({ query: [["from", encode(from!)], ["to", encode(to!)]] as Array<[string, string]>, names: ["to"] })) },
      );
    }
  }
  if (spec.idempotent) {
    layers.idempotency = {
      good: fc.option(fc.stringMatching(/^[!-~]{1,64}$/), { nil: undefined }).map((key) => ({ headers: { "idempotency-key": key } })),
      // Empty, or over 255 characters (no spaces at the ends, which HTTP trims).
      bad: fc.oneof(fc.constant(""), fc.stringMatching(/^[!-~]{256,400}$/), fc.integer({ min: 256, max: 300 }).map((n) => "é".repeat(n))).map((key) => ({ headers: { "idempotency-key": key }, names: ["Idempotency-Key"] })),
    };
  }
  if (isWebhook) layers.signature = { good: fc.constant({}), bad: fc.constant({}) }; // always bad: see webhookBody

  // D. One defect, mostly in the rich layers (body, query, path), sometimes a second one;
  // a webhook delivery always has a bad signature, and sometimes one more defect.
  const kinds = Object.keys(layers) as Defect[];
  const second = (among: Defect[]) => fc.oneof({ weight: 7, arbitrary: fc.constant<Defect[]>([]) }, { weight: 3, arbitrary: fc.subarray(among, { minLength: 1, maxLength: 1 }) });
  const chosenDefects: fc.Arbitrary<Defect[]> = isWebhook
    ? second(kinds.filter((k) => k !== "signature")).map((more) => ["signature", ...more])
    : fc
        .tuple(fc.oneof(...kinds.map((kind) => ({ weight: DEFECT_WEIGHTS[kind], arbitrary: fc.constant(kind) }))), second(kinds))
        .map(([first, more]) => [...new Set<Defect>([first, ...more])]);

  // E. Decoration that must not change the answer, then the request put together.
  const decoration = fc.record({
    base64: fc.boolean(),
    junkQuery,
    getBody: fc.option(fc.oneof(fc.json({ maxDepth: 2 }), invalidJsonText.map((b) => b as string | Buffer)), { nil: undefined }),
    getContentType: fc.option(fc.oneof(goodContentType, badContentType), { nil: undefined }),
  });

  return fc.tuple(chosenDefects, decoration).chain(([defects, decor]) => {
    const patches = kinds.map((kind) => (defects.includes(kind) ? layers[kind]!.bad : layers[kind]!.good));
    const webhookPart = isWebhook ? webhookBody(seeded) : fc.constant(undefined);
    return fc.tuple(fc.tuple(...patches), webhookPart).map(([applied, hook]) => {
      const byKind = Object.fromEntries(kinds.map((kind, i) => [kind, applied[i]!])) as Record<Defect, Patch>;
      return assemble({ route, fn, method, template, params, isWebhook, readsBody, defects, byKind, decor, hook });
    });
  });
}

/** A webhook delivery that must not verify: a Stripe event (about seeded orders), any JSON, or garbage, with a bad signature; or a correctly signed body that is no Stripe event. */
function webhookBody(seeded: Seeded): fc.Arbitrary<{ body: string | Buffer; signature: string | undefined; contentType: string | undefined }> {
  const now = () => Math.floor(Date.now() / 1000);
  const sign = (payload: string, secret: string, timestamp = now()) => Stripe.webhooks.generateTestHeaderString({ payload, secret, timestamp });
  const anyBody = fc.oneof(fc.constantFrom(...seeded.events), fc.json({ maxDepth: 3 }), invalidJsonText.map((b) => b as string | Buffer));
  const contentType = fc.option(fc.oneof(goodContentType, badContentType), { nil: undefined });
  const text = (body: string | Buffer) => Buffer.from(body as never).toString("utf8");
  const badSignature = (body: string | Buffer) =>
    fc.oneof(
      fc.constant(undefined),
      fc.constant(""),
      printable(1, 120),
      fc.tuple(fc.integer(), fc.stringMatching(/^[0-9a-f]{64}$/)).map(([t, v1]) => `t=${t},v1=${v1}`),
      fc.constantFrom("whsec_wrong", API_KEYS[0], `${WEBHOOK_SECRET}x`, WEBHOOK_SECRET.slice(0, -1)).map((secret) => sign(text(body), secret)),
      fc.integer({ min: 361, max: 10_000_000 }).map((age) => sign(text(body), WEBHOOK_SECRET, now() - age)),
      fc.constant(null).map(() => sign(`${text(body)}tampered`, WEBHOOK_SECRET)),
    );
  const signedNonEvent = fc
    .oneof(
      fc.jsonValue({ maxDepth: 2 }).filter((v) => v === null || typeof v !== "object" || Array.isArray(v)),
      fc.dictionary(fc.constantFrom("id", "type", "object", "created", "livemode"), fc.jsonValue({ maxDepth: 1 })),
      fc.constant({ id: "evt_1", type: "payment_intent.succeeded", data: null }),
      fc.constant({ id: "evt_1", type: "payment_intent.succeeded", data: { object: "pi_1" } }),
      fc.constant({ id: 1, type: "payment_intent.succeeded", data: { object: {} } }),
    )
    .map((value) => JSON.stringify(value));
  return fc.oneof(
    { weight: 4, arbitrary: fc.tuple(anyBody, contentType).chain(([body, type]) => badSignature(body).map((signature) => ({ body, signature, contentType: type }))) },
    { weight: 1, arbitrary: fc.tuple(signedNonEvent, contentType).map(([body, type]) => ({ body, signature: sign(body, WEBHOOK_SECRET), contentType: type })) },
  );
}

/** Puts the layers together into the request, and works out the one answer it must get. */
function assemble(input: {
  route: RouteKey;
  fn: HttpFunctionName;
  method: string;
  template: string;
  params: string[];
  isWebhook: boolean;
  readsBody: boolean;
  defects: Defect[];
  byKind: Record<Defect, Patch>;
  decor: { base64: boolean; junkQuery: Array<[string, string]>; getBody: string | Buffer | undefined; getContentType: string | undefined };
  hook: { body: string | Buffer; signature: string | undefined; contentType: string | undefined } | undefined;
}): Hostile {
  const { route, fn, template, params, isWebhook, readsBody, defects, byKind, decor, hook } = input;
  const patch = (kind: Defect): Patch => byKind[kind] ?? {};
  const has = (kind: Defect) => defects.includes(kind);

  // A. Method and path.
  const method = patch("route").method ?? input.method;
  const values = { ...Object.fromEntries(params.map((p) => [p, "x"])), ...patch("path").params };
  if (patch("route").shape === "emptyParam") values[params[0]!] = "";
  let path = template.replace(/\{(\w+)\}/g, (_, p: string) => values[p]!);
  if (patch("route").shape === "trailingSlash") path += "/";

  // B. Headers: decoration, key, Idempotency-Key, content type, unreadable header last.
  const headers: Record<string, string> = {};
  const put = (more: Record<string, string | undefined> | undefined) => {
    for (const [name, value] of Object.entries(more ?? {})) if (value !== undefined) headers[name] = value;
  };
  put(patch("header").headers === undefined || has("header") ? undefined : patch("header").headers);
  put(patch("auth").headers);
  put(patch("idempotency").headers);

  // C. Body: the route's, replaced by an oversize one; GET routes get a body that must be ignored.
  let body: Hostile["body"];
  let contentType: string | undefined;
  if (isWebhook) {
    body = hook!.body;
    contentType = hook!.contentType;
    if (hook!.signature !== undefined) headers["stripe-signature"] = hook!.signature;
  } else if (readsBody) {
    body = patch("body").body;
    contentType = patch("contentType").contentType;
    if (has("contentType") && (body === undefined || Buffer.from(body as never).byteLength === 0)) body = "{}";
  } else {
    body = decor.getBody;
    contentType = decor.getContentType;
  }
  if (has("size")) body = patch("size").body;
  if (contentType !== undefined) headers["content-type"] = contentType;
  if (has("header")) put(patch("header").headers);

  // D. Query: the route's, or junk it ignores.
  const query = queryString(patch("query").query ?? decor.junkQuery);

  // E. The answer, by the edge's precedence.
  const sendsBody = !["GET", "HEAD"].includes(method) && body !== undefined;
  const expected = ((): Expected => {
    if (has("header")) return { status: 400, code: "validation_error", fields: patch("header").names! };
    if (!isWebhook && has("auth")) return { status: 401, code: "unauthorized" };
    if (has("size") && sendsBody) return { status: 413, code: "payload_too_large" };
    if (has("route")) return { status: 404, code: "not_found" };
    if (isWebhook) return { status: 400, code: "invalid_signature" };
    if (has("path")) return { status: 400, code: "validation_error", fields: patch("path").names! };
    if (readsBody && has("contentType")) return { status: 415, code: "unsupported_media_type" };
    if (readsBody && has("body")) return { status: 400, code: "validation_error", fields: patch("body").names! };
    if (has("query")) return { status: 400, code: "validation_error", fields: patch("query").names! };
    if (has("idempotency")) return { status: 400, code: "validation_error", fields: ["Idempotency-Key"] };
    throw new Error(`generator bug: a request to ${route} without a defect that decides its answer (${defects.join(", ")})`);
  })();

  return { fn, routeKey: route, method, path, query, headers, body, base64: decor.base64, defects, expected };
}

/** Requests to the `$default` route (no route matched): any method, path, body and headers -> 404 (400 for an unreadable header). */
export const defaultRouteRequests: fc.Arbitrary<Hostile> = fc
  .record({
    method: fc.constantFrom(...METHODS),
    segments: fc.array(fc.oneof(someText(10).map(encode), malformedSegment), { maxLength: 5 }),
    body: fc.option(fc.oneof(fc.json({ maxDepth: 2 }), invalidJsonText.map((b) => b as string | Buffer), fc.constant<Oversize>({ oversize: "ascii" })), { nil: undefined }),
    authorization: fc.option(fc.oneof(goodAuthorization, badAuthorization.filter((a): a is string => a !== undefined)), { nil: undefined }),
    unreadable: fc.oneof({ weight: 5, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: unreadableHeader }),
    base64: fc.boolean(),
  })
  .map(({ method, segments, body, authorization, unreadable, base64 }) => ({
    fn: "notFound" as const,
    routeKey: "$default",
    method,
    path: `/nope/${segments.join("/")}`,
    query: "",
    headers: { ...(authorization ? { authorization } : {}), ...(unreadable ? { [unreadable.name]: unreadable.value } : {}) },
    body,
    base64,
    defects: ["route" as Defect, ...(unreadable ? (["header"] as Defect[]) : [])],
    expected: unreadable ? { status: 400, code: "validation_error" as const, fields: [unreadable.name] } : { status: 404, code: "not_found" as const },
  }));
