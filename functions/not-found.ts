/** The `$default` route: every request no route matches gets a JSON 404. */
import { Hono } from "hono";
import { errorBody, lambdaHandler, type ApiEnv } from "./http.js";

/** The function's app: nothing but the 404. */
export const app = new Hono<ApiEnv>();
app.all("*", (c) => c.json(errorBody("not_found", `No route ${c.req.method} ${c.req.path}.`), 404));

/** Lambda entry point. */
export const handler = lambdaHandler(app);
