/**
 * The deployed service's settings, in one place: what every function runs on, and the
 * values each stage may change. A stage's values are, in order of precedence:
 *   1. environment variables read when `sst deploy` runs (`SETTING_VARIABLES`: the
 *      names API.md's configuration table gives the functions' own variables, so one name
 *      means one thing locally and in the cloud), for a one-off or a CI secret: `ALARM_EMAIL=ops@example.com npx sst deploy --stage production`;
 *   2. `STAGE_SETTINGS[stage]`, committed here, for values a stage always has (an
 *      environment variable forgotten on the next deploy would otherwise undo them);
 *   3. `DEFAULT_SETTINGS`.
 * A value that is not valid stops the deploy with an error naming the setting.
 *
 * Nothing here touches SST's globals on import: the infra calls `stageSettings()` (the
 * stage being deployed), the tests call `readSettings` with the values they choose.
 */

/** What a stage may set. */
export interface Settings {
  /**
   * Currency of orders that name none (`DEFAULT_CURRENCY` of the functions that build the
   * runtime): lowercase ISO 4217, e.g. `usd`. Env `DEFAULT_CURRENCY`.
   */
  defaultCurrency: string;
  /**
   * Days after which the daily job abandons an unpaid order (`ABANDON_ORDERS_AFTER_DAYS` of
   * the daily job's functions, core/abandoned-orders.ts): a positive number. Env
   * `ABANDON_ORDERS_AFTER_DAYS`.
   */
  abandonOrdersAfterDays: number;
  /**
   * Browser origins allowed to call the API (`https://app.example.com`, or `*`). Empty:
   * CORS off, as a server-to-server API needs. Env `CORS_ORIGINS`, comma-separated.
   */
  corsOrigins: string[];
  /**
   * Where alarms are e-mailed (infra/alarms.ts); AWS sends a confirmation e-mail first.
   * Unset: the alarms still exist, with no subscriber. Env `ALARM_EMAIL`.
   */
  alarmEmail?: string | undefined;
}

/** The settings of a stage that sets nothing. */
export const DEFAULT_SETTINGS: Readonly<Settings> = {
  defaultCurrency: "usd",
  abandonOrdersAfterDays: 7,
  corsOrigins: [],
};

/**
 * Values committed per stage (name -> settings), e.g.
 * `production: { alarmEmail: "ops@example.com" }`. Environment variables override them.
 */
export const STAGE_SETTINGS: Readonly<Record<string, Partial<Settings>>> = {};

/** The environment variable of each setting (read at deploy time). */
export const SETTING_VARIABLES = {
  defaultCurrency: "DEFAULT_CURRENCY",
  abandonOrdersAfterDays: "ABANDON_ORDERS_AFTER_DAYS",
  corsOrigins: "CORS_ORIGINS",
  alarmEmail: "ALARM_EMAIL",
} as const satisfies Record<keyof Settings, string>;

/**
 * The settings of `stage`: environment variables over `stages[stage]` over the defaults.
 * @param env the deploy's environment (`process.env`); empty values count as unset
 * @throws Error naming the setting and its variable when a value is not valid
 */
export function readSettings(
  stage: string,
  env: Readonly<Record<string, string | undefined>>,
  stages: Readonly<Record<string, Partial<Settings>>> = STAGE_SETTINGS,
): Settings {
  const committed = stages[stage] ?? {};
  const fromEnv = (key: keyof Settings) => {
    const value = env[SETTING_VARIABLES[key]]?.trim();
    return value ? value : undefined;
  };
  const origins = fromEnv("corsOrigins");
  const days = fromEnv("abandonOrdersAfterDays");
  const settings: Settings = {
    defaultCurrency: (fromEnv("defaultCurrency") ?? committed.defaultCurrency ?? DEFAULT_SETTINGS.defaultCurrency).toLowerCase(),
    abandonOrdersAfterDays: days !== undefined ? Number(days) : (committed.abandonOrdersAfterDays ?? DEFAULT_SETTINGS.abandonOrdersAfterDays),
    corsOrigins: origins !== undefined ? origins.split(",").map((origin) => origin.trim()).filter(Boolean) : [...(committed.corsOrigins ?? DEFAULT_SETTINGS.corsOrigins)],
    alarmEmail: fromEnv("alarmEmail") ?? committed.alarmEmail,
  };
  check(settings);
  return settings;
}

/** The settings of the stage being deployed (`$app.stage`, and `process.env` at deploy time). */
export function stageSettings(): Settings {
  // `$app` is the global SST defines while it runs sst.config.ts; read through `globalThis`
  // so that this module also type-checks (and loads) outside SST, in the tests.
  const { $app } = globalThis as unknown as { $app: { stage: string } };
  return readSettings($app.stage, process.env);
}

/** Throws on the first setting that is not valid, naming it. */
function check(settings: Settings): void {
  const invalid = (key: keyof Settings, why: string) => new Error(`Setting ${key} (${SETTING_VARIABLES[key]}): ${why}.`);
  if (!/^[a-z]{3}$/.test(settings.defaultCurrency)) {
    throw invalid("defaultCurrency", `"${settings.defaultCurrency}" is not a three-letter ISO 4217 code`);
  }
  if (!Number.isFinite(settings.abandonOrdersAfterDays) || settings.abandonOrdersAfterDays <= 0) {
    throw invalid("abandonOrdersAfterDays", `"${settings.abandonOrdersAfterDays}" is not a positive number of days`);
  }
  for (const origin of settings.corsOrigins) {
    if (origin !== "*" && !/^https?:\/\/[^/\s]+$/.test(origin)) {
      throw invalid("corsOrigins", `"${origin}" is not an origin (scheme://host[:port], no path) or *`);
    }
  }
  if (settings.alarmEmail !== undefined && !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(settings.alarmEmail)) {
    throw invalid("alarmEmail", `"${settings.alarmEmail}" is not an e-mail address`);
  }
}

/**
 * What every function runs on (SST `sst.aws.Function` arguments): Node.js 24 (SST 4's
 * default runtime; Node 22 leaves Lambda support in April 2027), Graviton, 1 GB (Lambda
 * gives CPU in proportion to memory; 1 GB keeps cold starts short), minified bundles.
 */
export const FUNCTION_DEFAULTS = {
  runtime: "nodejs24.x",
  architecture: "arm64",
  memory: "1024 MB",
  // Minified, as scripts/bundles.ts measures them: SST documents `minify` as on by default,
  // but its Go build (pkg/runtime/node/build.go) minifies only when the property says so.
  nodejs: { minify: true },
} as const;

/**
 * The environment variables of a function that builds the runtime (functions/runtime.ts
 * reads them): the table, the default currency, and, for the daily job, the age at which
 * unpaid orders are abandoned.
 */
export function runtimeEnvironment<T>(
  settings: Settings,
  tableName: T,
  options: { abandonOrders?: boolean } = {},
): Record<string, T | string> {
  return {
    TABLE_NAME: tableName,
    DEFAULT_CURRENCY: settings.defaultCurrency,
    ...(options.abandonOrders ? { ABANDON_ORDERS_AFTER_DAYS: String(settings.abandonOrdersAfterDays) } : {}),
  };
}
