import type { PieceSource } from './transfer.js'

/** What the piece hashes say about a download whose whole-file check failed. */
export interface Verdict {
  /** Indexes (into the pieces) of pieces whose bytes are wrong, or disputed. */
  bad: number[]
  /** Sources shown to have sent wrong bytes: by their own piece hashes, or against a majority of the holders. */
  liars: string[]
  /**
   * When holders split evenly on some pieces (two holders, say) and no
   * source is shown wrong by them: the source that sent the most of those
   * disputed pieces, to go without for one round. If the file then
   * verifies, it was wrong; if not, the next round suspects the other side.
   */
  suspect: string | null
}

/**
 * Finds which pieces of a failed download are wrong, and who sent them.
 * `ours` holds the hash of each piece as written; `claims` each holder's
 * hashes of the same pieces of its own copy. A piece is wrong when its
 * source's own copy has other bytes than it sent (a lie on the wire), or
 * when more holders agree on another value than on what we got (a copy
 * that changed behind its holder's index, or a liar that hashes honestly).
 * When the holders split evenly, the piece is disputed: refetching it from
 * the other side and the whole-file check decide (see Verdict.suspect).
 */
export function judge (pieces: readonly PieceSource[], ours: readonly Buffer[], claims: ReadonlyMap<string, readonly Buffer[]>): Verdict {
  const bad: number[] = []
  const liars = new Set<string>()
  const disputed = new Map<string, number>()
  pieces.forEach((piece, i) => {
    const got = ours[i]!.toString('hex')
    const own = claims.get(piece.source)?.[i]?.toString('hex')
    const votes = new Map<string, number>()
    for (const hashes of claims.values()) {
      const h = hashes[i]?.toString('hex')
      if (h !== undefined) votes.set(h, (votes.get(h) ?? 0) + 1)
    }
    const ranked = [...votes].sort((a, b) => b[1] - a[1])
    const top = ranked[0]
    const majority = top && (ranked[1] === undefined || top[1] > ranked[1][1]) ? top[0] : null
    if (own !== undefined && own !== got) {
      liars.add(piece.source)
      bad.push(i)
    } else if (majority !== null && majority !== got) {
      liars.add(piece.source)
      bad.push(i)
    } else if (majority === null && ranked.some(([h]) => h !== got)) {
      disputed.set(piece.source, (disputed.get(piece.source) ?? 0) + 1)
      bad.push(i)
    }
  })
  // Only a holder that answered can be suspected: going without one that left changes nothing.
  const suspect = [...disputed].filter(([key]) => !liars.has(key) && claims.has(key)).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))[0]?.[0] ?? null
  return { bad, liars: [...liars], suspect }
}
