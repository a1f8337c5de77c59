/**
 * The operator console of user-credits (issue 14, point 3; API.md "Customer portal and
 * operator console"): one static page, `GET /console`, served by the API itself, that
 * reads and acts on one user at a time and edits the offer catalog, through the public
 * HTTP API only (same origin, `Authorization: Bearer <API key>`).
 *
 * Rules this file keeps (the page runs under a strict Content-Security-Policy):
 * - no inline script, style or event handler, no eval: every listener is added here;
 * - the DOM is built with `document.createElement` and text nodes only (see {@link el}):
 *   user ids, metadata and messages are attacker-controlled strings and never parsed as HTML;
 * - the API key lives in `sessionStorage` (`uc.console.apiKey`) and goes only to this
 *   origin; a 401 answer forgets it and shows the sign-in form again;
 * - every action that moves money or tokens asks for confirmation first (a modal
 *   `<dialog>`), carries an `Idempotency-Key` (one per dialog and body, so a retry after a
 *   lost answer cannot act twice), shows the API's answer, and reloads the user's view.
 *
 * Read top to bottom: constants and state, DOM and formatting helpers, status region,
 * API access and sign-in, the confirmation dialog, form field errors, the user view
 * (credits, grant form, ledger, orders, reservations, events) and its actions, the offer
 * catalog and its editor, then start-up.
 */

// ---------------------------------------------------------------------------
// Constants and state
// ---------------------------------------------------------------------------

/** sessionStorage key of the operator's API key. */
const KEY_STORAGE = "uc.console.apiKey";
/** Page sizes of the user view's lists. */
const PAGE_SIZE = { ledger: 50, orders: 20, reservations: 50, events: 50 };
/** Offer kinds (functions/schemas.ts `offerBody.kind`). */
const KINDS = ["tokens", "subscription", "expertise"];
/** Offer cycles (core/rules/cycles.ts `CYCLES`). */
const CYCLES = ["once", "daily", "weekly", "bi-weekly", "monthly", "trimester", "semester", "yearly", "custom"];
/** Offer renewals (core/rules/renewal.ts `RENEWALS`). */
const RENEWALS = ["none", "auto"];
/** Order statuses from which a refund can be asked (API.md: `paid`, or `expired` for `full`). */
const REFUNDABLE = ["paid", "expired"];
/** Order statuses in which a payment may still arrive (sync with Stripe, manual confirm). */
const UNPAID = ["pending", "refused", "error"];

/**
 * What the page shows now: the open user (`userId`), a counter that changes whenever the
 * user view is replaced (answers for an older view are dropped), and the offers last listed.
 */
const state = { userId: null, view: 0, offers: [] };

/** A counter for unique element ids of generated fields. */
let nextFieldId = 0;

/** The page's fixed elements (console.html), by role. */
const page = {
  status: byId("status"),
  loading: byId("loading"),
  signin: byId("signin"),
  signinForm: byId("signin-form"),
  signinKey: byId("signin-key"),
  signinMessage: byId("signin-message"),
  signOut: byId("sign-out"),
  app: byId("app"),
  userForm: byId("user-form"),
  userId: byId("user-id"),
  userView: byId("user-view"),
  offerList: byId("offer-list"),
  offerEditor: byId("offer-editor"),
  reloadOffers: byId("reload-offers"),
  newOffer: byId("new-offer"),
  answer: byId("answer"),
  dialog: byId("confirm-dialog"),
  dialogForm: byId("confirm-form"),
  dialogTitle: byId("confirm-title"),
  dialogSummary: byId("confirm-summary"),
  dialogFields: byId("confirm-fields"),
  dialogError: byId("confirm-error"),
  dialogCancel: byId("confirm-cancel"),
  dialogSubmit: byId("confirm-submit"),
};

// ---------------------------------------------------------------------------
// DOM helpers (text only, never HTML)
// ---------------------------------------------------------------------------

/**
 * The element with this id in console.html.
 * @param {string} id
 * @returns {HTMLElement}
 */
function byId(id) {
  const node = document.getElementById(id);
  if (!node) throw new Error(`console.html has no #${id}`);
  return node;
}

/**
 * Creates an element. Attribute values are set with `setAttribute` (`true`: present and
 * empty; `false`, `null`, `undefined`: left out). Children are nodes or strings; strings
 * become text nodes, so no data is ever parsed as HTML.
 * @param {string} tag
 * @param {Record<string, string | number | boolean | null | undefined>} [attributes]
 * @param {...(Node | string | number | null | undefined | false | Array<any>)} children
 * @returns {HTMLElement}
 */
function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    node.setAttribute(name, value === true ? "" : String(value));
  }
  return append(node, children);
}

/**
 * Appends children (nested arrays flattened; strings as text; null, undefined and false skipped).
 * @param {HTMLElement} parent
 * @param {Array<any>} children
 * @returns {HTMLElement} the parent
 */
function append(parent, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(child instanceof Node ? child : String(child));
  }
  return parent;
}

/**
 * Replaces all children of `parent`.
 * @param {HTMLElement} parent
 * @param {...any} children
 */
function replace(parent, ...children) {
  parent.replaceChildren();
  append(parent, children);
}

/**
 * A unique element id with a readable prefix (for generated labels and controls).
 * @param {string} prefix
 * @returns {string}
 */
function fieldId(prefix) {
  nextFieldId += 1;
  return `${prefix}-${nextFieldId}`;
}

/**
 * A `<dl>` of the pairs whose value is neither undefined nor null.
 * @param {Array<[string, any]>} pairs term and description (node or text)
 * @returns {HTMLElement}
 */
function definitions(pairs) {
  const list = el("dl", { class: "facts" });
  for (const [term, value] of pairs) {
    if (value === undefined || value === null) continue;
    list.append(el("div", {}, el("dt", {}, term), el("dd", {}, value)));
  }
  return list;
}

/**
 * A table in a keyboard-scrollable region (narrow screens scroll it sideways).
 * @param {string} caption the table's caption and the region's name
 * @param {string[]} headings column headings
 * @returns {{ root: HTMLElement, rows: HTMLElement }} the wrapper, and the tbody to fill
 */
function dataTable(caption, headings) {
  const rows = el("tbody");
  const table = el(
    "table",
    {},
    el("caption", { class: "visually-hidden" }, caption),
    el("thead", {}, el("tr", {}, headings.map((heading) => el("th", { scope: "col" }, heading)))),
    rows,
  );
  return { root: el("div", { class: "scroll", role: "region", "aria-label": caption, tabindex: 0 }, table), rows };
}

/**
 * An element for a generated id (ULID, Stripe id): monospace, breakable.
 * @param {string | null | undefined} id
 * @returns {HTMLElement | string}
 */
function idText(id) {
  return typeof id === "string" && id !== "" ? el("code", { class: "id" }, id) : "—";
}

/**
 * A collapsed `<details>` holding a value as indented JSON text (metadata, payloads).
 * @param {string} summary
 * @param {unknown} value
 * @returns {HTMLElement}
 */
function jsonDetails(summary, value) {
  return el("details", {}, el("summary", {}, summary), el("pre", { class: "json" }, JSON.stringify(value, null, 2)));
}

/**
 * A status word as a badge; the class is added only for plain lowercase words.
 * @param {string} status
 * @returns {HTMLElement}
 */
function badge(status) {
  const word = String(status);
  return el("span", { class: /^[a-z_]+$/.test(word) ? `badge badge-${word}` : "badge" }, word);
}

// ---------------------------------------------------------------------------
// Formatting: money, tokens, dates
// ---------------------------------------------------------------------------

/** Currency formats by lowercase code, with their number of minor-unit digits. */
const moneyFormats = new Map();

/**
 * The browser-locale format of a currency and its minor-unit digits (the format's
 * `maximumFractionDigits`: 2 for usd, 0 for jpy).
 * @param {string} currency lowercase ISO 4217
 * @returns {{ format: Intl.NumberFormat, digits: number }}
 * @throws {RangeError} for a code Intl does not accept
 */
function moneyFormat(currency) {
  let entry = moneyFormats.get(currency);
  if (!entry) {
    const format = new Intl.NumberFormat(undefined, { style: "currency", currency: currency.toUpperCase() });
    entry = { format, digits: format.resolvedOptions().maximumFractionDigits ?? 2 };
    moneyFormats.set(currency, entry);
  }
  return entry;
}

/**
 * Money as the browser shows it: `{ amount: 1000, currency: "usd" }` -> "$10.00", jpy 1000 -> "¥1,000".
 * Amounts are integer minor units (API.md "Money"); a code Intl refuses is shown raw.
 * @param {{ amount: number, currency: string } | null | undefined} money
 * @returns {string}
 */
function formatMoney(money) {
  if (!money || typeof money.amount !== "number" || typeof money.currency !== "string") return "—";
  try {
    const { format, digits } = moneyFormat(money.currency);
    return format.format(money.amount / 10 ** digits);
  } catch {
    return `${money.amount} ${money.currency} (minor units)`;
  }
}

/**
 * A signed token count with an explicit `+` for gains (ledger movements).
 * @param {number} tokens
 * @returns {string}
 */
function signedTokens(tokens) {
  return tokens > 0 ? `+${tokens}` : String(tokens);
}

/**
 * A date in the browser's locale inside `<time datetime>`, the ISO value as its title.
 * @param {string | null | undefined} iso an ISO 8601 instant
 * @param {string} [empty] text when there is no date (e.g. "never" for no expiry)
 * @returns {Node}
 */
function timeText(iso, empty = "—") {
  if (typeof iso !== "string" || iso === "") return document.createTextNode(empty);
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return document.createTextNode(iso);
  return el("time", { datetime: iso, title: iso }, date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" }));
}

// ---------------------------------------------------------------------------
// Status region and the last answer
// ---------------------------------------------------------------------------

/**
 * Says something in the live status region (`data-testid="status"`).
 * @param {string} message
 * @param {"info" | "ok" | "error"} [kind]
 */
function announce(message, kind = "info") {
  page.status.textContent = message;
  page.status.className = `status status-${kind}`;
}

/**
 * Shows an API answer (or error body) as JSON in the "Last answer" panel.
 * @param {unknown} value
 */
function showAnswer(value) {
  page.answer.textContent = value === undefined ? "(no body)" : JSON.stringify(value, null, 2);
}

/**
 * One line for an error: `code: message`, then each detail (`field: problem`).
 * @param {unknown} error
 * @returns {string}
 */
function describeError(error) {
  if (error instanceof ApiError) {
    const details = error.details && typeof error.details === "object" ? Object.entries(error.details) : [];
    const listed = details.map(([name, value]) => `${name}: ${typeof value === "string" ? value : JSON.stringify(value)}`);
    return `${error.code}: ${error.message}${listed.length > 0 ? ` (${listed.join("; ")})` : ""}`;
  }
  return `error: ${error instanceof Error ? error.message : String(error)}`;
}

// ---------------------------------------------------------------------------
// API access
// ---------------------------------------------------------------------------

/** An error answer of the API (`{ error: { code, message, details? } }`), or a network failure (status 0). */
class ApiError extends Error {
  /**
   * @param {number} status HTTP status (0: no answer)
   * @param {string} code the API's error code (`validation_error`, `conflict`, ...)
   * @param {string} message
   * @param {Record<string, unknown> | undefined} details
   * @param {unknown} [body] the whole answer, for the "Last answer" panel
   */
  constructor(status, code, message, details, body) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
    this.body = body;
  }
}

/** Thrown after a 401 (or a missing key) has signed the operator out: callers stop quietly. */
class SignedOut extends Error {}

/**
 * One path segment, percent-encoded. `.` and `..` are refused: browsers resolve them as
 * dot segments even when encoded (`%2e%2e`), so the request would reach another route.
 * @param {string} value
 * @returns {string}
 * @throws {ApiError} `unaddressable_id`
 */
function segment(value) {
  const text = String(value);
  if (text === "." || text === "..") throw new ApiError(0, "unaddressable_id", `The id "${text}" cannot be sent in a URL path.`, undefined);
  return encodeURIComponent(text);
}

/**
 * An API path from segments, each percent-encoded: `apiPath("users", "auth0|1", "credits")`
 * -> `/users/auth0%7C1/credits`.
 * @param {...string} segments
 * @returns {string}
 */
function apiPath(...segments) {
  return `/${segments.map(segment).join("/")}`;
}

/**
 * A path under the open user: `/users/{userId}/...`.
 * @param {string} userId
 * @param {...string} rest
 * @returns {string}
 */
function userPath(userId, ...rest) {
  return apiPath("users", userId, ...rest);
}

/**
 * A fresh `Idempotency-Key` (128 random bits, hex).
 * @returns {string}
 */
function newIdempotencyKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return `console-${Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("")}`;
}

/**
 * The body of a response as JSON, or null when it is empty or not JSON.
 * @param {Response} response
 * @returns {Promise<any>}
 */
async function readJson(response) {
  const text = await response.text();
  if (text === "") return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/**
 * Calls the API on this origin with the stored key.
 * @param {"GET" | "POST" | "PUT"} method
 * @param {string} path from {@link apiPath} / {@link userPath}
 * @param {{ query?: Record<string, string | number | null | undefined>, body?: unknown, idempotencyKey?: string }} [options]
 * @returns {Promise<any>} the parsed JSON answer of a 2xx
 * @throws {ApiError} any other answer, or no answer (status 0, `network_error`)
 * @throws {SignedOut} on 401 or without a key, after showing the sign-in form
 */
async function api(method, path, options = {}) {
  const key = storedKey();
  if (!key) {
    showSignIn("Sign in first.", "error");
    throw new SignedOut();
  }
  const url = new URL(path, window.location.origin);
  if (url.origin !== window.location.origin) throw new ApiError(0, "bad_path", "Refusing a request to another origin.", undefined);
  for (const [name, value] of Object.entries(options.query ?? {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, String(value));
  }
  const headers = { Accept: "application/json", Authorization: `Bearer ${key}` };
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  if (options.idempotencyKey) headers["Idempotency-Key"] = options.idempotencyKey;
  let response;
  try {
    response = await fetch(url, {
      method,
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      credentials: "omit",
      cache: "no-store",
      redirect: "error",
    });
  } catch (error) {
    throw new ApiError(0, "network_error", error instanceof Error ? error.message : String(error), undefined);
  }
  const data = await readJson(response);
  if (response.status === 401) {
    showSignIn("The API refused the key (401 unauthorized). Sign in again.", "error");
    throw new SignedOut();
  }
  if (!response.ok) {
    const error = data && typeof data === "object" ? data.error : undefined;
    throw new ApiError(
      response.status,
      typeof error?.code === "string" ? error.code : `http_${response.status}`,
      typeof error?.message === "string" ? error.message : response.statusText || "request failed",
      error?.details && typeof error.details === "object" ? error.details : undefined,
      data,
    );
  }
  return data;
}

// ---------------------------------------------------------------------------
// Sign-in and sign-out
// ---------------------------------------------------------------------------

/**
 * The stored API key, or null (storage may be unavailable).
 * @returns {string | null}
 */
function storedKey() {
  try {
    return window.sessionStorage.getItem(KEY_STORAGE);
  } catch {
    return null;
  }
}

/**
 * Keeps the API key for this tab.
 * @param {string} key
 */
function storeKey(key) {
  window.sessionStorage.setItem(KEY_STORAGE, key);
}

/** Forgets the API key. */
function forgetKey() {
  try {
    window.sessionStorage.removeItem(KEY_STORAGE);
  } catch {
    // Storage unavailable: there is nothing kept either.
  }
}

/**
 * Signs out: forgets the key, clears every view of data, and shows the sign-in form with
 * an optional message.
 * @param {string} [message]
 * @param {"info" | "error"} [kind]
 */
function showSignIn(message, kind = "info") {
  forgetKey();
  clearApp();
  page.loading.hidden = true;
  page.app.hidden = true;
  page.signOut.hidden = true;
  page.signin.hidden = false;
  page.signinMessage.textContent = message ?? "";
  page.signinMessage.hidden = !message;
  page.signinMessage.className = kind === "error" ? "message-error" : "message-info";
  if (message) announce(message, kind);
  page.signinKey.value = "";
  page.signinKey.focus();
}

/** Shows the signed-in console. */
function showApp() {
  page.loading.hidden = true;
  page.signin.hidden = true;
  page.app.hidden = false;
  page.signOut.hidden = false;
}

/** Removes every user's and offer's data from the page (sign-out). */
function clearApp() {
  state.userId = null;
  state.view += 1;
  state.offers = [];
  if (page.dialog.open) page.dialog.close();
  page.userId.value = "";
  page.userView.replaceChildren();
  page.offerList.replaceChildren();
  page.offerEditor.replaceChildren();
  page.answer.textContent = "(none yet)";
}

/**
 * The sign-in form's submit: keeps the key, checks it by listing the offers (a 401 signs
 * out again with a message), then shows the console.
 * @param {SubmitEvent} event
 */
async function onSignIn(event) {
  event.preventDefault();
  const key = page.signinKey.value.trim();
  if (!/^[\x21-\x7e]{1,4096}$/.test(key)) {
    page.signinMessage.textContent = "An API key is printable ASCII without spaces.";
    page.signinMessage.className = "message-error";
    page.signinMessage.hidden = false;
    page.signinKey.focus();
    return;
  }
  storeKey(key);
  page.signinKey.value = "";
  announce("Checking the key…");
  if (await loadOffers()) {
    showApp();
    announce("Signed in.", "ok");
    page.userId.focus();
  }
}

/** The sign-out button. */
function onSignOut() {
  showSignIn("Signed out.");
}

// ---------------------------------------------------------------------------
// The confirmation dialog
// ---------------------------------------------------------------------------

/**
 * @typedef {object} ConfirmOptions
 * @property {string} title the dialog's heading
 * @property {Array<Node | string>} summary what will happen, one item per line
 * @property {HTMLElement[]} [fields] inputs the action needs (built with {@link field})
 * @property {string} confirmLabel the confirm button's text
 * @property {string} [confirmTestId] the confirm button's data-testid (default `confirm-submit`)
 * @property {(keyFor: (body: unknown) => string) => Promise<unknown>} run performs the
 *   action; `keyFor(body)` gives the Idempotency-Key for that body (the same for a retry)
 * @property {(result: any) => string} done the status message after success
 * @property {() => Promise<void>} [after] what to reload after success
 * @property {(error: ApiError) => boolean} [onError] shows an error elsewhere (a form
 *   behind the dialog) and returns true to close the dialog
 */

/** The dialog's open action: its options, the keys used per body, and whether it runs. */
let dialogSession = null;

/**
 * Opens the confirmation dialog for one action.
 * @param {ConfirmOptions} options
 */
function confirmAction(options) {
  if (page.dialog.open) page.dialog.close();
  dialogSession = { options, keys: new Map(), running: false };
  page.dialogTitle.textContent = options.title;
  replace(page.dialogSummary, el("ul", { class: "summary" }, options.summary.map((line) => el("li", {}, line))));
  replace(page.dialogFields, options.fields ?? []);
  page.dialogError.hidden = true;
  page.dialogError.textContent = "";
  page.dialogSubmit.textContent = options.confirmLabel;
  page.dialogSubmit.setAttribute("data-testid", options.confirmTestId ?? "confirm-submit");
  page.dialogSubmit.disabled = false;
  page.dialog.showModal();
  const first = page.dialogFields.querySelector("input, select, textarea");
  (first ?? page.dialogSubmit).focus();
}

/**
 * The Idempotency-Key of a dialog's body: new for each different body, the same for a
 * repeat (so a retry after a lost answer is not applied twice, and a changed body is not
 * refused as `idempotency_conflict`).
 * @param {{ keys: Map<string, string> }} session
 * @param {unknown} body
 * @returns {string}
 */
function keyForBody(session, body) {
  const id = JSON.stringify(body);
  if (!session.keys.has(id)) session.keys.set(id, newIdempotencyKey());
  return session.keys.get(id);
}

/**
 * The dialog's submit: runs the action; on success closes the dialog, shows the answer and
 * reloads; on error keeps it open with the error (fields marked), unless `onError` took it.
 * @param {SubmitEvent} event
 */
async function onConfirmSubmit(event) {
  event.preventDefault();
  const session = dialogSession;
  if (!session || session.running) return;
  const { options } = session;
  session.running = true;
  page.dialogSubmit.disabled = true;
  page.dialogError.hidden = true;
  clearFieldErrors(page.dialogFields);
  try {
    const result = await options.run((body) => keyForBody(session, body));
    page.dialog.close();
    showAnswer(result);
    if (options.after) await options.after();
    if (storedKey()) announce(options.done(result), "ok");
  } catch (error) {
    if (error instanceof SignedOut) return;
    const message = describeError(error);
    announce(message, "error");
    if (error instanceof ApiError) showAnswer(error.body ?? { error: { code: error.code, message: error.message, details: error.details } });
    if (error instanceof ApiError && options.onError?.(error)) {
      page.dialog.close();
      return;
    }
    if (error instanceof ApiError && error.code === "validation_error") showFieldErrors(page.dialogFields, error.details);
    page.dialogError.textContent = message;
    page.dialogError.hidden = false;
  } finally {
    session.running = false;
    page.dialogSubmit.disabled = false;
  }
}

/** The dialog's Cancel button (ignored while the action runs). */
function onConfirmCancel() {
  if (!dialogSession?.running) page.dialog.close();
}

/**
 * Escape on the dialog: cancels, except while the action runs.
 * @param {Event} event
 */
function onDialogCancel(event) {
  if (dialogSession?.running) event.preventDefault();
}

/** The dialog closed: forget its action (unless another one has opened it again meanwhile). */
function onDialogClose() {
  if (page.dialog.open) return;
  dialogSession = null;
  page.dialogFields.replaceChildren();
}

// ---------------------------------------------------------------------------
// Form fields and their errors
// ---------------------------------------------------------------------------

/**
 * A labelled field: `<label>`, optional hint, the control, and an error slot for the
 * API's field path (`details` of a `validation_error`, e.g. `prices.0.amount`).
 * @param {{ label: string, control: HTMLElement, path?: string, hint?: string, id?: string }} spec
 * @returns {HTMLElement}
 */
function field({ label, control, path, hint, id }) {
  const controlId = id ?? fieldId("field");
  const hintId = hint ? `${controlId}-hint` : null;
  const errorId = `${controlId}-error`;
  control.id = controlId;
  control.setAttribute("aria-describedby", [hintId, errorId].filter(Boolean).join(" "));
  return el(
    "div",
    { class: control.getAttribute("type") === "checkbox" ? "field field-checkbox" : "field" },
    el("label", { for: controlId }, label),
    hint ? el("p", { class: "hint", id: hintId }, hint) : null,
    control,
    errorSlot(path ?? controlId, errorId, controlId),
  );
}

/**
 * An (empty, hidden) error message for a field path.
 * @param {string} path the API's dotted field path
 * @param {string} [id]
 * @param {string} [controlId] the control to mark `aria-invalid`
 * @returns {HTMLElement}
 */
function errorSlot(path, id, controlId) {
  return el("p", { class: "field-error", id: id ?? null, "data-error-for": path, "data-control": controlId ?? null, hidden: true });
}

/**
 * A `<select>` of values.
 * @param {string[]} values
 * @param {string | undefined} selected
 * @returns {HTMLElement}
 */
function selectOf(values, selected) {
  return el("select", {}, values.map((value) => el("option", { value, selected: value === selected }, value)));
}

/**
 * Hides every field error inside `container`.
 * @param {HTMLElement} container
 */
function clearFieldErrors(container) {
  for (const slot of container.querySelectorAll("[data-error-for]")) {
    slot.textContent = "";
    slot.hidden = true;
    const control = slot.dataset.control ? document.getElementById(slot.dataset.control) : null;
    control?.removeAttribute("aria-invalid");
  }
}

/**
 * Shows a `validation_error`'s details next to their fields: each dotted path goes to the
 * slot of that path, or of its nearest parent (`prices.0.amount`, `prices.0`, `prices`).
 * @param {HTMLElement} container
 * @param {Record<string, unknown> | undefined} details
 * @returns {string[]} the messages no slot took (to show with the form)
 */
function showFieldErrors(container, details) {
  const slots = new Map();
  for (const slot of container.querySelectorAll("[data-error-for]")) slots.set(slot.dataset.errorFor, slot);
  const unplaced = [];
  for (const [path, value] of Object.entries(details ?? {})) {
    const message = typeof value === "string" ? value : JSON.stringify(value);
    const slot = nearestSlot(slots, path);
    if (!slot) {
      unplaced.push(`${path}: ${message}`);
      continue;
    }
    const label = slot.dataset.errorFor === path ? message : `${path}: ${message}`;
    slot.textContent = slot.textContent ? `${slot.textContent}; ${label}` : label;
    slot.hidden = false;
    const control = slot.dataset.control ? document.getElementById(slot.dataset.control) : null;
    control?.setAttribute("aria-invalid", "true");
  }
  return unplaced;
}

/**
 * The error slot of `path` or of its nearest parent path.
 * @param {Map<string, HTMLElement>} slots by path
 * @param {string} path
 * @returns {HTMLElement | undefined}
 */
function nearestSlot(slots, path) {
  const parts = path.split(".");
  while (parts.length > 0) {
    const slot = slots.get(parts.join("."));
    if (slot) return slot;
    parts.pop();
  }
  return undefined;
}

/**
 * Moves focus to the first field marked invalid in `container`, if any.
 * @param {HTMLElement} container
 */
function focusFirstInvalid(container) {
  container.querySelector("[aria-invalid='true']")?.focus();
}

/**
 * A number typed in an input: null when empty (the API then says what is missing, or
 * applies its default).
 * @param {HTMLInputElement} input
 * @returns {number | null}
 */
function numberOf(input) {
  const text = input.value.trim();
  return text === "" ? null : Number(text);
}

/**
 * A comma-separated list typed in an input (`a, b` -> `["a", "b"]`).
 * @param {HTMLInputElement} input
 * @returns {string[]}
 */
function listOf(input) {
  return input.value
    .split(",")
    .map((item) => item.trim())
    .filter(Boolean);
}

// ---------------------------------------------------------------------------
// The user view
// ---------------------------------------------------------------------------

/**
 * The user form's submit: opens the exact user id typed (spaces count: ids are the
 * customer's own).
 * @param {SubmitEvent} event
 */
async function onOpenUser(event) {
  event.preventDefault();
  const userId = page.userId.value;
  if (userId.length < 1 || userId.length > 128) {
    announce("A user id has 1 to 128 characters.", "error");
    page.userId.focus();
    return;
  }
  const complete = await openUser(userId);
  if (!storedKey() || !isCurrentUser(userId)) return;
  if (complete) announce(`Opened user ${userId}.`, "ok");
  else announce(`Opened user ${userId}; some parts failed to load (see them).`, "error");
}

/**
 * True while `userId` is the user shown.
 * @param {string} userId
 * @returns {boolean}
 */
function isCurrentUser(userId) {
  return state.userId === userId;
}

/**
 * @typedef {object} UserSection one part of the user view
 * @property {HTMLElement} root the `<section>`
 * @property {HTMLElement} body where its content goes
 */

/**
 * Shows a user: builds the view's sections, then loads them all (in parallel).
 * @param {string} userId
 * @returns {Promise<boolean>} true when every section loaded
 */
async function openUser(userId) {
  state.userId = userId;
  state.view += 1;
  const view = { userId, generation: state.view };
  const sections = {
    credits: userSection("credits", "Balances"),
    grant: userSection("grant", "Promotional grant"),
    ledger: userSection("ledger", "Ledger (oldest first)"),
    orders: userSection("orders", "Orders (newest first)"),
    reservations: userSection("reservations", "Held reservations"),
    events: userSection("events", "Events (oldest first)"),
  };
  const reload = el("button", { type: "button", class: "small" }, "Reload user");
  reload.addEventListener("click", () => reloadUser("Reloaded."));
  replace(
    page.userView,
    el("div", { class: "user-title" }, el("p", { id: "user-title", tabindex: -1 }, "Showing user ", el("code", { class: "id", "data-testid": "open-user-id" }, userId)), reload),
    Object.values(sections).map((section) => section.root),
  );
  replace(sections.grant.body, grantForm(userId));
  const loaded = await Promise.all([
    loadSection(view, sections.credits, () => loadCredits(view, sections.credits.body)),
    loadSection(view, sections.ledger, () => loadLedger(view, sections.ledger.body)),
    loadSection(view, sections.orders, () => loadOrders(view, sections.orders.body)),
    loadSection(view, sections.reservations, () => loadReservations(view, sections.reservations.body)),
    loadSection(view, sections.events, () => loadEvents(view, sections.events.body)),
  ]);
  return loaded.every(Boolean);
}

/**
 * Reloads the open user's view (after an action: the balance change shows) and puts focus
 * on its title, since the control that had it is gone.
 * @param {string} [message] said when done
 * @returns {Promise<void>}
 */
async function reloadUser(message) {
  const userId = state.userId;
  if (userId === null) return;
  await openUser(userId);
  if (!storedKey() || !isCurrentUser(userId)) return; // signed out meanwhile, or another user opened
  document.getElementById("user-title")?.focus();
  if (message) announce(message, "ok");
}

/**
 * An empty section of the user view with its `<h3>`.
 * @param {string} name used in ids
 * @param {string} title
 * @returns {UserSection}
 */
function userSection(name, title) {
  const headingId = `user-${name}-title`;
  const body = el("div", { class: "section-body" }, el("p", { class: "muted" }, "Loading…"));
  const root = el("section", { class: `user-part user-${name}`, "aria-labelledby": headingId }, el("h3", { id: headingId }, title), body);
  return { root, body };
}

/**
 * Runs a section's loader; an error shows in that section (and the status region).
 * @param {{ generation: number }} view
 * @param {UserSection} section
 * @param {() => Promise<void>} load
 * @returns {Promise<boolean>} true when it loaded
 */
async function loadSection(view, section, load) {
  try {
    await load();
    return true;
  } catch (error) {
    if (error instanceof SignedOut || !isCurrent(view)) return false;
    replace(section.body, el("p", { class: "message-error" }, describeError(error)));
    announce(describeError(error), "error");
    return false;
  }
}

/**
 * True while `view` is the one shown (answers for a replaced view are dropped).
 * @param {{ generation: number }} view
 * @returns {boolean}
 */
function isCurrent(view) {
  return view.generation === state.view;
}

/**
 * A list loaded page by page: the first page now, a "More" button while the API returns a
 * cursor.
 * @param {object} spec
 * @param {{ generation: number }} spec.view
 * @param {HTMLElement} spec.body where the list goes
 * @param {(cursor: string | undefined) => Promise<{ items: any[], cursor: string | null }>} spec.fetchPage
 * @param {() => { root: HTMLElement, rows: HTMLElement }} spec.container builds the list
 * @param {(item: any) => HTMLElement} spec.render one row or card
 * @param {string} spec.empty text for an empty list
 * @param {string} spec.moreTestId data-testid of the "More" button
 * @returns {Promise<void>}
 */
async function pagedList({ view, body, fetchPage, container, render, empty, moreTestId }) {
  const first = await fetchPage(undefined);
  if (!isCurrent(view)) return;
  if (first.items.length === 0) {
    replace(body, el("p", { class: "muted" }, empty));
    return;
  }
  const list = container();
  const more = el("button", { type: "button", class: "small", "data-testid": moreTestId }, "More");
  let cursor = first.cursor;
  append(list.rows, first.items.map(render));
  more.hidden = !cursor;
  more.addEventListener("click", async () => {
    more.disabled = true;
    try {
      const next = await fetchPage(cursor ?? undefined);
      if (!isCurrent(view)) return;
      append(list.rows, next.items.map(render));
      cursor = next.cursor;
      more.hidden = !cursor;
      announce(`Loaded ${next.items.length} more.`, "ok");
    } catch (error) {
      if (!(error instanceof SignedOut)) announce(describeError(error), "error");
    } finally {
      more.disabled = false;
    }
  });
  replace(body, list.root, more);
}

// --- Credits ---------------------------------------------------------------

/**
 * Loads `GET /users/{userId}/credits` into the Balances section.
 * @param {{ userId: string, generation: number }} view
 * @param {HTMLElement} body
 * @returns {Promise<void>}
 */
async function loadCredits(view, body) {
  const credits = await api("GET", userPath(view.userId, "credits"));
  if (!isCurrent(view)) return;
  const groups = Array.isArray(credits?.groups) ? credits.groups : [];
  const subscriptions = Array.isArray(credits?.subscriptions) ? credits.subscriptions : [];
  fillGroupOptions(groups.map((group) => group.offerGroup));
  replace(
    body,
    groups.length === 0 ? el("p", { class: "muted" }, "No credits in any offerGroup.") : el("div", { class: "cards" }, groups.map(groupCard)),
    subscriptions.length > 0 ? subscriptionList(subscriptions) : null,
  );
}

/**
 * One offerGroup's balance, held tokens, debt, dates and grants.
 * @param {any} group an item of `credits.groups`
 * @returns {HTMLElement}
 */
function groupCard(group) {
  const grants = dataTable(`Grants of ${group.offerGroup}`, ["Grant", "Source", "Tokens", "Remaining", "Starts", "Expires"]);
  for (const grant of group.grants ?? []) {
    grants.rows.append(
      el(
        "tr",
        {},
        el("td", {}, idText(grant.grantId)),
        el("td", {}, grant.orderId ? ["order ", idText(grant.orderId), grant.offerId ? ` (${grant.offerId})` : ""] : "promotional"),
        el("td", { class: "number" }, String(grant.tokens)),
        el("td", { class: "number" }, String(grant.remaining)),
        el("td", {}, timeText(grant.starts)),
        el("td", {}, timeText(grant.expires, "never")),
      ),
    );
  }
  return el(
    "article",
    { class: "card group-card" },
    el("h4", {}, group.offerGroup),
    definitions([
      ["Balance", el("span", { class: "balance", "data-testid": `balance-${group.offerGroup}` }, String(group.balance))],
      ["Held", String(group.held ?? 0)],
      ["Debt", String(group.debt ?? 0)],
      ["Starts", timeText(group.starts)],
      ["Expires", timeText(group.expires, "never")],
    ]),
    (group.grants ?? []).length > 0 ? grants.root : el("p", { class: "muted" }, "No active grants."),
  );
}

/**
 * The user's running paid periods (`credits.subscriptions`).
 * @param {any[]} subscriptions
 * @returns {HTMLElement}
 */
function subscriptionList(subscriptions) {
  const table = dataTable("Subscriptions", ["Offer", "Group", "Order", "Starts", "Expires"]);
  for (const subscription of subscriptions) {
    table.rows.append(
      el(
        "tr",
        {},
        el("td", {}, subscription.offerId),
        el("td", {}, subscription.offerGroup),
        el("td", {}, idText(subscription.orderId)),
        el("td", {}, timeText(subscription.starts)),
        el("td", {}, timeText(subscription.expires, "never")),
      ),
    );
  }
  return el("div", { class: "subscriptions" }, el("h4", {}, "Running subscriptions"), table.root);
}

/**
 * Offers the user's offerGroups as suggestions in the grant form.
 * @param {string[]} groups
 */
function fillGroupOptions(groups) {
  const list = document.getElementById("group-options");
  if (list) replace(list, groups.map((group) => el("option", { value: group })));
}

// --- Promotional grant -----------------------------------------------------

/**
 * The promotional grant form (`POST /users/{userId}/grants`), confirmed in the dialog.
 * @param {string} userId
 * @returns {HTMLElement}
 */
function grantForm(userId) {
  const inputs = {
    offerGroup: el("input", { type: "text", list: "group-options", required: true, maxlength: 64, autocomplete: "off", spellcheck: "false" }),
    tokens: el("input", { type: "number", min: 1, step: 1, required: true, inputmode: "numeric" }),
    expires: el("input", { type: "datetime-local", step: 1 }),
    reason: el("input", { type: "text", maxlength: 500, autocomplete: "off" }),
  };
  const formError = el("p", { class: "message-error", hidden: true });
  const form = el(
    "form",
    { method: "post", class: "grant-form", novalidate: true, "data-testid": "grant-form" },
    el("datalist", { id: "group-options" }),
    field({ label: "offerGroup", control: inputs.offerGroup, path: "offerGroup", hint: "Letters, digits and _ . : - (the user's groups are suggested)." }),
    field({ label: "Tokens", control: inputs.tokens, path: "tokens" }),
    field({ label: "Expires (your local time; empty: never)", control: inputs.expires, path: "expires" }),
    field({ label: "Reason", control: inputs.reason, path: "reason" }),
    formError,
    el("button", { type: "submit", "data-testid": "grant-submit" }, "Grant tokens…"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    askGrant(userId, form, inputs, formError);
  });
  return form;
}

/**
 * Reads the grant form and asks for confirmation; the API's field errors go back to the form.
 * @param {string} userId
 * @param {HTMLFormElement} form
 * @param {Record<string, HTMLInputElement>} inputs
 * @param {HTMLElement} formError
 */
function askGrant(userId, form, inputs, formError) {
  clearFieldErrors(form);
  formError.hidden = true;
  const expiresText = inputs.expires.value;
  const expires = expiresText === "" ? null : new Date(expiresText);
  if (expires !== null && Number.isNaN(expires.getTime())) {
    showFieldErrors(form, { expires: "is not a date and time" });
    focusFirstInvalid(form);
    return;
  }
  /** @type {Record<string, unknown>} */
  const body = { offerGroup: inputs.offerGroup.value.trim(), tokens: numberOf(inputs.tokens), expires: expires ? expires.toISOString() : null };
  if (inputs.reason.value.trim() !== "") body.reason = inputs.reason.value.trim();
  const missing = {};
  if (body.offerGroup === "") missing.offerGroup = "is required";
  if (!Number.isInteger(body.tokens) || body.tokens < 1) missing.tokens = "must be a whole number >= 1";
  if (Object.keys(missing).length > 0) {
    showFieldErrors(form, missing);
    focusFirstInvalid(form);
    return;
  }
  confirmAction({
    title: "Give a promotional grant",
    summary: [
      ["User: ", el("code", { class: "id" }, userId)],
      `Tokens: ${body.tokens ?? "(none)"} in offerGroup ${body.offerGroup || "(none)"}`,
      ["Expires: ", expires ? timeText(expires.toISOString()) : "never"],
      `Reason: ${body.reason ?? "(none)"}`,
    ],
    confirmLabel: "Grant tokens",
    confirmTestId: "grant-confirm",
    run: (keyFor) => api("POST", userPath(userId, "grants"), { body, idempotencyKey: keyFor(body) }),
    done: (grant) => `Granted ${grant?.tokens ?? body.tokens} tokens in ${grant?.offerGroup ?? body.offerGroup} (grant ${grant?.grantId ?? "?"}).`,
    after: () => reloadUser(),
    onError: (error) => {
      if (error.code !== "validation_error") return false;
      const unplaced = showFieldErrors(form, error.details);
      formError.textContent = unplaced.length > 0 ? unplaced.join("; ") : describeError(error);
      formError.hidden = false;
      focusFirstInvalid(form);
      return true;
    },
  });
}

// --- Ledger ----------------------------------------------------------------

/**
 * Loads the ledger (`GET /users/{userId}/ledger?limit=50`, oldest first, "More" by cursor).
 * @param {{ userId: string, generation: number }} view
 * @param {HTMLElement} body
 * @returns {Promise<void>}
 */
async function loadLedger(view, body) {
  await pagedList({
    view,
    body,
    fetchPage: async (cursor) => {
      const answer = await api("GET", userPath(view.userId, "ledger"), { query: { limit: PAGE_SIZE.ledger, cursor } });
      return { items: answer?.entries ?? [], cursor: answer?.cursor ?? null };
    },
    container: () => dataTable("Ledger entries", ["Date", "Group", "Reason", "Tokens", "Details", "Action"]),
    render: (entry) => ledgerRow(view.userId, entry),
    empty: "No ledger entries.",
    moreTestId: "ledger-more",
  });
}

/**
 * One ledger entry: date, group, reason, signed tokens, its links, draws and metadata, and
 * "Reverse…" for a consumption not yet fully reversed.
 * @param {string} userId
 * @param {any} entry
 * @returns {HTMLElement}
 */
function ledgerRow(userId, entry) {
  const consumed = entry.reason === "consume" ? -entry.tokens : 0;
  const reversible = consumed - (entry.reversed ?? 0);
  let action = null;
  if (reversible > 0) {
    action = el("button", { type: "button", class: "small", "data-testid": `reverse-${entry.entryId}` }, "Reverse…");
    action.addEventListener("click", () => askReverse(userId, entry, reversible));
  }
  return el(
    "tr",
    { "data-testid": "ledger-entry", "data-entry-id": entry.entryId, "data-reason": entry.reason },
    el("td", {}, timeText(entry.createdAt)),
    el("td", {}, entry.offerGroup),
    el("td", {}, badge(entry.reason)),
    el("td", { class: "number" }, signedTokens(entry.tokens)),
    el("td", {}, ledgerDetails(entry)),
    el("td", {}, action),
  );
}

/**
 * The details of a ledger entry: ids, debt, reversal, draws and metadata.
 * @param {any} entry
 * @returns {HTMLElement}
 */
function ledgerDetails(entry) {
  const draws = Array.isArray(entry.draws) ? entry.draws : [];
  return el(
    "div",
    { class: "details" },
    definitions([
      ["Entry", idText(entry.entryId)],
      ["Order", entry.orderId ? idText(entry.orderId) : null],
      ["Grant", entry.grantId ? idText(entry.grantId) : null],
      ["Reservation", entry.reservationId ? idText(entry.reservationId) : null],
      ["Reverses", entry.reversesEntryId ? idText(entry.reversesEntryId) : null],
      ["Reversed", entry.reversed !== undefined ? String(entry.reversed) : null],
      ["Debt", entry.debt !== undefined ? String(entry.debt) : null],
      ["Debt repaid", entry.debtRepaid !== undefined ? String(entry.debtRepaid) : null],
    ]),
    draws.length > 0 ? drawList(draws) : null,
    entry.metadata !== undefined ? jsonDetails("Metadata", entry.metadata) : null,
  );
}

/**
 * The grants a consumption, hold or refund drew from.
 * @param {Array<{ grantId: string, tokens: number }>} draws
 * @returns {HTMLElement}
 */
function drawList(draws) {
  return el(
    "div",
    { class: "draws" },
    el("span", { class: "label" }, "Draws:"),
    el("ul", {}, draws.map((draw) => el("li", {}, `${draw.tokens} from `, idText(draw.grantId)))),
  );
}

/**
 * Asks to reverse all or part of a consumption (`POST .../consumptions/{entryId}/reverse`).
 * @param {string} userId
 * @param {any} entry the `consume` entry
 * @param {number} reversible tokens not yet reversed
 */
function askReverse(userId, entry, reversible) {
  const tokens = el("input", { type: "number", min: 1, max: reversible, step: 1, inputmode: "numeric", placeholder: String(reversible) });
  const reason = el("input", { type: "text", maxlength: 500, autocomplete: "off" });
  confirmAction({
    title: "Reverse a consumption",
    summary: [
      ["Entry ", idText(entry.entryId), ` in ${entry.offerGroup}, on `, timeText(entry.createdAt)],
      `Consumed ${-entry.tokens}; ${reversible} can still be given back to the grants it drew from.`,
    ],
    fields: [
      field({ label: `Tokens to give back (empty: all ${reversible})`, control: tokens, path: "tokens" }),
      field({ label: "Reason (optional)", control: reason, path: "reason" }),
    ],
    confirmLabel: "Reverse",
    confirmTestId: "reverse-confirm",
    run: (keyFor) => {
      /** @type {Record<string, unknown>} */
      const body = {};
      if (tokens.value.trim() !== "") body.tokens = numberOf(tokens);
      if (reason.value.trim() !== "") body.reason = reason.value.trim();
      return api("POST", userPath(userId, "consumptions", entry.entryId, "reverse"), { body, idempotencyKey: keyFor(body) });
    },
    done: (result) => `Reversed ${result?.entry?.tokens ?? "?"} tokens; ${entry.offerGroup} balance is now ${result?.balance ?? "?"}.`,
    after: () => reloadUser(),
  });
}

// --- Orders ----------------------------------------------------------------

/**
 * Loads the orders (`GET /users/{userId}/orders?limit=20`, newest first, "More" by cursor).
 * @param {{ userId: string, generation: number }} view
 * @param {HTMLElement} body
 * @returns {Promise<void>}
 */
async function loadOrders(view, body) {
  await pagedList({
    view,
    body,
    fetchPage: async (cursor) => {
      const answer = await api("GET", userPath(view.userId, "orders"), { query: { limit: PAGE_SIZE.orders, cursor } });
      return { items: answer?.orders ?? [], cursor: answer?.cursor ?? null };
    },
    container: () => {
      const rows = el("div", { class: "cards" });
      return { root: rows, rows };
    },
    render: (order) => orderCard(view.userId, order),
    empty: "No orders.",
    moreTestId: "orders-more",
  });
}

/**
 * One order: terms, status, total, payment attempts, history, refunds, disputes, and the
 * actions its status allows.
 * @param {string} userId
 * @param {any} order
 * @returns {HTMLElement}
 */
function orderCard(userId, order) {
  return el(
    "article",
    { class: "card order-card", "data-testid": `order-${order.orderId}`, "data-status": order.status },
    el("h4", {}, `${order.offerName ?? order.offerId} × ${order.quantity}`),
    definitions([
      ["Order", idText(order.orderId)],
      ["Status", badge(order.status)],
      ["Total", el("span", { "data-testid": `total-${order.orderId}` }, formatMoney(order.total))],
      ["Offer", `${order.offerId} (${order.kind ?? "?"}, ${order.cycle ?? "?"})`],
      ["Tokens", `${order.tokens} in ${order.offerGroup}`],
      ["Created", timeText(order.createdAt)],
      ["Starts", timeText(order.starts)],
      ["Expires", timeText(order.expires, order.status === "paid" ? "never" : "—")],
      ["Renewal", order.renewal === "auto" ? "auto (Stripe subscription)" : null],
      ["Auto top-up", order.autoTopUp ? "yes" : null],
    ]),
    paymentFacts(order),
    order.combinedItems?.length > 0 ? bundleTable(order.combinedItems) : null,
    historyDetails(order.history ?? []),
    order.refunds?.length > 0 ? refundTable(order) : null,
    order.disputes?.length > 0 ? jsonDetails(`Disputes (${order.disputes.length})`, order.disputes) : null,
    order.duplicatePayments?.length > 0 ? jsonDetails(`Duplicate payments refunded (${order.duplicatePayments.length})`, order.duplicatePayments) : null,
    orderActions(userId, order),
  );
}

/**
 * The order's payment attempts: provider, PaymentIntent(s), Checkout Session, attempt number.
 * @param {any} order
 * @returns {HTMLElement}
 */
function paymentFacts(order) {
  const intents = Array.isArray(order.paymentIntentIds) ? order.paymentIntentIds : [];
  return el(
    "div",
    { class: "payment" },
    el("span", { class: "label" }, "Payment"),
    definitions([
      ["Provider", order.provider ?? null],
      ["Attempt", order.attempt !== undefined ? String(order.attempt) : null],
      ["PaymentIntent", order.paymentIntentId ? idText(order.paymentIntentId) : null],
      ["Earlier PaymentIntents", intents.length > 0 ? intents.map((id) => [idText(id), " "]) : null],
      ["Checkout Session", order.checkoutSessionId ? idText(order.checkoutSessionId) : null],
      ["Paid by", order.paidPaymentIntentId ? idText(order.paidPaymentIntentId) : null],
      ["Subscription", order.subscriptionId ? idText(order.subscriptionId) : null],
    ]),
  );
}

/**
 * A bundle's items with their own groups, tokens and grants.
 * @param {any[]} items
 * @returns {HTMLElement}
 */
function bundleTable(items) {
  const table = dataTable("Bundle items", ["Offer", "Group", "Quantity", "Tokens", "Value", "Grant"]);
  for (const item of items) {
    table.rows.append(
      el(
        "tr",
        {},
        el("td", {}, item.offerId),
        el("td", {}, item.offerGroup),
        el("td", { class: "number" }, String(item.quantity)),
        el("td", { class: "number" }, String(item.tokens)),
        el("td", { class: "number" }, item.value !== undefined ? String(item.value) : "—"),
        el("td", {}, idText(item.grantId)),
      ),
    );
  }
  return el("details", {}, el("summary", {}, `Bundle items (${items.length})`), table.root);
}

/**
 * The order's history (date, status, message; payload as JSON text), collapsed.
 * @param {Array<{ date?: string, at?: string, status?: string, message: string, payload?: string }>} history
 * @returns {HTMLElement}
 */
function historyDetails(history) {
  return el(
    "details",
    { class: "history" },
    el("summary", {}, `History (${history.length})`),
    el(
      "ol",
      {},
      history.map((item) =>
        el(
          "li",
          {},
          timeText(item.date ?? item.at),
          " ",
          item.status ? badge(item.status) : null,
          " ",
          item.message,
          item.payload ? jsonDetails("Payload", tryParse(item.payload)) : null,
        ),
      ),
    ),
  );
}

/**
 * JSON text parsed, or the text itself when it is not JSON.
 * @param {string} text
 * @returns {unknown}
 */
function tryParse(text) {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/**
 * The order's refunds: amount, tokens taken back, shortfall, source, status.
 * @param {any} order
 * @returns {HTMLElement}
 */
function refundTable(order) {
  const table = dataTable("Refunds", ["Date", "Amount", "Tokens", "Short", "Source", "Status", "Refund"]);
  for (const refund of order.refunds) {
    table.rows.append(
      el(
        "tr",
        {},
        el("td", {}, timeText(refund.createdAt)),
        el("td", { class: "number" }, formatMoney({ amount: refund.amount, currency: order.total?.currency })),
        el("td", { class: "number" }, String(refund.tokens)),
        el("td", { class: "number" }, String(refund.tokensShort ?? 0)),
        el("td", {}, refund.source ?? "—"),
        el("td", {}, refund.status ? badge(refund.status) : "—"),
        el("td", {}, idText(refund.refundId)),
      ),
    );
  }
  return el("div", { class: "refunds" }, el("span", { class: "label" }, "Refunds"), table.root);
}

/**
 * The buttons an order's status and provider allow: refund (paid, expired), sync with
 * Stripe and confirm a manual payment (not yet paid).
 * @param {string} userId
 * @param {any} order
 * @returns {HTMLElement | null}
 */
function orderActions(userId, order) {
  const buttons = [];
  if (REFUNDABLE.includes(order.status)) {
    buttons.push(actionButton(`refund-${order.orderId}`, "Refund…", () => askRefund(userId, order)));
  }
  if (UNPAID.includes(order.status) && (order.provider === "stripe" || order.provider === "stripe_checkout")) {
    buttons.push(actionButton(`sync-${order.orderId}`, "Sync with Stripe…", () => askSync(userId, order)));
  }
  if (UNPAID.includes(order.status) && order.provider === "manual") {
    buttons.push(actionButton(`confirm-${order.orderId}`, "Confirm payment…", () => askConfirmOrder(userId, order)));
  }
  return buttons.length > 0 ? el("div", { class: "buttons" }, buttons) : null;
}

/**
 * A small button that runs `onClick`.
 * @param {string} testId its data-testid
 * @param {string} label
 * @param {() => void} onClick
 * @returns {HTMLElement}
 */
function actionButton(testId, label, onClick) {
  const button = el("button", { type: "button", class: "small", "data-testid": testId }, label);
  button.addEventListener("click", onClick);
  return button;
}

/**
 * Asks to refund an order (`POST .../orders/{orderId}/refund { mode, reason? }`).
 * @param {string} userId
 * @param {any} order
 */
function askRefund(userId, order) {
  const mode = el(
    "select",
    { "data-testid": "refund-mode" },
    el("option", { value: "unused", selected: true }, "unused: refund the unused share"),
    el("option", { value: "full" }, "full: refund everything not yet refunded"),
  );
  const reason = el("input", { type: "text", maxlength: 500, autocomplete: "off" });
  const refunded = (order.refunds ?? []).reduce((sum, refund) => sum + (refund.status === "failed" ? 0 : refund.amount), 0);
  confirmAction({
    title: "Refund an order",
    summary: [
      ["Order ", idText(order.orderId), ` (${order.offerName ?? order.offerId} × ${order.quantity}), status ${order.status}`],
      `Total ${formatMoney(order.total)}; already refunded ${formatMoney({ amount: refunded, currency: order.total?.currency })}.`,
      `Every grant of the order loses its remaining tokens and ends (${order.tokens} tokens bought in ${order.offerGroup}).`,
      order.provider === "manual" ? "Manual provider: no money moves; the history says so." : "The money goes back through Stripe.",
    ],
    fields: [field({ label: "Mode", control: mode, path: "mode" }), field({ label: "Reason (optional)", control: reason, path: "reason" })],
    confirmLabel: "Refund",
    confirmTestId: "refund-confirm",
    run: (keyFor) => {
      /** @type {Record<string, unknown>} */
      const body = { mode: mode.value };
      if (reason.value.trim() !== "") body.reason = reason.value.trim();
      return api("POST", userPath(userId, "orders", order.orderId, "refund"), { body, idempotencyKey: keyFor(body) });
    },
    done: (result) => `Order ${order.orderId} is now ${result?.status ?? "?"}.`,
    after: () => reloadUser(),
  });
}

/**
 * Asks to read an order's payment attempts back from Stripe (`POST .../sync {}`).
 * @param {string} userId
 * @param {any} order
 */
function askSync(userId, order) {
  confirmAction({
    title: "Sync an order with Stripe",
    summary: [
      ["Order ", idText(order.orderId), ` (${formatMoney(order.total)}), status ${order.status}`],
      "Reads its payment attempts at Stripe and applies what it finds: a succeeded payment pays the order and grants its tokens.",
    ],
    confirmLabel: "Sync",
    confirmTestId: "sync-confirm",
    run: () => api("POST", userPath(userId, "orders", order.orderId, "sync"), { body: {} }),
    done: (result) => `Order ${order.orderId} is ${result?.status ?? "?"} after the sync.`,
    after: () => reloadUser(),
  });
}

/**
 * Asks to mark a manual order paid (`POST .../confirm {}`).
 * @param {string} userId
 * @param {any} order
 */
function askConfirmOrder(userId, order) {
  confirmAction({
    title: "Confirm a manual payment",
    summary: [
      ["Order ", idText(order.orderId), ` (${order.offerName ?? order.offerId} × ${order.quantity}), status ${order.status}`],
      `Marks it paid for ${formatMoney(order.total)} received outside Stripe, and grants ${order.tokens} tokens in ${order.offerGroup}.`,
    ],
    confirmLabel: "Confirm payment",
    confirmTestId: "confirm-order-confirm",
    run: () => api("POST", userPath(userId, "orders", order.orderId, "confirm"), { body: {} }),
    done: (result) => `Order ${order.orderId} is now ${result?.status ?? "?"}.`,
    after: () => reloadUser(),
  });
}

// --- Reservations ----------------------------------------------------------

/**
 * Loads the held reservations (`GET /users/{userId}/reservations?status=held`).
 * @param {{ userId: string, generation: number }} view
 * @param {HTMLElement} body
 * @returns {Promise<void>}
 */
async function loadReservations(view, body) {
  await pagedList({
    view,
    body,
    fetchPage: async (cursor) => {
      const answer = await api("GET", userPath(view.userId, "reservations"), { query: { status: "held", limit: PAGE_SIZE.reservations, cursor } });
      return { items: answer?.reservations ?? [], cursor: answer?.cursor ?? null };
    },
    container: () => dataTable("Held reservations", ["Created", "Group", "Tokens", "Expires", "Details", "Action"]),
    render: (reservation) => reservationRow(view.userId, reservation),
    empty: "No held reservations.",
    moreTestId: "reservations-more",
  });
}

/**
 * One held reservation with its draws, metadata and "Release…".
 * @param {string} userId
 * @param {any} reservation
 * @returns {HTMLElement}
 */
function reservationRow(userId, reservation) {
  const release = actionButton(`release-${reservation.reservationId}`, "Release…", () => askRelease(userId, reservation));
  return el(
    "tr",
    { "data-testid": "reservation", "data-reservation-id": reservation.reservationId },
    el("td", {}, timeText(reservation.createdAt)),
    el("td", {}, reservation.offerGroup),
    el("td", { class: "number" }, String(reservation.tokens)),
    el("td", {}, timeText(reservation.expires)),
    el(
      "td",
      {},
      el(
        "div",
        { class: "details" },
        definitions([["Reservation", idText(reservation.reservationId)]]),
        reservation.draws?.length > 0 ? drawList(reservation.draws) : null,
        reservation.metadata !== undefined ? jsonDetails("Metadata", reservation.metadata) : null,
      ),
    ),
    el("td", {}, reservation.status === "held" ? release : badge(reservation.status)),
  );
}

/**
 * Asks to release a hold (`POST .../reservations/{reservationId}/release {}`).
 * @param {string} userId
 * @param {any} reservation
 */
function askRelease(userId, reservation) {
  confirmAction({
    title: "Release a hold",
    summary: [
      ["Reservation ", idText(reservation.reservationId), ` in ${reservation.offerGroup}`],
      `Gives ${reservation.tokens} held tokens back to the grants they came from (a grant past its expiry loses them at once).`,
    ],
    confirmLabel: "Release",
    confirmTestId: "release-confirm",
    run: () => api("POST", userPath(userId, "reservations", reservation.reservationId, "release"), { body: {} }),
    done: (result) => `Reservation ${reservation.reservationId} is ${result?.status ?? "?"}.`,
    after: () => reloadUser(),
  });
}

// --- Events ----------------------------------------------------------------

/**
 * Loads the user's events (`GET /users/{userId}/events`, oldest first).
 * @param {{ userId: string, generation: number }} view
 * @param {HTMLElement} body
 * @returns {Promise<void>}
 */
async function loadEvents(view, body) {
  await pagedList({
    view,
    body,
    fetchPage: async (cursor) => {
      const answer = await api("GET", userPath(view.userId, "events"), { query: { limit: PAGE_SIZE.events, cursor } });
      return { items: answer?.events ?? [], cursor: answer?.cursor ?? null };
    },
    container: () => dataTable("Events", ["Date", "Type", "Group", "Details"]),
    render: eventRow,
    empty: "No events.",
    moreTestId: "events-more",
  });
}

/**
 * One event: date, type, group and whichever of its optional fields it has.
 * @param {any} event
 * @returns {HTMLElement}
 */
function eventRow(event) {
  const amount =
    typeof event.amount === "number"
      ? event.currency
        ? formatMoney({ amount: event.amount, currency: event.currency })
        : `${event.amount} (minor units)`
      : null;
  return el(
    "tr",
    { "data-testid": "event", "data-event-type": event.type },
    el("td", {}, timeText(event.createdAt)),
    el("td", {}, event.type),
    el("td", {}, event.offerGroup ?? "—"),
    el(
      "td",
      {},
      definitions([
        ["Event", idText(event.eventId)],
        ["Order", event.orderId ? idText(event.orderId) : null],
        ["Grant", event.grantId ? idText(event.grantId) : null],
        ["Amount", amount],
        ["Tokens", event.tokens !== undefined ? String(event.tokens) : null],
        ["Balance", event.balance !== undefined ? String(event.balance) : null],
        ["Expires", event.expires ? timeText(event.expires) : null],
        ["Status", event.status ?? null],
        ["Code", event.code ?? null],
        ["Duplicate", event.duplicate ? "yes" : null],
      ]),
    ),
  );
}

// ---------------------------------------------------------------------------
// Offers: the catalog and its editor
// ---------------------------------------------------------------------------

/**
 * Loads every offer (`GET /offers?all=true`, inactive and locked included) into the list.
 * @returns {Promise<boolean>} false only when a 401 has signed out (other errors show in the list)
 */
async function loadOffers() {
  try {
    const answer = await api("GET", "/offers", { query: { all: "true" } });
    state.offers = Array.isArray(answer?.offers) ? answer.offers : [];
    renderOfferList();
    return true;
  } catch (error) {
    if (error instanceof SignedOut) return false;
    replace(page.offerList, el("p", { class: "message-error" }, describeError(error)));
    announce(describeError(error), "error");
    return true;
  }
}

/** Shows the offers as a table with an "Edit" button each. */
function renderOfferList() {
  if (state.offers.length === 0) {
    replace(page.offerList, el("p", { class: "muted" }, "No offers yet."));
    return;
  }
  const table = dataTable("Offers", ["Offer", "Name", "Group", "Kind / cycle", "Tokens", "Prices", "State", "Action"]);
  for (const offer of state.offers) {
    const edit = actionButton(`edit-offer-${offer.offerId}`, "Edit", () => openOfferEditor(offer));
    edit.setAttribute("aria-label", `Edit offer ${offer.offerId}`);
    table.rows.append(
      el(
        "tr",
        { "data-testid": `offer-${offer.offerId}` },
        el("td", {}, el("code", { class: "id" }, offer.offerId)),
        el("td", {}, offer.name),
        el("td", {}, offer.offerGroup),
        el("td", {}, `${offer.kind} / ${offer.cycle}${offer.renewal === "auto" ? " (auto-renew)" : ""}`),
        el("td", { class: "number" }, String(offer.tokenCount)),
        el("td", {}, (offer.prices ?? []).map((price) => el("span", { class: "price" }, formatMoney(price)))),
        el("td", {}, offer.active ? "active" : "inactive", offer.unlockedBy?.length > 0 ? ` · locked by ${offer.unlockedBy.join(", ")}` : ""),
        el("td", {}, edit),
      ),
    );
  }
  replace(page.offerList, table.root);
}

/** The "Reload offers" button. */
async function onReloadOffers() {
  if (await loadOffers()) announce(`Listed ${state.offers.length} offers.`, "ok");
}

/** The "New offer" button: an empty editor. */
function onNewOffer() {
  openOfferEditor(null);
}

/**
 * @typedef {object} OfferInputs the offer editor's controls, one per field of `offerBody`
 *   (functions/schemas.ts), plus the rows of prices and bundle items
 * @property {HTMLInputElement} offerId
 * @property {HTMLInputElement} name
 * @property {HTMLSelectElement} kind
 * @property {HTMLInputElement} offerGroup
 * @property {HTMLSelectElement} cycle
 * @property {HTMLInputElement} customCycleSeconds
 * @property {HTMLInputElement} appendDate
 * @property {HTMLSelectElement} renewal
 * @property {HTMLInputElement} tokenCount
 * @property {HTMLElement} prices the price rows' container
 * @property {HTMLInputElement} quantityLimit
 * @property {HTMLInputElement} tags
 * @property {HTMLInputElement} unlockedBy
 * @property {HTMLInputElement} overridingKey
 * @property {HTMLInputElement} weight
 * @property {HTMLInputElement} popular
 * @property {HTMLElement} combinedItems the bundle rows' container
 * @property {HTMLInputElement} active
 */

/**
 * Opens the offer editor, filled from `offer` (or empty for a new one), and focuses it.
 * @param {any | null} offer
 */
function openOfferEditor(offer) {
  const o = offer ?? {};
  /** @type {OfferInputs} */
  const inputs = {
    offerId: el("input", { type: "text", maxlength: 64, value: o.offerId ?? "", readonly: offer !== null, autocomplete: "off", spellcheck: "false", "data-testid": "offer-id" }),
    name: el("input", { type: "text", maxlength: 200, value: o.name ?? "", autocomplete: "off", "data-testid": "offer-name" }),
    kind: selectOf(KINDS, o.kind ?? "tokens"),
    offerGroup: el("input", { type: "text", maxlength: 64, value: o.offerGroup ?? "", autocomplete: "off", spellcheck: "false" }),
    cycle: selectOf(CYCLES, o.cycle ?? "once"),
    customCycleSeconds: el("input", { type: "number", min: 1, step: 1, value: o.customCycleSeconds ?? "" }),
    appendDate: el("input", { type: "checkbox", checked: Boolean(o.appendDate) }),
    renewal: selectOf(RENEWALS, o.renewal ?? "none"),
    tokenCount: el("input", { type: "number", min: 0, step: 1, value: o.tokenCount ?? "" }),
    prices: el("div", { class: "rows" }),
    quantityLimit: el("input", { type: "number", min: 1, step: 1, value: o.quantityLimit ?? "" }),
    tags: el("input", { type: "text", value: (o.tags ?? []).join(", "), autocomplete: "off" }),
    unlockedBy: el("input", { type: "text", value: (o.unlockedBy ?? []).join(", "), autocomplete: "off", spellcheck: "false" }),
    overridingKey: el("input", { type: "text", maxlength: 64, value: o.overridingKey ?? "", autocomplete: "off" }),
    weight: el("input", { type: "number", step: 1, value: o.weight ?? 0 }),
    popular: el("input", { type: "number", min: 0, step: 1, value: o.popular ?? 0 }),
    combinedItems: el("div", { class: "rows" }),
    active: el("input", { type: "checkbox", checked: o.active ?? true }),
  };
  for (const price of o.prices ?? [{ amount: "", currency: "usd" }]) inputs.prices.append(priceRow(price));
  for (const item of o.combinedItems ?? []) inputs.combinedItems.append(bundleRow(item));
  const formError = el("p", { class: "message-error", hidden: true });
  const form = offerForm(offer, inputs, formError);
  replace(page.offerEditor, form);
  form.querySelector("h3")?.focus();
}

/**
 * The offer editor's form: every field of `offerBody`, labelled, each with its error slot.
 * @param {any | null} offer the offer edited, or null for a new one
 * @param {OfferInputs} inputs
 * @param {HTMLElement} formError
 * @returns {HTMLFormElement}
 */
function offerForm(offer, inputs, formError) {
  const addPrice = el("button", { type: "button", class: "small" }, "Add a price");
  addPrice.addEventListener("click", () => inputs.prices.append(priceRow({ amount: "", currency: "" })));
  const addItem = el("button", { type: "button", class: "small" }, "Add a bundle item");
  addItem.addEventListener("click", () => inputs.combinedItems.append(bundleRow({ offerId: "", quantity: 1 })));
  const cancel = el("button", { type: "button" }, "Close the editor");
  cancel.addEventListener("click", () => {
    page.offerEditor.replaceChildren();
    page.newOffer.focus();
  });
  const title = offer ? `Edit offer ${offer.offerId}` : "New offer";
  const form = el(
    "form",
    { method: "post", class: "offer-form", novalidate: true, "aria-labelledby": "offer-editor-title", "data-testid": "offer-form" },
    el("h3", { id: "offer-editor-title", tabindex: -1 }, title),
    el("p", { class: "hint" }, "Saving replaces the whole offer (PUT). Orders already placed keep the terms they were made with."),
    el(
      "div",
      { class: "grid" },
      field({ label: "Offer id", control: inputs.offerId, path: "offerId", hint: "Letters, digits and _ . : - ; 1 to 64." }),
      field({ label: "Name", control: inputs.name, path: "name" }),
      field({ label: "Kind", control: inputs.kind, path: "kind" }),
      field({ label: "offerGroup", control: inputs.offerGroup, path: "offerGroup" }),
      field({ label: "Cycle", control: inputs.cycle, path: "cycle" }),
      field({ label: "Custom cycle (seconds)", control: inputs.customCycleSeconds, path: "customCycleSeconds", hint: "Only for cycle custom." }),
      field({ label: "Renewal", control: inputs.renewal, path: "renewal" }),
      field({ label: "Tokens per unit", control: inputs.tokenCount, path: "tokenCount" }),
      field({ label: "Quantity limit (empty: none)", control: inputs.quantityLimit, path: "quantityLimit" }),
      field({ label: "Tags (comma-separated)", control: inputs.tags, path: "tags" }),
      field({ label: "Unlocked by offerGroups (comma-separated)", control: inputs.unlockedBy, path: "unlockedBy" }),
      field({ label: "Overriding key (empty: none)", control: inputs.overridingKey, path: "overridingKey" }),
      field({ label: "Weight", control: inputs.weight, path: "weight" }),
      field({ label: "Popular", control: inputs.popular, path: "popular" }),
      field({ label: "Append date (a new purchase starts when the current period ends)", control: inputs.appendDate, path: "appendDate" }),
      field({ label: "Active", control: inputs.active, path: "active" }),
    ),
    el("fieldset", {}, el("legend", {}, "Prices (amounts in minor units: 1000 usd = $10.00)"), inputs.prices, errorSlot("prices"), addPrice),
    el("fieldset", {}, el("legend", {}, "Bundle items"), inputs.combinedItems, errorSlot("combinedItems"), addItem),
    errorSlot("body"),
    formError,
    el("div", { class: "buttons" }, el("button", { type: "submit", class: "primary", "data-testid": "offer-save" }, "Save offer…"), cancel),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    askSaveOffer(form, inputs, formError);
  });
  return form;
}

/**
 * One editable price row: amount (minor units) with its formatted preview, currency,
 * and a remove button. Its error slots are numbered when the form is read.
 * @param {{ amount: number | string, currency: string }} price
 * @returns {HTMLElement}
 */
function priceRow(price) {
  const amount = el("input", { type: "number", min: 0, step: 1, value: price.amount, inputmode: "numeric", class: "price-amount" });
  const currency = el("input", { type: "text", maxlength: 3, value: price.currency, autocomplete: "off", spellcheck: "false", class: "price-currency" });
  const preview = el("output", { class: "hint", "aria-live": "off" });
  const update = () => {
    const value = numberOf(amount);
    const code = currency.value.trim().toLowerCase();
    preview.textContent = value !== null && /^[a-z]{3}$/.test(code) ? `= ${formatMoney({ amount: value, currency: code })}` : "";
  };
  amount.addEventListener("input", update);
  currency.addEventListener("input", update);
  update();
  const row = el(
    "div",
    { class: "row price-row" },
    field({ label: "Amount (minor units)", control: amount, path: "amount" }),
    field({ label: "Currency (e.g. usd)", control: currency, path: "currency" }),
    preview,
    removeButton("Remove this price"),
    errorSlot("row"),
  );
  return row;
}

/**
 * One editable bundle item row: offerId and quantity, and a remove button.
 * @param {{ offerId: string, quantity: number }} item
 * @returns {HTMLElement}
 */
function bundleRow(item) {
  const offerId = el("input", { type: "text", maxlength: 64, value: item.offerId, autocomplete: "off", spellcheck: "false", class: "item-offer" });
  const quantity = el("input", { type: "number", min: 1, step: 1, value: item.quantity, class: "item-quantity" });
  return el(
    "div",
    { class: "row bundle-row" },
    field({ label: "Item offer id", control: offerId, path: "offerId" }),
    field({ label: "Quantity", control: quantity, path: "quantity" }),
    removeButton("Remove this item"),
    errorSlot("row"),
  );
}

/**
 * A button that removes the row it is in, then focuses the fieldset's legend area.
 * @param {string} label
 * @returns {HTMLElement}
 */
function removeButton(label) {
  const button = el("button", { type: "button", class: "small" }, label);
  button.addEventListener("click", () => {
    const row = button.closest(".row");
    const fieldset = button.closest("fieldset");
    row?.remove();
    fieldset?.querySelector("button:last-of-type")?.focus();
  });
  return button;
}

/**
 * Gives the error slots of a list's rows their API paths by position
 * (`prices.0.amount`, `prices.0`), so the API's details land on the right row.
 * @param {HTMLElement} rows the rows' container
 * @param {string} name the list's field (`prices`, `combinedItems`)
 */
function numberRows(rows, name) {
  [...rows.children].forEach((row, index) => {
    for (const slot of row.querySelectorAll("[data-error-for]")) {
      const own = slot.dataset.own ?? slot.dataset.errorFor;
      slot.dataset.own = own;
      slot.dataset.errorFor = own === "row" ? `${name}.${index}` : `${name}.${index}.${own}`;
    }
  });
}

/**
 * The offer editor's values as `{ offerId, body }`, the body holding exactly the fields of
 * `offerBody` (functions/schemas.ts; it refuses any other). Numbers left empty are null
 * where the API allows null, else left out (the API says what is missing or applies its default).
 * @param {OfferInputs} inputs
 * @returns {{ offerId: string, body: Record<string, unknown> }}
 */
function readOfferForm(inputs) {
  numberRows(inputs.prices, "prices");
  numberRows(inputs.combinedItems, "combinedItems");
  const orUndefined = (value) => (value === null ? undefined : value);
  const body = {
    name: inputs.name.value,
    kind: inputs.kind.value,
    offerGroup: inputs.offerGroup.value.trim(),
    cycle: inputs.cycle.value,
    customCycleSeconds: numberOf(inputs.customCycleSeconds),
    appendDate: inputs.appendDate.checked,
    renewal: inputs.renewal.value,
    tokenCount: orUndefined(numberOf(inputs.tokenCount)),
    prices: [...inputs.prices.children].map((row) => ({
      amount: orUndefined(numberOf(row.querySelector(".price-amount"))),
      currency: row.querySelector(".price-currency").value.trim(),
    })),
    quantityLimit: numberOf(inputs.quantityLimit),
    tags: listOf(inputs.tags),
    unlockedBy: listOf(inputs.unlockedBy),
    overridingKey: inputs.overridingKey.value.trim() === "" ? null : inputs.overridingKey.value.trim(),
    weight: orUndefined(numberOf(inputs.weight)),
    popular: orUndefined(numberOf(inputs.popular)),
    combinedItems: [...inputs.combinedItems.children].map((row) => ({
      offerId: row.querySelector(".item-offer").value.trim(),
      quantity: orUndefined(numberOf(row.querySelector(".item-quantity"))),
    })),
    active: inputs.active.checked,
  };
  return { offerId: inputs.offerId.value.trim(), body };
}

/**
 * Reads the editor and asks to save (`PUT /offers/{offerId}`); validation errors come
 * back next to their fields, the editor stays open.
 * @param {HTMLFormElement} form
 * @param {OfferInputs} inputs
 * @param {HTMLElement} formError
 */
function askSaveOffer(form, inputs, formError) {
  clearFieldErrors(form);
  formError.hidden = true;
  const { offerId, body } = readOfferForm(inputs);
  if (offerId === "") {
    showFieldErrors(form, { offerId: "is required" });
    focusFirstInvalid(form);
    return;
  }
  const existing = state.offers.find((offer) => offer.offerId === offerId);
  confirmAction({
    title: existing ? "Save the offer" : "Create the offer",
    summary: [
      ["Offer ", el("code", { class: "id" }, offerId), existing ? " (replaces the current one)" : " (new)"],
      `${body.name || "(no name)"}: ${body.tokenCount ?? "?"} tokens in ${body.offerGroup || "(no group)"}, ${body.kind}, ${body.cycle}`,
      `Prices: ${body.prices.map((price) => (typeof price.amount === "number" ? formatMoney(price) : "(no amount)")).join(", ") || "none"}`,
      `${body.active ? "Active" : "Inactive"}${body.unlockedBy.length > 0 ? `, locked by ${body.unlockedBy.join(", ")}` : ""}`,
    ],
    confirmLabel: "Save offer",
    confirmTestId: "offer-confirm",
    run: () => api("PUT", apiPath("offers", offerId), { body }),
    done: (saved) => `Saved offer ${saved?.offerId ?? offerId}.`,
    after: async () => {
      await loadOffers();
      page.offerEditor.replaceChildren();
      document.getElementById("offers-section-title")?.focus();
    },
    onError: (error) => {
      if (error.code !== "validation_error") return false;
      const unplaced = showFieldErrors(form, error.details);
      formError.textContent = unplaced.length > 0 ? `Not saved: ${unplaced.join("; ")}` : "Not saved: see the fields marked.";
      formError.hidden = false;
      focusFirstInvalid(form);
      return true;
    },
  });
}

// ---------------------------------------------------------------------------
// Start-up
// ---------------------------------------------------------------------------

/** Wires the page's fixed controls. */
function wire() {
  page.signinForm.addEventListener("submit", onSignIn);
  page.signOut.addEventListener("click", onSignOut);
  page.userForm.addEventListener("submit", onOpenUser);
  page.reloadOffers.addEventListener("click", onReloadOffers);
  page.newOffer.addEventListener("click", onNewOffer);
  page.dialogForm.addEventListener("submit", onConfirmSubmit);
  page.dialogCancel.addEventListener("click", onConfirmCancel);
  page.dialog.addEventListener("cancel", onDialogCancel);
  page.dialog.addEventListener("close", onDialogClose);
}

/** Shows the console when a key is kept for this tab (checked by listing offers), else the sign-in form. */
async function start() {
  wire();
  if (!storedKey()) {
    showSignIn();
    return;
  }
  showApp();
  await loadOffers();
}

start();
