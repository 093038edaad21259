/**
 * A download failed its whole-file check: which pieces were wrong, and who
 * sent them. The holders' piece hashes of their own copies are compared with
 * ours by swarm's judge(), a pure function; this module asks for them and
 * turns the verdict into the next round of a fetch.
 */
import type { FileEntry } from '@distswarm/protocol'
import type { Download, PieceRange } from '@distswarm/store'
import { judge, sourcesOf, type PieceSource, type Verdict } from '@distswarm/swarm'

/** What a diagnosis needs of the swarm. */
export interface HashHolders {
  readonly rangeSize: number
  pieceHashes: (entry: FileEntry, range: PieceRange) => Promise<Map<string, Buffer[]>>
}

/** The next round of a fetch whose whole-file check failed. */
export interface Repair {
  /** sources shown to have sent wrong bytes: blamed, and gone without for the rest of the fetch */
  liars: string[]
  /** gone without for one round (see Verdict.suspect) */
  suspect: string | null
  /** the pieces to fetch again over the wrong ones, or null: the file starts over */
  redo: PieceSource[] | null
  /** what the verdict said, for the log; null when the pieces could not be compared */
  verdict: Verdict | null
}

/**
 * Asks every holder for the piece hashes of its own copy, hashes ours alike
 * (`hashOurs`), and judges which pieces were wrong and which sources sent
 * them. Null when the pieces were not cut at rangeSize from the first one,
 * so there is nothing to compare.
 */
export async function diagnose (swarm: HashHolders, entry: FileEntry, pieces: readonly PieceSource[], hashOurs: (range: PieceRange) => Promise<Buffer[]>): Promise<Verdict | null> {
  const rangeSize = swarm.rangeSize
  const first = pieces[0]
  if (!first) return null
  const even = pieces.every((p, i) => p.offset === first.offset + i * rangeSize && p.length === Math.min(rangeSize, entry.size - p.offset))
  if (!even || first.offset + pieces.length * rangeSize < entry.size) return null
  const range = { offset: first.offset, length: entry.size - first.offset, pieceSize: rangeSize }
  const [ours, claims] = await Promise.all([hashOurs(range), swarm.pieceHashes(entry, range)])
  return judge(pieces, ours, claims)
}

/**
 * Finds the wrong pieces from the holders' piece hashes, to be fetched again
 * over the wrong bytes (`redo`). When no piece stands out, the file starts
 * over (its bytes are truncated, `redo` null) and every source is a liar
 * (but for bytes an earlier run left, whose sources are unknown: then nobody
 * is blamed the first time).
 */
export async function planRepair (
  swarm: HashHolders, download: Download, entry: FileEntry, pieces: readonly PieceSource[], hashOurs: (range: PieceRange) => Promise<Buffer[]>
): Promise<Repair & { resumed: boolean }> {
  const verdict = await diagnose(swarm, entry, pieces, hashOurs)
  if (verdict && verdict.bad.length > 0) return { liars: verdict.liars, suspect: verdict.suspect, redo: verdict.bad.map((i) => pieces[i]!), verdict, resumed: false }
  const resumed = (pieces[0]?.offset ?? download.written) > 0
  await download.truncate(0)
  return { liars: resumed ? [] : sourcesOf(pieces), suspect: null, redo: null, verdict, resumed }
}
