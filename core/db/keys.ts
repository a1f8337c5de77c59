/**
 * Key helpers shared by the entity schemas: every key is written with its case kept
 * (ElectroDB lowercases key values by default, which would merge users "Bob" and "bob").
 */
import { TABLE } from "./table.js";

/** Partition key definition over `composite`, case kept. */
export const pk = <const C extends readonly string[]>(composite: C) =>
  ({ field: TABLE.partitionKey, composite, casing: "none" }) as const;

/** Sort key definition over `composite`, case kept. */
export const sk = <const C extends readonly string[]>(composite: C) =>
  ({ field: TABLE.sortKey, composite, casing: "none" }) as const;

/** Service name that prefixes every key (`$credits#...`). */
export const SERVICE = "credits";
