import pino from 'pino';

const LEVEL_ALIASES: Record<string, string> = { warning: 'warn', critical: 'fatal', err: 'error' };

export function normalizeLevel(level: string): string {
  const l = level.trim().toLowerCase();
  return LEVEL_ALIASES[l] ?? l;
}

/**
 * Logs go to stderr, so stdout stays for what a user pipes on (the dry run's
 * result message). Pretty on a terminal, JSON lines otherwise. pino-pretty is
 * loaded only for pretty logs: JSON logs (the default off a terminal) skip its start-up cost.
 */
export async function createLogger(options: {
  name: string;
  level: string;
  format: 'json' | 'pretty';
}): Promise<pino.Logger> {
  const base = { name: options.name, level: normalizeLevel(options.level) };
  if (options.format === 'pretty') {
    const { default: pretty } = await import('pino-pretty');
    return pino(
      base,
      pretty({
        destination: 2,
        sync: true,
        colorize: process.stderr.isTTY,
        ignore: 'pid,hostname',
      }),
    );
  }
  return pino(base, pino.destination({ fd: 2, sync: true }));
}
