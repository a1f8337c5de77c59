/**
 * The `$default` route: every request no route matches gets a JSON 404. It needs no
 * runtime (no key, table or secret): the edge of functions/lambda-edge.ts only.
 */
import { Hono } from "hono";
import { errorBody, lambdaHandler } from "./lambda-edge.js";

/** The function's app: nothing but the 404. */
export const app = new Hono();
app.all("*", (c) => c.json(errorBody("not_found", `No route ${c.req.method} ${c.req.path}.`), 404));

/** Lambda entry point. */
export const handler = lambdaHandler(app);
