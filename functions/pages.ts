/**
 * The two pages the API serves (issue 14; API.md "Customer portal and operator
 * console"), like Stripe's hosted Customer Portal: the customer portal (`GET /portal`) and
 * the operator console (`GET /console`), with their scripts and styles
 * (`GET /assets/{file}`). They are plain files in `functions/pages/` (no framework, no
 * build step), copied into the portal function's package by SST (`copyFiles`,
 * infra/api.ts) and read from it once per instance: `LAMBDA_TASK_ROOT` in Lambda, the
 * working folder (the project's root) under `npm start` and the tests.
 *
 * Every page answer carries a strict Content-Security-Policy: scripts and styles from
 * this origin only (no inline script or style, so a key in session storage is only as
 * exposed as the page's own code), requests to this origin only, no framing, no base URL,
 * forms posting here only; no referrer, so the portal's URL (its token is in the fragment,
 * never sent anyway) leaks nowhere.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";

/** The folder of the pages, relative to the package's (or the project's) root. */
export const PAGES_DIR = "functions/pages";

/** The files served, and their media types. Anything else under `/assets/` is a 404. */
export const PAGE_FILES: Readonly<Record<string, string>> = {
  "portal.html": "text/html; charset=utf-8",
  "console.html": "text/html; charset=utf-8",
  "portal.js": "text/javascript; charset=utf-8",
  "console.js": "text/javascript; charset=utf-8",
  "style.css": "text/css; charset=utf-8",
  "console.css": "text/css; charset=utf-8",
};

/** The pages' Content-Security-Policy (see the module comment). */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join("; ");

/** A page or asset to send: its bytes as text, and the headers to send with it. */
export interface PageFile {
  body: string;
  headers: Record<string, string>;
}

const cache = new Map<string, string>();

/**
 * The file `name` of {@link PAGE_FILES} with its headers (media type, the policy,
 * `nosniff`, no referrer; HTML not cached, assets for five minutes), or undefined for a
 * name that is not one of them.
 * @throws the file system's error when a listed file is missing from the package
 */
export function pageFile(name: string): PageFile | undefined {
  const type = Object.hasOwn(PAGE_FILES, name) ? PAGE_FILES[name] : undefined;
  if (type === undefined) return undefined;
  let body = cache.get(name);
  if (body === undefined) {
    body = readFileSync(join(process.env.LAMBDA_TASK_ROOT ?? process.cwd(), PAGES_DIR, name), "utf8");
    cache.set(name, body);
  }
  return {
    body,
    headers: {
      "content-type": type,
      "content-security-policy": CONTENT_SECURITY_POLICY,
      "x-content-type-options": "nosniff",
      "referrer-policy": "no-referrer",
      "cache-control": name.endsWith(".html") ? "no-store" : "public, max-age=300",
    },
  };
}
