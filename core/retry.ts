/**
 * Bounded retries with full-jitter exponential backoff (AWS Architecture Blog,
 * "Exponential Backoff And Jitter"), for optimistic-concurrency conflicts: a version
 * check that failed because another process (another Lambda) wrote first. Nothing
 * relies on an in-process lock.
 */
import { TransientError } from "./errors.js";

/** Thrown inside a retried function to ask for another attempt. */
export class RetryableConflict extends Error {
  constructor(message = "optimistic concurrency conflict") {
    super(message);
    this.name = "RetryableConflict";
  }
}

/** Retry settings. */
export interface RetryOptions {
  /** Attempts in all, >= 1 (default 30). */
  attempts?: number;
  /** First backoff ceiling in ms (default 5). */
  baseMs?: number;
  /** Largest backoff ceiling in ms (default 100). */
  maxMs?: number;
  /** Called before each retry (for counting), with the attempt number that failed. */
  onRetry?: (attempt: number) => void;
}

/**
 * Runs `fn` until it returns, retrying when it throws {@link RetryableConflict}, after a
 * random delay in [0, min(maxMs, baseMs × 2^attempt)). Other errors pass through.
 * @throws TransientError (503) when every attempt conflicted
 */
export async function retryOnConflict<T>(fn: (attempt: number) => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const { attempts = 30, baseMs = 5, maxMs = 100, onRetry } = options;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (error) {
      if (!(error instanceof RetryableConflict)) throw error;
      if (attempt >= attempts) {
        throw new TransientError(`Gave up after ${attempts} conflicting attempts; retry later.`, error);
      }
      onRetry?.(attempt);
      const ceiling = Math.min(maxMs, baseMs * 2 ** attempt);
      await new Promise((resolve) => setTimeout(resolve, Math.random() * ceiling));
    }
  }
}

/** Conflicts retried in this process since start (reported by tests and benchmarks). */
export const retryStats = { conflicts: 0 };
