/**
 * What each function may do, in one place: the secrets it reads and the IAM actions it
 * is granted, on which resource. The infra grants exactly these (infra/api.ts, bus.ts,
 * cron.ts: SST `permissions` with named actions on exact ARNs; secrets as SST links, which
 * grant no IAM), and test/infra-permissions.test.ts checks them against what each
 * function's handler really sends when driven over its routes and paths (DynamoDB Local,
 * the Stripe and EventBridge stand-ins): an action used but not granted would be an
 * AccessDenied in the cloud, one granted but never used is more than the function needs.
 *
 * The table, the bus and the queues are not SST-linked to any function: a link grants
 * `dynamodb:*`, `events:*` or `sqs:*` (their `getSSTLink()` in SST's platform source).
 * Their names reach the functions as environment variables instead (`TABLE_NAME`,
 * `EVENT_BUS_NAME`, `EXPIRY_CONTINUATION_QUEUE_URL`, read by functions/runtime.ts).
 *
 * How DynamoDB calls map to IAM actions (AWS, "Using IAM with DynamoDB transactions";
 * "Actions, resources, and condition keys for Amazon DynamoDB"): each item of a
 * `TransactWriteItems` needs the action of its kind (`Put` -> `dynamodb:PutItem`, `Update`
 * -> `UpdateItem`, `Delete` -> `DeleteItem`, `ConditionCheck` -> `ConditionCheckItem`) and
 * `TransactGetItems` needs `GetItem`, on the table; a `Query` of an index needs
 * `dynamodb:Query` on `<table ARN>/index/<name>`; `BatchGetItem` and `BatchWriteItem` are
 * actions of their own.
 *
 * No import with a runtime effect: both the infra and the tests load this module.
 */
import type { HttpFunctionName } from "../functions/routes";

/** The SST secrets (infra/secrets.ts), by their names in `Resource.<Name>`. */
export type SecretName = "ApiKey" | "StripeSecretKey" | "StripeWebhookSecret" | "PortalSigningSecret";

/**
 * The resources permissions name: the table, its work index (`gsi1`, core/db/table.ts),
 * its stream, the events bus, the daily job's continuation queue and failure queue.
 */
export type ResourceKind = "table" | "workIndex" | "tableStream" | "bus" | "continuationQueue" | "failureQueue";

/** Every function of the app: the HTTP ones (functions/routes.ts), the daily job's two, the publisher. */
export type FunctionName = HttpFunctionName | "dailyJob" | "dailyJobContinuations" | "publisher";

/** IAM actions by the resource they are granted on. */
export type Grants = Partial<Record<ResourceKind, readonly string[]>>;

/** What one function's code may use. */
export interface Access {
  /** The secrets its code reads (linked, so that `Resource.<Name>.value` is set). */
  secrets: readonly SecretName[];
  /** The IAM actions its code sends, by resource. */
  actions: Grants;
}

/** Nothing: what a function not listed in `ACCESS` gets (the 404, the OpenAPI document). */
export const NO_ACCESS: Access = { secrets: [], actions: {} };

/** DynamoDB's actions on the table, by name (to keep the lists below readable). */
const dynamodb = (...names: string[]) => names.map((name) => `dynamodb:${name}`);

/**
 * What a function that changes balances sends to the table: reads of one item
 * (`GetItem`), of a balance with its group's settings or of several orders
 * (`BatchGetItem`), of a user's balances, ledger, orders or a group's overflow items
 * (`Query`), and transactions whose items put (grants, ledger entries, balances, overflow
 * items, events, idempotency records), update (draws, orders, expired grants) and delete
 * (emptied overflow items). Expiry runs inside consumption, credit reads, refunds and
 * fulfilments too (core/expiry.ts), so each of them holds the whole set.
 */
const CHANGES_BALANCES = dynamodb("BatchGetItem", "DeleteItem", "GetItem", "PutItem", "Query", "UpdateItem");

/**
 * What each function's code uses, as recorded by test/infra-permissions.test.ts (its
 * handler driven over every route and path). A function missing here (the 404, the
 * OpenAPI document) gets `NO_ACCESS`.
 */
export const ACCESS: Readonly<Partial<Record<FunctionName, Access>>> = {
  // The catalog and offer-group settings: read one, put one, list (Query), and a user's balances (Query) for visibility.
  offers: { secrets: ["ApiKey"], actions: { table: dynamodb("GetItem", "PutItem", "Query") } },
  orders: { secrets: ["ApiKey", "StripeSecretKey"], actions: { table: CHANGES_BALANCES } },
  consumption: { secrets: ["ApiKey"], actions: { table: CHANGES_BALANCES } },
  credits: { secrets: ["ApiKey"], actions: { table: CHANGES_BALANCES } },
  // The per-user expiry check: expiry's writes, without batch reads.
  expiry: { secrets: ["ApiKey"], actions: { table: dynamodb("DeleteItem", "GetItem", "PutItem", "Query", "UpdateItem") } },
  webhook: { secrets: ["StripeSecretKey", "StripeWebhookSecret"], actions: { table: CHANGES_BALANCES } },
  // The customer portal: mints portal tokens (API key) and checks them; reads the user's
  // credits, offers, orders and ledger; makes orders (Stripe Checkout) and cancels renewals.
  // (A bundle's item offers are read together, BatchGetItem; reading credits expires due grants.)
  portal: { secrets: ["ApiKey", "StripeSecretKey", "PortalSigningSecret"], actions: { table: CHANGES_BALANCES } },
  // The daily job (scheduled, and its continuations: the same handler): the work index
  // (due grants, expired holds, pending orders, the outbox), Stripe (abandoned orders), the bus and the queue.
  dailyJob: {
    secrets: ["StripeSecretKey"],
    actions: { table: CHANGES_BALANCES, workIndex: dynamodb("Query"), bus: ["events:PutEvents"], continuationQueue: ["sqs:SendMessage"] },
  },
  dailyJobContinuations: {
    secrets: ["StripeSecretKey"],
    actions: { table: CHANGES_BALANCES, workIndex: dynamodb("Query"), bus: ["events:PutEvents"], continuationQueue: ["sqs:SendMessage"] },
  },
  // The publisher: the batch's events (BatchGetItem), the outbox (work index), each marked
  // published (UpdateItem); and the automatic top-ups the outbox requests (core/top-ups.ts):
  // an order made and paid off-session at Stripe, as the orders function makes one.
  // (the balances read by a Query when the offer chains after them, or is locked).
  publisher: {
    secrets: ["StripeSecretKey"],
    actions: { table: dynamodb("BatchGetItem", "GetItem", "PutItem", "Query", "UpdateItem"), workIndex: dynamodb("Query"), bus: ["events:PutEvents"] },
  },
};

/**
 * Grants a function holds for the Lambda service's sake rather than its code's, so the
 * recording of its handler never shows them:
 * - the publisher reads the table's stream (SST adds these itself to a stream subscriber,
 *   `dynamo-lambda-subscriber.ts`);
 * - the continuations' subscriber receives and deletes the queue's messages (SST adds
 *   these itself to a queue subscriber, `queue-lambda-subscriber.ts`);
 * - the scheduled daily job's failed runs are sent to its failure queue by Lambda, with
 *   the function's role (Lambda developer guide, "Asynchronous invocation": destinations).
 */
export const SERVICE_GRANTS: Readonly<Partial<Record<FunctionName, Grants>>> = {
  publisher: { tableStream: dynamodb("DescribeStream", "GetRecords", "GetShardIterator", "ListStreams") },
  dailyJobContinuations: {
    continuationQueue: ["sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:ReceiveMessage"],
  },
  dailyJob: { failureQueue: ["sqs:SendMessage"] },
};

/** What `name`'s code may use (`NO_ACCESS` when it is not listed). */
export function accessOf(name: FunctionName): Access {
  return ACCESS[name] ?? NO_ACCESS;
}

/** The order statements are written in: one statement per resource. */
export const RESOURCE_ORDER: readonly ResourceKind[] = ["table", "workIndex", "tableStream", "bus", "continuationQueue", "failureQueue"];

/**
 * IAM policy statements (SST's `permissions` shape) granting `grants`: one per resource,
 * its actions sorted.
 * @param arns the ARN of each resource granted on (strings, or Pulumi outputs in the infra)
 * @throws Error when a granted resource has no ARN in `arns`
 */
export function statementsOf<T>(grants: Grants, arns: Partial<Record<ResourceKind, T>>): Array<{ actions: string[]; resources: T[] }> {
  return RESOURCE_ORDER.flatMap((kind) => {
    const actions = grants[kind];
    if (!actions || actions.length === 0) return [];
    const arn = arns[kind];
    if (arn === undefined) throw new Error(`No ARN for ${kind}, on which ${actions.join(", ")} is granted.`);
    return [{ actions: [...actions].sort(), resources: [arn] }];
  });
}
