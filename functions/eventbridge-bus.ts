/**
 * The EventBridge bus for the functions that publish events: imported (for its effect) by
 * the event publisher (functions/publisher.ts) and the daily job (functions/daily-job.ts),
 * it registers core/bus/eventbridge.ts with the runtime, so that only their bundles hold
 * `@aws-sdk/client-eventbridge` (scripts/bundles.ts, test/bundles.test.ts).
 */
import { createEventBridgeBus } from "../core/bus/eventbridge.js";
import { provideAdapters } from "./runtime.js";

provideAdapters({ eventBus: createEventBridgeBus });
