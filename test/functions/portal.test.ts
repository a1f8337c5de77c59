/**
 * The customer portal's API through its handler (issue 14; API.md "Customer portal and
 * operator console"): a session minted with the API key opens the portal for one user,
 * its token in the URL's fragment; the routes under `/portal/api/` take that token only
 * and act for that user only; the token opens no other route; a forged or expired one is
 * refused. The handlers run in process on the Stripe stand-in (test/helpers/billing-api.ts).
 */
import { describe, expect, it } from "vitest";
import { mintPortalToken } from "../../core/portal-sessions.js";
import type { HttpFunctionName } from "../../functions/routes.js";
import { PORTAL_SIGNING_SECRET, useBillingApi } from "../helpers/billing-api.js";
import { stripeEvent } from "../helpers/stripe-stand-in.js";

type Json = Record<string, any>;

const START = "2027-03-10T10:00:00.000Z";
const api = useBillingApi({
  label: "portal",
  start: START,
  offers: {
    "calls-100": { name: "100 calls", offerGroup: "calls", cycle: "yearly", tokenCount: 100, prices: [{ amount: 1000, currency: "usd" }], tags: ["calls"] },
    "vip-calls": { name: "VIP calls", offerGroup: "vip", cycle: "yearly", tokenCount: 50, prices: [{ amount: 500, currency: "usd" }], unlockedBy: ["calls"], tags: ["calls"] },
    "storage": { name: "Storage", offerGroup: "storage", cycle: "yearly", tokenCount: 10, prices: [{ amount: 300, currency: "usd" }], tags: ["storage"] },
  },
});
const { clock, stripe, call, deliver } = api;

/** Mints a portal session for `userId` with the API key; returns the link, its token and expiry. */
async function session(userId: string, body: Json = {}): Promise<{ url: string; token: string; expires: string }> {
  const minted = await call("portal", "POST", `/users/${encodeURIComponent(userId)}/portal-sessions`, body);
  expect(minted.status, JSON.stringify(minted.body)).toBe(201);
  const url = String((minted.body as Json).url);
  return { url, token: url.split("#token=")[1]!, expires: (minted.body as Json).expires };
}

/** A request with a bearer `token` (a portal token, or anything else) and no API key. */
function withToken(fn: HttpFunctionName, token: string, method: string, path: string, body?: object) {
  return api.send(fn, { method, path, headers: { authorization: `Bearer ${token}` }, ...(body ? { body } : {}) });
}

/** Buys `offerId` for `userId` with the API key and delivers its payment; returns the order id. */
async function paidOrder(userId: string, offerId = "calls-100"): Promise<string> {
  const created = (await call("orders", "POST", `/users/${userId}/orders`, { offerId })).body as Json;
  expect((await deliver(stripeEvent("payment_intent.succeeded", stripe.succeed(created.payment.paymentIntentId)))).status).toBe(200);
  return created.order.orderId as string;
}

describe("a portal session", () => {
  it("is a link to the portal with the token in its fragment (never in a query string), for one user, expiring", async () => {
    clock.set(START);
    const { url, token, expires } = await session("auth0|ada", { returnUrl: "https://app.example/account", tags: ["calls"], ttlSeconds: 900 });
    expect(url).toMatch(/^https?:\/\/[^/?#]+\/portal#token=[\w-]+\.[\w-]+\.[\w-]+$/);
    expect(new URL(url).search).toBe("");
    expect(expires).toBe("2027-03-10T10:15:00.000Z");
    expect((await withToken("portal", token, "GET", "/portal/api/session")).body).toEqual({ userId: "auth0|ada", expires, returnUrl: "https://app.example/account", tags: ["calls"] });
    // Minting needs the API key: none, or a portal token, -> 401.
    expect((await api.send("portal", { method: "POST", path: "/users/u1/portal-sessions", body: {} })).status).toBe(401);
    expect((await withToken("portal", token, "POST", "/users/u1/portal-sessions", {})).status).toBe(401);
    // Bad bodies name their field; nothing is minted.
    for (const [body, field] of [[{ ttlSeconds: 10 }, "ttlSeconds"], [{ returnUrl: "not a url" }, "returnUrl"], [{ returnUrl: "javascript:alert(1)" }, "returnUrl"], [{ tags: "calls" }, "tags"], [{ admin: true }, "admin"]] as const) {
      expect(await call("portal", "POST", "/users/u1/portal-sessions", body)).toMatchObject({ status: 400, body: { error: { code: "validation_error", details: { [field]: expect.any(String) } } } });
    }
  });

  it("shows its user's credits, the offers they may buy (tags and unlocking as GET /offers?userId=), orders and ledger, and nobody else's", async () => {
    clock.set(START);
    stripe.now = clock.now();
    const ada = "portal-ada";
    const bob = "portal-bob";
    const adaOrder = await paidOrder(ada);
    const bobOrder = await paidOrder(bob);
    expect((await call("consumption", "POST", `/users/${ada}/consumptions`, { offerGroup: "calls", tokens: 60, metadata: { callId: "c-77" } })).status).toBe(201);
    const { token } = await session(ada, { tags: ["calls"] });
    const get = async (path: string) => withToken("portal", token, "GET", path);

    expect((await get("/portal/api/credits")).body).toMatchObject({ groups: [{ offerGroup: "calls", balance: 40 }] });
    // Tags from the session; vip-calls shows because ada's calls unlock it.
    expect(((await get("/portal/api/offers")).body as Json).offers.map((o: Json) => o.offerId).sort()).toEqual(["calls-100", "vip-calls"]);
    expect(((await get("/portal/api/orders")).body as Json).orders.map((o: Json) => o.orderId)).toEqual([adaOrder]);
    expect((await get(`/portal/api/orders/${adaOrder}`)).body).toMatchObject({ orderId: adaOrder, userId: ada, status: "paid" });
    expect((await get(`/portal/api/orders/${bobOrder}`)).status).toBe(404);
    const ledger = ((await get("/portal/api/ledger")).body as Json).entries as Json[];
    expect(ledger.map((e) => [e.reason, e.tokens])).toEqual([["purchase", 100], ["consume", -60]]);
    expect((await get("/portal/api/subscriptions/calls-100")).body).toMatchObject({ subscribed: true, order: { orderId: adaOrder } });
  });

  it("opens no admin route (401), and the API key opens no portal route (401)", async () => {
    clock.set(START);
    const { token } = await session("portal-mallory");
    const admin: Array<[HttpFunctionName, string, string, object?]> = [
      ["credits", "GET", "/users/portal-mallory/credits"],
      ["credits", "GET", "/users/portal-bob/ledger"],
      ["credits", "POST", "/users/portal-mallory/grants", { offerGroup: "calls", tokens: 1000 }],
      ["orders", "GET", "/users/portal-bob/orders"],
      ["offers", "PUT", "/offers/free-calls", { name: "free", offerGroup: "calls", cycle: "yearly", tokenCount: 1000, prices: [{ amount: 0, currency: "usd" }] }],
      ["consumption", "POST", "/users/portal-bob/consumptions", { offerGroup: "calls", tokens: 1 }],
    ];
    for (const [fn, method, path, body] of admin) {
      expect((await withToken(fn, token, method, path, body)).body, `${method} ${path}`).toEqual({ error: { code: "unauthorized", message: expect.any(String) } });
    }
    for (const path of ["/portal/api/session", "/portal/api/credits", "/portal/api/orders"]) expect((await call("portal", "GET", path)).status, path).toBe(401);
  });

  it("refuses a forged, altered or expired token (401)", async () => {
    clock.set(START);
    const { token } = await session("portal-eve", { ttlSeconds: 60 });
    const forged = await mintPortalToken("a-secret-that-is-not-the-service-0123456789", { userId: "portal-eve" }, clock.now());
    expect((await withToken("portal", forged.token, "GET", "/portal/api/credits")).status).toBe(401);
    const [header, , signature] = token.split(".");
    const claims = await mintPortalToken(PORTAL_SIGNING_SECRET, { userId: "portal-bob" }, clock.now());
    expect((await withToken("portal", `${header}.${claims.token.split(".")[1]}.${signature}`, "GET", "/portal/api/credits")).status).toBe(401);
    expect((await withToken("portal", token, "GET", "/portal/api/credits")).status).toBe(200);
    clock.advance(60_000);
    expect((await withToken("portal", token, "GET", "/portal/api/credits")).body).toMatchObject({ error: { code: "unauthorized", message: expect.stringMatching(/expired/) } });
  });

  it("buys through Stripe Checkout, back to the portal without the token in Stripe's URLs; the webhook then credits it", async () => {
    clock.set(START);
    stripe.now = clock.now();
    const u = "portal-buyer";
    const { url, token } = await session(u);
    const bought = await withToken("portal", token, "POST", "/portal/api/orders", { offerId: "calls-100", quantity: 2 });
    expect(bought).toMatchObject({ status: 201, body: { order: { userId: u, status: "pending", tokens: 200 }, payment: { provider: "stripe_checkout" } } });
    const sessionAtStripe = stripe.session((bought.body as Json).payment.checkoutSessionId);
    const portal = url.split("#")[0]!;
    expect(sessionAtStripe).toMatchObject({ success_url: `${portal}?checkout=success`, cancel_url: `${portal}?checkout=cancel` });
    expect(JSON.stringify(sessionAtStripe)).not.toContain(token);
    const paid = stripe.completeSession(sessionAtStripe.id as string);
    expect((await deliver(stripeEvent("checkout.session.completed", paid))).status).toBe(200);
    expect((await withToken("portal", token, "GET", "/portal/api/credits")).body).toMatchObject({ groups: [{ offerGroup: "calls", balance: 200 }] });
    // The receipt: Stripe's page of the charge, kept at fulfilment.
    const orderId = (bought.body as Json).order.orderId as string;
    expect((await withToken("portal", token, "GET", `/portal/api/orders/${orderId}`)).body).toMatchObject({ status: "paid", receiptUrl: stripe.chargeOf(sessionAtStripe.payment_intent as string).receipt_url });
    // An unknown offer, or a bad body, is refused naming the field.
    expect((await withToken("portal", token, "POST", "/portal/api/orders", { offerId: "nope" })).status).toBe(404);
    expect((await withToken("portal", token, "POST", "/portal/api/orders", { offerId: "calls-100", quantity: 0 })).body).toMatchObject({ error: { details: { quantity: expect.any(String) } } });
  });
});

describe("the pages", () => {
  const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

  it("are served without credentials, under a strict Content-Security-Policy, with no inline script, handler or style", async () => {
    for (const path of ["/portal", "/console"]) {
      const page = await api.send("portal", { method: "GET", path });
      expect(page.status, path).toBe(200);
      expect(page.headers["content-type"], path).toBe("text/html; charset=utf-8");
      expect(page.headers, path).toMatchObject({ "content-security-policy": CSP, "x-content-type-options": "nosniff", "referrer-policy": "no-referrer", "cache-control": "no-store" });
      const html = String(page.body);
      for (const script of html.match(/<script\b[^>]*>/g) ?? []) expect(script, path).toMatch(/ src="\/assets\/[\w-]+\.js"/);
      expect(html, path).not.toMatch(/<script\b[^>]*>[^<\s]/);
      expect(html, path).not.toMatch(/\son[a-z]+=/i);
      expect(html, path).not.toMatch(/\sstyle=|<style/i);
    }
  });

  it("serve their scripts and styles, and nothing else", async () => {
    for (const [file, type] of [["portal.js", "text/javascript; charset=utf-8"], ["console.js", "text/javascript; charset=utf-8"], ["style.css", "text/css; charset=utf-8"]] as const) {
      const asset = await api.send("portal", { method: "GET", path: `/assets/${file}` });
      expect(asset.status, file).toBe(200);
      expect(asset.headers["content-type"], file).toBe(type);
      expect(String(asset.body).length, file).toBeGreaterThan(100);
    }
    for (const file of ["portal.html", "secrets.json", "..%2Fportal.ts", "%2e%2e%2fpages.ts", "constructor"]) {
      expect((await api.send("portal", { method: "GET", path: `/assets/${file}` })).status, file).toBe(404);
    }
  });
});
