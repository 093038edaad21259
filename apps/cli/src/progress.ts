import type { Writable } from 'node:stream'
import type { TransferInfo } from '@distswarm/agent'
import { bar, formatBytes, formatDuration, formatRate } from './format.js'

/** One file being fetched, as the progress display knows it. */
export interface Tracked {
  label: string
  /** From the agent's status; undefined until the transfer shows there (or for a file already here). */
  transfer?: TransferInfo
  /** The first sample seen: rate and ETA count from it, so bytes a resumed attempt had do not inflate the rate. */
  first?: { at: number, done: number }
}

/** The transfer in `transfers` that fetching `query` (a name or a digest), published as `name`, is. */
export function transferOf (transfers: readonly TransferInfo[], query: string, name?: string): TransferInfo | undefined {
  const digest = query.toLowerCase()
  return transfers.find((t) => t.blake2b === digest) ?? transfers.find((t) => t.name === (name ?? query))
}

/** One line: label, bar, bytes done of total, rate and ETA; at most `columns` wide. */
export function progressLine (t: Tracked, now: number, columns: number): string {
  const tr = t.transfer
  let tail: string
  let done = 0
  let total = 0
  if (!tr) {
    tail = 'asking peers…'
  } else {
    done = tr.bytesDone
    total = tr.size
    const elapsed = t.first ? now - t.first.at : 0
    const moved = t.first ? done - t.first.done : 0
    const rate = elapsed > 0 && moved > 0 ? moved / elapsed * 1000 : 0
    const eta = rate > 0 ? `ETA ${formatDuration(Math.round((total - done) / rate * 1000))}` : 'ETA -'
    tail = `${formatBytes(done)} / ${formatBytes(total)}  ${rate > 0 ? formatRate(moved, elapsed) : '- /s'}  ${eta}`
  }
  // one column short of the width: a line that fills the last column wraps on some terminals
  const room = columns - 1 - tail.length
  // the label gets up to a third of the line, the bar what is left (at least 10 cells)
  const labelWidth = Math.max(8, Math.min(t.label.length, Math.floor(room / 3)))
  const label = t.label.length > labelWidth ? `${t.label.slice(0, labelWidth - 1)}…` : t.label.padEnd(labelWidth)
  const barWidth = room - labelWidth - 6 // two separators and the brackets
  const line = tr && barWidth >= 10 ? `${label}  ${bar(done, total, barWidth)}  ${tail}` : `${label}  ${tail}`
  return line.slice(0, Math.max(columns - 1, 1))
}

/**
 * Lines redrawn in place at the bottom of a terminal: each draw moves the
 * cursor back up over the last one. Lines printed through above() go above
 * the bars and stay.
 */
export class LiveLines {
  private drawn = 0
  constructor (private readonly out: Writable & { columns?: number }) {}

  get columns (): number {
    return this.out.columns || 80 // 0 on a pseudo-terminal that was never sized
  }

  draw (lines: string[]): void {
    this.out.write(this.erase() + lines.map((l) => `${l}\n`).join(''))
    this.drawn = lines.length
  }

  /** Writes `text` (whole lines) to `to` above the bars; draw again after. */
  above (to: Writable, text: string): void {
    this.clear()
    to.write(text)
  }

  /** Removes the bars. */
  clear (): void {
    if (this.drawn) this.out.write(this.erase())
    this.drawn = 0
  }

  /** Cursor up over the lines drawn, then erase to the end of the screen. */
  private erase (): string {
    return this.drawn ? `\x1b[${this.drawn}A\r\x1b[J` : ''
  }
}
