// The customer portal (issue 14): one user's balances, subscriptions, offers to buy,
// orders and activity, from the routes under /portal/api/, which take the portal session's
// token only. The token arrives in the URL's fragment (#token=...), moves to session
// storage at once, and the fragment is removed from the address bar and the history.
// No framework: the DOM is built with createElement and textContent (never innerHTML).

const TOKEN_KEY = "uc.portal.token";
const $ = (id) => document.getElementById(id);

/** The session's token: from the fragment on arrival (then removed), else from session storage. */
function takeToken() {
  const fromFragment = new URLSearchParams(location.hash.slice(1)).get("token");
  if (fromFragment) {
    sessionStorage.setItem(TOKEN_KEY, fromFragment);
    history.replaceState(null, "", location.pathname + location.search);
  }
  return sessionStorage.getItem(TOKEN_KEY);
}

const token = takeToken();

/** An API error: its code and message, as the API answers `{ error: { code, message } }`. */
class ApiError extends Error {
  constructor(status, error) {
    super(error?.message ?? `The service answered ${status}.`);
    this.status = status;
    this.code = error?.code ?? "error";
  }
}

/** Calls a portal route with the session's token; a 401 ends the session on this page. */
async function api(method, path, body) {
  const response = await fetch(path, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const data = await response.json().catch(() => null);
  if (response.status === 401) {
    sessionStorage.removeItem(TOKEN_KEY);
    showSignedOut();
  }
  if (!response.ok) throw new ApiError(response.status, data?.error);
  return data;
}

// --- Formatting ------------------------------------------------------------------------------

/** Money from integer minor units: usd 1000 -> $10.00, jpy 1000 -> ¥1,000. */
function money({ amount, currency }) {
  const format = new Intl.NumberFormat(undefined, { style: "currency", currency: currency.toUpperCase() });
  return format.format(amount / 10 ** format.resolvedOptions().maximumFractionDigits);
}

const number = (n) => new Intl.NumberFormat().format(n);
const day = (iso) => new Date(iso).toLocaleDateString(undefined, { day: "numeric", month: "short", year: "numeric" });

/** A <time> element showing `iso` as a date, the instant in its datetime attribute. */
function time(iso) {
  const element = el("time", {}, day(iso));
  element.dateTime = iso;
  element.title = new Date(iso).toLocaleString();
  return element;
}

/** An element with attributes and children (strings become text). */
function el(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "class") element.className = value;
    else if (name.startsWith("data-")) element.setAttribute(name, value);
    else element[name] = value;
  }
  for (const child of children.flat()) if (child !== null && child !== undefined) element.append(child instanceof Node ? child : String(child));
  return element;
}

/** Says something in the live region (`kind`: "ok", "error" or plain). */
function say(message, kind = "") {
  const status = $("status");
  status.textContent = message;
  status.className = `status ${kind}`;
}

// --- The sections ----------------------------------------------------------------------------

/** Balances per offer group: spendable, held, debt, and each grant's remaining tokens and expiry. */
function renderBalances(credits) {
  const groups = credits.groups.filter((group) => group.grants.length > 0 || group.balance !== 0 || group.held > 0);
  $("balances").replaceChildren(
    ...(groups.length === 0
      ? [el("p", { class: "muted" }, "No credits yet.")]
      : groups.map((group) =>
          el(
            "article",
            { class: "card", "data-testid": `balance-${group.offerGroup}` },
            el("h3", {}, group.offerGroup),
            el("p", { class: "big" }, `${number(group.balance)} tokens`),
            group.held > 0 ? el("p", { class: "small muted" }, `${number(group.held)} held for work in progress`) : null,
            group.debt > 0 ? el("p", { class: "small" }, `${number(group.debt)} tokens owed`) : null,
            el(
              "ul",
              { class: "small muted" },
              group.grants.map((grant) => el("li", {}, `${number(grant.remaining)} of ${number(grant.tokens)}`, grant.expires ? [", expire ", time(grant.expires)] : ", never expire")),
            ),
          ),
        )),
  );
}

/** Renewing subscriptions (with their renewal date, and cancel) and the other running periods. */
async function renderSubscriptions(credits) {
  const list = el("ul", {});
  for (const period of credits.subscriptions) {
    const check = await api("GET", `/portal/api/subscriptions/${encodeURIComponent(period.offerId)}`);
    const item = el("li", { "data-testid": `subscription-${period.offerId}` }, el("strong", {}, period.offerId), " ");
    if (check.renews) {
      item.append("renews ", time(check.currentPeriodEnd), " ");
      const cancel = el("button", { type: "button", class: "secondary" }, "Cancel at the end of the period");
      cancel.addEventListener("click", () => cancelSubscription(period.offerId, cancel));
      item.append(cancel);
    } else if (check.cancelAtPeriodEnd) {
      item.append("ends ", time(check.currentPeriodEnd));
    } else if (period.expires) {
      item.append("until ", time(period.expires));
    } else {
      item.append("no end date");
    }
    list.append(item);
  }
  $("subscriptions").replaceChildren(credits.subscriptions.length === 0 ? el("p", { class: "muted" }, "No running subscription.") : list);
}

/** The offers the user may buy, each with its price and a Buy button. */
function renderOffers(offers) {
  $("offers").replaceChildren(
    ...(offers.length === 0
      ? [el("p", { class: "muted" }, "Nothing to buy right now.")]
      : offers.map((offer) => {
          const buy = el("button", { type: "button", "data-testid": `buy-${offer.offerId}` }, `Buy ${offer.name}`);
          buy.addEventListener("click", () => order(offer, buy));
          const price = offer.prices[0];
          return el(
            "article",
            { class: "card" },
            el("h3", {}, offer.name),
            el("p", { class: "big" }, price ? money(price) : ""),
            el("p", { class: "small muted" }, `${number(offer.tokenCount)} tokens · ${offer.offerGroup}${offer.renewal === "auto" ? ` · renews ${offer.cycle}` : ""}`),
            buy,
          );
        })),
  );
}

const ORDER_STATUS = { pending: "awaiting payment", paid: "paid", error: "payment failed", refused: "refused", refunded: "refunded", disputed: "disputed", expired: "ended" };

/** The user's orders, newest first, with their total, status and receipt. */
function renderOrders(page) {
  $("orders").tBodies[0].replaceChildren(
    ...page.orders.map((order) => {
      const status = order.status === "pending" && order.provider === "manual" ? "awaiting confirmation" : (ORDER_STATUS[order.status] ?? order.status);
      const receipt = order.receiptUrl ? el("a", { href: order.receiptUrl, rel: "noopener noreferrer", target: "_blank" }, "Receipt") : "";
      return el("tr", { "data-testid": `order-${order.orderId}` }, el("td", {}, time(order.createdAt)), el("td", {}, order.offerName), el("td", {}, money(order.total)), el("td", { "data-testid": "order-status" }, status), el("td", {}, receipt));
    }),
  );
}

const LEDGER_WORDS = { purchase: "Bought", consume: "Used", expire: "Expired", refund: "Refunded", adjust: "Adjusted", hold: "Held", release: "Released", reverse: "Given back" };

/** One ledger entry as a line: "-60 tokens · 12 Mar 2027 · Used · call c-77". */
function ledgerLine(entry) {
  const sign = entry.tokens >= 0 ? "+" : "−";
  const what = entry.metadata?.callId !== undefined ? `call ${entry.metadata.callId}` : entry.metadata?.reason ?? "";
  return el(
    "li",
    { "data-testid": "ledger-entry" },
    el("span", { class: entry.tokens >= 0 ? "plus" : "minus" }, `${sign}${number(Math.abs(entry.tokens))} tokens`),
    time(entry.createdAt),
    el("span", {}, `${LEDGER_WORDS[entry.reason] ?? entry.reason} · ${entry.offerGroup}`),
    what ? el("span", { class: "muted" }, what) : null,
  );
}

let ledgerCursor = null;

/** Appends a page of the ledger (newest first). */
async function loadLedger(first) {
  const query = new URLSearchParams({ limit: "25", ...(first || !ledgerCursor ? {} : { cursor: ledgerCursor }) });
  const page = await api("GET", `/portal/api/ledger?${query}`);
  const entries = [...page.entries].reverse();
  if (first) $("ledger").replaceChildren(...entries.map(ledgerLine));
  else $("ledger").append(...entries.map(ledgerLine));
  ledgerCursor = page.cursor;
  $("more-ledger").hidden = !page.cursor;
}

// --- Actions ---------------------------------------------------------------------------------

/** Buys `offer`: to Stripe Checkout (back here after paying), or a pending order the operator confirms. */
async function order(offer, button) {
  button.disabled = true;
  try {
    const { order: made, payment } = await api("POST", "/portal/api/orders", { offerId: offer.offerId });
    if (payment?.provider === "stripe_checkout") {
      say("Taking you to the payment page…");
      location.assign(payment.url);
      return;
    }
    say(payment === null ? `${offer.name}: done.` : `${offer.name}: ordered, awaiting confirmation.`, "ok");
    await refresh();
    $(`order-${made.orderId}`)?.focus?.();
  } catch (error) {
    say(`Could not buy ${offer.name}: ${error.message}`, "error");
  } finally {
    button.disabled = false;
  }
}

/** Cancels a renewing subscription at the end of its paid period. */
async function cancelSubscription(offerId, button) {
  if (!window.confirm("Cancel this subscription? It stays active until the end of the period you paid for.")) return;
  button.disabled = true;
  try {
    await api("DELETE", `/portal/api/subscriptions/${encodeURIComponent(offerId)}`, { atPeriodEnd: true });
    say("Your subscription will end with the current period.", "ok");
    await refresh();
  } catch (error) {
    say(`Could not cancel: ${error.message}`, "error");
    button.disabled = false;
  }
}

// --- The page --------------------------------------------------------------------------------

function showSignedOut() {
  $("signed-in").hidden = true;
  $("signed-out").hidden = false;
}

/** Reads everything the page shows and renders it. */
async function refresh() {
  const [credits, offers, orders] = await Promise.all([api("GET", "/portal/api/credits"), api("GET", "/portal/api/offers"), api("GET", "/portal/api/orders?limit=20")]);
  renderBalances(credits);
  renderOffers(offers.offers);
  renderOrders(orders);
  await Promise.all([renderSubscriptions(credits), loadLedger(true)]);
  return orders;
}

/** After Stripe Checkout: says how it went, and refreshes while the payment is being confirmed. */
async function afterCheckout(orders) {
  const outcome = new URLSearchParams(location.search).get("checkout");
  if (!outcome) return;
  history.replaceState(null, "", location.pathname);
  if (outcome === "cancel") return say("Payment cancelled: nothing was charged.");
  say("Payment received: your tokens appear as soon as Stripe confirms it.", "ok");
  let pending = orders.orders.some((order) => order.status === "pending");
  for (let tries = 0; pending && tries < 10; tries++) {
    await new Promise((resolve) => setTimeout(resolve, 1500));
    pending = (await refresh()).orders.some((order) => order.status === "pending");
  }
  if (!pending) say("Payment confirmed: your tokens are here.", "ok");
}

async function start() {
  if (!token) return showSignedOut();
  try {
    const session = await api("GET", "/portal/api/session");
    $("signed-in").hidden = false;
    $("session").textContent = `This page stays open for you until ${new Date(session.expires).toLocaleString()}.`;
    if (/^https?:\/\//.test(session.returnUrl ?? "")) Object.assign($("back"), { href: session.returnUrl, hidden: false });
    $("more-ledger").addEventListener("click", () => loadLedger(false).catch((error) => say(error.message, "error")));
    await afterCheckout(await refresh());
  } catch (error) {
    if (error.status !== 401) say(`Something went wrong: ${error.message}`, "error");
  }
}

start();
