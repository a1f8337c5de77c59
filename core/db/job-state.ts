/**
 * Job state entity: where a scheduled job got to (the expiry job's watermark day), so
 * a run only queries the expiry index partitions that may still hold work.
 */
import { SERVICE, pk, sk } from "./keys.js";

/** ElectroDB schema of a job's state. */
export const jobStateSchema = {
  model: { entity: "jobState", version: "1", service: SERVICE },
  attributes: {
    job: { type: "string", required: true },
    /** Every expiry day strictly before this one (YYYY-MM-DD) holds no due grant. */
    doneBefore: { type: "string", required: true },
    updatedAt: { type: "string", required: true },
  },
  indexes: {
    byJob: { pk: pk(["job"]), sk: sk([]) },
  },
} as const;
