/** The bench's scenarios: which data set, over loopback or through the WAN emulator, and of which kind. */
import type { DatasetName } from './datasets.js';

/**
 * copy: every tool onto a fresh destination; nochange: onto the copy the tool left; conns: fcp -n 1-16
 * beside raw TCP; shaped: fcp's own choice of connections behind a per-flow shaper; wan-check: the emulator.
 */
export type Kind = 'copy' | 'nochange' | 'conns' | 'shaped' | 'wan-check';

export interface Scenario {
  id: string;
  kind: Kind;
  wan: boolean;
  dataset?: DatasetName;
  title: string;
  /** A per-connection rate cap in the emulator (an ISP's per-flow shaper), bytes/s. */
  perConnRateBps?: number;
}

/** The shaped scenario's per-flow cap: 10 MB/s, a 25th of the default 2 Gbit/s (250 MB/s) link. */
export const SHAPER_RATE_BPS = 10e6;

export const SCENARIOS: Scenario[] = [
  { id: 'wan-check', kind: 'wan-check', wan: true, title: 'raw TCP through the WAN emulator vs its model' },
  { id: 'loop-big', kind: 'copy', wan: false, dataset: 'big', title: 'one big file over loopback' },
  { id: 'loop-medium', kind: 'copy', wan: false, dataset: 'medium', title: '64 medium files over loopback' },
  { id: 'loop-small', kind: 'copy', wan: false, dataset: 'small', title: 'many small files over loopback' },
  { id: 'wan-big', kind: 'copy', wan: true, dataset: 'big', title: 'one big file through the WAN emulator' },
  {
    id: 'wan-medium',
    kind: 'copy',
    wan: true,
    dataset: 'medium',
    title: '64 medium files through the WAN emulator',
  },
  {
    id: 'wan-small',
    kind: 'copy',
    wan: true,
    dataset: 'small',
    title: 'many small files through the WAN emulator',
  },
  {
    id: 'wan-one',
    kind: 'copy',
    wan: true,
    dataset: 'one',
    title: 'one 16 KiB file through the WAN emulator: start-up and round trips',
  },
  {
    id: 'loop-nochange-small',
    kind: 'nochange',
    wan: false,
    dataset: 'small',
    title: 're-run of the small set onto an identical copy, loopback',
  },
  {
    id: 'wan-nochange-small',
    kind: 'nochange',
    wan: true,
    dataset: 'small',
    title: 're-run of the small set onto an identical copy, WAN emulator',
  },
  {
    id: 'loop-nochange-tree',
    kind: 'nochange',
    wan: false,
    dataset: 'tree',
    title:
      're-run onto an identical copy of a tree of 50,000+ entries (deep directories, symlinks), loopback',
  },
  {
    id: 'wan-big-shaped',
    kind: 'shaped',
    wan: true,
    dataset: 'big',
    perConnRateBps: SHAPER_RATE_BPS,
    title: 'the big file through the WAN emulator with a per-flow shaper: fcp picks its connections',
  },
  {
    id: 'wan-big-conns',
    kind: 'conns',
    wan: true,
    dataset: 'big',
    title:
      'fcp with 1-16 connections on the big file through the WAN emulator, vs raw TCP with as many streams',
  },
];

export const CONN_STEPS = [1, 2, 4, 8, 16];

export function selectScenarios(only: string | undefined): Scenario[] {
  if (only === undefined || only === '') return SCENARIOS;
  const picked = new Set<Scenario>();
  for (const token of only.split(',').map((t) => t.trim())) {
    const exact = SCENARIOS.find((s) => s.id === token);
    const matches = exact ? [exact] : SCENARIOS.filter((s) => `-${s.id}-`.includes(`-${token}-`));
    if (matches.length === 0) throw new Error(`no scenario matches ${JSON.stringify(token)} (see --list)`);
    for (const m of matches) picked.add(m);
  }
  return SCENARIOS.filter((s) => picked.has(s));
}
