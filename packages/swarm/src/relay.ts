/**
 * Swarming: the pieces of files being downloaded, shared while the
 * downloads go on. Ours: the verified pieces of each download, told to every
 * member (PieceMap: full maps to a member that arrives, a delta per piece
 * after) and served from the partial file under a few upload slots of their
 * own. Theirs: each member's maps, bounded, kept only for files some other
 * member holds whole, for the transfers to ask. See docs/protocol.md.
 */
import { toHex, type FileEntry, type Logger, type PieceMapMessage } from '@distswarm/protocol'
import { Bits } from './pieces.js'
import type { Peer } from './peer.js'
import type { LocalFile, LocalSource } from './types.js'

/** Relay uploads served at once by this agent, over all peers; more are answered BUSY, so its own download keeps most of its link and disk. */
export const DEFAULT_MAX_RELAY_UPLOADS = 4
/** Files one peer may have piece maps for; maps for more are ignored, with a warning. */
export const DEFAULT_MAX_MAPS_PER_PEER = 64
/** Piece hashes of whole files kept for HashRequests (a swarm of downloaders each asks for the same), and for how long. */
const HASH_CACHE_ENTRIES = 8
const HASH_CACHE_MS = 60_000

/** How long after a whole-file upload to a partial holder ends that range still counts as going to it (see Relay.claim). */
const CLAIM_LINGER_MS = 5000
/** Files whose hash askers are remembered (see Relay.claim). */
const ASKED_FILES = 256

/** One relayed upload: the partial file to read, and its slot to give back. */
export interface RelayLease {
  file: LocalFile
  release: () => void
}

/** A download of ours being relayed: mark pieces verified, end it. */
export interface LocalPartial {
  have: (piece: number) => void
  /** Whether peers were served bytes of its partial file. */
  served: () => boolean
  end: () => void
}

interface Ours {
  entry: FileEntry
  pieceSize: number
  path: string
  bits: Bits
  served: boolean
}

/**
 * What members are told of a download of ours: pieces `added` (none: only
 * that we download it), the 'whole' map, or that it is 'withdrawn' (ended).
 */
function pieceMap (o: Ours, change: number[] | 'whole' | 'withdrawn'): Omit<PieceMapMessage, 'type'> {
  const { entry: { blake2b, size }, pieceSize } = o
  if (change === 'whole') return { blake2b, size, pieceSize, reset: true, have: o.bits.bytes, added: [] }
  if (change === 'withdrawn') return { blake2b, size, pieceSize, reset: true, have: Buffer.alloc(0), added: [] }
  return { blake2b, size, pieceSize, reset: false, have: Buffer.alloc(0), added: change }
}

interface Theirs {
  size: number
  pieceSize: number
  bits: Bits
}

export interface RelayInit {
  /** Member connections to tell about our pieces. */
  members: () => Iterable<Peer>
  /** Whether we or some member other than `peer` hold this file whole, at this size. */
  heldWhole: (hex: string, size: number, peer: Peer) => boolean
  logger: Logger
  maxUploads?: number
  maxMapsPerPeer?: number
}

export class Relay {
  private readonly init: RelayInit
  private readonly maxUploads: number
  private readonly maxMaps: number
  private readonly ours = new Map<string, Ours>()
  private readonly theirs = new Map<Peer, Map<string, Theirs>>()
  private uploads = 0
  /** Whole-file uploads under way: the hex keys of the peers each range goes to. */
  private readonly sending = new Map<string, Set<string>>()
  /** Files whose whole piece hashes peers asked for, and who: they swarm on them. */
  private readonly askedHashes = new Map<string, Set<string>>()
  private readonly hashCache = new Map<string, { at: number, hashes: Promise<Buffer[] | undefined> }>()
  /** Peers already warned about maps past their bound or for unknown files, so a flood is one warning. */
  private readonly warned = new WeakSet<Peer>()

  constructor (init: RelayInit) {
    this.init = init
    this.maxUploads = init.maxUploads ?? DEFAULT_MAX_RELAY_UPLOADS
    this.maxMaps = init.maxMapsPerPeer ?? DEFAULT_MAX_MAPS_PER_PEER
  }

  /** What peers are served from: `source`, its whole-file piece hashes cached, plus the verified pieces of our partial downloads. */
  source (source: LocalSource): LocalSource {
    const hashPieces = source.hashPieces?.bind(source)
    return {
      entries: () => source.entries(),
      get: (blake2b) => source.get(blake2b),
      hashPieces: hashPieces && ((blake2b, offset, length, pieceSize) => this.cachedHashes(hashPieces, blake2b, offset, length, pieceSize)),
      partial: (blake2b, offset, length) => this.lease(blake2b, offset, length),
      claim: (blake2b, offset, length, to) => this.claim(blake2b, offset, length, to),
      hashesAsked: (blake2b, to) => this.hashesAsked(blake2b, to)
    }
  }

  private hashesAsked (blake2b: Uint8Array, to: string): void {
    const hex = toHex(blake2b)
    const keys = this.askedHashes.get(hex) ?? new Set<string>()
    keys.add(to)
    // Latest last; the oldest files forgotten past the bound.
    this.askedHashes.delete(hex)
    this.askedHashes.set(hex, keys)
    while (this.askedHashes.size > ASKED_FILES) this.askedHashes.delete(this.askedHashes.keys().next().value!)
  }

  /**
   * Whole-file uploads under way, by range: a peer that swarms on the file
   * (it asked for its piece hashes, or sent us its map) that asks for a range going to another
   * peer right now is answered BUSY, and gets it from that peer once it is
   * verified there, so a seeder sends each piece about once.
   */
  private claim (blake2b: Uint8Array, offset: number, length: number, to: string): (() => void) | 'busy' {
    const hex = toHex(blake2b)
    const key = `${hex}:${offset}:${length}`
    const going = this.sending.get(key) ?? new Set<string>()
    if ([...going].some((k) => k !== to) && this.swarms(to, hex)) return 'busy'
    going.add(to)
    this.sending.set(key, going)
    // Held a little after the send ends too: the receiver verifies and advertises it meanwhile.
    return () => setTimeout(() => {
      going.delete(to)
      if (going.size === 0 && this.sending.get(key) === going) this.sending.delete(key)
    }, CLAIM_LINGER_MS).unref()
  }

  /** Whether the peer with this hex key swarms on this file: it asked for its piece hashes, or sent a piece map for it. */
  private swarms (key: string, hex: string): boolean {
    if (this.askedHashes.get(hex)?.has(key)) return true
    for (const [peer, maps] of this.theirs) if (peer.publicKeyHex === key && maps.has(hex)) return true
    return false
  }

  /** A peer said bytes we sent were wrong: piece hashes are computed afresh. */
  forgetHashes (): void {
    this.hashCache.clear()
  }

  private cachedHashes (hash: NonNullable<LocalSource['hashPieces']>, blake2b: Uint8Array, offset: number, length: number, pieceSize: number): Promise<Buffer[] | undefined> {
    const key = `${toHex(blake2b)}:${offset}:${length}:${pieceSize}`
    const now = Date.now()
    const hit = this.hashCache.get(key)
    if (hit && now - hit.at < HASH_CACHE_MS) return hit.hashes
    const hashes = hash(blake2b, offset, length, pieceSize)
    // A failure is not remembered.
    hashes.catch(() => this.hashCache.delete(key))
    this.hashCache.set(key, { at: now, hashes })
    while (this.hashCache.size > HASH_CACHE_ENTRIES) this.hashCache.delete(this.hashCache.keys().next().value!)
    return hashes
  }

  /** The partial file, when [offset, offset + length) lies in verified pieces of ours; 'busy' when every relay slot is taken. */
  private lease (blake2b: Uint8Array, offset: number, length: number): RelayLease | 'busy' | undefined {
    const ours = this.ours.get(toHex(blake2b))
    if (!ours || length <= 0) return undefined
    for (let i = Math.floor(offset / ours.pieceSize); i * ours.pieceSize < offset + length; i++) if (!ours.bits.has(i)) return undefined
    if (this.uploads >= this.maxUploads) return 'busy'
    this.uploads++
    ours.served = true
    let released = false
    return {
      file: { ...ours.entry, path: ours.path },
      release: () => {
        if (released) return
        released = true
        this.uploads--
      }
    }
  }

  /**
   * Starts relaying a download of ours: its partial file at `path`, pieces
   * of `pieceSize`. Members are told at once, with an empty map, that we
   * download it: a member downloading it too then checks its pieces and
   * offers them (see downloading()).
   */
  begin (entry: FileEntry, pieceSize: number, path: string): LocalPartial {
    const hex = toHex(entry.blake2b)
    const ours: Ours = { entry, pieceSize, path, bits: new Bits(Math.ceil(entry.size / pieceSize)), served: false }
    this.ours.set(hex, ours)
    this.broadcast(pieceMap(ours, []))
    const live = (): boolean => this.ours.get(hex) === ours
    return {
      have: (piece) => {
        if (!live() || !ours.bits.add(piece)) return
        this.broadcast(pieceMap(ours, [piece]))
      },
      served: () => ours.served,
      end: () => {
        if (!live()) return
        this.ours.delete(hex)
        this.broadcast(pieceMap(ours, 'withdrawn'))
      }
    }
  }

  private broadcast (msg: Omit<PieceMapMessage, 'type'>): void {
    for (const peer of this.init.members()) peer.sendPieceMap(msg)
  }

  /** A member arrived: the full maps of our downloads under way. */
  attach (peer: Peer): void {
    for (const o of this.ours.values()) {
      peer.sendPieceMap(pieceMap(o, o.bits.size > 0 ? 'whole' : []))
    }
  }

  detach (peer: Peer): void {
    this.theirs.delete(peer)
  }

  /** A member's PieceMap: charged to its budget, kept within the bounds of docs/protocol.md. */
  onMessage (peer: Peer, msg: PieceMapMessage): void {
    if (!peer.chargePieceMap(1 + msg.added.length)) return
    const hex = toHex(msg.blake2b)
    let maps = this.theirs.get(peer)
    const known = maps?.get(hex)
    if (msg.reset && !msg.have.some((b) => b !== 0)) {
      maps?.delete(hex)
      return
    }
    if (peer.files.has(hex)) return // it holds the file whole: its inventory says all
    if (!this.init.heldWhole(hex, msg.size, peer)) {
      this.warnOnce(peer, 'relay.map-unknown-file', { name: hex.slice(0, 16), size: msg.size, why: 'no member holds this file whole: ignored' })
      return
    }
    if (!known && (maps?.size ?? 0) >= this.maxMaps) {
      this.warnOnce(peer, 'relay.too-many-maps', { limit: this.maxMaps, why: 'maps for more files ignored' })
      return
    }
    let map = known
    if (!map || map.size !== msg.size || map.pieceSize !== msg.pieceSize || msg.reset) {
      map = { size: msg.size, pieceSize: msg.pieceSize, bits: new Bits(Math.ceil(msg.size / msg.pieceSize), msg.reset ? msg.have : undefined) }
      if (!maps) this.theirs.set(peer, maps = new Map())
      maps.set(hex, map)
    }
    for (const i of msg.added) map.bits.add(i)
  }

  private warnOnce (peer: Peer, event: string, fields: Record<string, string | number>): void {
    if (this.warned.has(peer)) return
    this.warned.add(peer)
    this.init.logger.warn(event, { peer: peer.label, ...fields })
  }

  /** Members that download this file too (they sent a map for it, if an empty one): pieces of ours are then worth checking and offering. */
  downloading (hex: string): Peer[] {
    const out: Peer[] = []
    for (const [peer, maps] of this.theirs) if (!peer.closed && maps.has(hex)) out.push(peer)
    return out
  }

  /** Members holding verified pieces of this file, in pieces of `pieceSize` (size and pieceSize -1: any), and which. */
  holders (hex: string, size: number, pieceSize: number): Array<{ peer: Peer, has: (piece: number) => boolean, count: number }> {
    const out: Array<{ peer: Peer, has: (piece: number) => boolean, count: number }> = []
    for (const [peer, maps] of this.theirs) {
      const m = maps.get(hex)
      if (!m || m.bits.size === 0 || peer.closed) continue
      if ((size === -1 || m.size === size) && (pieceSize === -1 || m.pieceSize === pieceSize)) out.push({ peer, has: (i) => m.bits.has(i), count: m.bits.size })
    }
    return out
  }
}
