/** `POST /users/{userId}/expiry-check`: the original's per-user `checkForExpiredOrders`. */
import { checkUserExpiry } from "../core/expiry.js";
import { createApi, honoPath, jsonBody, lambdaHandler, pathParams } from "./http.js";
import { expiryCheckBody, userPath } from "./schemas.js";

/** The function's app. */
export const app = createApi();

app.post(honoPath("/users/{userId}/expiry-check"), async (c) => {
  const { userId } = pathParams(c, userPath);
  const body = jsonBody(c, expiryCheckBody);
  return c.json(await checkUserExpiry(c.get("runtime").core, userId, body), 200);
});

/** Lambda entry point. */
export const handler = lambdaHandler(app);
