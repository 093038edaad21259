import { randomBytes } from 'node:crypto'
import { BLAKE2B_BYTES, MAX_NAME_BYTES, SHA512_BYTES, type FileEntry, type RawEntry } from '@distswarm/protocol'

/** Bytes of one slot's digests: BLAKE2B, then SHA512 (zeros and a flag when the holder does not know it). */
const DIGESTS = BLAKE2B_BYTES + SHA512_BYTES
const FIRST_CAPACITY = 1024
/** Name bytes to start with. */
const FIRST_NAME_BYTES = FIRST_CAPACITY * 32
/** Slots per buffer of digests (256 KiB): the digests never move, and growing frees no large buffer, which would raise glibc's mmap threshold and leave the heap fragmented. */
const CHUNK_SLOTS = 2048
const CHUNK_SHIFT = 11
/** Bookkeeping of one distinct entry besides its name and digests (size, name offset and length, counts, two hash-table cells at half load). */
const SLOT_OVERHEAD = 8 + 4 + 1 + 4 + 4 + 16
/** Longest probe sequence tolerated before the hash tables are keyed afresh (random digests rarely probe past 20 at half load). */
const MAX_PROBE = 64
const NO_SLOT = -1
/** An empty SlotTable cell. */
const EMPTY = 0
/** The cheapest entry (a one-byte name): a pool of maxBytes holds at most maxBytes / MIN_COST of them. */
const MIN_COST = DIGESTS + 1 + SLOT_OVERHEAD
/** Slots reserved past that: each peer goes past the budget by a batch before enforce() cuts one off. */
const RESERVE_SLACK = 4096

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

/** Copies `n` bytes; returns n. A loop: Buffer#copy of part of a buffer makes a view object each time, and this runs for every entry a peer advertises. */
function copyBytes (src: Uint8Array, from: number, dst: Uint8Array, to: number, n: number): number {
  for (let i = 0; i < n; i++) dst[to + i] = src[from + i]!
  return n
}

/**
 * An open-addressing multimap from a 32-bit hash to slots (linear probing,
 * deletion by backward shift, so no tombstones pile up). The caller keeps
 * each slot's hash and does the equality test. A cell holds its slot + 1,
 * 0 when empty: a new table is zeroed memory, whose pages cost RSS only
 * once written (see EntryPool's reserve).
 */
class SlotTable {
  cells = new Int32Array(FIRST_CAPACITY * 2)
  count = 0
  /** Longest probe seen since the last rebuild. */
  longest = 0

  constructor (public hashOf: Uint32Array) {}

  insert (slot: number): void {
    if ((this.count + 1) * 2 > this.cells.length) this.rebuild(this.cells.length * 2)
    const mask = this.cells.length - 1
    let i = this.hashOf[slot]! & mask
    let probe = 0
    while (this.cells[i] !== EMPTY) { i = (i + 1) & mask; probe++ }
    this.cells[i] = slot + 1
    this.count++
    if (probe > this.longest) this.longest = probe
  }

  remove (slot: number): void {
    const mask = this.cells.length - 1
    let i = this.hashOf[slot]! & mask
    while (this.cells[i] !== slot + 1) {
      if (this.cells[i] === EMPTY) return
      i = (i + 1) & mask
    }
    // Backward shift: pull later cells of the run into the hole when their home allows.
    for (let j = (i + 1) & mask; this.cells[j] !== EMPTY; j = (j + 1) & mask) {
      const home = this.hashOf[this.cells[j]! - 1]! & mask
      if (((j - home) & mask) >= ((j - i) & mask)) {
        this.cells[i] = this.cells[j]!
        i = j
      }
    }
    this.cells[i] = EMPTY
    this.count--
  }

  /** Calls `fn` with every slot whose hash is `hash` (and some others of the same run); stops when it returns true. */
  scan (hash: number, fn: (slot: number) => boolean | void): void {
    const mask = this.cells.length - 1
    for (let i = hash & mask; this.cells[i] !== EMPTY; i = (i + 1) & mask) {
      const slot = this.cells[i]! - 1
      if (this.hashOf[slot] === hash && fn(slot) === true) return
    }
  }

  /** Moves every slot into a new table of `size` cells (a power of two). */
  rebuild (size: number, live: Int32Array = this.cells.filter((c) => c !== EMPTY).map((c) => c - 1)): void {
    this.cells = new Int32Array(size)
    this.count = 0
    this.longest = 0
    for (const s of live) this.insert(s)
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
  /** The free list, a stack of slot numbers (typed, like every array the pool keeps: a JS array of 100 000 numbers, copied as it grows, is promoted by V8's scavenges and grows its young generation). */
  private free = new Int32Array(FIRST_CAPACITY)
  private freeCount = 0
  private readonly digestChunks: Buffer[] = []
  /** Reserved room for the digests of the first slots (see the constructor), handed out a chunk at a time; empty without a budget. */
  private digestReserve: Buffer = Buffer.alloc(0)
  private sizes = new Float64Array(FIRST_CAPACITY)
  private hasSha = new Uint8Array(FIRST_CAPACITY)
  private refs = new Uint32Array(FIRST_CAPACITY)
  private nameAt = new Uint32Array(FIRST_CAPACITY)
  private nameLen = new Uint8Array(FIRST_CAPACITY)
  private names = Buffer.alloc(FIRST_NAME_BYTES)
  /** Where names may reach before makeNameRoom compacts or grows them (within names.byteLength, which may be reserved beyond it). */
  private namesLimit = FIRST_NAME_BYTES
  private namesEnd = 0
  /** The furthest names have reached in their buffer: bytes written, which stay in RSS. */
  private namesHigh = 0
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
    // Under a budget, every per-slot array and the names are reserved at the most it can hold, not grown by copies: each copy
    // left the last one dead until V8's next full collection (~25 MiB in all at 32 MiB, bench/flood.mjs). The reserve is
    // zeroed or untouched memory, so a page costs RSS only once a slot on it is used.
    if (Number.isFinite(this.maxBytes)) {
      const slots = Math.ceil(this.maxBytes / MIN_COST) + RESERVE_SLACK
      this.resize(slots)
      // Both hash tables at the size they reach for that many slots: each doubling left the last one dead until a full GC.
      const cells = 2 ** Math.ceil(Math.log2(2 * slots))
      this.byDigest.rebuild(cells)
      this.byName.rebuild(cells)
      // Names for the budget at its worst (every name at MAX_NAME_BYTES), with makeNameRoom's room above them: untouched but for the names written.
      const maxNames = Math.ceil(this.maxBytes * MAX_NAME_BYTES / (MAX_NAME_BYTES + MIN_COST - 1))
      this.names = Buffer.allocUnsafeSlow(Math.ceil(maxNames * 1.25) + RESERVE_SLACK * MAX_NAME_BYTES)
      // The digests too: chunks malloc'd one by one amid a flood's frames were long-lived blocks between freed ones, which glibc cannot give back.
      this.digestReserve = Buffer.allocUnsafeSlow(Math.ceil(slots / CHUNK_SLOTS) * CHUNK_SLOTS * DIGESTS)
    }
  }

  /** Distinct entries held. */
  get size (): number {
    return this.high - this.freeCount
  }

  /** Memory the distinct entries take (the sum of their entryCost). */
  get bytes (): number {
    return this.liveBytes
  }

  /** Bytes of the names' buffer written so far (names move within it, so this is what of it costs RSS). */
  get nameBytesWritten (): number {
    return this.namesHigh
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
      m.eachSlot((s) => { if (this.refs[s] === 1) alone += this.costOf(s) })
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
    const sha = e.sha512.byteLength === 0 ? null : Buffer.from(e.sha512.buffer, e.sha512.byteOffset, SHA512_BYTES)
    return this.acquireIn(this.nameIn(e.name), e.size, digest, 0, sha, 0, dh)
  }

  /** acquire() of an entry where it lies in a frame (see readInventory), making no object: its lengths were checked. */
  acquireRaw (e: RawEntry, dh = this.hashDigestAt(e.buf, e.blake2bAt)): number {
    const nameBytes = e.name !== null ? this.nameIn(e.name) : copyBytes(e.buf, e.nameAt, this.scratch, 0, e.nameLen)
    return this.acquireIn(nameBytes, e.size, e.buf, e.blake2bAt, e.sha512At < 0 ? null : e.buf, e.sha512At, dh)
  }

  /** Writes a name into the scratch space, where acquireIn takes it; its length in bytes. */
  private nameIn (name: string): number {
    const nameBytes = this.scratch.write(name, 0, 'utf8')
    if (nameBytes > MAX_NAME_BYTES) throw new RangeError(`a name of ${nameBytes} bytes`)
    return nameBytes
  }

  /** The slot of the entry with the name in scratch, these digests (at their offsets) and size; made when none. A probe loop, no closure: it runs for every entry a peer advertises. */
  private acquireIn (nameBytes: number, size: number, digest: Buffer, digestAt: number, sha: Buffer | null, shaAt: number, dh: number): number {
    const cells = this.byDigest.cells
    const mask = cells.length - 1
    let found = NO_SLOT
    for (let i = dh & mask; cells[i] !== EMPTY; i = (i + 1) & mask) {
      const s = cells[i]! - 1
      if (this.digestHash[s] === dh && this.sizes[s] === size && this.sameDigestAt(s, digest, digestAt) && this.sameSha(s, sha, shaAt) && this.sameName(s, this.scratch, nameBytes)) {
        found = s
        break
      }
    }
    if (found === NO_SLOT) found = this.add(size, digest, digestAt, sha, shaAt, dh, nameBytes)
    this.refs[found]!++
    return found
  }

  /** The slot `files` holds for the BLAKE2B digest at `digest[at]`, or -1; makes no object. */
  heldSlot (files: PeerFiles, digest: Buffer, at: number, dh: number): number {
    const cells = this.byDigest.cells
    const mask = cells.length - 1
    for (let i = dh & mask; cells[i] !== EMPTY; i = (i + 1) & mask) {
      const s = cells[i]! - 1
      if (this.digestHash[s] === dh && files.holds(s) && this.sameDigestAt(s, digest, at)) return s
    }
    return NO_SLOT
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
    this.free[this.freeCount++] = slot
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

  /** hashDigest of the 64 bytes at `buf[at]`, without a view of them. */
  hashDigestAt (buf: Buffer, at: number): number {
    copyBytes(buf, at, this.digestBytes, 0, BLAKE2B_BYTES)
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
    return this.sameDigestAt(slot, digest, 0)
  }

  private sameDigestAt (slot: number, digest: Buffer, from: number): boolean {
    const at = (slot & (CHUNK_SLOTS - 1)) * DIGESTS
    return this.digestChunks[slot >>> CHUNK_SHIFT]!.compare(digest, from, from + BLAKE2B_BYTES, at, at + BLAKE2B_BYTES) === 0
  }

  /** Whether the slot's SHA512 is the one at `sha512[from]`, or it has none when `sha512` is null. */
  private sameSha (slot: number, sha512: Buffer | null, from: number): boolean {
    if (sha512 === null) return this.hasSha[slot] === 0
    const at = (slot & (CHUNK_SLOTS - 1)) * DIGESTS + BLAKE2B_BYTES
    return this.hasSha[slot] === 1 && this.digestChunks[slot >>> CHUNK_SHIFT]!.compare(sha512, from, from + SHA512_BYTES, at, at + SHA512_BYTES) === 0
  }

  private sameName (slot: number, name: Buffer, len: number): boolean {
    const at = this.nameAt[slot]!
    return this.nameLen[slot] === len && this.names.compare(name, 0, len, at, at + len) === 0
  }

  private add (size: number, digest: Buffer, digestAt: number, sha: Buffer | null, shaAt: number, dh: number, nameBytes: number): number {
    // Before taking a slot: compaction copies the names of every slot in use.
    if (this.namesEnd + nameBytes > this.namesLimit) this.makeNameRoom(nameBytes)
    let slot = this.freeCount > 0 ? this.free[--this.freeCount]! : undefined
    if (slot === undefined) {
      if (this.high === this.capacity) this.grow()
      slot = this.high++
    }
    if ((slot >>> CHUNK_SHIFT) === this.digestChunks.length) this.digestChunks.push(this.newDigestChunk())
    const digests = this.digestChunks[slot >>> CHUNK_SHIFT]!
    const at = (slot & (CHUNK_SLOTS - 1)) * DIGESTS
    copyBytes(digest, digestAt, digests, at, BLAKE2B_BYTES)
    if (sha !== null) {
      copyBytes(sha, shaAt, digests, at + BLAKE2B_BYTES, SHA512_BYTES)
      this.hasSha[slot] = 1
    } else {
      this.hasSha[slot] = 0
    }
    this.sizes[slot] = size
    copyBytes(this.scratch, 0, this.names, this.namesEnd, nameBytes)
    this.nameAt[slot] = this.namesEnd
    this.nameLen[slot] = nameBytes
    this.namesEnd += nameBytes
    if (this.namesEnd > this.namesHigh) this.namesHigh = this.namesEnd
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

  /** A chunk of CHUNK_SLOTS slots' digests: from the reserve while it lasts. */
  private newDigestChunk (): Buffer {
    const at = this.digestChunks.length * CHUNK_SLOTS * DIGESTS
    if (at < this.digestReserve.byteLength) return this.digestReserve.subarray(at, at + CHUNK_SLOTS * DIGESTS)
    return Buffer.allocUnsafeSlow(CHUNK_SLOTS * DIGESTS)
  }

  /** The slots in use, ascending. */
  private liveSlots (): Int32Array {
    const freed = new Uint8Array(this.high)
    for (let i = 0; i < this.freeCount; i++) freed[this.free[i]!] = 1
    const live = new Int32Array(this.high - this.freeCount)
    for (let s = 0, n = 0; s < this.high; s++) if (freed[s] === 0) live[n++] = s
    return live
  }

  private rekey (): void {
    this.key = newKey()
    const live = this.liveSlots()
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
    this.resize(Math.ceil(this.capacity * 1.5))
  }

  /** Makes every per-slot array but the digests `cap` slots long. */
  private resize (cap: number): void {
    const more = <T extends Float64Array | Uint8Array | Uint32Array | Int32Array>(a: T, make: (n: number) => T): T => { const b = make(cap); b.set(a); return b }
    this.sizes = more(this.sizes, (n) => new Float64Array(n))
    this.hasSha = more(this.hasSha, (n) => new Uint8Array(n))
    this.refs = more(this.refs, (n) => new Uint32Array(n))
    this.nameAt = more(this.nameAt, (n) => new Uint32Array(n))
    this.nameLen = more(this.nameLen, (n) => new Uint8Array(n))
    this.digestHash = this.byDigest.hashOf = more(this.digestHash, (n) => new Uint32Array(n))
    this.nameHash = this.byName.hashOf = more(this.nameHash, (n) => new Uint32Array(n))
    this.free = more(this.free, (n) => new Int32Array(n))
    this.capacity = cap
  }

  /**
   * Makes room for a name of `need` bytes. Names are written in order, and a
   * page of them costs RSS from its first write (and keeps it): so the limit
   * runs an eighth past the names in use (and this one), and names no longer
   * used are compacted away in place once they are an eighth of those. The
   * bytes written stay within ~1.25 times the most names ever in use, where
   * doubling the room touched twice that. Past the buffer (one without a
   * budget's reserve), a new buffer of twice the room, the live names copied.
   */
  private makeNameRoom (need: number): void {
    const used = this.namesEnd - this.namesGarbage
    const slack = Math.max(FIRST_NAME_BYTES, used >>> 3)
    if (this.namesGarbage >= slack || used + need + slack > this.names.byteLength) this.compactNames(used + need + slack)
    this.namesLimit = Math.min(this.names.byteLength, this.namesEnd + need + slack)
  }

  /** Moves the live names together: down within the buffer when `room` fits it, else into a new one of twice that. */
  private compactNames (room: number): void {
    if (room <= this.names.byteLength) {
      // In order of position, each name moves down (copy within a buffer is a memmove).
      const live = this.liveSlots().sort((x, y) => this.nameAt[x]! - this.nameAt[y]!)
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
    const names = Buffer.allocUnsafeSlow(2 * room)
    let end = 0
    for (const s of this.liveSlots()) {
      const at = this.nameAt[s]!
      this.names.copy(names, end, at, at + this.nameLen[s]!)
      this.nameAt[s] = end
      end += this.nameLen[s]!
    }
    this.names = names
    this.namesEnd = this.namesHigh = end
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
    this.hold(this.slotOf(e.blake2b, dh), this.pool.acquire(e, dh))
  }

  /** add() of an entry where it lies in a frame (see readInventory): no object made, so a flood of inventories leaves V8 no garbage to promote. */
  addRaw (e: RawEntry): void {
    const dh = this.pool.hashDigestAt(e.buf, e.blake2bAt)
    this.hold(this.pool.heldSlot(this, e.buf, e.blake2bAt, dh), this.pool.acquireRaw(e, dh))
  }

  /** Removes the entry of the digest at `buf[at]`, if held. */
  removeRaw (buf: Buffer, at: number): void {
    const slot = this.pool.heldSlot(this, buf, at, this.pool.hashDigestAt(buf, at))
    if (slot !== NO_SLOT) this.drop(slot)
  }

  /** Takes `slot` (acquired for us) in place of `old` (the slot held for its digest, or -1). */
  private hold (old: number, slot: number): void {
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
    this.eachSlot((s) => this.pool.release(s))
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

  /** Calls `fn` with each slot held, ascending; unlike slots(), no object per slot (it runs over every entry when a peer leaves or the pool is full). */
  eachSlot (fn: (slot: number) => void): void {
    const bits = this.bits
    for (let w = 0; w < bits.length; w++) {
      let word = bits[w]!
      while (word !== 0) {
        const low = word & -word
        fn((w << 5) + 31 - Math.clz32(low))
        word ^= low
      }
    }
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
