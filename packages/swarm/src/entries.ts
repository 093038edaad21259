import { randomBytes } from 'node:crypto'
import { BLAKE2B_BYTES, MAX_NAME_BYTES, SHA512_BYTES, type FileEntry } from '@distswarm/protocol'

/** Bytes of one slot's digests: BLAKE2B, then SHA512 (zeros and a flag when the holder does not know it). */
const DIGESTS = BLAKE2B_BYTES + SHA512_BYTES
const FIRST_CAPACITY = 1024
/** Slots per buffer of digests (256 KiB): the digests never move, and growing frees no large buffer, which would raise glibc's mmap threshold and leave the heap fragmented. */
const CHUNK_SLOTS = 2048
const CHUNK_SHIFT = 11
/** Bookkeeping of one distinct entry besides its name and digests (size, name offset and length, counts, two hash-table cells at half load). */
const SLOT_OVERHEAD = 8 + 4 + 1 + 4 + 4 + 16
/** Longest probe sequence tolerated before the hash tables are keyed afresh (random digests rarely probe past 20 at half load). */
const MAX_PROBE = 64
const NO_SLOT = -1

/**
 * Memory an entry takes in the pool: what a peer's inventory budget counts
 * (see PeerLimits.maxRemoteInventoryBytes), independent of who else holds it.
 */
export function entryCost (e: FileEntry): number {
  return DIGESTS + Buffer.byteLength(e.name) + SLOT_OVERHEAD
}

/** Arithmetic modulo this prime (2^31 - 1): h × key stays below 2^53, exact in a double. */
const PRIME = 2147483647

/** A random key of the polynomial hash below, 2^20..2^21. */
function newKey (): number {
  return 0x100000 + (randomBytes(4).readUInt32LE(0) & 0xfffff)
}

/**
 * A keyed hash of `len` bytes at `words[0]` (little-endian words; the tail
 * bytes past the last whole word taken from `bytes` at 4 × that index): a
 * polynomial in the key modulo a prime, a universal hash: without the key,
 * which is random per pool, a peer that chooses digests or names cannot make
 * them collide more often than chance. Then murmur3's finaliser, so the low
 * bits the tables index with depend on every bit.
 */
function keyedHash (key: number, words: Uint32Array, bytes: Uint8Array, len: number): number {
  let h = len
  const whole = len >>> 2
  for (let i = 0; i < whole; i++) h = modPrime(h * key + words[i]!)
  for (let i = whole * 4; i < len; i++) h = modPrime(h * key + bytes[i]!)
  h ^= h >>> 16; h = Math.imul(h, 0x85ebca6b); h ^= h >>> 13; h = Math.imul(h, 0xc2b2ae35); h ^= h >>> 16
  return h >>> 0
}

/** x mod 2^31 - 1 for 0 <= x < 2^53 without a division: 2^31 is 1 modulo that prime. */
function modPrime (x: number): number {
  const hi = Math.floor(x * TWO_TO_MINUS_31)
  const h = x - hi * 2147483648 + hi
  return h >= PRIME ? h - PRIME : h
}

const TWO_TO_MINUS_31 = 1 / 2147483648

/**
 * An open-addressing multimap from a 32-bit hash to slots (linear probing,
 * deletion by backward shift, so no tombstones pile up). The caller keeps
 * each slot's hash and does the equality test.
 */
class SlotTable {
  cells = new Int32Array(FIRST_CAPACITY * 2).fill(NO_SLOT)
  count = 0
  /** Longest probe seen since the last rebuild. */
  longest = 0

  constructor (public hashOf: Uint32Array) {}

  insert (slot: number): void {
    if ((this.count + 1) * 2 > this.cells.length) this.rebuild(this.cells.length * 2)
    const mask = this.cells.length - 1
    let i = this.hashOf[slot]! & mask
    let probe = 0
    while (this.cells[i] !== NO_SLOT) { i = (i + 1) & mask; probe++ }
    this.cells[i] = slot
    this.count++
    if (probe > this.longest) this.longest = probe
  }

  remove (slot: number): void {
    const mask = this.cells.length - 1
    let i = this.hashOf[slot]! & mask
    while (this.cells[i] !== slot) {
      if (this.cells[i] === NO_SLOT) return
      i = (i + 1) & mask
    }
    // Backward shift: pull later cells of the run into the hole when their home allows.
    for (let j = (i + 1) & mask; this.cells[j] !== NO_SLOT; j = (j + 1) & mask) {
      const home = this.hashOf[this.cells[j]!]! & mask
      if (((j - home) & mask) >= ((j - i) & mask)) {
        this.cells[i] = this.cells[j]!
        i = j
      }
    }
    this.cells[i] = NO_SLOT
    this.count--
  }

  /** Calls `fn` with every slot whose hash is `hash` (and some others of the same run); stops when it returns true. */
  scan (hash: number, fn: (slot: number) => boolean | void): void {
    const mask = this.cells.length - 1
    for (let i = hash & mask; this.cells[i] !== NO_SLOT; i = (i + 1) & mask) {
      const slot = this.cells[i]!
      if (this.hashOf[slot] === hash && fn(slot) === true) return
    }
  }

  rebuild (size: number, slots: Iterable<number> = this.live()): void {
    const live = [...slots]
    this.cells = new Int32Array(size).fill(NO_SLOT)
    this.count = 0
    this.longest = 0
    for (const s of live) this.insert(s)
  }

  private * live (): Iterable<number> {
    for (const s of this.cells) if (s !== NO_SLOT) yield s
  }
}

/**
 * One copy of each remote file entry, shared by every peer that advertises
 * it: the boxes of a LAN hold mostly the same distfiles, so ten peers of
 * 70 000 entries each are far fewer than 700 000 distinct ones. Entries are
 * packed, not objects: digests in one buffer, names in another, sizes and
 * bookkeeping in typed arrays, found through two hash tables of slot
 * numbers (by digest, by name); each peer's inventory is a bitset over the
 * slots (see PeerFiles). A FileEntry is built only when someone asks.
 */
export class EntryPool {
  private capacity = FIRST_CAPACITY
  /** Slots ever used; freed ones below it are on the free list. */
  private high = 0
  private free: number[] = []
  private readonly digestChunks: Buffer[] = []
  private sizes = new Float64Array(FIRST_CAPACITY)
  private hasSha = new Uint8Array(FIRST_CAPACITY)
  private refs = new Uint32Array(FIRST_CAPACITY)
  private nameAt = new Uint32Array(FIRST_CAPACITY)
  private nameLen = new Uint8Array(FIRST_CAPACITY)
  private names = Buffer.alloc(FIRST_CAPACITY * 32)
  private namesEnd = 0
  /** Bytes of names no longer used, reclaimed by compaction. */
  private namesGarbage = 0
  private digestHash = new Uint32Array(FIRST_CAPACITY)
  private nameHash = new Uint32Array(FIRST_CAPACITY)
  private key = newKey()
  private byDigest = new SlotTable(this.digestHash)
  private byName = new SlotTable(this.nameHash)
  /** Word-aligned scratch space for hashing: a name (as UTF-8, room for any string of MAX_NAME_BYTES characters), a digest. */
  private readonly scratchWords = new Uint32Array(MAX_NAME_BYTES * 3 / 4 + 1)
  private readonly scratch = Buffer.from(this.scratchWords.buffer)
  private readonly digestWords = new Uint32Array(BLAKE2B_BYTES / 4)
  private readonly digestBytes = new Uint8Array(this.digestWords.buffer)
  private liveBytes = 0
  /** Every peer's inventory over this pool. */
  readonly members = new Set<PeerFiles>()
  /** Bumped when a slot is made or freed: the last lookup (every peer's, for one query) is reused until then. */
  private version = 0
  private lastLookup = { key: '', byName: false, version: -1, slots: [] as number[] }
  /** Budget of the distinct entries' memory (see PeerLimits.maxPoolBytes); enforce() holds the pool to it. */
  readonly maxBytes: number

  constructor (init: { maxBytes?: number } = {}) {
    this.maxBytes = init.maxBytes ?? Number.POSITIVE_INFINITY
  }

  /** Distinct entries held. */
  get size (): number {
    return this.high - this.free.length
  }

  /** Memory the distinct entries take (the sum of their entryCost). */
  get bytes (): number {
    return this.liveBytes
  }

  /** Slots in use or free below the high mark: bitsets span this many. */
  get slotCount (): number {
    return this.high
  }

  /** A new, empty inventory over this pool; `onOverBudget` cuts its peer off when enforce() picks it. */
  holder (onOverBudget: () => void = () => {}): PeerFiles {
    return new PeerFiles(this, onOverBudget)
  }

  /**
   * When the pool is past maxBytes: cuts off the holder whose entries no
   * one else holds take the most memory (letting it go frees that much),
   * the largest holder when nobody holds anything alone. Its callback must
   * close() it. A scan of every holder's entries, only when over budget.
   */
  enforce (): void {
    if (this.liveBytes <= this.maxBytes || this.members.size === 0) return
    let victim: PeerFiles | null = null
    let most = -1
    for (const m of this.members) {
      let alone = 0
      for (const s of m.slots()) if (this.refs[s] === 1) alone += this.costOf(s)
      const weight = alone * 2 ** 20 + m.bytes / 2 ** 20 // alone first, then size
      if (weight > most) { most = weight; victim = m }
    }
    victim?.overBudget()
  }

  /** The slot of `e` (its digests, size and name alike), made when no peer held it, counted once more. Release it when done. */
  acquire (e: FileEntry, dh = this.hashDigest(e.blake2b)): number {
    if (e.blake2b.byteLength !== BLAKE2B_BYTES) throw new RangeError(`a BLAKE2B digest of ${e.blake2b.byteLength} bytes`)
    if (e.sha512.byteLength !== 0 && e.sha512.byteLength !== SHA512_BYTES) throw new RangeError(`a SHA512 digest of ${e.sha512.byteLength} bytes`)
    const digest = Buffer.from(e.blake2b.buffer, e.blake2b.byteOffset, BLAKE2B_BYTES)
    const nameBytes = this.scratch.write(e.name, 0, 'utf8')
    if (nameBytes > MAX_NAME_BYTES) throw new RangeError(`a name of ${nameBytes} bytes`)
    let found = NO_SLOT
    this.byDigest.scan(dh, (s) => {
      if (this.sizes[s] === e.size && this.sameDigest(s, digest) && this.sameSha(s, e.sha512) && this.sameName(s, this.scratch, nameBytes)) found = s
      return found !== NO_SLOT
    })
    if (found === NO_SLOT) found = this.add(e, digest, dh, nameBytes)
    this.refs[found]!++
    return found
  }

  /** One holder fewer; the slot is freed when none is left. */
  release (slot: number): void {
    if (slot < 0 || slot >= this.high || this.refs[slot] === 0) return
    if (--this.refs[slot]! > 0) return
    this.byDigest.remove(slot)
    this.byName.remove(slot)
    this.namesGarbage += this.nameLen[slot]!
    this.liveBytes -= this.costOf(slot)
    this.version++
    this.free.push(slot)
  }

  /** Holders of this slot. */
  refsOf (slot: number): number {
    return this.refs[slot] ?? 0
  }

  /** Slots whose BLAKE2B digest is `digest` (usually one; more when peers disagree on name, size or SHA512). */
  slotsOf (digest: Uint8Array, dh = this.hashDigest(digest)): number[] {
    if (digest.byteLength !== BLAKE2B_BYTES) return []
    const d = Buffer.from(digest.buffer, digest.byteOffset, BLAKE2B_BYTES)
    const out: number[] = []
    this.byDigest.scan(dh, (s) => { if (this.sameDigest(s, d)) out.push(s) })
    return out
  }

  /** The digest table's hash of a BLAKE2B digest (for acquire and slotsOf, so that a caller using both hashes once). */
  hashDigest (digest: Uint8Array): number {
    if (digest.byteLength !== BLAKE2B_BYTES) return 0
    this.digestBytes.set(digest)
    return keyedHash(this.key, this.digestWords, this.digestBytes, BLAKE2B_BYTES)
  }

  /** slotsOf a hex digest (anything else finds nothing); the same query for every peer is looked up once. */
  slotsOfHex (hex: string): number[] {
    return this.remembered(hex, false, () => hex.length === 2 * BLAKE2B_BYTES ? this.slotsOf(Buffer.from(hex, 'hex')) : [])
  }

  /** slotsNamed, the same query for every peer looked up once. */
  slotsNamedOnce (name: string): number[] {
    return this.remembered(name, true, () => this.slotsNamed(name))
  }

  private remembered (key: string, byName: boolean, find: () => number[]): number[] {
    const last = this.lastLookup
    if (last.key !== key || last.byName !== byName || last.version !== this.version) this.lastLookup = { key, byName, version: this.version, slots: find() }
    return this.lastLookup.slots
  }

  /** Slots of entries named `name`. */
  slotsNamed (name: string): number[] {
    const n = this.scratch.write(name, 0, 'utf8')
    if (n > MAX_NAME_BYTES || n === 0) return []
    const out: number[] = []
    this.byName.scan(keyedHash(this.key, this.scratchWords, this.scratch, n), (s) => { if (this.sameName(s, this.scratch, n)) out.push(s) })
    return out
  }

  /** The entry in a slot, as a new object that owns copies of its bytes (a slot is reused once freed). */
  entry (slot: number): FileEntry {
    const digests = this.digestChunks[slot >>> CHUNK_SHIFT]!
    const at = (slot & (CHUNK_SLOTS - 1)) * DIGESTS
    return {
      name: this.names.toString('utf8', this.nameAt[slot]!, this.nameAt[slot]! + this.nameLen[slot]!),
      size: this.sizes[slot]!,
      blake2b: Buffer.from(digests.subarray(at, at + BLAKE2B_BYTES)),
      sha512: this.hasSha[slot] === 1 ? Buffer.from(digests.subarray(at + BLAKE2B_BYTES, at + DIGESTS)) : Buffer.alloc(0)
    }
  }

  /** What entryCost gave for the entry in this slot. */
  costOf (slot: number): number {
    return DIGESTS + this.nameLen[slot]! + SLOT_OVERHEAD
  }

  sameDigest (slot: number, digest: Buffer): boolean {
    const at = (slot & (CHUNK_SLOTS - 1)) * DIGESTS
    return this.digestChunks[slot >>> CHUNK_SHIFT]!.compare(digest, 0, BLAKE2B_BYTES, at, at + BLAKE2B_BYTES) === 0
  }

  private sameSha (slot: number, sha512: Buffer): boolean {
    if (sha512.byteLength === 0) return this.hasSha[slot] === 0
    const at = (slot & (CHUNK_SLOTS - 1)) * DIGESTS + BLAKE2B_BYTES
    return this.hasSha[slot] === 1 && this.digestChunks[slot >>> CHUNK_SHIFT]!.compare(sha512, 0, SHA512_BYTES, at, at + SHA512_BYTES) === 0
  }

  private sameName (slot: number, name: Buffer, len: number): boolean {
    const at = this.nameAt[slot]!
    return this.nameLen[slot] === len && this.names.compare(name, 0, len, at, at + len) === 0
  }

  private add (e: FileEntry, digest: Buffer, dh: number, nameBytes: number): number {
    // Before taking a slot: compaction copies the names of every slot in use.
    if (this.namesEnd + nameBytes > this.names.byteLength) this.makeNameRoom(nameBytes)
    let slot = this.free.pop()
    if (slot === undefined) {
      if (this.high === this.capacity) this.grow()
      slot = this.high++
    }
    if ((slot >>> CHUNK_SHIFT) === this.digestChunks.length) this.digestChunks.push(Buffer.allocUnsafeSlow(CHUNK_SLOTS * DIGESTS))
    const digests = this.digestChunks[slot >>> CHUNK_SHIFT]!
    const at = (slot & (CHUNK_SLOTS - 1)) * DIGESTS
    digest.copy(digests, at)
    if (e.sha512.byteLength === SHA512_BYTES) {
      Buffer.from(e.sha512.buffer, e.sha512.byteOffset, SHA512_BYTES).copy(digests, at + BLAKE2B_BYTES)
      this.hasSha[slot] = 1
    } else {
      this.hasSha[slot] = 0
    }
    this.sizes[slot] = e.size
    this.scratch.copy(this.names, this.namesEnd, 0, nameBytes)
    this.nameAt[slot] = this.namesEnd
    this.nameLen[slot] = nameBytes
    this.namesEnd += nameBytes
    this.digestHash[slot] = dh
    this.nameHash[slot] = keyedHash(this.key, this.scratchWords, this.scratch, nameBytes)
    this.refs[slot] = 0
    this.byDigest.insert(slot)
    this.byName.insert(slot)
    this.version++
    this.liveBytes += this.costOf(slot)
    // A probe run this long means crafted input or a bad key: key afresh.
    if (this.byDigest.longest > MAX_PROBE || this.byName.longest > MAX_PROBE) this.rekey()
    return slot
  }

  private * liveSlots (): Iterable<number> {
    const freed = new Set(this.free)
    for (let s = 0; s < this.high; s++) if (!freed.has(s)) yield s
  }

  private rekey (): void {
    this.key = newKey()
    const live = [...this.liveSlots()]
    for (const s of live) {
      const at = (s & (CHUNK_SLOTS - 1)) * DIGESTS
      this.digestHash[s] = this.hashDigest(this.digestChunks[s >>> CHUNK_SHIFT]!.subarray(at, at + BLAKE2B_BYTES))
      this.names.copy(this.scratch, 0, this.nameAt[s]!, this.nameAt[s]! + this.nameLen[s]!)
      this.nameHash[s] = keyedHash(this.key, this.scratchWords, this.scratch, this.nameLen[s]!)
    }
    this.byDigest.rebuild(this.byDigest.cells.length, live)
    this.byName.rebuild(this.byName.cells.length, live)
  }

  /** Grows every per-slot array but the digests by half. */
  private grow (): void {
    const cap = Math.ceil(this.capacity * 1.5)
    const more = <T extends Float64Array | Uint8Array | Uint32Array>(a: T, make: (n: number) => T): T => { const b = make(cap); b.set(a); return b }
    this.sizes = more(this.sizes, (n) => new Float64Array(n))
    this.hasSha = more(this.hasSha, (n) => new Uint8Array(n))
    this.refs = more(this.refs, (n) => new Uint32Array(n))
    this.nameAt = more(this.nameAt, (n) => new Uint32Array(n))
    this.nameLen = more(this.nameLen, (n) => new Uint8Array(n))
    this.digestHash = this.byDigest.hashOf = more(this.digestHash, (n) => new Uint32Array(n))
    this.nameHash = this.byName.hashOf = more(this.nameHash, (n) => new Uint32Array(n))
    this.capacity = cap
  }

  /**
   * Makes room for a name of `need` bytes: compacts the names in place when
   * a quarter of the buffer is names no longer used (nothing allocated or
   * freed, so peers cut off and replaced do not grow it), else copies the
   * live ones into a new buffer with as much room again.
   */
  private makeNameRoom (need: number): void {
    const used = this.namesEnd - this.namesGarbage
    if (this.namesGarbage * 4 >= this.names.byteLength && used + need <= this.names.byteLength) {
      // In order of position, each name moves down (copy within a buffer is a memmove).
      const live = [...this.liveSlots()].sort((x, y) => this.nameAt[x]! - this.nameAt[y]!)
      let end = 0
      for (const s of live) {
        const at = this.nameAt[s]!
        if (at !== end) this.names.copy(this.names, end, at, at + this.nameLen[s]!)
        this.nameAt[s] = end
        end += this.nameLen[s]!
      }
      this.namesEnd = end
      this.namesGarbage = 0
      return
    }
    const names = Buffer.allocUnsafeSlow(Math.max(FIRST_CAPACITY * 32, 2 * (used + need)))
    let end = 0
    for (const s of this.liveSlots()) {
      const at = this.nameAt[s]!
      this.names.copy(names, end, at, at + this.nameLen[s]!)
      this.nameAt[s] = end
      end += this.nameLen[s]!
    }
    this.names = names
    this.namesEnd = end
    this.namesGarbage = 0
  }
}

/**
 * One peer's inventory: a bitset over the pool's slots, at most one slot
 * per BLAKE2B digest. The read side is Map-like (`get`, `has`, `size`,
 * `values`) with hex digest keys, as the agent and the swarm use it.
 */
export class PeerFiles {
  private bits = new Uint32Array(FIRST_CAPACITY / 32)
  private count = 0
  private charged = 0

  constructor (readonly pool: EntryPool, readonly overBudget: () => void) {
    pool.members.add(this)
  }

  /** Entries held. */
  get size (): number {
    return this.count
  }

  /** Memory they take in the pool, counting shared ones in full (see entryCost). */
  get bytes (): number {
    return this.charged
  }

  holds (slot: number): boolean {
    return slot >= 0 && ((this.bits[slot >>> 5] ?? 0) & (1 << (slot & 31))) !== 0
  }

  /** The slot held for this digest, or -1. */
  slotOf (digest: Uint8Array, dh?: number): number {
    for (const s of this.pool.slotsOf(digest, dh)) if (this.holds(s)) return s
    return NO_SLOT
  }

  /** Adds an entry; one held for the same digest (under another name, size or SHA512) is replaced. */
  add (e: FileEntry): void {
    const dh = this.pool.hashDigest(e.blake2b)
    const old = this.slotOf(e.blake2b, dh)
    const slot = this.pool.acquire(e, dh)
    if (old === slot) {
      this.pool.release(slot)
      return
    }
    if (old !== NO_SLOT) this.drop(old)
    if ((slot >>> 5) >= this.bits.length) {
      const bits = new Uint32Array(Math.max(this.bits.length * 2, (slot >>> 5) + 1))
      bits.set(this.bits)
      this.bits = bits
    }
    this.bits[slot >>> 5]! |= 1 << (slot & 31)
    this.count++
    this.charged += this.pool.costOf(slot)
  }

  /** Removes the entry of this digest, if held. */
  remove (digest: Uint8Array): void {
    const slot = this.slotOf(digest)
    if (slot !== NO_SLOT) this.drop(slot)
  }

  /** Lets go of every entry. */
  clear (): void {
    for (const s of this.slots()) this.pool.release(s)
    this.bits.fill(0)
    this.count = 0
    this.charged = 0
  }

  /** Clears, and leaves the pool for good (the connection closed). */
  close (): void {
    this.clear()
    this.pool.members.delete(this)
  }

  get (hex: string): FileEntry | undefined {
    const slot = this.pool.slotsOfHex(hex).find((s) => this.holds(s))
    return slot === undefined ? undefined : this.pool.entry(slot)
  }

  has (hex: string): boolean {
    return this.pool.slotsOfHex(hex).some((s) => this.holds(s))
  }

  /** The entries of this name held (usually one). */
  named (name: string): FileEntry[] {
    return this.pool.slotsNamedOnce(name).filter((s) => this.holds(s)).map((s) => this.pool.entry(s))
  }

  * values (): IterableIterator<FileEntry> {
    for (const s of this.slots()) yield this.pool.entry(s)
  }

  /** Slots held, ascending. */
  * slots (): IterableIterator<number> {
    const bits = this.bits
    for (let w = 0; w < bits.length; w++) {
      let word = bits[w]!
      while (word !== 0) {
        const low = word & -word
        yield (w << 5) + 31 - Math.clz32(low)
        word ^= low
      }
    }
  }

  private drop (slot: number): void {
    this.bits[slot >>> 5]! &= ~(1 << (slot & 31))
    this.count--
    this.charged -= this.pool.costOf(slot)
    this.pool.release(slot)
  }
}
