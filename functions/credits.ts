/** Credit reads, promotional grants, the user's reservations and events (API.md "Credits and consumption", "Reservations"). */
import { checkSubscription, getCredits } from "../core/credits.js";
import { createPromotionalGrant } from "../core/grants.js";
import { listLedger } from "../core/ledger.js";
import { createApi, honoPath, jsonBody, lambdaHandler, pathParams, queryParams } from "./http.js";
import { listEvents } from "../core/events.js";
import { listHolds } from "../core/reservations.js";
import { eventListQuery, grantBody, ledgerFilter, ledgerQuery, reservationListQuery, userOfferPath, userPath } from "./schemas.js";

/** The function's app. */
export const app = createApi();

app.get(honoPath("/users/{userId}/credits"), async (c) => {
  const { userId } = pathParams(c, userPath);
  return c.json(await getCredits(c.get("runtime").core, userId), 200);
});

app.get(honoPath("/users/{userId}/ledger"), async (c) => {
  const { userId } = pathParams(c, userPath);
  const page = await listLedger(c.get("runtime").core, userId, ledgerFilter(queryParams(c, ledgerQuery)));
  return c.json(page, 200);
});

app.get(honoPath("/users/{userId}/subscriptions/{offerId}"), async (c) => {
  const { userId, offerId } = pathParams(c, userOfferPath);
  return c.json(await checkSubscription(c.get("runtime").core, userId, offerId), 200);
});

app.post(honoPath("/users/{userId}/grants"), async (c) => {
  const { userId } = pathParams(c, userPath);
  const body = jsonBody(c, grantBody);
  return c.json(await createPromotionalGrant(c.get("runtime").core, { userId, ...body }), 201);
});

app.get(honoPath("/users/{userId}/events"), async (c) => {
  const { userId } = pathParams(c, userPath);
  const page = queryParams(c, eventListQuery);
  return c.json(await listEvents(c.get("runtime").core, userId, page), 200);
});

app.get(honoPath("/users/{userId}/reservations"), async (c) => {
  const { userId } = pathParams(c, userPath);
  const query = queryParams(c, reservationListQuery);
  return c.json(await listHolds(c.get("runtime").core, userId, query), 200);
});

/** Lambda entry point. */
export const handler = lambdaHandler(app);
