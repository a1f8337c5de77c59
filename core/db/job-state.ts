/**
 * Job state entity: where a pass of the daily job got to (its watermark day), so a run
 * only queries the work index partitions that may still hold work (core/day-walk.ts).
 */
import { SERVICE, pk, sk } from "./keys.js";

/** ElectroDB schema of a job's state. */
export const jobStateSchema = {
  model: { entity: "jobState", version: "1", service: SERVICE },
  attributes: {
    job: { type: "string", required: true },
    /** Every day strictly before this one (YYYY-MM-DD) holds no more work for the pass. */
    doneBefore: { type: "string", required: true },
    updatedAt: { type: "string", required: true },
  },
  indexes: {
    byJob: { pk: pk(["job"]), sk: sk([]) },
  },
} as const;
