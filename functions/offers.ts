/** Offer catalog and offer group settings routes (API.md "Offers"). */
import { getOffer, listOffers, upsertOffer } from "../core/offers.js";
import { createApi, honoPath, jsonBody, lambdaHandler, pathParams, queryParams } from "./http.js";
import { getOfferGroup, putOfferGroup } from "../core/offer-groups.js";
import { offerBody, offerGroupBody, offerGroupPath, offerPath, offerQuery } from "./schemas.js";

/** The function's app. */
export const app = createApi();

app.put(honoPath("/offers/{offerId}"), async (c) => {
  const { offerId } = pathParams(c, offerPath);
  const body = jsonBody(c, offerBody);
  return c.json(await upsertOffer(c.get("runtime").core, offerId, body), 200);
});

app.get(honoPath("/offers/{offerId}"), async (c) => {
  const { offerId } = pathParams(c, offerPath);
  return c.json(await getOffer(c.get("runtime").core, offerId), 200);
});

app.get("/offers", async (c) => {
  const query = queryParams(c, offerQuery);
  return c.json({ offers: await listOffers(c.get("runtime").core, query) }, 200);
});

app.put(honoPath("/offer-groups/{offerGroup}"), async (c) => {
  const { offerGroup } = pathParams(c, offerGroupPath);
  return c.json(await putOfferGroup(c.get("runtime").core, offerGroup, jsonBody(c, offerGroupBody)), 200);
});

app.get(honoPath("/offer-groups/{offerGroup}"), async (c) => {
  const { offerGroup } = pathParams(c, offerGroupPath);
  return c.json(await getOfferGroup(c.get("runtime").core, offerGroup), 200);
});

/** Lambda entry point. */
export const handler = lambdaHandler(app);
