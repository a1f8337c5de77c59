/**
 * Fault injection at the DynamoDB client: a test makes a chosen call fail, before it is
 * sent (nothing applied) or after it was applied (the response lost), with the errors
 * DynamoDB and the network produce: throttling, a network error, a transaction
 * cancelled by a conflict. Faults are raised above the SDK's own retries, as if those
 * were exhausted.
 */
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";

/** The kinds of failure: transient ones (throttling, network, a conflict), and a request DynamoDB refuses (`invalid`, not worth a retry). */
export type FaultKind = "throttle" | "network" | "conflict" | "invalid";

/** When a rule fires: the `skip`+1-th call of `command` (and `times` in a row). */
export interface FaultRule {
  /** SDK command name, e.g. `TransactWriteItemsCommand`, `GetItemCommand`, `QueryCommand`. */
  command: string;
  fault: FaultKind;
  /** Apply the request, then fail (the caller never learns it succeeded). */
  after?: boolean;
  /** Matching calls to let through first (default 0). */
  skip?: number;
  /** How many matching calls fail (default 1). */
  times?: number;
}

function faultError(kind: FaultKind): Error {
  switch (kind) {
    case "throttle":
      return Object.assign(new Error("Throughput exceeds the current capacity of your table."), {
        name: "ProvisionedThroughputExceededException",
        $fault: "client",
        $retryable: { throttling: true },
        $metadata: { httpStatusCode: 400 },
      });
    case "network":
      return Object.assign(new Error("socket hang up"), { name: "Error", code: "ECONNRESET", $metadata: {} });
    case "invalid":
      return Object.assign(new Error("One or more parameter values were invalid"), {
        name: "ValidationException",
        $fault: "client",
        $metadata: { httpStatusCode: 400 },
      });
    case "conflict":
      return Object.assign(new Error("Transaction cancelled, please refer cancellation reasons for specific reasons [TransactionConflict]"), {
        name: "TransactionCanceledException",
        $fault: "client",
        $metadata: { httpStatusCode: 400 },
        CancellationReasons: [{ Code: "TransactionConflict", Message: "Transaction is ongoing for the item" }],
      });
  }
}

/** Installed rules and a log of the faults raised. */
export class FaultInjector {
  private rules: Array<FaultRule & { seen: number; fired: number }> = [];
  readonly raised: Array<{ command: string; fault: FaultKind; after: boolean }> = [];

  /** Adds a rule. */
  fail(rule: FaultRule): this {
    this.rules.push({ ...rule, seen: 0, fired: 0 });
    return this;
  }

  /** Removes every rule. */
  clear(): void {
    this.rules = [];
  }

  /** The rule that fires for this call, if any (counts the call). */
  take(command: string): (FaultRule & { seen: number; fired: number }) | undefined {
    for (const rule of this.rules) {
      if (rule.command !== command) continue;
      rule.seen++;
      if (rule.seen > (rule.skip ?? 0) && rule.fired < (rule.times ?? 1)) {
        rule.fired++;
        return rule;
      }
    }
    return undefined;
  }
}

/** Installs fault injection on `client`. */
export function injectFaults(client: DynamoDBClient): FaultInjector {
  const injector = new FaultInjector();
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const command = context.commandName ?? "unknown";
      const rule = injector.take(command);
      if (!rule) return next(args);
      injector.raised.push({ command, fault: rule.fault, after: Boolean(rule.after) });
      if (rule.after) await next(args);
      throw faultError(rule.fault);
    },
    { step: "initialize", name: "injectFaults" },
  );
  return injector;
}
