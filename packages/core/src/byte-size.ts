import { ErrorCode, JwError } from './errors.js';

const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1000,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1000 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1000 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tb: 1000 ** 4,
  tib: 1024 ** 4,
};

/**
 * A size as people write it: `1048576`, `512KiB`, `10MiB`, `1.5G` (binary), `100MB`
 * (decimal). Throws BAD_CONFIG otherwise.
 */
export function parseByteSize(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  const factor = match ? UNITS[match[2]!.toLowerCase()] : undefined;
  if (!match || factor === undefined)
    throw new JwError(
      ErrorCode.BAD_CONFIG,
      `"${text}" is not a size (bytes, or with a unit: 512KiB, 10MiB, 2GiB, 100MB)`,
    );
  return Math.round(Number(match[1]) * factor);
}

/** `524288000` → `500.0 MiB`, for logs and readiness reasons. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}
