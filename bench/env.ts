/**
 * The benchmark's process settings, imported first by bench/run.ts so that they hold before
 * any other module loads (ES modules run their imports, in order, before their own body):
 * the AWS SDK's Node-version warning off, a region for the SDK, and the handlers' logger
 * (Powertools, built when functions/runtime.ts loads) at WARN, as `npm run expire` runs it,
 * so that the webhook's INFO lines do not drown the report. The consumption path logs
 * nothing below WARN either way.
 */
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";
process.env.AWS_REGION ??= "us-east-1";
process.env.POWERTOOLS_LOG_LEVEL ||= "WARN";
