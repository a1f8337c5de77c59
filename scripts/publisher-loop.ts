/**
 * The local runner's stand-in for the cloud's stream-triggered publisher: every
 * `intervalMs` it publishes the outbox (core/events.ts `publishPending`, the same code the
 * cloud runs, automatic top-ups included: core/top-ups.ts) to a bus, the console one in `npm start`, which prints each event as an
 * `event {json}` line. Passes never overlap; `stop()` waits for the one under way.
 */
import type { Context } from "../core/context.js";
import { publishPending, type EventBus } from "../core/events.js";
import { topUpHandler } from "../core/top-ups.js";

/** A running loop. */
export interface PublisherLoop {
  /** Stops the loop; resolves once no pass is running. */
  stop(): Promise<void>;
}

/**
 * Starts publishing `core`'s outbox to `bus`, a first pass at once, then one every
 * `intervalMs` after the previous one ended. A failed pass is reported through
 * `core.logger` and the loop goes on (its events are still in the outbox).
 */
export function startPublisherLoop(core: Context, bus: EventBus, intervalMs = 1000): PublisherLoop {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();

  const pass = async () => {
    try {
      await publishPending(core, bus, { handle: topUpHandler(core) });
    } catch (error) {
      core.logger.error("publishing the outbox failed; retrying on the next pass", { error });
    }
  };
  const tick = () => {
    running = pass().then(() => {
      if (!stopped) timer = setTimeout(tick, intervalMs);
    });
  };
  tick();

  return {
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running;
    },
  };
}
