/**
 * Time, injected. Core never calls `new Date()` for a business decision: it asks the
 * clock it was given, so tests can stand on a month end or an expiry instant without
 * sleeping (DESIGN.md, "Core reads time from an injected clock").
 */

/** A source of the current instant (UTC; a `Date` carries no zone). */
export interface Clock {
  /** The current instant. */
  now(): Date;
}

/** The machine's clock. */
export const systemClock: Clock = { now: () => new Date() };

/**
 * A clock that only moves when told to: `set` jumps to an instant, `advance` adds
 * milliseconds. For tests and for scripted runs.
 */
export class ManualClock implements Clock {
  private current: number;

  /** @param start the first instant, a `Date` or an ISO 8601 string. */
  constructor(start: Date | string) {
    this.current = new Date(start).getTime();
  }

  now(): Date {
    return new Date(this.current);
  }

  /** Jumps to `at` (a `Date` or an ISO 8601 string). */
  set(at: Date | string): void {
    this.current = new Date(at).getTime();
  }

  /** Moves forward by `ms` milliseconds. */
  advance(ms: number): void {
    this.current += ms;
  }
}
