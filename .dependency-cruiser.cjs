/**
 * Import rules, checked in CI (`npm run lint:imports`, dependency-cruiser). Type-only
 * imports count (`tsPreCompilationDeps`): a rule that names a database type depends on
 * the database as much as one that calls it.
 */
module.exports = {
  forbidden: [
    {
      name: "rules-import-only-rules",
      comment:
        "core/rules/ holds the pure rules (plans, transitions, keys): they import only other rules and core/errors.ts, " +
        "and own their plain types (core/db checks at compile time that the entities match them).",
      severity: "error",
      from: { path: "^core/rules/" },
      to: { path: "^(core|functions|infra|scripts|test|bench)/", pathNot: "^core/(rules/|errors\\.ts$)" },
    },
    {
      name: "rules-no-io-libraries",
      comment: "Pure rules reach no database, payment service, HTTP framework or logger.",
      severity: "error",
      from: { path: "^core/rules/" },
      to: { path: "node_modules/(electrodb|@aws-sdk|stripe|hono|@aws-lambda-powertools|sst)/" },
    },
    {
      name: "core-not-edges",
      comment: "core/ knows nothing of the handlers, the infrastructure, the scripts or the tests (DESIGN.md: data flows one way).",
      severity: "error",
      from: { path: "^core/" },
      to: { path: "^(functions|infra|scripts|test|bench)/|^sst\\.config\\.ts$" },
    },
    {
      name: "core-no-lambda-types",
      comment: "core/ knows nothing of Lambda: no aws-lambda types, no Powertools.",
      severity: "error",
      from: { path: "^core/" },
      to: { path: "node_modules/(@types/aws-lambda|@aws-lambda-powertools)/" },
    },
    {
      name: "no-circular",
      comment: "No import cycles: each module can be read after the ones it imports.",
      severity: "error",
      from: {},
      to: { circular: true },
    },
  ],
  options: {
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    doNotFollow: { path: ["node_modules", "^\\.sst/"] },
    exclude: { path: "^\\.sst/" },
    enhancedResolveOptions: { exportsFields: ["exports"], conditionNames: ["import", "require", "node", "default", "types"] },
  },
};
