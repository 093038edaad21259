/**
 * An Inventory frame read in place. decodeMessage turns a frame of up to
 * MAX_INVENTORY_BATCH entries into as many objects at once, all alive
 * while the receiver absorbs them; under ten peers flooding at once that
 * garbage survived V8's scavenges and grew its young generation from 8 to
 * 32 MiB (bench/flood.mjs). Here the frame is checked in one pass that
 * makes no objects, and its entries are then made one at a time as the
 * receiver asks for them, so each is garbage before the next.
 *
 * Stricter than the generated decoder, never looser: a field of the wrong
 * wire type, or one that runs past its entry or its message, is a decode
 * error (our encoder writes neither); unknown fields are skipped.
 */
import { ProtocolError } from './errors.js'
import { fileEntry, type FileEntry } from './messages.js'
import { BLAKE2B_BYTES, MAX_FILE_SIZE, MAX_INVENTORY_BATCH, MAX_NAME_BYTES, SHA512_BYTES } from './limits.js'

/** The Envelope's body fields (a oneof) are 1 (hello) to 14 (piece_map); Inventory is 2. */
const BODY = { last: 14, inventory: 2 } as const
/** Protobuf wire types. */
const WIRE = { varint: 0, fixed64: 1, bytes: 2, fixed32: 5 } as const

/**
 * An added entry where it lies in the frame, checked: `buf` holds the
 * digests (and the name, unless `name` is set), `sha512At` is -1 when the
 * entry has none. One object, reused for every entry of a frame.
 */
export interface RawEntry {
  buf: Buffer
  /** The name as a string when its bytes are not plain printable ASCII (it was decoded to be checked); else null, and the name is buf[nameAt, nameAt + nameLen). */
  name: string | null
  nameAt: number
  nameLen: number
  size: number
  blake2bAt: number
  sha512At: number
}

/** A validated Inventory frame: `added` and `removed` read the frame anew each time they are iterated. */
export interface InventoryView {
  readonly type: 'inventory'
  readonly reset: boolean
  readonly added: Iterable<FileEntry>
  readonly removed: Iterable<Buffer>
  /** Calls `fn` with each added entry in place, making no object per entry: `e` is reused, valid during the call only. */
  eachAdded (fn: (e: RawEntry) => void): void
  /** Calls `fn` with where each removed BLAKE2B digest lies in `buf`. */
  eachRemoved (fn: (buf: Buffer, at: number) => void): void
}

class Reader {
  /** Where the last read ended. */
  pos = 0
  constructor (readonly buf: Uint8Array) {}

  /** A varint as the generated decoder reads one (up to 8 bytes; past 2^53 inexact, which every bound then rejects). */
  varint (end: number): number {
    let value = 0
    let shift = 0
    let b: number
    do {
      if (this.pos >= end || shift > 49) throw ProtocolError.DECODE_FAILED('a varint runs past its message')
      b = this.buf[this.pos++]!
      value += shift < 28 ? (b & 0x7f) << shift : (b & 0x7f) * 2 ** shift
      shift += 7
    } while (b >= 0x80)
    return value
  }

  /** Reads a length-delimited field's length: its bytes start at pos (just past the length), and end where this returns. */
  lengthEnd (end: number): number {
    const len = this.varint(end)
    if (len > end - this.pos) throw ProtocolError.DECODE_FAILED('a field runs past its message')
    return this.pos + len
  }

  /** Skips a field of this wire type that we do not read. */
  skip (wireType: number, end: number): void {
    switch (wireType) {
      case WIRE.varint: this.varint(end); return
      case WIRE.bytes: this.pos = this.lengthEnd(end); return
      case WIRE.fixed64: case WIRE.fixed32: {
        const n = wireType === WIRE.fixed64 ? 8 : 4
        if (end - this.pos < n) throw ProtocolError.DECODE_FAILED('a field runs past its message')
        this.pos += n
        return
      }
    }
    throw ProtocolError.DECODE_FAILED(`wire type ${wireType}`)
  }

  /** The next field's tag; throws unless it is of `wireType` when it is one we read. */
  field (end: number, known: (tag: number) => number | null): number {
    const prefix = this.varint(end)
    const tag = prefix >> 3
    const want = known(tag)
    if (want !== null && (prefix & 7) !== want) throw ProtocolError.DECODE_FAILED(`field ${tag} of wire type ${prefix & 7}`)
    if (want === null) {
      this.skip(prefix & 7, end)
      return 0
    }
    return tag
  }
}

const INVENTORY_TYPES = (tag: number): number | null => tag === 1 ? WIRE.varint : tag === 2 || tag === 3 ? WIRE.bytes : null
const ENTRY_TYPES = (tag: number): number | null => tag === 2 ? WIRE.varint : tag >= 1 && tag <= 4 ? WIRE.bytes : null

/** Whether name bytes are plain printable ASCII that nameProblem accepts (decoded and encoded again, the same bytes). */
function plainName (buf: Uint8Array, at: number, len: number): boolean {
  if (len === 0 || len > MAX_NAME_BYTES || buf[at] === 0x2e) return false // empty, too long, or "." first
  for (let i = at; i < at + len; i++) {
    const b = buf[i]!
    if (b < 0x20 || b > 0x7e || b === 0x2f) return false // a control, not ASCII, or "/"
  }
  return true
}

/**
 * Reads the entry whose fields span start..end into `e`, checked as
 * decodeMessage checks it: printable ASCII names byte by byte, any other
 * through fileEntry itself (a string made, and its error if it fails).
 */
function readEntry (r: Reader, start: number, end: number, e: RawEntry): void {
  r.pos = start
  let nameAt = -1
  let nameEnd = -1
  let b2At = -1
  let b2End = -1
  let shaAt = -1
  let shaEnd = -1
  e.size = 0
  while (r.pos < end) {
    const tag = r.field(end, ENTRY_TYPES)
    if (tag === 2) { e.size = r.varint(end); continue }
    if (tag === 0) continue
    const to = r.lengthEnd(end)
    if (tag === 1) { nameAt = r.pos; nameEnd = to } else if (tag === 3) { b2At = r.pos; b2End = to } else { shaAt = r.pos; shaEnd = to }
    r.pos = to
  }
  const buf = e.buf
  e.nameAt = nameAt
  e.nameLen = nameEnd - nameAt
  e.blake2bAt = b2At
  e.sha512At = shaEnd - shaAt === SHA512_BYTES ? shaAt : -1
  e.name = null
  if (plainName(buf, nameAt, e.nameLen) && e.size <= MAX_FILE_SIZE && b2End - b2At === BLAKE2B_BYTES && (shaEnd === shaAt || shaEnd - shaAt === SHA512_BYTES)) return
  // The slow path: fileEntry's own checks and errors.
  const name = nameAt < 0 ? '' : buf.toString('utf8', nameAt, nameEnd)
  fileEntry({ name, size: e.size, blake2b: b2At < 0 ? null : buf.subarray(b2At, b2End), sha512: shaAt < 0 ? null : buf.subarray(shaAt, shaEnd) })
  e.name = name
}

function rawEntry (buf: Buffer): RawEntry {
  return { buf, name: null, nameAt: 0, nameLen: 0, size: 0, blake2bAt: 0, sha512At: -1 }
}

/** A FileEntry of its own from a RawEntry. */
function toFileEntry (e: RawEntry): FileEntry {
  return {
    name: e.name ?? e.buf.toString('utf8', e.nameAt, e.nameAt + e.nameLen),
    size: e.size,
    blake2b: e.buf.subarray(e.blake2bAt, e.blake2bAt + BLAKE2B_BYTES),
    sha512: e.sha512At < 0 ? Buffer.alloc(0) : e.buf.subarray(e.sha512At, e.sha512At + SHA512_BYTES)
  }
}

class Inventory implements InventoryView {
  readonly type = 'inventory'
  constructor (private readonly buf: Buffer, private readonly start: number, private readonly end: number, readonly reset: boolean) {}

  get added (): Iterable<FileEntry> {
    const out: FileEntry[] = []
    this.eachAdded((e) => out.push(toFileEntry(e)))
    return out
  }

  get removed (): Iterable<Buffer> {
    const out: Buffer[] = []
    this.eachRemoved((buf, at) => out.push(buf.subarray(at, at + BLAKE2B_BYTES)))
    return out
  }

  eachAdded (fn: (e: RawEntry) => void): void {
    const e = rawEntry(this.buf)
    const entry = new Reader(this.buf)
    this.fields(2, (from, to) => { readEntry(entry, from, to, e); fn(e) })
  }

  eachRemoved (fn: (buf: Buffer, at: number) => void): void {
    this.fields(3, (from) => fn(this.buf, from))
  }

  /** Calls `fn` with the span of each field `tag` of the message (checked already). */
  private fields (tag: number, fn: (from: number, to: number) => void): void {
    const r = new Reader(this.buf)
    r.pos = this.start
    while (r.pos < this.end) {
      const t = r.field(this.end, INVENTORY_TYPES)
      if (t === 1) { r.varint(this.end); continue }
      if (t === 0) continue
      const to = r.lengthEnd(this.end)
      const from = r.pos
      r.pos = to
      if (t === tag) fn(from, to)
    }
  }
}

/**
 * The frame's Inventory, checked whole (every bound decodeMessage checks,
 * every entry) before any of it is returned, or null when the frame's body
 * is no Inventory (decode it with decodeMessage). Throws ERR_DECODE or
 * ERR_BAD_MESSAGE as decodeMessage would, and for an Inventory that shares
 * its envelope with another body (no encoder writes one).
 */
export function readInventory (payload: Uint8Array): InventoryView | null {
  const r = new Reader(payload)
  const end = payload.byteLength
  let at = -1
  let atEnd = -1
  let bodies = 0
  // The envelope: its body fields, and unknown fields skipped; anything odd is left to decodeMessage unless an Inventory is in it.
  try {
    while (r.pos < end) {
      const prefix = r.varint(end)
      const tag = prefix >> 3
      if (tag >= 1 && tag <= BODY.last) {
        bodies++
        const to = r.lengthEnd(end)
        const from = r.pos
        r.pos = to
        if (tag === BODY.inventory) { at = from; atEnd = r.pos }
      } else {
        r.skip(prefix & 7, end)
      }
    }
  } catch (err) {
    if (at < 0) return null
    throw err
  }
  if (at < 0) return null
  if (bodies > 1) throw ProtocolError.BAD_MESSAGE('inventory', 'another body in its envelope')
  // One pass that makes no objects but the entries' own checks: the bounds first, so a frame over them costs no more.
  let reset = false
  let count = 0
  r.pos = at
  while (r.pos < atEnd) {
    const tag = r.field(atEnd, INVENTORY_TYPES)
    if (tag === 1) { reset = r.varint(atEnd) !== 0; continue }
    if (tag === 0) continue
    const to = r.lengthEnd(atEnd)
    const from = r.pos
    r.pos = to
    if (++count > MAX_INVENTORY_BATCH) throw ProtocolError.BAD_MESSAGE('inventory', `more than ${MAX_INVENTORY_BATCH} entries`)
    if (tag === 3 && r.pos - from !== BLAKE2B_BYTES) throw ProtocolError.BAD_MESSAGE('inventory', 'a removed digest is not 64 bytes')
  }
  const buf = Buffer.isBuffer(payload) ? payload : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength)
  const inv = new Inventory(buf, at, atEnd, reset)
  // Every entry checked before any is used: a bad one refuses the whole frame, as decodeMessage does.
  inv.eachAdded(() => {})
  return inv
}
