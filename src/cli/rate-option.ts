/**
 * --bwlimit RATE: bytes per second, with an optional suffix. SI suffixes are powers of 1000 (k or K, M, G,
 * T), IEC ones powers of 1024 (Ki, Mi, Gi, Ti), as in README "Bandwidth limit". A trailing "B" or "B/s" is
 * allowed: "10MB/s" reads as it is meant.
 */
import { FcpError } from '../protocol/index.js';
import type { ValueRule } from './config-file.js';

const MULTIPLIERS: Readonly<Record<string, number>> = {
  '': 1,
  k: 1e3,
  K: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  Ki: 1024,
  Mi: 1024 ** 2,
  Gi: 1024 ** 3,
  Ti: 1024 ** 4,
};

const RATE = /^(\d+(?:\.\d+)?|\.\d+)(k|K|M|G|T|Ki|Mi|Gi|Ti)?(?:B|B\/s)?$/;

/** The rate `text` names, in bytes per second; FCP_ERR_USAGE naming --bwlimit when it is not one. */
export function parseRate(text: string, option = '--bwlimit'): number {
  const match = RATE.exec(text.trim());
  const bad = () =>
    new FcpError(
      'FCP_ERR_USAGE',
      `${option} wants bytes per second like 10M, 500k, 1.5G or 64Mi, not "${text}"`,
    );
  if (match === null) throw bad();
  const rate = Math.round(Number(match[1]) * (MULTIPLIERS[match[2] ?? ''] ?? 1));
  if (!(rate >= 1) || !Number.isSafeInteger(rate)) throw bad();
  return rate;
}

/** `bwlimit` in a config file (fcp's or fcpd's): a bad rate is reported at its line, not as a flag. */
export const RATE_RULE: ValueRule = {
  takes: 'bytes per second like 10M, 500k, 1.5G or 64Mi',
  accepts: (value: unknown) => typeof value === 'string' && isRate(value),
};

function isRate(text: string): boolean {
  try {
    parseRate(text);
    return true;
  } catch {
    return false;
  }
}
