/**
 * The spending routes (API.md "Credits and consumption", "Reservations"): consumption,
 * holds and their commit or release, reversal. One function: each reads the group's
 * balance item and writes it back in one transaction, the hot path of the user's app.
 */
import { consume } from "../core/consumption.js";
import { commitHold, createHold, releaseHold } from "../core/reservations.js";
import { reverseConsumption } from "../core/reversals.js";
import { createApi, honoPath, idempotencyOf, lambdaHandler, parsedBody, pathParams, validate } from "./http.js";
import { commitBody, consumptionBody, emptyBody, holdBody, reversalBody, userEntryPath, userPath, userReservationPath } from "./schemas.js";

/** The function's app. */
export const app = createApi();

app.post(honoPath("/users/{userId}/consumptions"), async (c) => {
  const { userId } = pathParams(c, userPath);
  const raw = parsedBody(c);
  const body = validate(consumptionBody, raw);
  const result = await consume(c.get("runtime").core, { userId, ...body, idempotency: idempotencyOf(c, "consumptions", raw) });
  return c.json(result, 201);
});

app.post(honoPath("/users/{userId}/reservations"), async (c) => {
  const { userId } = pathParams(c, userPath);
  const raw = parsedBody(c);
  const body = validate(holdBody, raw);
  const reservation = await createHold(c.get("runtime").core, { userId, ...body, idempotency: idempotencyOf(c, "reservations", raw) });
  return c.json(reservation, 201);
});

app.post(honoPath("/users/{userId}/reservations/{reservationId}/commit"), async (c) => {
  const { userId, reservationId } = pathParams(c, userReservationPath);
  const raw = parsedBody(c);
  const body = validate(commitBody, raw);
  // The reservation is part of the request: one key reused on another reservation -> idempotency_conflict.
  const idempotency = idempotencyOf(c, "commits", { reservationId, body: raw });
  return c.json(await commitHold(c.get("runtime").core, { userId, reservationId, ...body, idempotency }), 200);
});

app.post(honoPath("/users/{userId}/reservations/{reservationId}/release"), async (c) => {
  const { userId, reservationId } = pathParams(c, userReservationPath);
  const raw = parsedBody(c);
  validate(emptyBody, raw);
  const idempotency = idempotencyOf(c, "releases", { reservationId, body: raw });
  return c.json(await releaseHold(c.get("runtime").core, { userId, reservationId, idempotency }), 200);
});

app.post(honoPath("/users/{userId}/consumptions/{entryId}/reverse"), async (c) => {
  const { userId, entryId } = pathParams(c, userEntryPath);
  const raw = parsedBody(c);
  const body = validate(reversalBody, raw);
  // The entry is part of the request: one key reused on another consumption -> idempotency_conflict.
  const idempotency = idempotencyOf(c, "reversals", { entryId, body: raw });
  return c.json(await reverseConsumption(c.get("runtime").core, { userId, entryId, ...body, idempotency }), 201);
});

/** Lambda entry point. */
export const handler = lambdaHandler(app);
