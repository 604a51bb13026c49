/** Names that hold secrets by convention; never passed to steps (SPEC 3). */
const SECRET_NAME = /(_PASSWORD|_TOKEN|_SECRET|_KEY)$/i;

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
