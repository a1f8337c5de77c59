/**
 * Cold start: each Lambda bundle's module initialisation against the baseline (a bundle
 * that only constructs a DynamoDB client), measured by scripts/bundles.ts: the bundles built
 * as SST 4.17 builds them (`buildBundles`), each `await import`ed in fresh `node` processes
 * round-robin (`measureInit`), with the environment a deployed function has before its first
 * request.
 */
import { rmSync } from "node:fs";
import { BASELINE, buildBundles, measureInit, temporaryBundleDir } from "../scripts/bundles.js";

/** One bundle's cold start. */
export interface BundleInit {
  name: string;
  /** Minified size, KB. */
  kb: number;
  /** Median module initialisation, ms. */
  initMs: number;
  /** `initMs` over the baseline's. */
  initRatio: number;
}

/** Results of {@link benchColdStart}. */
export interface ColdStartResults {
  runs: number;
  baselineMs: number;
  bundles: BundleInit[];
}

/** Builds every bundle into a temporary folder (removed afterwards) and times its init `runs` times. */
export async function benchColdStart(runs: number): Promise<ColdStartResults> {
  const outDir = temporaryBundleDir();
  try {
    const bundles = await buildBundles(outDir);
    const env = { AWS_REGION: "us-east-1", TABLE_NAME: "user-credits", AWS_LAMBDA_FUNCTION_NAME: "bench", AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" };
    const init = await measureInit(bundles, runs, env);
    const baseline = bundles.find((b) => b.name === BASELINE)!;
    const baselineMs = init.get(baseline.file)!.medianMs;
    return {
      runs,
      baselineMs,
      bundles: bundles.map((b) => {
        const initMs = init.get(b.file)!.medianMs;
        return { name: b.name, kb: b.bytes / 1024, initMs, initRatio: initMs / baselineMs };
      }),
    };
  } finally {
    rmSync(outDir, { recursive: true, force: true });
  }
}
