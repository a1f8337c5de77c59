/**
 * Domain errors. Each carries a stable `code` from the API contract (API.md, "Errors");
 * the HTTP layer maps codes to statuses in one table (functions/http.ts). Core throws
 * these and nothing HTTP-specific.
 */

/** Every error code the service can answer with (API.md error table, plus 5xx codes). */
export type ErrorCode =
  | "validation_error"
  | "unauthorized"
  | "invalid_signature"
  | "insufficient_credits"
  | "not_found"
  | "conflict"
  | "reservation_expired"
  | "idempotency_conflict"
  | "idempotency_in_progress"
  | "already_subscribed"
  | "payload_too_large"
  | "unsupported_media_type"
  | "offer_locked"
  | "quantity_limit_exceeded"
  | "currency_not_offered"
  | "start_in_past"
  | "amount_out_of_range"
  | "period_out_of_range"
  | "not_renewable"
  | "payment_provider_error"
  | "service_unavailable"
  | "internal_error";

/**
 * A refusal with a stable code, a human message and optional structured details
 * (`details` names fields for validation errors, carries `balance` for 402, ...).
 */
export class DomainError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = "DomainError";
  }

  /** The error as it is stored with an idempotency record and replayed. */
  toJSON(): { code: ErrorCode; message: string; details?: Record<string, unknown> } {
    return this.details === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, details: this.details };
  }
}

/** Input failed validation; `details` maps each bad field (dotted path) to what is wrong. */
export class ValidationError extends DomainError {
  constructor(details: Record<string, string>, message = "The request is invalid.") {
    super("validation_error", message, details);
  }
}

/** An offer, order or route that does not exist (or an inactive offer). */
export class NotFoundError extends DomainError {
  constructor(what: string, id: string) {
    super("not_found", `${what} ${JSON.stringify(id)} was not found.`, { [what]: id });
  }
}

/** A consumption larger than what the group holds; `details.balance` is the balance. */
export class InsufficientCreditsError extends DomainError {
  constructor(offerGroup: string, balance: number, requested: number) {
    super(
      "insufficient_credits",
      `The balance of ${offerGroup} (${balance}) is lower than the ${requested} tokens requested.`,
      { offerGroup, balance, requested },
    );
  }
}

/** A state conflict (paying a paid order, confirming a non-manual order, ...). */
export class ConflictError extends DomainError {
  constructor(message: string, details?: Record<string, unknown>) {
    super("conflict", message, details);
  }
}

/**
 * A commit of a reservation past its `expires` (API.md "Reservations": `409
 * reservation_expired`): its hold has been (or is being) released, nothing is consumed.
 */
export class ReservationExpiredError extends DomainError {
  constructor(reservationId: string, expires: string) {
    super("reservation_expired", `Reservation ${JSON.stringify(reservationId)} expired at ${expires}.`, { reservationId, expires });
  }
}

/** Stripe (or another provider) failed; nothing was recorded as paid. */
export class PaymentProviderError extends DomainError {
  constructor(message: string, details?: Record<string, unknown>) {
    super("payment_provider_error", message, details);
  }
}

/**
 * The card declined a payment (Stripe's `card_error`): `code` is Stripe's error code
 * (`card_declined`, `authentication_required`, `expired_card`, ...), `declineCode` the
 * issuer's `decline_code` when given (Stripe docs, "Error codes", "Decline codes"). A
 * decline is an answer about this payment, not a failure worth retrying as it is; an
 * `authentication_required` one needs the buyer present (on-session).
 */
export class PaymentDeclinedError extends PaymentProviderError {
  readonly declineCode: string;
  constructor(message: string, details: { stripeCode: string; declineCode?: string | undefined } & Record<string, unknown>) {
    super(message, details);
    this.name = "PaymentDeclinedError";
    this.declineCode = details.declineCode ?? details.stripeCode;
  }
}

/**
 * The provider does not know the object (Stripe's 404 `resource_missing`): not a
 * failure worth a retry. A webhook event about it is answered 200 and ignored (API.md
 * "Payment attempts never double-charge").
 */
export class PaymentNotFoundError extends PaymentProviderError {
  constructor(message: string, details?: Record<string, unknown>) {
    super(message, details);
    this.name = "PaymentNotFoundError";
  }
}

/**
 * For `.catch(ignoreUnknown)` on a provider read: Stripe's "no such object" (a
 * PaymentNotFoundError) is an answer, undefined; any other error is thrown again.
 */
export function ignoreUnknown(error: unknown): undefined {
  if (error instanceof PaymentNotFoundError) return undefined;
  throw error;
}

/**
 * A failure worth retrying later (the database throttled, a conflict that outlasted
 * the bounded retries). Mapped to 503 so that Stripe and clients retry.
 */
export class TransientError extends DomainError {
  constructor(message: string, cause?: unknown) {
    super("service_unavailable", message);
    this.cause = cause;
  }
}

/**
 * A broken invariant caught before a write (TigerBeetle asserts its invariants in code):
 * nothing is written, the caller answers 500 and logs `context` (the state that broke it).
 * Not a DomainError: its details are for the logs, not for the client.
 */
export class InvariantViolation extends Error {
  constructor(
    message: string,
    readonly context: Record<string, unknown>,
  ) {
    super(message);
    this.name = "InvariantViolation";
  }
}

const TRANSIENT_ERRORS = new Set([
  "ProvisionedThroughputExceededException",
  "ThrottlingException",
  "RequestLimitExceeded",
  "InternalServerError",
  "ServiceUnavailable",
  "TransactionConflictException",
  "TransactionInProgressException",
  "TimeoutError",
]);

/**
 * True for failures worth a retry later: AWS throttling and 5xx (by the SDK's error name,
 * `$retryable` or HTTP status), network errors, and {@link TransientError}, also when
 * wrapped as the `cause` of another error (ElectroDB wraps the SDK's errors).
 */
export function isTransient(error: unknown): boolean {
  const seen = new Set<unknown>();
  for (let current = error; current && typeof current === "object" && !seen.has(current); current = (current as { cause?: unknown }).cause) {
    seen.add(current);
    if (current instanceof TransientError) return true;
    const e = current as { name?: string; code?: string; $retryable?: unknown; $metadata?: { httpStatusCode?: number } };
    if (e.name && TRANSIENT_ERRORS.has(e.name)) return true;
    if (e.$retryable) return true;
    if ((e.$metadata?.httpStatusCode ?? 0) >= 500) return true;
    if (["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE"].includes(e.code ?? "")) return true;
  }
  return false;
}

/** A bad or stale `Stripe-Signature` (API.md: 400 `invalid_signature`). */
export class InvalidSignatureError extends DomainError {
  constructor(message = "The Stripe-Signature header does not verify.") {
    super("invalid_signature", message);
  }
}
