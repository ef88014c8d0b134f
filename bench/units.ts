/** Parsing and printing of byte counts and rates for the bench CLIs and reports. */

const BYTE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1e3,
  kb: 1e3,
  m: 1e6,
  mb: 1e6,
  g: 1e9,
  gb: 1e9,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
};

// Rates: bits per second unless the unit names bytes (B, KB, MB, GB, KiB, MiB, GiB per second).
const BIT_UNITS: Record<string, number> = {
  bit: 1 / 8,
  kbit: 1e3 / 8,
  mbit: 1e6 / 8,
  gbit: 1e9 / 8,
};

function splitNumber(text: string): [number, string] {
  const m = /^\s*([0-9]*\.?[0-9]+(?:e[0-9]+)?)\s*([a-z]*)\s*$/i.exec(text);
  if (m === null) throw new Error(`not a size: ${JSON.stringify(text)}`);
  return [Number(m[1]), (m[2] ?? '').toLowerCase()];
}

/** "4MiB" -> 4194304, "64k" -> 64000, "1234" -> 1234. */
export function parseBytes(text: string): number {
  const [n, unit] = splitNumber(text);
  const mult = BYTE_UNITS[unit];
  if (mult === undefined) throw new Error(`unknown byte unit in ${JSON.stringify(text)}`);
  return Math.round(n * mult);
}

/** "2Gbit" -> 250e6 bytes/s, "100MB" -> 100e6 bytes/s (a trailing "/s" or "ps" is accepted). */
export function parseRate(text: string): number {
  const stripped = text.replace(/(\/s|ps)$/i, '');
  const [n, unit] = splitNumber(stripped);
  const mult = BIT_UNITS[unit] ?? BYTE_UNITS[unit];
  if (mult === undefined) throw new Error(`unknown rate unit in ${JSON.stringify(text)}`);
  return n * mult;
}

/** Decimal megabytes per second, the unit every table in the bench uses. */
export function mbps(bytes: number, seconds: number): number {
  return seconds > 0 ? bytes / seconds / 1e6 : 0;
}

export function formatBytes(bytes: number): string {
  if (bytes >= 1024 ** 3) return `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
  if (bytes >= 1024 ** 2) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
  if (bytes >= 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${bytes} B`;
}

export function formatRate(bytesPerSecond: number): string {
  const bits = bytesPerSecond * 8;
  if (bits >= 1e9) return `${(bits / 1e9).toFixed(2)} Gbit/s`;
  return `${(bits / 1e6).toFixed(1)} Mbit/s`;
}
