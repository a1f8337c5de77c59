/**
 * core/rules/order-lifecycle.ts: an order's statuses and every transition between them,
 * checked over every (status, trigger) pair, and over random sequences of transitions.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  awaitsPayment,
  canTransition,
  created,
  isPayable,
  ORDER_STATUSES,
  transition,
  TRANSITIONS,
  type LifecycleOrder,
  type OrderStatus,
  type Trigger,
} from "../../../core/rules/order-lifecycle.js";
import { pendingKeys } from "../../../core/rules/work-index.js";

const PROPERTY = { numRuns: 300, seed: 0x0bde_11fe } as const;
const NOW = new Date("2026-11-30T10:00:00.000Z");
const LATER = new Date("2026-12-08T10:00:00.000Z");
const TRIGGERS = Object.keys(TRANSITIONS) as Trigger[];

/** A new order (pending, on the pending-order index), as `created` makes it. */
function aNewOrder(): LifecycleOrder {
  return { userId: "auth0|123", orderId: "01KORDER000000000000000000", ...created({ userId: "auth0|123", orderId: "01KORDER000000000000000000", now: NOW }) };
}

/** An order in `status`, with the pending keys it would carry there. */
function anOrder(status: OrderStatus): LifecycleOrder {
  const order = aNewOrder();
  if (awaitsPayment(status)) return { ...order, status };
  const { pendingSince: _s, pendingBucket: _b, pendingSort: _k, ...rest } = order;
  return { ...rest, status };
}

describe("the transition table", () => {
  it("knows every status the API lists, and the DESIGN.md lifecycle", () => {
    expect([...ORDER_STATUSES].sort()).toEqual(["disputed", "error", "expired", "paid", "pending", "refunded", "refused"]);
    expect(TRANSITIONS.paymentSucceeded).toEqual({ from: ["pending", "error", "refused"], to: "paid", event: "order.paid" });
    expect(TRANSITIONS.paymentFailed).toEqual({ from: ["pending", "error", "refused"], to: "refused", event: "order.refused" });
    expect(TRANSITIONS.abandoned).toEqual({ from: ["pending", "error"], to: "refused", event: "order.refused" });
    expect(TRANSITIONS.attemptFailed).toEqual({ from: ["pending", "error", "refused"], to: "error" });
    expect(TRANSITIONS.attemptStarted).toEqual({ from: ["pending", "error", "refused"], to: "pending" });
    expect(TRANSITIONS.grantsExpired).toEqual({ from: ["paid"], to: "expired" });
  });

  it("names only known statuses, and every status is reachable", () => {
    const reached = new Set<OrderStatus>(["pending"]);
    for (const trigger of TRIGGERS) {
      for (const status of TRANSITIONS[trigger].from) expect(ORDER_STATUSES).toContain(status);
      expect(ORDER_STATUSES).toContain(TRANSITIONS[trigger].to);
      reached.add(TRANSITIONS[trigger].to);
    }
    expect([...reached].sort()).toEqual([...ORDER_STATUSES].sort());
  });

  it("pays pending, error and refused orders only (a failed attempt is not final)", () => {
    for (const status of ORDER_STATUSES) expect(isPayable(status), status).toBe(["pending", "error", "refused"].includes(status));
  });

  it("never moves a paid order but by expiry, refund, dispute or a renewal's payment", () => {
    const fromPaid = TRIGGERS.filter((trigger) => canTransition("paid", trigger)).sort();
    expect(fromPaid).toEqual(["disputeOpened", "grantsExpired", "refunded", "renewalPaid"]);
  });

  it("pays an expired order again only as a renewal (a late payment of its next period), never as a first payment", () => {
    expect(canTransition("expired", "paymentSucceeded")).toBe(false);
    expect(canTransition("expired", "renewalPaid")).toBe(true);
  });

  it("lets no trigger leave a refunded order", () => {
    expect(TRIGGERS.filter((trigger) => canTransition("refunded", trigger))).toEqual([]);
  });
});

describe("canTransition", () => {
  it.each(ORDER_STATUSES.flatMap((status) => TRIGGERS.map((trigger) => [status, trigger] as const)))(
    "%s --%s--> is allowed exactly when the table lists it",
    (status, trigger) => {
      expect(canTransition(status, trigger)).toBe((TRANSITIONS[trigger].from as readonly string[]).includes(status));
    },
  );
});

describe("transition", () => {
  it("moves the status, appends one history entry at the new status, and moves updatedAt", () => {
    const order = aNewOrder();
    const paid = transition(order, "paymentSucceeded", { message: "payment succeeded (pi_1)", payload: '{"id":"pi_1"}', now: LATER });
    expect(paid.status).toBe("paid");
    expect(paid.updatedAt).toBe(LATER.toISOString());
    expect(paid.history).toEqual([
      { date: NOW.toISOString(), status: "pending", message: "created" },
      { date: LATER.toISOString(), status: "paid", message: "payment succeeded (pi_1)", payload: '{"id":"pi_1"}' },
    ]);
  });

  it("writes notes before the transition's entry, at the status the order had", () => {
    const paid = transition(aNewOrder(), "paymentSucceeded", { message: "paid", notes: ["requested start had passed"], now: LATER });
    expect(paid.history.slice(1)).toEqual([
      { date: LATER.toISOString(), status: "pending", message: "requested start had passed" },
      { date: LATER.toISOString(), status: "paid", message: "paid" },
    ]);
  });

  it("takes the order off the pending-order index when it stops waiting for its payment", () => {
    for (const trigger of ["paymentSucceeded", "paymentFailed", "abandoned"] as const) {
      const next = transition(aNewOrder(), trigger, { message: trigger, now: LATER });
      expect(next.pendingSince, trigger).toBeUndefined();
      expect(next.pendingBucket, trigger).toBeUndefined();
      expect(next.pendingSort, trigger).toBeUndefined();
      expect(Object.keys(next), trigger).not.toContain("pendingSince");
    }
  });

  it("keeps the index keys of an order whose attempt failed: it still waits since the same day", () => {
    const order = aNewOrder();
    const failed = transition(order, "attemptFailed", { message: "card declined", now: LATER });
    expect(failed.status).toBe("error");
    expect([failed.pendingSince, failed.pendingBucket, failed.pendingSort]).toEqual([order.pendingSince, order.pendingBucket, order.pendingSort]);
  });

  it("gives a new attempt fresh index keys, pending since now", () => {
    const failed = transition(aNewOrder(), "attemptFailed", { message: "card declined", now: NOW });
    const retried = transition(failed, "attemptStarted", { message: "payment attempt 2", now: LATER });
    expect(retried.status).toBe("pending");
    expect(retried).toMatchObject(pendingKeys("auth0|123", "01KORDER000000000000000000", LATER));
  });

  it("keeps the caller's other fields and leaves the order it was given unchanged", () => {
    const order = { ...aNewOrder(), total: { amount: 1000, currency: "usd" } };
    const frozen = structuredClone(order);
    const next = transition(order, "paymentFailed", { message: "declined", now: LATER });
    expect(next.total).toEqual({ amount: 1000, currency: "usd" });
    expect(order).toEqual(frozen);
  });

  it.each(ORDER_STATUSES.flatMap((status) => TRIGGERS.filter((trigger) => !canTransition(status, trigger)).map((trigger) => [status, trigger] as const)))(
    "refuses %s --%s--> with a RangeError (a caller checks canTransition first)",
    (status, trigger) => {
      expect(() => transition(anOrder(status), trigger, { message: "x", now: LATER })).toThrow(RangeError);
    },
  );
});

describe("created", () => {
  it("is pending since now, on the pending-order index, with a first history entry", () => {
    expect(created({ userId: "u1", orderId: "o1", now: NOW })).toEqual({
      status: "pending",
      history: [{ date: NOW.toISOString(), status: "pending", message: "created" }],
      createdAt: NOW.toISOString(),
      updatedAt: NOW.toISOString(),
      ...pendingKeys("u1", "o1", NOW),
    });
  });
});

describe("any sequence of allowed transitions", () => {
  const steps = fc.array(fc.tuple(fc.constantFrom(...TRIGGERS), fc.integer({ min: 0, max: 30 * 86_400_000 })), { maxLength: 20 });

  it("keeps history append-only, one entry per transition, and the index keys only while the order waits for its payment", () => {
    fc.assert(
      fc.property(steps, (sequence) => {
        let order = aNewOrder();
        let at = NOW.getTime();
        for (const [trigger, gap] of sequence) {
          if (!canTransition(order.status, trigger)) continue;
          at += gap;
          const next = transition(order, trigger, { message: trigger, now: new Date(at) });
          expect(next.history.slice(0, order.history.length)).toEqual(order.history);
          expect(next.history).toHaveLength(order.history.length + 1);
          expect(next.history.at(-1)).toMatchObject({ status: TRANSITIONS[trigger].to, message: trigger });
          expect(next.status).toBe(TRANSITIONS[trigger].to);
          if (next.pendingSince !== undefined) expect(awaitsPayment(next.status)).toBe(true);
          if (!awaitsPayment(next.status)) expect(next.pendingBucket).toBeUndefined();
          order = next;
        }
      }),
      PROPERTY,
    );
  });
});
