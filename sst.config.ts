/// <reference path="./.sst/platform/config.d.ts" />

/**
 * The cloud side of user-credits, as a table of contents: the app's settings, then one
 * `infra/` module per concern. Reading `infra/` answers "what runs in the cloud, and what
 * may touch what" (infra/permissions.ts: each function's secrets and IAM actions;
 * infra/settings.ts: what a stage may set). Deploy with `npx sst deploy --stage <stage>`
 * once the secrets are set (README, "Deploying").
 */
export default $config({
  app(input) {
    const production = input.stage === "production";
    return {
      name: "user-credits",
      home: "aws",
      // Production retains its stateful resources (the table: the ledger) even when they are
      // removed or replaced, and refuses `sst remove`; every other stage is throw-away.
      removal: production ? "retain" : "remove",
      protect: production,
    };
  },
  async run() {
    await import("./infra/secrets");
    const { table } = await import("./infra/table");
    const { api } = await import("./infra/api");
    const { bus } = await import("./infra/bus");
    await import("./infra/cron");
    await import("./infra/alarms");
    const { STRIPE_WEBHOOK_EVENTS } = await import("./core/payments/stripe-events");
    return {
      api: api.url,
      // The endpoint to register in Stripe's dashboard (README, "Deploying").
      stripeWebhookUrl: $interpolate`${api.url}/webhooks/stripe`,
      // The events to enable on that endpoint.
      stripeWebhookEvents: STRIPE_WEBHOOK_EVENTS.join(","),
      table: table.name,
      // The bus to add the app's rules to (source "user-credits"; README, "Events").
      eventBus: bus.name,
    };
  },
});
