/** Order routes (API.md "Orders and payment"). */
import { confirmManualOrder, createOrder, getOrder, listOrders, retryPayment, toOrder } from "../core/orders.js";
import { cancelRenewal } from "../core/subscriptions.js";
import { setupPaymentMethod } from "../core/billing.js";
import { deleteAutoTopUp, getAutoTopUp, putAutoTopUp } from "../core/auto-top-up.js";
import { syncOrder } from "../core/payment-attempts.js";
import { refundOrder } from "../core/refunds.js";
import { createApi, honoPath, idempotencyOf, jsonBody, lambdaHandler, parsedBody, pathParams, queryParams, validate } from "./http.js";
import {
  autoTopUpBody,
  cancelSubscriptionBody,
  paymentMethodSetupBody,
  emptyBody,
  orderBody,
  orderListQuery,
  refundBody,
  userGroupPath,
  userOfferPath,
  userOrderPath,
  userPath,
} from "./schemas.js";
import "./stripe-payments.js"; // orders create, read and refund Stripe payments

/** The function's app. */
export const app = createApi();

app.post(honoPath("/users/{userId}/orders"), async (c) => {
  const { userId } = pathParams(c, userPath);
  const raw = parsedBody(c);
  const body = validate(orderBody, raw);
  const result = await createOrder(c.get("runtime").core, {
    userId,
    ...body,
    starts: body.starts ?? undefined,
    idempotency: idempotencyOf(c, "orders", raw),
  });
  return c.json(result, 201);
});

app.get(honoPath("/users/{userId}/orders"), async (c) => {
  const { userId } = pathParams(c, userPath);
  const page = queryParams(c, orderListQuery);
  return c.json(await listOrders(c.get("runtime").core, userId, page), 200);
});

app.get(honoPath("/users/{userId}/orders/{orderId}"), async (c) => {
  const { userId, orderId } = pathParams(c, userOrderPath);
  return c.json(await getOrder(c.get("runtime").core, userId, orderId), 200);
});

app.post(honoPath("/users/{userId}/orders/{orderId}/confirm"), async (c) => {
  const { userId, orderId } = pathParams(c, userOrderPath);
  jsonBody(c, emptyBody);
  return c.json(await confirmManualOrder(c.get("runtime").core, userId, orderId), 200);
});

app.post(honoPath("/users/{userId}/orders/{orderId}/pay"), async (c) => {
  const { userId, orderId } = pathParams(c, userOrderPath);
  jsonBody(c, emptyBody);
  return c.json(await retryPayment(c.get("runtime").core, userId, orderId), 200);
});

app.post(honoPath("/users/{userId}/orders/{orderId}/refund"), async (c) => {
  const { userId, orderId } = pathParams(c, userOrderPath);
  const raw = parsedBody(c);
  const body = validate(refundBody, raw);
  // The order is part of the request: one key reused for another order's refund -> idempotency_conflict.
  const idempotency = idempotencyOf(c, "refunds", { orderId, body: raw });
  const order = await refundOrder(c.get("runtime").core, { userId, orderId, ...body, idempotency });
  return c.json(toOrder(order), 200);
});

app.post(honoPath("/users/{userId}/orders/{orderId}/sync"), async (c) => {
  const { userId, orderId } = pathParams(c, userOrderPath);
  jsonBody(c, emptyBody);
  return c.json(toOrder(await syncOrder(c.get("runtime").core, userId, orderId)), 200);
});

app.delete(honoPath("/users/{userId}/subscriptions/{offerId}"), async (c) => {
  const { userId, offerId } = pathParams(c, userOfferPath);
  const { atPeriodEnd } = jsonBody(c, cancelSubscriptionBody);
  return c.json(await cancelRenewal(c.get("runtime").core, userId, offerId, atPeriodEnd), 200);
});

app.post(honoPath("/users/{userId}/payment-methods/setup"), async (c) => {
  const { userId } = pathParams(c, userPath);
  const { checkout } = jsonBody(c, paymentMethodSetupBody);
  const core = c.get("runtime").core;
  return c.json(await setupPaymentMethod(core, { userId, currency: core.config.defaultCurrency, checkout }), 201);
});

app.put(honoPath("/users/{userId}/auto-top-up/{offerGroup}"), async (c) => {
  const { userId, offerGroup } = pathParams(c, userGroupPath);
  const body = jsonBody(c, autoTopUpBody);
  return c.json(await putAutoTopUp(c.get("runtime").core, userId, offerGroup, body), 200);
});

app.get(honoPath("/users/{userId}/auto-top-up/{offerGroup}"), async (c) => {
  const { userId, offerGroup } = pathParams(c, userGroupPath);
  return c.json(await getAutoTopUp(c.get("runtime").core, userId, offerGroup), 200);
});

app.delete(honoPath("/users/{userId}/auto-top-up/{offerGroup}"), async (c) => {
  const { userId, offerGroup } = pathParams(c, userGroupPath);
  jsonBody(c, emptyBody);
  return c.json(await deleteAutoTopUp(c.get("runtime").core, userId, offerGroup), 200);
});

/** Lambda entry point. */
export const handler = lambdaHandler(app);
