/**
 * The customer portal in a real browser (issue 14): Debian's `chromium`, headless, driven
 * by `playwright-core` (no browser download; `.ci/run` installs chromium when missing),
 * against `npm start` with the Stripe stand-in. The flow: the app mints a portal session,
 * the user opens the link, sees their balance and the offers, buys one through (the
 * stand-in's) Checkout, comes back to the portal, the signed webhook pays the order, and
 * the balance shows it; a forged and an expired token are refused. The operator console:
 * signed in with the API key, a user opened, the ledger read, an order refunded, the
 * balance change shown. Screenshots of both pages are written to docs/ for the README.
 */
import { existsSync, mkdirSync } from "node:fs";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { mintPortalToken } from "../../core/portal-sessions.js";
import { startLocalRunner, type LocalRunner } from "../helpers/local-runner.js";
import { signedDelivery, StripeStandIn, stripeEvent } from "../helpers/stripe-stand-in.js";

/** Debian's chromium (`apt-get install chromium`), or CHROMIUM_PATH. */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

const WEBHOOK_SECRET = "whsec_browser_portal_secret";
const PORTAL_SECRET = "browser-portal-signing-secret-0123456789abcdef";
const stripe = new StripeStandIn();
let runner: LocalRunner;
let browser: Browser;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`No chromium at ${CHROMIUM}: apt-get install chromium (.ci/run does), or set CHROMIUM_PATH.`);
  await stripe.start();
  [runner, browser] = await Promise.all([
    startLocalRunner({
      DYNAMODB_ENDPOINT: inject("dynamoEndpoint"),
      TABLE_NAME: `browser-portal-${process.pid}-${Date.now().toString(36)}`,
      STRIPE_SECRET_KEY: "sk_test_browser",
      STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET,
      STRIPE_API_URL: stripe.url,
      PORTAL_SIGNING_SECRET: PORTAL_SECRET,
    }),
    chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox"] }),
  ]);
  const offer = (name: string, tokenCount: number, amount: number) => ({ name, offerGroup: "calls", cycle: "yearly", tokenCount, prices: [{ amount, currency: "usd" }] });
  expect((await runner.request("PUT", "/offers/calls-100", { body: offer("100 calls", 100, 1000) })).status).toBe(200);
  expect((await runner.request("PUT", "/offers/calls-500", { body: offer("500 calls", 500, 4500) })).status).toBe(200);
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await runner?.stop();
  await stripe.stop();
});

/** A fresh page that sends no request outside the runner, except Checkout, which the test answers. */
async function newPage(): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1000, height: 900 } });
  page.on("pageerror", (error) => {
    throw error;
  });
  return page;
}

/**
 * What loading the page cost in the browser (Navigation and Resource Timing): the bytes of
 * the page and its same-origin scripts and styles, DOMContentLoaded and load (ms from the
 * navigation's start).
 */
async function pageWeight(page: Page): Promise<{ bytes: number; files: number; domContentLoadedMs: number; loadMs: number }> {
  // Runs in the page (the test's own types know no DOM: the browser's globals are read untyped).
  return page.evaluate(() => {
    type Timing = { name: string; decodedBodySize: number; domContentLoadedEventEnd: number; loadEventEnd: number };
    const browser = globalThis as unknown as { performance: { getEntriesByType(type: string): Timing[] }; location: { origin: string } };
    const nav = browser.performance.getEntriesByType("navigation")[0]!;
    const assets = browser.performance.getEntriesByType("resource").filter((entry) => new URL(entry.name).origin === browser.location.origin && /\.(js|css)$/.test(new URL(entry.name).pathname));
    return {
      bytes: nav.decodedBodySize + assets.reduce((sum, entry) => sum + entry.decodedBodySize, 0),
      files: 1 + assets.length,
      domContentLoadedMs: Math.round(nav.domContentLoadedEventEnd),
      loadMs: Math.round(nav.loadEventEnd),
    };
  });
}

/** The portal link of `userId`, as the app gets it (API key). */
async function portalLink(userId: string): Promise<string> {
  const minted = await runner.request("POST", `/users/${encodeURIComponent(userId)}/portal-sessions`, { body: { returnUrl: "https://app.example/account" } });
  expect(minted.status).toBe(201);
  return minted.body.url as string;
}

/** Posts `event` to the runner's webhook, signed as Stripe signs it. */
async function deliver(event: Record<string, unknown>): Promise<void> {
  const { body, signature } = signedDelivery(event, WEBHOOK_SECRET);
  expect((await runner.request("POST", "/webhooks/stripe", { auth: false, raw: body, headers: { "stripe-signature": signature, "content-type": "application/json" } })).status).toBe(200);
}

/** `user` bought 100 calls (paid, through the webhook) and spent `tokens` on call `callId`; returns the order id. */
async function boughtAndSpent(user: string, tokens: number, callId: string): Promise<string> {
  const bought = await runner.request("POST", `/users/${user}/orders`, { body: { offerId: "calls-100" } });
  await deliver(stripeEvent("payment_intent.succeeded", stripe.succeed(bought.body.payment.paymentIntentId)));
  expect((await runner.request("POST", `/users/${user}/consumptions`, { body: { offerGroup: "calls", tokens, metadata: { callId } } })).status).toBe(201);
  return bought.body.order.orderId as string;
}

describe("the customer portal, in chromium", () => {
  it("shows the user's balance and offers, buys through Checkout, and shows the tokens once the webhook paid", async () => {
    const user = "browser-ada";
    // 100 calls bought and paid earlier; 30 spent on a call.
    await boughtAndSpent(user, 30, "c-77");

    const page = await newPage();
    const started = Date.now();
    await page.goto(await portalLink(user));
    await page.getByTestId("balance-calls").waitFor();
    const loadMs = Date.now() - started;
    const weight = await pageWeight(page);
    expect(weight.files).toBe(3); // the page, its script, its stylesheet
    expect(weight.bytes).toBeLessThan(50_000);
    // The token left the address bar at once.
    expect(page.url()).toBe(`${runner.url}/portal`);
    await expect.poll(() => page.getByTestId("balance-calls").textContent()).toContain("70 tokens");
    expect(await page.getByTestId("ledger-entry").allTextContents()).toEqual(expect.arrayContaining([expect.stringMatching(/−30 tokens.*call c-77/)]));
    expect(await page.getByRole("heading", { name: "Buy" }).isVisible()).toBe(true);
    expect(await page.getByTestId("buy-calls-500").textContent()).toContain("500 calls");
    expect(await page.locator("text=$45.00").count()).toBeGreaterThan(0);
    mkdirSync("docs", { recursive: true });
    await page.screenshot({ path: "docs/portal.png", fullPage: true });

    // Buy: the portal sends the user to Checkout (the stand-in's URL, answered here), who pays.
    let checkoutUrl = "";
    await page.route("https://checkout.stripe.com/**", (route) => {
      checkoutUrl = route.request().url();
      return route.fulfill({ contentType: "text/html", body: "<!doctype html><title>Checkout</title><p>Stand-in Checkout</p>" });
    });
    await page.getByTestId("buy-calls-500").click();
    await page.waitForURL("https://checkout.stripe.com/**");
    const session = [...stripe.checkoutSessions.values()].find((candidate) => candidate.url === checkoutUrl)!;
    expect(session).toMatchObject({ metadata: { userId: user } });
    const paid = stripe.completeSession(session.id as string);
    // Back to the portal first (Stripe redirects at once; its webhook may come later).
    await page.goto(session.success_url as string);
    await expect.poll(() => page.getByTestId("status").textContent()).toMatch(/Payment received/);
    await deliver(stripeEvent("checkout.session.completed", paid));
    await expect.poll(() => page.getByTestId("balance-calls").textContent(), { timeout: 20_000 }).toContain("570 tokens");
    await expect.poll(() => page.getByTestId("status").textContent()).toMatch(/confirmed/);
    console.log(`portal page: ${weight.bytes} bytes in ${weight.files} files (HTML+JS+CSS), DOMContentLoaded ${weight.domContentLoadedMs} ms, load ${weight.loadMs} ms, balances shown ${loadMs} ms after the navigation began`);
    await page.close();
  });

  it("refuses a forged and an expired token: the page says the link cannot be used", async () => {
    for (const token of [
      (await mintPortalToken("not-the-deployment-secret-0123456789abcdef", { userId: "browser-eve" }, new Date())).token,
      (await mintPortalToken(PORTAL_SECRET, { userId: "browser-eve", ttlSeconds: 60 }, new Date(Date.now() - 120_000))).token,
    ]) {
      const page = await newPage();
      await page.goto(`${runner.url}/portal#token=${token}`);
      await page.getByRole("heading", { name: "This link cannot be used" }).waitFor();
      expect(await page.getByTestId("balance-calls").count()).toBe(0);
      await page.close();
    }
  });
});

describe("the operator console, in chromium", () => {
  it("signs in with the API key, opens a user, reads the ledger, refunds an order and shows the balance change", async () => {
    const user = "browser-support-case";
    const orderId = await boughtAndSpent(user, 25, "c-9");

    const page = await newPage();
    const started = Date.now();
    await page.goto(`${runner.url}/console`);
    await page.getByTestId("signin-key").waitFor();
    const loadMs = Date.now() - started;
    const weight = await pageWeight(page);
    expect(weight.files).toBe(4); // the page, its script, two stylesheets
    expect(weight.bytes).toBeLessThan(150_000);
    // A wrong key is refused, the right one signs in.
    await page.getByTestId("signin-key").fill("not-the-key");
    await page.getByTestId("signin-submit").click();
    await expect.poll(() => page.getByTestId("status").textContent()).toMatch(/unauthorized|key/i);
    await page.getByTestId("signin-key").fill(runner.apiKey);
    await page.getByTestId("signin-submit").click();
    await page.getByTestId("user-id").fill(user);
    await page.getByTestId("open-user").click();
    await expect.poll(() => page.getByTestId("balance-calls").textContent()).toBe("75");
    await expect.poll(async () => (await page.getByTestId("ledger-entry").allTextContents()).join("\n")).toMatch(/c-9/);
    await page.screenshot({ path: "docs/console.png", fullPage: true });

    // Refund the order's unused tokens: the balance goes to 0, the order is refunded.
    page.on("dialog", (dialog) => void dialog.accept());
    await page.getByTestId(`refund-${orderId}`).click();
    await page.getByTestId("refund-mode").selectOption("unused");
    await page.getByTestId("refund-confirm").click();
    await expect.poll(() => page.getByTestId("balance-calls").textContent(), { timeout: 20_000 }).toBe("0");
    await expect.poll(() => page.getByTestId(`order-${orderId}`).getAttribute("data-status")).toBe("refunded");
    expect((await runner.request("GET", `/users/${user}/orders/${orderId}`)).body).toMatchObject({ status: "refunded", refunds: [{ amount: 750, tokens: 75 }] });
    console.log(`console page: ${weight.bytes} bytes in ${weight.files} files (HTML+JS+CSS), DOMContentLoaded ${weight.domContentLoadedMs} ms, load ${weight.loadMs} ms, sign-in form shown ${loadMs} ms after the navigation began`);
    await page.close();
  });
});
