import { ErrorCode, JwError } from '@jw/core/errors';
import type { DurationUnit, OptionSpec, OptionType } from './spec.js';

const UNIT_MS: Record<DurationUnit, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

export function badSetting(message: string): JwError {
  return new JwError(ErrorCode.BAD_CONFIG, message);
}

export function parseDuration(raw: string, unit: DurationUnit = 's'): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/i.exec(raw);
  if (!match)
    throw badSetting(
      `"${raw}" is not a duration (a number of ${unit}, or with a unit: 500ms, 30s, 5m, 2h)`,
    );
  return Math.round(Number(match[1]) * UNIT_MS[(match[2]?.toLowerCase() as DurationUnit) ?? unit]);
}

export function parseBoolean(raw: string): boolean {
  const v = raw.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(v)) return true;
  if (['0', 'false', 'no', 'off', ''].includes(v)) return false;
  throw badSetting(`"${raw}" is not a boolean (true/false, 1/0, yes/no)`);
}

export function typeOf(spec: OptionSpec): OptionType {
  return spec.type ?? (/[<[]/.test(spec.flags) ? 'string' : 'boolean');
}

/** Turns a flag or env text into the option's value; throws BAD_CONFIG naming the option. */
export function parseValue(spec: OptionSpec, raw: string | boolean, source: string): unknown {
  try {
    if (typeof raw === 'boolean') return raw;
    let value: unknown;
    switch (typeOf(spec)) {
      case 'boolean':
        value = parseBoolean(raw);
        break;
      case 'int': {
        if (!/^\s*-?\d+\s*$/.test(raw)) throw badSetting(`"${raw}" is not a whole number`);
        value = Number.parseInt(raw, 10);
        break;
      }
      case 'duration':
        value = parseDuration(raw, spec.unit);
        break;
      case 'list':
        value = raw
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean);
        break;
      default:
        value = raw;
    }
    if (typeof value === 'number' && spec.min !== undefined && value < spec.min) {
      throw badSetting(`must be at least ${spec.min}`);
    }
    if (spec.choices && !spec.choices.includes(String(value))) {
      throw badSetting(`must be one of ${spec.choices.join(', ')}`);
    }
    return value;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw badSetting(`${source}: ${message}`);
  }
}

/** The long flag name of a spec: `--jobs-dir` for `-j, --jobs-dir <dir>`. */
export function longFlag(spec: OptionSpec): string {
  const long = /--[a-z0-9-]+/i.exec(spec.flags);
  if (!long) throw new Error(`option ${spec.flags} has no long flag`);
  return long[0];
}

/** An empty flag or env var (`TOKEN=` in an env file) means not set. */
export function nonEmpty(value: string | undefined): string | undefined {
  return value === '' ? undefined : value;
}
