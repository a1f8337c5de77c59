/**
 * Stripe webhook signature verification, on the raw body (Stripe docs, "Check the
 * webhook signatures"): the `Stripe-Signature` header's HMAC over `timestamp.body` with
 * the endpoint's signing secret, and a timestamp at most 5 minutes old (replay
 * protection), measured against the injected clock.
 */
import Stripe from "stripe";
import { InvalidSignatureError } from "../errors.js";

/** The parts of a Stripe event this service reads. */
export interface StripeEvent {
  id: string;
  type: string;
  created: number;
  data: { object: Record<string, unknown> };
}

/** Oldest signature timestamp accepted, in seconds (Stripe's default tolerance). */
export const SIGNATURE_TOLERANCE_SECONDS = 300;

/**
 * Verifies `signature` over the exact bytes of `rawBody` and parses the event.
 * @throws InvalidSignatureError for a missing secret or header, a bad signature, a stale
 *   timestamp, or a body that is not an event
 */
export function verifyStripeEvent(input: {
  rawBody: Buffer;
  signature: string | undefined;
  secret: string | undefined;
  now: Date;
}): StripeEvent {
  const { rawBody, signature, secret, now } = input;
  if (!secret) throw new InvalidSignatureError("No webhook signing secret is configured (STRIPE_WEBHOOK_SECRET).");
  if (!signature) throw new InvalidSignatureError("The Stripe-Signature header is missing.");
  let event: unknown;
  try {
    event = Stripe.webhooks.constructEvent(rawBody, signature, secret, SIGNATURE_TOLERANCE_SECONDS, undefined, now.getTime());
  } catch (error) {
    const reason = error instanceof Error && /tolerance/i.test(error.message) ? "is too old" : "does not verify";
    throw new InvalidSignatureError(`The Stripe-Signature header ${reason}.`);
  }
  const candidate = event as Partial<StripeEvent> | null;
  if (
    !candidate ||
    typeof candidate.id !== "string" ||
    typeof candidate.type !== "string" ||
    typeof candidate.data !== "object" ||
    candidate.data === null ||
    typeof candidate.data.object !== "object"
  ) {
    throw new InvalidSignatureError("The signed body is not a Stripe event.");
  }
  return candidate as StripeEvent;
}
