/**
 * What every core operation receives: the database, the clock, the payment provider,
 * settings and a logger. Built once per process by the caller (a Lambda handler, the
 * local runner, a test); core never reads the environment.
 */
import type { BalanceCache } from "./balance-cache.js";
import type { Clock } from "./clock.js";
import type { Db } from "./db/service.js";
import type { PaymentProvider } from "./payments/provider.js";

/** Structured logger; Powertools' `Logger` fits, so does a console wrapper. */
export interface Logger {
  debug(message: string, ...extra: unknown[]): void;
  info(message: string, ...extra: unknown[]): void;
  warn(message: string, ...extra: unknown[]): void;
  error(message: string, ...extra: unknown[]): void;
}

/** Settings core needs. */
export interface CoreConfig {
  /** Lowercase ISO 4217 currency of orders that name none (API.md `DEFAULT_CURRENCY`). */
  defaultCurrency: string;
}

/** The dependencies of a core operation. */
export interface Context {
  db: Db;
  clock: Clock;
  payments: PaymentProvider;
  config: CoreConfig;
  logger: Logger;
  /**
   * The instance's cache of balance items (core/balance-cache.ts), for consumptions: one
   * request when warm. Absent: every consumption reads first.
   */
  balanceCache?: BalanceCache | undefined;
}

/** A logger that drops everything (tests, scripts that print their own output). */
export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/** What the payment paths need of the context (no config): the table, the clock, the provider, the logger. */
export type PaymentContext = Pick<Context, "db" | "clock" | "payments" | "logger">;
