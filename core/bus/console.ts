/**
 * The local runner's event bus (`npm start`): no EventBridge on this machine, so each
 * event is printed as one line, `event {json}`, where the JSON is the event exactly as
 * the cloud's bus would carry it in `detail` (API.md `Event`).
 */
import type { EventBus, ServiceEvent } from "../events.js";

/** What starts each printed line. */
export const CONSOLE_PREFIX = "event ";

/** The line printed for `event`: the prefix, then the event as one line of JSON. */
export function consoleLine(event: ServiceEvent): string {
  return `${CONSOLE_PREFIX}${JSON.stringify(event)}`;
}

/**
 * An event bus that prints each event (one line per event, {@link consoleLine}) and
 * accepts them all; it never throws unless `print` does.
 * @param print where lines go (default `console.log`: standard output)
 */
export function createConsoleBus(print: (line: string) => void = (line) => console.log(line)): EventBus {
  return {
    async publish(events) {
      for (const event of events) print(consoleLine(event));
      return events.map((event) => event.eventId);
    },
  };
}
