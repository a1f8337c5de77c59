import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    globalSetup: ["test/global-setup.ts"],
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    // CI (.ci/run) also writes vitest's JSON report, to print "N passed, N failed".
    reporters: process.env.CI ? ["default", ["json", { outputFile: ".test-results.json" }]] : ["default"],
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true", POWERTOOLS_LOG_LEVEL: "ERROR" },
  },
});
