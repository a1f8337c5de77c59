/** Consumption route (API.md "Credits and consumption"). */
import { consume } from "../core/consumption.js";
import { createApi, honoPath, idempotencyOf, lambdaHandler, parsedBody, pathParams, validate } from "./http.js";
import { consumptionBody, userPath } from "./schemas.js";

/** The function's app. */
export const app = createApi();

app.post(honoPath("/users/{userId}/consumptions"), async (c) => {
  const { userId } = pathParams(c, userPath);
  const raw = parsedBody(c);
  const body = validate(consumptionBody, raw);
  const result = await consume(c.get("runtime").core, { userId, ...body, idempotency: idempotencyOf(c, "consumptions", raw) });
  return c.json(result, 201);
});

/** Lambda entry point. */
export const handler = lambdaHandler(app);
