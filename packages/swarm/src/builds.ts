// Binary packages over the swarm: signing and checking build advertisements,
// the set this box advertises (sent in full on connect, deltas after), and
// the verified builds each peer advertises. See Builds in protocols/distswarm.proto.
import sodium from 'sodium-universal'
import {
  BLAKE2B_BYTES, buildProblem, buildSigningPayload, buildWireBytes, MAX_BUILDS_BATCH, MAX_BUILDS_MESSAGE_BYTES, PUBLIC_KEY_BYTES, SIGNATURE_BYTES, toHex,
  type BuildEntry, type BuildsMessage, type Code, type Logger
} from '@distswarm/protocol'
import { SwarmError } from './errors.js'
import type { KeyPair } from './types.js'

/**
 * A binary package as advertised: the file's BLAKE2B address and size, its
 * compatibility group, its Packages stanza (`fields`), and the ed25519 key
 * and signature of the agent that built it. Relayed unchanged by any holder.
 */
export type BuildAd = BuildEntry

/** Signs a build with this agent's identity (the swarm's key pair). Throws ERR_BAD_BUILD for an ad past a bound (see buildProblem). */
export function signBuild (ad: Omit<BuildAd, 'builder' | 'signature'>, keyPair: KeyPair): BuildAd {
  if (keyPair?.publicKey?.byteLength !== PUBLIC_KEY_BYTES || keyPair.secretKey?.byteLength !== 64) throw SwarmError.INVALID_OPTION('keyPair', 'expected an Ed25519 key pair (createKeyPair())')
  const signed: BuildAd = {
    blake2b: Buffer.from(ad.blake2b ?? []),
    size: ad.size,
    group: ad.group,
    fields: Object.fromEntries(Object.entries(ad.fields ?? {})),
    builder: Buffer.from(keyPair.publicKey),
    signature: Buffer.alloc(SIGNATURE_BYTES)
  }
  const problem = buildProblem(signed)
  if (problem !== null) throw SwarmError.BAD_BUILD(signed.fields.CPV ?? toHex(signed.blake2b).slice(0, 16), problem)
  sodium.crypto_sign_detached(signed.signature, buildSigningPayload(signed), keyPair.secretKey)
  return signed
}

/** Whether the ad's signature is its builder's over exactly these fields. Never throws. */
export function verifyBuild (ad: BuildAd): boolean {
  if (ad?.builder?.byteLength !== PUBLIC_KEY_BYTES || ad.signature?.byteLength !== SIGNATURE_BYTES) return false
  if (!Number.isSafeInteger(ad.size) || ad.size < 0 || typeof ad.group !== 'string' || typeof ad.fields !== 'object' || ad.fields === null) return false
  if (!Object.values(ad.fields).every((v) => typeof v === 'string')) return false
  return sodium.crypto_sign_verify_detached(ad.signature, buildSigningPayload(ad), ad.builder)
}

/** The side of a connection the book needs (Peer implements it). */
export interface BuildsLink {
  readonly label: string
  readonly closed: boolean
  readonly publicKey: Buffer
  /** False when the connection's buffer is full. */
  sendBuilds (msg: Omit<BuildsMessage, 'type'>): boolean
  /** Resolves when the connection takes writes again (or closed). */
  writable (): Promise<void>
}

export interface BuildBookInit {
  logger: Logger
  /** Builds one peer may advertise (more are ignored, with a warning); also the most this box advertises. */
  maxBuilds: number
  /** Bytes of stanzas and groups one peer's builds may hold, together. */
  maxBytes: number
  /**
   * Memory the distinct builds of every peer may take together (one shared
   * by many counted once), each counted as its signed bytes plus
   * BUILD_OVERHEAD_BYTES; past it new ones are ignored, with a warning.
   * Default: no bound but the per-peer ones.
   */
  maxPoolBytes?: number
  /** The remote builds changed (called once per turn of the event loop at most). */
  changed: () => void
}

/** One verified ad, shared by every peer that advertises it (and by our own set): verified once. */
interface Slot {
  /** BLAKE2b-256 of the signed payload and the signature: identical ads share it. */
  key: string
  ad: BuildAd
  hex: string
  bytes: number
  refs: number
}

/**
 * What a build costs beyond its signed bytes, as the shared pool counts it:
 * its objects here (~1.4 KiB a build in all, measured with 50 000) and its
 * row in the agent's merged index, less what repeated values share.
 */
export const BUILD_OVERHEAD_BYTES = 1536

/** Bytes of a build's record: BLAKE2B, builder key, signature. */
const RECORD_BYTES = BLAKE2B_BYTES + PUBLIC_KEY_BYTES + SIGNATURE_BYTES

/**
 * Stanza keys whose values differ from build to build (digests, sizes,
 * times, the CPV): not worth a table entry. Every other value (USE, IUSE,
 * the *DEPENDs, KEYWORDS, LICENSE, EAPI, SLOT, the group, …) is mostly one
 * of a few, and is kept once for all the builds that have it.
 */
const UNIQUE_KEYS = new Set(['BUILD_TIME', 'CPV', 'MD5', 'MTIME', 'PATH', 'SHA1', 'SIZE'])

/** One copy of each repeated value; counted, so that the values of builds that are gone go too. */
class StringTable {
  private readonly strings = new Map<string, { s: string, n: number }>()

  take (value: string): string {
    const e = this.strings.get(value)
    if (e) {
      e.n++
      return e.s
    }
    this.strings.set(value, { s: value, n: 1 })
    return value
  }

  give (value: string): void {
    const e = this.strings.get(value)
    if (e && --e.n <= 0) this.strings.delete(value)
  }

  get size (): number {
    return this.strings.size
  }
}

/** A row of rows(): a file and its builder, who holds it, and (rarely) the different ads its holders relay. */
interface Row<P> {
  first: Slot
  holders: P[]
  slots: Map<Slot, P[]> | null
}

interface Remote {
  ads: Map<string, Slot>
  bytes: number
  /** A cut-off was reported for this connection: further ones are debug lines. */
  warned: boolean
}

interface Sending {
  /** What the remote was told (by digest), null until the full set went out. */
  sent: Map<string, BuildAd> | null
  busy: boolean
  again: boolean
}

const BUILDS_LIMIT: Code = 'ERR_BUILDS_LIMIT'
const BAD_SIGNATURE: Code = 'ERR_BAD_SIGNATURE'

const label = (ad: BuildAd): string => ad.fields?.CPV ?? toHex(ad.blake2b ?? Buffer.alloc(0)).slice(0, 16)

/**
 * The builds this box advertises and those its peers advertise. Our set goes
 * to each peer in full after its hello (reset, in batches below the frame
 * limit) and as deltas after; what a peer sends is kept only when it keeps
 * the bounds and its builder's signature verifies.
 */
export class BuildBook<P extends BuildsLink = BuildsLink> {
  private readonly init: BuildBookInit
  private readonly log: Logger
  private readonly pool = new Map<string, Slot>()
  /** Signed payload bytes of the slots in the pool (distinct builds of every peer, and ours). */
  private poolBytes = 0
  private readonly strings = new StringTable()
  /** The slot of each ad the pool handed out, and of each ad set() took. */
  private readonly owned = new WeakMap<BuildAd, Slot>()
  private local = new Map<string, Slot>()
  /** Digests of our ads refused at the last set(), so one bad ad is reported once, not at every call. */
  private refusedLocal = new Set<string>()
  private readonly remote = new Map<P, Remote>()
  private readonly sending = new Map<P, Sending>()
  private pending: NodeJS.Immediate | null = null
  /** Bumped at every change of a peer's builds; rows() of every peer are kept until the next. */
  /** rows() of every peer since the last change; null after one. */
  private cached: ReadonlyArray<{ ad: BuildAd, holders: P[] }> | null = null
  /** Remote ads dropped because their signature failed. */
  forged = 0
  /** Remote ads ignored for a bound (too many, too large). */
  refused = 0

  constructor (init: BuildBookInit) {
    this.init = init
    this.log = init.logger
  }

  /** Builds we advertise now. */
  get advertised (): number {
    return this.local.size
  }

  /**
   * The full set this box advertises now. Each ad past a bound or with a
   * signature that fails is left out, with a warning; the rest go to every
   * peer as a delta from what it was told. An ad object is read when first
   * given: pass a new object for new content, never change one in place.
   */
  set (ads: readonly BuildAd[]): void {
    const next = new Map<string, Slot>()
    const refused = new Set<string>()
    let over = 0
    const refuse = (ad: BuildAd, code: Code, why: string): void => {
      const hex = ad.blake2b?.byteLength ? toHex(ad.blake2b) : ''
      refused.add(hex)
      if (!this.refusedLocal.has(hex)) this.log.warn('builds.not-advertised', { code, build: label(ad), why })
    }
    for (const ad of ads) {
      // The same object as before (set() gets mostly the same ads, again and again) was checked then.
      const known = this.live(ad)
      const problem = known ? null : buildProblem(ad)
      if (problem !== null) { refuse(ad, BUILDS_LIMIT, problem); continue }
      const hex = known?.hex ?? toHex(ad.blake2b)
      if (next.has(hex)) continue // one ad per file: the first
      if (next.size >= this.init.maxBuilds) { over++; continue }
      const slot = this.acquire(ad, hex)
      if (!slot) { refuse(ad, BAD_SIGNATURE, `the signature of builder ${toHex(ad.builder).slice(0, 16)} does not verify`); continue }
      this.owned.set(ad, slot)
      next.set(hex, slot)
    }
    if (over > 0) this.log.warn('builds.too-many', { code: BUILDS_LIMIT, advertised: next.size, left: over, why: `peers keep at most ${this.init.maxBuilds} builds of one box` })
    for (const slot of this.local.values()) this.release(slot)
    this.local = next
    this.refusedLocal = refused
    for (const peer of this.sending.keys()) void this.sync(peer)
  }

  /** A member connection is ready: it gets our full set, then deltas. */
  attach (peer: P): void {
    if (this.sending.has(peer)) return
    this.sending.set(peer, { sent: null, busy: false, again: false })
    void this.sync(peer)
  }

  /** The connection closed: forget what it advertised. */
  detach (peer: P): void {
    this.sending.delete(peer)
    const remote = this.remote.get(peer)
    if (!remote) return
    this.remote.delete(peer)
    for (const slot of remote.ads.values()) this.release(slot)
    if (remote.ads.size > 0) this.changedSoon()
  }

  /** Whether this peer advertises a build with this hex digest. */
  holds (peer: P, hex: string): boolean {
    return this.remote.get(peer)?.ads.has(hex) ?? false
  }

  /**
   * The verified builds of the peers `usable` accepts, one row per file and
   * builder (two builders claiming one file are two rows, so a claim by an
   * untrusted key never hides a trusted one). Where holders relay different
   * ads of one builder for one file, the builder's own wins, else the one
   * most holders relay.
   */
  rows (usable: (peer: P) => boolean): Array<{ ad: BuildAd, holders: P[] }> {
    // Usually every peer is usable and nothing changed since the last call (the agent asks at each 'builds' event and more).
    const all = [...this.remote.keys()].every(usable)
    if (all && this.cached) return [...this.cached]
    const rows = this.group(usable)
    if (all) this.cached = rows
    return [...rows]
  }

  private group (usable: (peer: P) => boolean): ReadonlyArray<{ ad: BuildAd, holders: P[] }> {
    // A row is a file and its builder; by the file's digest (a string the slot has: no key made per row), then,
    // in the rare file two builders claim, by builder. `slots` only when holders relay different ads of one row.
    const byFile = new Map<string, Row<P> | Array<Row<P>>>()
    for (const [peer, remote] of this.remote) {
      if (!usable(peer)) continue
      for (const slot of remote.ads.values()) {
        const found = byFile.get(slot.hex)
        let row = found === undefined ? undefined : Array.isArray(found) ? found.find((r) => r.first.ad.builder.equals(slot.ad.builder)) : found.first.ad.builder.equals(slot.ad.builder) ? found : undefined
        if (!row) {
          row = { first: slot, holders: [peer], slots: null }
          if (found === undefined) byFile.set(slot.hex, row)
          else if (Array.isArray(found)) found.push(row)
          else byFile.set(slot.hex, [found, row])
          continue
        }
        if (slot !== row.first && !row.slots) row.slots = new Map([[row.first, [...row.holders]]])
        row.holders.push(peer)
        if (row.slots) {
          const by = row.slots.get(slot)
          if (by) by.push(peer)
          else row.slots.set(slot, [peer])
        }
      }
    }
    // Frozen: the rows are shared by the callers until the builds change.
    const out: Array<{ ad: BuildAd, holders: P[] }> = []
    for (const found of byFile.values()) {
      for (const { first, holders, slots } of Array.isArray(found) ? found : [found]) {
        out.push(Object.freeze({ ad: slots ? pick(slots) : first.ad, holders: Object.freeze(holders) as P[] }))
      }
    }
    return out
  }

  /** Takes a Builds message from a member. */
  onMessage (peer: P, msg: BuildsMessage): void {
    let remote = this.remote.get(peer)
    if (!remote) this.remote.set(peer, remote = { ads: new Map(), bytes: 0, warned: false })
    let changed = false
    if (msg.reset && remote.ads.size > 0) {
      for (const slot of remote.ads.values()) this.release(slot)
      remote.ads.clear()
      remote.bytes = 0
      changed = true
    }
    for (const d of msg.removed) changed = this.drop(remote, toHex(d)) || changed
    for (const e of msg.added) {
      const hex = toHex(e.blake2b)
      const problem = buildProblem(e)
      if (problem !== null) { this.cutOff(peer, remote, `build ${label(e)}: ${problem}`); continue }
      const old = remote.ads.get(hex)
      if (!old && remote.ads.size >= this.init.maxBuilds) { this.cutOff(peer, remote, `more than ${this.init.maxBuilds} builds`); continue }
      const slot = this.acquire(e, hex)
      if (!slot) {
        this.forged++
        this.log.debug('builds.forged', { peer: peer.label, build: label(e), builder: toHex(e.builder).slice(0, 16) })
        continue
      }
      const bytes = remote.bytes - (old?.bytes ?? 0) + slot.bytes
      if (bytes > this.init.maxBytes) {
        this.release(slot)
        this.cutOff(peer, remote, `builds of more than ${this.init.maxBytes} bytes`)
        continue
      }
      // A new slot took the pool past its budget (one it shares with others costs nothing more).
      if (slot.refs === 1 && this.poolBytes > (this.init.maxPoolBytes ?? Infinity)) {
        this.release(slot)
        this.cutOff(peer, remote, `the builds of all peers past ${this.init.maxPoolBytes!} bytes`)
        continue
      }
      if (old) this.release(old)
      remote.ads.set(slot.hex, slot)
      remote.bytes = bytes
      changed = true
    }
    if (changed) this.changedSoon()
  }

  stop (): void {
    if (this.pending) clearImmediate(this.pending)
    this.pending = null
    this.sending.clear()
  }

  private drop (remote: Remote, hex: string): boolean {
    const slot = remote.ads.get(hex)
    if (!slot) return false
    remote.ads.delete(hex)
    remote.bytes -= slot.bytes
    this.release(slot)
    return true
  }

  private cutOff (peer: P, remote: Remote, why: string): void {
    this.refused++
    const fields = { peer: peer.label, code: BUILDS_LIMIT, why, kept: remote.ads.size }
    if (remote.warned) return this.log.debug('builds.cut-off', fields)
    remote.warned = true
    this.log.warn('builds.cut-off', fields)
  }

  /** The shared, verified copy of `ad`; null when its signature fails. */
  private acquire (ad: BuildAd, hex: string): Slot | null {
    const own = this.live(ad)
    if (own) {
      own.refs++
      return own
    }
    const payload = buildSigningPayload(ad)
    const id = Buffer.allocUnsafe(32)
    sodium.crypto_generichash(id, Buffer.concat([payload, ad.signature]))
    const key = id.toString('base64')
    let slot = this.pool.get(key)
    if (!slot) {
      if (!sodium.crypto_sign_verify_detached(ad.signature, payload, ad.builder)) return null
      // Own copies: the digests of a decoded message point into its frame, and a caller's object may change.
      // One buffer of its own for the three: small Buffers each take a slice of Node's 8 KiB pool, and
      // the pool slabs they pin (full of the message's garbage) cost ~2 KiB a build, 100 MiB for 50 000.
      const record = Buffer.allocUnsafeSlow(RECORD_BYTES)
      ad.blake2b.copy(record, 0)
      ad.builder.copy(record, BLAKE2B_BYTES)
      ad.signature.copy(record, BLAKE2B_BYTES + PUBLIC_KEY_BYTES)
      const fields: Record<string, string> = {}
      for (const [k, v] of Object.entries(ad.fields)) fields[k] = UNIQUE_KEYS.has(k) ? v : this.strings.take(v)
      const copy: BuildAd = {
        blake2b: record.subarray(0, BLAKE2B_BYTES),
        size: ad.size,
        group: this.strings.take(ad.group),
        fields: Object.freeze(fields),
        builder: record.subarray(BLAKE2B_BYTES, BLAKE2B_BYTES + PUBLIC_KEY_BYTES),
        signature: record.subarray(BLAKE2B_BYTES + PUBLIC_KEY_BYTES)
      }
      slot = { key, ad: Object.freeze(copy), hex, bytes: payload.byteLength, refs: 0 }
      this.pool.set(key, slot)
      this.poolBytes += slot.bytes + BUILD_OVERHEAD_BYTES
      this.owned.set(slot.ad, slot)
    }
    slot.refs++
    return slot
  }

  /** The live slot of an ad the pool handed out (as builds() gives them, to relay; frozen), or of one set() took before. */
  private live (ad: BuildAd): Slot | undefined {
    const slot = this.owned.get(ad)
    return slot && this.pool.get(slot.key) === slot ? slot : undefined
  }

  private release (slot: Slot): void {
    if (--slot.refs > 0 || this.pool.get(slot.key) !== slot) return
    this.pool.delete(slot.key)
    this.poolBytes -= slot.bytes + BUILD_OVERHEAD_BYTES
    const { fields, group } = slot.ad
    for (const [k, v] of Object.entries(fields)) if (!UNIQUE_KEYS.has(k)) this.strings.give(v)
    this.strings.give(group)
  }

  private changedSoon (): void {
    this.cached = null
    this.pending ??= setImmediate(() => {
      this.pending = null
      this.init.changed()
    })
  }

  /**
   * Brings the peer up to our set: the full set the first time (reset), then
   * what changed since. Batches stay under the message bounds, wait for the
   * connection to drain when it backs up, and yield to the event loop
   * between them; a set() meanwhile runs another round after.
   */
  private async sync (peer: P): Promise<void> {
    const state = this.sending.get(peer)
    if (!state) return
    if (state.busy) {
      state.again = true
      return
    }
    state.busy = true
    try {
      do {
        state.again = false
        const told = state.sent ?? new Map<string, BuildAd>()
        const now = new Map<string, BuildAd>()
        const added: BuildAd[] = []
        for (const [hex, slot] of this.local) {
          now.set(hex, slot.ad)
          if (told.get(hex) !== slot.ad) added.push(slot.ad)
        }
        const removed = [...told].filter(([hex]) => !now.has(hex)).map(([, ad]) => ad.blake2b)
        await this.sendBatches(peer, state.sent === null, added, removed)
        if (peer.closed || this.sending.get(peer) !== state) return
        state.sent = now
      } while (state.again)
    } catch (err) {
      this.log.debug('builds.send-failed', { peer: peer.label, why: (err as Error).message })
    } finally {
      state.busy = false
    }
  }

  private async sendBatches (peer: P, reset: boolean, added: BuildAd[], removed: Buffer[]): Promise<void> {
    let a = 0
    let r = 0
    let first = true
    while (a < added.length || r < removed.length || (first && reset)) {
      if (!first) await new Promise((resolve) => setImmediate(resolve))
      if (peer.closed) return
      const batch: BuildAd[] = []
      let bytes = 0
      while (a < added.length && batch.length < MAX_BUILDS_BATCH) {
        const size = buildWireBytes(added[a]!)
        if (batch.length > 0 && bytes + size > MAX_BUILDS_MESSAGE_BYTES) break
        batch.push(added[a++]!)
        bytes += size
      }
      const gone = removed.slice(r, r + Math.max(0, Math.min(MAX_BUILDS_BATCH - batch.length, Math.floor((MAX_BUILDS_MESSAGE_BYTES - bytes) / 80))))
      r += gone.length
      // A large set waits for the remote to read: memory stays a batch or two per peer.
      if (!peer.sendBuilds({ reset: first && reset, added: batch, removed: gone })) await peer.writable()
      first = false
    }
  }
}

/** The ad of a row: the one its builder itself advertises, else the one most holders relay, else the least key (stable). */
function pick<P extends BuildsLink> (slots: Map<Slot, P[]>): BuildAd {
  let best: Slot | null = null
  let bestScore = -1
  for (const [slot, holders] of slots) {
    const own = holders.some((p) => p.publicKey.equals(slot.ad.builder))
    const score = (own ? 1_000_000_000 : 0) + holders.length
    if (score > bestScore || (score === bestScore && best !== null && slot.key < best.key)) {
      best = slot
      bestScore = score
    }
  }
  return best!.ad
}
