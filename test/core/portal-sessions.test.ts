/**
 * core/portal-sessions.ts: a portal session token is signed for one user and an expiry,
 * and verified exactly: another secret, an altered payload, another audience or scope, an
 * unsigned (`alg: none`) token, an API key, or an expired token are all refused with 401.
 */
import { SignJWT, UnsecuredJWT } from "jose";
import { describe, expect, it } from "vitest";
import { mintPortalToken, verifyPortalToken } from "../../core/portal-sessions.js";
import { PORTAL_AUDIENCE } from "../../core/rules/portal.js";

const SECRET = "unit-portal-signing-secret-0123456789abcdef";
const NOW = new Date("2027-03-10T10:00:00.000Z");
const at = (seconds: number) => new Date(NOW.getTime() + seconds * 1000);
const refused = { code: "unauthorized" };

describe("a portal session token", () => {
  it("carries its user, expiry, return URL and tags, and is accepted until it expires", async () => {
    const { token, expires } = await mintPortalToken(SECRET, { userId: "auth0|42", returnUrl: "https://app.example/account", tags: ["calls"], ttlSeconds: 600 }, NOW);
    expect(expires).toBe("2027-03-10T10:10:00.000Z");
    expect(await verifyPortalToken(SECRET, token, at(599))).toEqual({ userId: "auth0|42", expires, returnUrl: "https://app.example/account", tags: ["calls"] });
    await expect(verifyPortalToken(SECRET, token, at(600))).rejects.toMatchObject({ ...refused, message: expect.stringMatching(/expired/) });
  });

  it("lasts an hour by default; 60 s to a day, else refused naming ttlSeconds", async () => {
    expect((await mintPortalToken(SECRET, { userId: "u1" }, NOW)).expires).toBe("2027-03-10T11:00:00.000Z");
    for (const ttlSeconds of [59, 86_401, 1.5]) {
      await expect(mintPortalToken(SECRET, { userId: "u1", ttlSeconds }, NOW)).rejects.toMatchObject({ code: "validation_error", details: { ttlSeconds: expect.any(String) } });
    }
  });

  it("is refused when signed with another secret, altered, unsigned, of another audience or scope, or not a token at all", async () => {
    const { token } = await mintPortalToken(SECRET, { userId: "u1" }, NOW);
    await expect(verifyPortalToken("another-portal-signing-secret-0123456789", token, NOW)).rejects.toMatchObject(refused);
    // The payload changed to another user, the signature kept.
    const [header, payload, signature] = token.split(".") as [string, string, string];
    const other = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(payload, "base64url").toString()), sub: "u2" })).toString("base64url");
    await expect(verifyPortalToken(SECRET, `${header}.${other}.${signature}`, NOW)).rejects.toMatchObject(refused);
    const unsigned = new UnsecuredJWT({ scope: "portal" }).setSubject("u1").setAudience(PORTAL_AUDIENCE).setExpirationTime(at(600).getTime() / 1000).encode();
    await expect(verifyPortalToken(SECRET, unsigned, NOW)).rejects.toMatchObject(refused);
    const key = new TextEncoder().encode(SECRET);
    const sign = (claims: Record<string, unknown>, audience: string) =>
      new SignJWT(claims).setProtectedHeader({ alg: "HS256" }).setSubject("u1").setAudience(audience).setExpirationTime(Math.floor(at(600).getTime() / 1000)).sign(key);
    await expect(verifyPortalToken(SECRET, await sign({ scope: "portal" }, "another-audience"), NOW)).rejects.toMatchObject(refused);
    await expect(verifyPortalToken(SECRET, await sign({ scope: "admin" }, PORTAL_AUDIENCE), NOW)).rejects.toMatchObject(refused);
    expect(await verifyPortalToken(SECRET, await sign({ scope: "portal" }, PORTAL_AUDIENCE), NOW)).toMatchObject({ userId: "u1" });
    for (const junk of ["", "an-api-key-0123456789", "a.b.c", token.slice(0, -3)]) await expect(verifyPortalToken(SECRET, junk, NOW)).rejects.toMatchObject(refused);
  });

  it("needs a signing secret of at least 32 bytes (503 otherwise, nothing signed or accepted)", async () => {
    await expect(mintPortalToken(undefined, { userId: "u1" }, NOW)).rejects.toMatchObject({ code: "service_unavailable" });
    await expect(mintPortalToken("short", { userId: "u1" }, NOW)).rejects.toMatchObject({ code: "service_unavailable" });
    const { token } = await mintPortalToken(SECRET, { userId: "u1" }, NOW);
    await expect(verifyPortalToken(undefined, token, NOW)).rejects.toMatchObject({ code: "service_unavailable" });
  });
});
