/**
 * What peers see of this box: the store, less the files that contradict the
 * Manifest entry of their name. Peers ask through here (each ask is a use of
 * the file, for the quota); the piece hashes of recent HashRequests are kept,
 * and a peer's report that our bytes were wrong has our copies re-hashed.
 */
import { debugLogger, toHex, type FileEntry, type Logger } from '@distswarm/protocol'
import type { LocalFile, Store } from '@distswarm/store'
import type { LocalSource, Peer } from '@distswarm/swarm'
import type { PieceRange } from '@distswarm/store'

/** Binary packages peers may ask for by BLAKE2B besides the distfiles (the agent's Binhost). */
export interface BuildFiles {
  file: (hex: string) => (LocalFile & { path: string }) | undefined
  pieces: (hex: string, range: PieceRange) => Promise<Buffer[] | undefined>
}

/** HashRequest answers kept (each may stand for a read of a whole large file). */
export const PIECE_HASH_CACHE = 32
/** A digest is re-hashed on a peer's report at most this often, so reports cannot make us read big files over and over. */
export const RECHECK_EVERY_MS = 10 * 60_000

export interface AdvertisedInit {
  store: Pick<Store, 'get' | 'entries' | 'touch' | 'hashPieces' | 'recheck'>
  /** False for a file peers must not be offered. */
  agrees: (file: FileEntry & { path?: string }) => boolean
  /** Build files served too (never in the inventory: builds travel as build advertisements). */
  builds?: () => BuildFiles | null
  logger?: Logger
}

export class Advertised implements LocalSource {
  private readonly store: AdvertisedInit['store']
  private readonly agrees: AdvertisedInit['agrees']
  private readonly builds: () => BuildFiles | null
  private readonly log: Logger
  /** Recent answers to HashRequests, oldest first. */
  private readonly pieceHashes = new Map<string, Buffer[]>()
  /** When each digest was last re-hashed on a peer's report. */
  private readonly rechecked = new Map<string, number>()

  constructor (init: AdvertisedInit) {
    this.store = init.store
    this.agrees = init.agrees
    this.builds = init.builds ?? (() => null)
    this.log = init.logger ?? debugLogger('distswarm:agent:advertised')
  }

  get (d: Uint8Array | string): LocalFile | undefined {
    const f = this.store.get(d)
    if (!f) return this.builds()?.file(typeof d === 'string' ? d : toHex(d))
    if (!this.agrees(f)) return undefined
    this.store.touch(f.blake2b)
    return f
  }

  entries (): LocalFile[] {
    return [...this.store.entries()].filter((f) => this.agrees(f))
  }

  async hashPieces (d: Uint8Array, offset: number, length: number, pieceSize: number): Promise<Buffer[] | undefined> {
    const file = this.get(d)
    if (!file) return undefined
    // Each answer reads the whole range: asked again (by the same or
    // another peer), it comes from here while the file is unchanged.
    const key = `${toHex(d)}:${offset}:${length}:${pieceSize}:${file.path}`
    const cached = this.pieceHashes.get(key)
    if (cached) return cached
    const range = { offset, length, pieceSize }
    const hashes = this.store.get(d) ? await this.store.hashPieces(d, range) : await this.builds()?.pieces(toHex(d), range)
    if (hashes) {
      this.pieceHashes.set(key, hashes)
      if (this.pieceHashes.size > PIECE_HASH_CACHE) this.pieceHashes.delete(this.pieceHashes.keys().next().value!)
    }
    return hashes
  }

  /** A peer says our bytes for this digest were wrong: re-hash our copies (at most once per digest per RECHECK_EVERY_MS). */
  async onReport (peer: Peer, blake2b: Buffer): Promise<void> {
    const hex = toHex(blake2b)
    const last = this.rechecked.get(hex) ?? 0
    if (!this.store.get(hex) || Date.now() - last < RECHECK_EVERY_MS) return
    this.rechecked.set(hex, Date.now())
    // Piece hashes computed before may describe bytes that since changed.
    for (const key of this.pieceHashes.keys()) if (key.startsWith(hex)) this.pieceHashes.delete(key)
    const changed = await this.store.recheck(hex)
    this.log.info('report.rechecked', { peer: peer.label, blake2b: hex.slice(0, 16), changed })
  }
}
