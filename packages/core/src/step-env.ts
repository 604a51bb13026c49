import { secretValues } from './mask.js';

/** Names that hold secrets by convention (SPEC 3): never passed on from the worker, masked in logs. */
const SECRET_NAME = /(_PASSWORD|_TOKEN|_SECRET|_KEY|_CREDENTIALS)$/i;

export function isSecretName(name: string, extra: readonly string[] = []): boolean {
  return SECRET_NAME.test(name) || extra.includes(name);
}

/** The worker's env minus its secrets, then job env, step env and the JW_* variables. */
export function buildStepEnv(
  base: NodeJS.ProcessEnv,
  secretNames: readonly string[],
  ...layers: Record<string, string>[]
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(base)) {
    if (value !== undefined && !isSecretName(name, secretNames)) env[name] = value;
  }
  for (const layer of layers) Object.assign(env, layer);
  return env;
}

/**
 * The values a step's logs must not show: those of its secret-named variables and of the
 * names the job lists in `"secrets"` (SPEC 3). Empty for most jobs, which then keep the
 * direct, unmasked path to the log file.
 */
export function stepSecrets(env: Record<string, string>, listed: readonly string[] = []): string[] {
  return secretValues(
    Object.entries(env)
      .filter(([name]) => isSecretName(name, listed))
      .map(([, value]) => value),
  );
}
