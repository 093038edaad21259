const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB']

/** 1536 → "1.5 KiB" */
export function formatBytes (n: number): string {
  let v = n
  let u = 0
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024
    u++
  }
  return u === 0 ? `${v} B` : `${v.toFixed(1)} ${UNITS[u]}`
}

export function formatDuration (ms: number): string {
  if (ms < 1000) return `${ms} ms`
  const s = ms / 1000
  if (s < 120) return `${s.toFixed(1)} s`
  const m = Math.floor(s / 60)
  return m < 120 ? `${m} min ${Math.round(s % 60)} s` : `${Math.floor(m / 60)} h ${m % 60} min`
}

export function formatRate (bytes: number, ms: number): string {
  return `${formatBytes(Math.round(bytes / Math.max(ms, 1) * 1000))}/s`
}

/** How long ago, coarse enough to read at a glance: "just now", "12 s ago", "5 min ago", "3 h ago", "2 d ago". */
export function formatAgo (ms: number): string {
  const s = Math.floor(Math.max(ms, 0) / 1000)
  if (s < 1) return 'just now'
  if (s < 60) return `${s} s ago`
  const m = Math.floor(s / 60)
  if (m < 60) return `${m} min ago`
  const h = Math.floor(m / 60)
  return h < 48 ? `${h} h ago` : `${Math.floor(h / 24)} d ago`
}

/** The time since an ISO date, as formatAgo; '-' for one that does not parse. */
export function formatSince (iso: string, now = Date.now()): string {
  const t = Date.parse(iso)
  return Number.isNaN(t) ? '-' : formatAgo(now - t)
}

/** A round-trip time in whole ms; UDX measures in ms, so 0 means under one. */
export function formatRtt (ms: number | null): string {
  if (ms === null) return '-'
  return ms < 1 ? '<1 ms' : `${ms} ms`
}

export const shortKey = (hex: string): string => hex.slice(0, 12)

export interface TableOptions {
  /** Columns (by index) aligned right: numbers and sizes. */
  right?: number[]
  /** Applied to the header line once it is padded (colour codes must not count towards widths). */
  header?: (line: string) => string
}

// eslint-disable-next-line no-control-regex
const SGR = /\x1b\[[0-9;]*m/g
/** Columns a cell takes on a terminal: colour codes take none. */
const visible = (s: string): number => s.includes('\x1b') ? s.replace(SGR, '').length : s.length
const pad = (s: string, width: number, right: boolean): string => {
  const fill = ' '.repeat(Math.max(0, width - visible(s)))
  return right ? fill + s : s + fill
}

/** Columns two spaces apart, left-aligned unless listed in `right`; cells may carry colour. */
export function table (header: string[], rows: string[][], opts: TableOptions = {}): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => visible(r[i] ?? ''))))
  const right = new Set(opts.right ?? [])
  const line = (cells: string[]): string =>
    cells.map((c, i) => pad(c, widths[i] ?? 0, right.has(i))).join('  ').trimEnd()
  const head = line(header)
  return [opts.header ? opts.header(head) : head, ...rows.map(line)].join('\n') + '\n'
}

/** `key value` lines with the keys in one column. */
export function keyValues (rows: Array<[string, string]>, key: (k: string) => string = (k) => k): string {
  const width = Math.max(0, ...rows.map(([k]) => k.length))
  return rows.map(([k, v]) => `${key(k.padEnd(width))}  ${v}`).join('\n') + '\n'
}

export interface Paint {
  bold: (s: string) => string
  dim: (s: string) => string
  red: (s: string) => string
  green: (s: string) => string
  yellow: (s: string) => string
}

const sgr = (open: number, close: number) => (s: string): string => `\x1b[${open}m${s}\x1b[${close}m`
const PLAIN: Paint = { bold: String, dim: String, red: String, green: String, yellow: String }
const COLOUR: Paint = { bold: sgr(1, 22), dim: sgr(2, 22), red: sgr(31, 39), green: sgr(32, 39), yellow: sgr(33, 39) }

/**
 * Colour for a stream: only a terminal, and never with NO_COLOR set to
 * anything but the empty string (https://no-color.org).
 */
export function paintFor (stream: unknown, env: NodeJS.ProcessEnv): Paint {
  const tty = (stream as { isTTY?: boolean }).isTTY === true
  return tty && !env.NO_COLOR ? COLOUR : PLAIN
}

export const isTTY = (stream: unknown): boolean => (stream as { isTTY?: boolean }).isTTY === true

/** `[#####-----]` of `width` cells, at least one: `done` of `total` (an empty file is done). */
export function bar (done: number, total: number, width: number): string {
  const cells = Math.max(1, width)
  const filled = total > 0 ? Math.min(cells, Math.floor(done / total * cells)) : cells
  return `[${'#'.repeat(filled)}${'-'.repeat(cells - filled)}]`
}

/** A fetch from peers, as the agent reports it. */
export interface Moved { size: number, durationMs: number, resumedFrom: number }

/**
 * "in 1.2 s (10.0 MiB/s)"; a resumed fetch says so, and its rate counts only
 * the bytes moved this time: "resumed at 4.0 MiB, 8.0 MiB more in 0.8 s (10.0 MiB/s)".
 */
export function movedText (r: Moved): string {
  const moved = Math.max(0, r.size - r.resumedFrom)
  const took = `in ${formatDuration(r.durationMs)} (${formatRate(moved, r.durationMs)})`
  return r.resumedFrom > 0 ? `resumed at ${formatBytes(r.resumedFrom)}, ${formatBytes(moved)} more ${took}` : took
}
