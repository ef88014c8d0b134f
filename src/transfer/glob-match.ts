/**
 * The glob matcher for --include/--exclude and a pull's source segments. Patterns come from the wire (a
 * PULL carries them to the daemon), so no regex is ever built from one: a backtracking regex compiled from
 * '*a*a*a*a*a*a*b' froze fcpd's event loop for over a minute on one 60-character name (spec/SECURITY.md).
 *
 * Matching a segment is the classic greedy algorithm that backtracks only to the last '*', so it costs at
 * most O(len(name) x len(segment)); a path is matched the same way a level up, with '**' as the star and a
 * segment match as one step. Braces are expanded up front into at most MAX_ALTERNATIVES patterns of
 * MAX_EXPANDED characters in all.
 *
 * Syntax: '*' (any run within a segment), '?' (one character), '[abc]' '[a-z]' '[!a-z]' '[^a-z]' and POSIX
 * classes ('[[:alpha:]]', ASCII), '\' escapes the next character, '**' as a whole segment (zero or more
 * segments), '{a,b}' (nested). A text equal to the pattern itself matches too, as with micromatch: 'a[1]'
 * finds a file named 'a[1]' (and 'a1'). Extglobs ('@(…)', '!(…)', '+(…)', '*(…)', '?(…)') are refused.
 */

import { FcpError } from '../protocol/errors.js';

/** The longest pattern accepted, in characters. */
export const MAX_GLOB_LENGTH = 1024;
/** The most patterns one pattern's braces may expand to. */
export const MAX_ALTERNATIVES = 256;
/**
 * The most characters those patterns may hold in all: a name costs at most its length times this, so a
 * 255-byte name at most ~10^6 steps (a few ms) whatever the pattern.
 */
export const MAX_EXPANDED = 4096;

/** A compiled glob: its test, and its size (characters over all alternatives), which bounds a test's cost. */
export interface Glob {
  readonly test: (text: string) => boolean;
  readonly size: number;
}

/** Characters a class accepts: inclusive code point ranges, or all but those. */
interface CharClass {
  readonly ranges: readonly (readonly [number, number])[];
  readonly negated: boolean;
}

const STAR = -1;
const SLASH = -2;
const OPEN = -3;
const COMMA = -4;
const CLOSE = -5;
/** A code point (>= 0), one of the markers above, or a class ('?' is the class of everything). */
type Token = number | CharClass;
type Segment = readonly Token[];
/** '**' as a whole segment. */
const GLOBSTAR: Segment = [];
const ANY: CharClass = { ranges: [], negated: true };
const DOT = 0x2e;

const POSIX_CLASSES: Record<string, readonly (readonly [number, number])[]> = {
  alpha: [
    [0x41, 0x5a],
    [0x61, 0x7a],
  ],
  digit: [[0x30, 0x39]],
  alnum: [
    [0x30, 0x39],
    [0x41, 0x5a],
    [0x61, 0x7a],
  ],
  word: [
    [0x30, 0x39],
    [0x41, 0x5a],
    [0x5f, 0x5f],
    [0x61, 0x7a],
  ],
  upper: [[0x41, 0x5a]],
  lower: [[0x61, 0x7a]],
  xdigit: [
    [0x30, 0x39],
    [0x41, 0x46],
    [0x61, 0x66],
  ],
  space: [
    [0x09, 0x0d],
    [0x20, 0x20],
  ],
  blank: [
    [0x09, 0x09],
    [0x20, 0x20],
  ],
  punct: [
    [0x21, 0x2f],
    [0x3a, 0x40],
    [0x5b, 0x60],
    [0x7b, 0x7e],
  ],
  cntrl: [
    [0x00, 0x1f],
    [0x7f, 0x7f],
  ],
  print: [[0x20, 0x7e]],
  graph: [[0x21, 0x7e]],
};

/** A pattern that cannot be compiled; the caller names the option it came from. */
class GlobSyntax extends Error {}

/**
 * Compiles a glob matched against a whole relative path ('src/**\/*.ts'); '*', '?' and classes match a
 * leading '.' like any other character. Throws FCP_ERR_USAGE whose message starts `invalid ${shown}: `.
 */
export function compilePathGlob(pattern: string, shown: string): Glob {
  const tokens = compile(pattern, shown);
  const alternatives = tokens.map(toSegments);
  const test = (rel: string) => {
    if (rel === pattern) return true;
    const parts = rel.split('/').map(codePoints);
    return alternatives.some((segments) => matchPath(segments, parts));
  };
  return { test, size: sizeOf(tokens) };
}

/**
 * Compiles a glob for one name, as a shell matches a directory level: a leading '.' in the name is matched
 * only by a literal '.', '**' is '*', and '/' is an ordinary character (no name holds one). Throws
 * FCP_ERR_USAGE.
 */
export function compileNameGlob(pattern: string, shown: string): Glob {
  const tokens = compile(pattern, shown);
  const alternatives = tokens.map(toNameSegment);
  const test = (name: string) => {
    if (name === pattern) return true;
    const chars = codePoints(name);
    const hidden = chars[0] === DOT;
    return alternatives.some((segment) => (!hidden || segment[0] === DOT) && matchSegment(segment, chars));
  };
  return { test, size: sizeOf(tokens) };
}

function sizeOf(alternatives: readonly (readonly Token[])[]): number {
  return alternatives.reduce((sum, tokens) => sum + tokens.length, 0);
}

/**
 * Whether `text` holds an unescaped '*', '?', '[' or '{', or an extglob's '@(' '!(' '+(': what makes a pull's
 * segment a glob (an extglob one, so that it is refused rather than looked up as a name).
 */
export function hasGlobSyntax(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '\\') i++;
    else if ('*?[{'.includes(c) || ('@!+'.includes(c) && text[i + 1] === '(')) return true;
  }
  return false;
}

/** The pattern's tokens, one list per alternative its braces stand for. */
function compile(pattern: string, shown: string): Token[][] {
  try {
    if (pattern.length > MAX_GLOB_LENGTH) throw new GlobSyntax(`longer than ${MAX_GLOB_LENGTH} characters`);
    const expanded: Token[][] = [];
    expandBraces(tokenize(pattern), expanded);
    const alternatives = dedupe(expanded);
    if (sizeOf(alternatives) > MAX_EXPANDED) {
      throw new GlobSyntax(`braces expand to more than ${MAX_EXPANDED} characters`);
    }
    return alternatives;
  } catch (err) {
    if (!(err instanceof GlobSyntax)) throw err;
    throw new FcpError('FCP_ERR_USAGE', `invalid ${shown}: ${err.message}`);
  }
}

/** One pass over the pattern: escapes resolved, classes parsed, braces and '/' kept as markers. */
function tokenize(pattern: string): Token[] {
  const chars = codePoints(pattern);
  const out: Token[] = [];
  // The previous character, when it was unescaped: an extglob is one of '@!+*?' then '('.
  let previous = '';
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i]!;
    const ch = String.fromCodePoint(c);
    if (ch === '(' && previous !== '' && '@!+*?'.includes(previous)) {
      throw new GlobSyntax('extglobs like @(a|b) are not supported (write \\( for a literal parenthesis)');
    }
    previous = ch;
    if (ch === '\\') {
      out.push(chars[i + 1] ?? c);
      i++;
      previous = '';
    } else if (ch === '[') {
      const cls = parseClass(chars, i);
      if (cls !== undefined) {
        out.push(cls.token);
        i = cls.end;
      } else {
        out.push(c);
      }
    } else {
      out.push(MARKERS.get(ch) ?? c);
    }
  }
  return out;
}

const MARKERS = new Map<string, number | CharClass>([
  ['*', STAR],
  ['?', ANY],
  ['/', SLASH],
  ['{', OPEN],
  [',', COMMA],
  ['}', CLOSE],
]);

/** The class starting at chars[open] ('['), and the index of its ']', or undefined if it never closes. */
function parseClass(chars: readonly number[], open: number): { token: CharClass; end: number } | undefined {
  let i = open + 1;
  const negated = chars[i] === 0x21 || chars[i] === 0x5e; // '!' or '^'
  if (negated) i++;
  const ranges: (readonly [number, number])[] = [];
  for (let first = true; i < chars.length; first = false) {
    const c = chars[i]!;
    if (c === 0x5d && !first) return { token: { ranges, negated }, end: i }; // ']'
    if (c === 0x5b && chars[i + 1] === 0x3a) {
      // '[:name:]'
      const close = posixEnd(chars, i + 2);
      if (close !== -1) {
        const name = String.fromCodePoint(...chars.slice(i + 2, close));
        const table = POSIX_CLASSES[name];
        if (table === undefined) throw new GlobSyntax(`unknown character class [:${name}:]`);
        ranges.push(...table);
        i = close + 2;
        continue;
      }
    }
    let lo = c;
    if (c === 0x5c) lo = chars[++i] ?? c; // an escaped character
    i++;
    let hi = lo;
    if (chars[i] === 0x2d && chars[i + 1] !== undefined && chars[i + 1] !== 0x5d) {
      // 'a-z'; a '-' first or last is literal.
      let j = i + 1;
      if (chars[j] === 0x5c && chars[j + 1] !== undefined) j++;
      hi = chars[j]!;
      i = j + 1;
      if (hi < lo)
        throw new GlobSyntax(`empty range ${String.fromCodePoint(lo)}-${String.fromCodePoint(hi)}`);
    }
    ranges.push([lo, hi]);
  }
  return undefined;
}

/** The index of ':' in ':]' ending a POSIX class name that starts at `from`, or -1. */
function posixEnd(chars: readonly number[], from: number): number {
  for (let i = from; i < chars.length && i < from + 8; i++) {
    if (chars[i] === 0x3a && chars[i + 1] === 0x5d) return i;
  }
  return -1;
}

/**
 * Appends to `out` every pattern `tokens` stands for once its braces are expanded. The first brace pair to
 * close that holds a comma at its own level is expanded; pairs without one, and unmatched braces, are literal.
 */
function expandBraces(tokens: readonly Token[], out: Token[][]): void {
  const group = firstGroup(tokens);
  if (group === undefined) {
    out.push(tokens.map(literalBrace));
    if (out.length > MAX_ALTERNATIVES)
      throw new GlobSyntax(`braces expand to more than ${MAX_ALTERNATIVES} patterns`);
    return;
  }
  const before = tokens.slice(0, group.open);
  const after = tokens.slice(group.close + 1);
  const cuts = [group.open, ...group.commas, group.close];
  for (let k = 0; k + 1 < cuts.length; k++) {
    expandBraces([...before, ...tokens.slice(cuts[k]! + 1, cuts[k + 1]), ...after], out);
  }
}

function firstGroup(tokens: readonly Token[]): { open: number; close: number; commas: number[] } | undefined {
  const stack: { open: number; commas: number[] }[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (t === OPEN) stack.push({ open: i, commas: [] });
    else if (t === COMMA) stack[stack.length - 1]?.commas.push(i);
    else if (t === CLOSE) {
      const frame = stack.pop();
      if (frame !== undefined && frame.commas.length > 0) return { ...frame, close: i };
    }
  }
  return undefined;
}

function literalBrace(t: Token): Token {
  if (t === OPEN) return 0x7b;
  if (t === COMMA) return 0x2c;
  if (t === CLOSE) return 0x7d;
  return t;
}

function dedupe(patterns: Token[][]): Token[][] {
  const seen = new Set<string>();
  return patterns.filter((p) => {
    const key = JSON.stringify(p);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** Splits at '/' (empty segments dropped); '**' alone is GLOBSTAR, runs of '*' are one '*'. */
function toSegments(tokens: readonly Token[]): Segment[] {
  const segments: Segment[] = [];
  let current: Token[] = [];
  const flush = () => {
    if (current.length === 2 && current[0] === STAR && current[1] === STAR) segments.push(GLOBSTAR);
    else if (current.length > 0)
      segments.push(current.filter((t, i) => t !== STAR || current[i - 1] !== STAR));
    current = [];
  };
  for (const t of tokens) {
    if (t === SLASH) flush();
    else current.push(t);
  }
  flush();
  return segments;
}

/** One name's segment: '/' is literal, runs of '*' are one '*'. */
function toNameSegment(tokens: readonly Token[]): Segment {
  return tokens.map((t) => (t === SLASH ? 0x2f : t)).filter((t, i, all) => t !== STAR || all[i - 1] !== STAR);
}

/** Whether one name (as code points) matches one segment. */
function matchSegment(segment: Segment, name: readonly number[]): boolean {
  return greedyMatch(segment, name, STAR, matchesChar);
}

/** The same a level up: GLOBSTAR is the star, a segment match is one step. */
function matchPath(segments: readonly Segment[], parts: readonly (readonly number[])[]): boolean {
  return greedyMatch(segments, parts, GLOBSTAR, matchSegment);
}

/**
 * The classic wildcard match: `star` takes any run of units, every other token one unit that `step`
 * accepts. On a mismatch only the last star seen takes one more unit (an earlier star's choice can never
 * matter once a later one matched), so it costs at most units x tokens steps.
 */
function greedyMatch<T, U>(
  tokens: readonly T[],
  units: readonly U[],
  star: T,
  step: (token: T, unit: U) => boolean,
): boolean {
  let t = 0;
  let u = 0;
  let starT = -1;
  let starU = 0;
  while (u < units.length) {
    const token = tokens[t];
    if (token === star) {
      starT = t++;
      starU = u;
    } else if (token !== undefined && step(token, units[u]!)) {
      t++;
      u++;
    } else if (starT === -1) {
      return false;
    } else {
      t = starT + 1;
      u = ++starU;
    }
  }
  while (t < tokens.length && tokens[t] === star) t++;
  return t === tokens.length;
}

function matchesChar(token: Token, c: number): boolean {
  if (typeof token === 'number') return token === c;
  let inside = false;
  for (const [lo, hi] of token.ranges) {
    if (c >= lo && c <= hi) {
      inside = true;
      break;
    }
  }
  return inside !== token.negated;
}

function codePoints(text: string): number[] {
  const out: number[] = [];
  for (const ch of text) out.push(ch.codePointAt(0)!);
  return out;
}
