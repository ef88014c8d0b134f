/**
 * Man pages made from `--help` (issue 18, packaging): the help text yargs prints is the one source, so the
 * page and the help can never say different things. `parseHelp` reads yargs' layout (blocks separated by blank
 * lines; `Title:` blocks are two-column tables whose wrapped lines sit under the description column);
 * `renderManPage` writes roff (man(7)).
 */

/** One row of a table: an option with its description, a command, an exit code. */
export interface HelpEntry {
  term: string;
  text: string;
}

export interface HelpTable {
  title: string;
  entries: HelpEntry[];
}

/** A help text: its leading blocks (usage, description), its tables, and the paragraphs after them. */
export interface HelpDoc {
  lead: string[][];
  tables: HelpTable[];
  notes: string[];
}

export function parseHelp(help: string): HelpDoc {
  const doc: HelpDoc = { lead: [], tables: [], notes: [] };
  for (const block of blocks(help)) {
    const title = /^([A-Z][A-Za-z ]*):$/.exec(block[0] ?? '')?.[1];
    if (title !== undefined) doc.tables.push({ title, entries: tableEntries(block.slice(1)) });
    else if (doc.tables.length === 0) doc.lead.push(block);
    else doc.notes.push(fold(block.join(' ')));
  }
  return doc;
}

function blocks(text: string): string[][] {
  const out: string[][] = [];
  let current: string[] = [];
  for (const line of text.replace(/\s+$/, '').split('\n')) {
    if (line.trim() !== '') {
      current.push(line.trimEnd());
      continue;
    }
    if (current.length > 0) out.push(current);
    current = [];
  }
  if (current.length > 0) out.push(current);
  return out;
}

const ROW = /^(\s*)(\S(?:\S| (?! ))*)(?:\s{2,}(\S.*))?$/;

/** Rows start left of the description column; a line starting at or right of it continues the row above. */
function tableEntries(lines: string[]): HelpEntry[] {
  const entries: HelpEntry[] = [];
  let column = Infinity;
  for (const line of lines) {
    const indent = line.length - line.trimStart().length;
    const last = entries[entries.length - 1];
    if (last !== undefined && indent >= column) {
      last.text = fold(`${last.text} ${line}`);
      continue;
    }
    const m = ROW.exec(line);
    const term = m?.[2] ?? line.trim();
    const text = m?.[3] ?? '';
    if (text !== '' && column === Infinity) column = line.indexOf(text, (m?.[1] ?? '').length + term.length);
    entries.push({ term, text: fold(text) });
  }
  return entries;
}

function fold(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

/** What the help does not say: the page's name, section and the parts a man page has beyond the help. */
export interface ManMeta {
  name: string;
  section: number;
  version: string;
  summary: string;
  /** Paragraphs opening DESCRIPTION, before the help's own. */
  description: string[];
  /** Extra help texts rendered as "OPTIONS OF <title>" (a subcommand's own options). */
  more?: Array<{ title: string; doc: HelpDoc }>;
  files: HelpEntry[];
  seeAlso: string[];
}

export function renderManPage(doc: HelpDoc, meta: ManMeta): string {
  const out: string[] = [
    `.TH ${meta.name.toUpperCase()} ${meta.section} "" "${meta.name} ${meta.version}" "${meta.section === 8 ? 'System Administration' : 'User Commands'}"`,
    '.SH NAME',
    `${meta.name} \\- ${escape(meta.summary)}`,
  ];
  const [usage, ...description] = doc.lead;
  out.push('.SH SYNOPSIS', '.nf', ...(usage ?? [meta.name]).map(escapeLine), '.fi');
  const described = [...meta.description, ...description.map((b) => fold(b.join(' ')))];
  if (described.length > 0) out.push('.SH DESCRIPTION', ...paragraphs(described));
  const exitTable = doc.tables.find((t) => t.title === 'Exit codes');
  for (const table of doc.tables) {
    if (table !== exitTable) out.push(`.SH ${table.title.toUpperCase()}`, ...rows(table.entries));
  }
  for (const more of meta.more ?? []) {
    for (const table of more.doc.tables)
      out.push(`.SH ${table.title.toUpperCase()} OF ${more.title.toUpperCase()}`, ...rows(table.entries));
  }
  if (doc.notes.length > 0) out.push('.SH NOTES', ...paragraphs(doc.notes));
  if (exitTable !== undefined) out.push('.SH EXIT STATUS', ...rows(exitTable.entries));
  if (meta.files.length > 0) out.push('.SH FILES', ...rows(meta.files));
  out.push('.SH SEE ALSO', meta.seeAlso.map((s) => s.replace(/^(.+)\((\w+)\)$/, '.BR $1 ($2)')).join(',\n'));
  return `${out.join('\n')}\n`;
}

function paragraphs(texts: string[]): string[] {
  return texts.flatMap((t) => ['.PP', escapeLine(t)]);
}

function rows(entries: HelpEntry[]): string[] {
  return entries.flatMap((e) => ['.TP', `.B ${escape(e.term)}`, escapeLine(e.text)]);
}

/** roff: a backslash is `\e`, a hyphen in an option is `\-` (a minus sign that man renders as `-`). */
function escape(text: string): string {
  return text.replace(/\\/g, '\\e').replace(/-/g, '\\-');
}

/** A line of text: also a leading `.` or `'` would be read as a request. */
function escapeLine(text: string): string {
  const escaped = escape(text);
  return /^[.']/.test(escaped) ? `\\&${escaped}` : escaped;
}
