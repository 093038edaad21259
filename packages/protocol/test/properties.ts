/**
 * The fuzzed properties of everything that reads bytes or names from a peer:
 * the framing, the message decoder, and the name and digest validators. Each
 * is data (an arbitrary and a check), so fuzz.test.ts can run it at any scale
 * and regressions.test.ts can replay an input a long run saved.
 */
import { expect as vitestExpect } from 'vitest'
import { posix } from 'node:path'
import { isIP } from 'node:net'
import { isDeepStrictEqual } from 'node:util'
import fc from 'fast-check'
import * as wire from '../src/generated/distswarm.cjs'
import {
  assertValidName, decodeMessage, encodeFrame, encodeMessage, ErrorCode, FrameDecoder, isHexDigest, isValidName,
  MAX_AGENT_NAME_BYTES, MAX_DATA_CHUNK, MAX_ERROR_MESSAGE, MAX_FILE_SIZE, MAX_FRAME_SIZE, MAX_INVENTORY_BATCH,
  MAX_BUILDS_BATCH, MAX_HASH_PIECES, MAX_NAME_BYTES, MAX_PIECE_MAP_ADDED, MAX_PEER_ADDRESSES, MAX_PIECE_SIZE, MAX_REQUEST_LENGTH, MIN_PIECE_SIZE, nameProblem, PIECE_HASH_BYTES, parseHexDigest, ProtocolError, readInventory, toHex,
  type ErrorCodeName, type FileEntry, type Message
} from '../src/index.js'
import type { FuzzProperty } from './runner.js'

export type { FuzzProperty }

/**
 * vitest's expect for the matchers these properties use, with a fast path:
 * the check is made here first, and vitest's matcher runs only when it fails
 * (for its verdict and message). Each fast check implies vitest's (strict
 * deep equality implies toEqual…), so no verdict changes; vitest's
 * assertion objects otherwise took a third of a fuzz run's time.
 */
export function expect (actual: unknown, message?: string) {
  const slow = () => vitestExpect(actual, message)
  return {
    toBe: (want: unknown): void => { if (!Object.is(actual, want)) slow().toBe(want) },
    toEqual: (want: unknown): void => { if (!isDeepStrictEqual(actual, want)) slow().toEqual(want) },
    toBeLessThan: (n: number): void => { if (!(typeof actual === 'number' && actual < n)) slow().toBeLessThan(n) },
    toBeLessThanOrEqual: (n: number): void => { if (!(typeof actual === 'number' && actual <= n)) slow().toBeLessThanOrEqual(n) },
    toBeNull: (): void => { if (actual !== null) slow().toBeNull() },
    toBeUndefined: (): void => { if (actual !== undefined) slow().toBeUndefined() },
    toContain: (item: unknown): void => { if (!(Array.isArray(actual) && actual.includes(item))) slow().toContain(item) },
    toBeInstanceOf: (type: abstract new (...args: never[]) => unknown): void => { if (!(actual instanceof type)) slow().toBeInstanceOf(type) },
    toHaveLength: (n: number): void => { if (!(Array.isArray(actual) && actual.length === n)) slow().toHaveLength(n) }
  }
}

export const HEADER = 4
const UINT32 = 0xffff_ffff
const DECODE_CODES = ['ERR_DECODE', 'ERR_UNKNOWN_TYPE', 'ERR_BAD_MESSAGE']
const CODE_NAMES = Object.keys(ErrorCode) as ErrorCodeName[]

/** The error `fn` throws, or undefined. */
export function thrown (fn: () => unknown): unknown {
  try {
    fn()
  } catch (err) {
    return err
  }
  return undefined
}

/** Asserts `err` is a ProtocolError with one of `codes`: anything else (TypeError, RangeError…) is a crash. */
export function expectProtocolError (err: unknown, codes: string[]): void {
  expect(err, `not a ProtocolError: ${String(err)}`).toBeInstanceOf(ProtocolError)
  expect(codes).toContain((err as ProtocolError).code)
}

/**
 * Records the largest buffer allocated while `fn` runs, through every public
 * way Node has of making one (Buffer.concat allocates internally, so it is
 * counted by its total). Plain wrappers, put back at once: vi.spyOn would keep
 * every call's arguments (and the buffers they point to) in vitest's registry
 * of mocks until the test ends, which took gigabytes over a long fuzz run.
 */
export function largestAllocation (fn: () => void): number {
  let largest = 0
  const note = (n: unknown): void => { if (typeof n === 'number' && n > largest) largest = n }
  const { alloc, allocUnsafe, allocUnsafeSlow, concat } = Buffer
  // Wrappers that note the size asked for, then call Node's own with Buffer as `this`.
  Buffer.alloc = ((...args: Parameters<typeof alloc>) => { note(args[0]); return alloc.apply(Buffer, args) }) as typeof alloc
  Buffer.allocUnsafe = ((size: number) => { note(size); return allocUnsafe.call(Buffer, size) }) as typeof allocUnsafe
  Buffer.allocUnsafeSlow = ((size: number) => { note(size); return allocUnsafeSlow.call(Buffer, size) }) as typeof allocUnsafeSlow
  Buffer.concat = ((list: readonly Uint8Array[], total?: number) => {
    note(total ?? list.reduce((n, b) => n + b.byteLength, 0))
    return concat.call(Buffer, list, total)
  }) as typeof concat
  try {
    fn()
  } finally {
    Object.assign(Buffer, { alloc, allocUnsafe, allocUnsafeSlow, concat })
  }
  return largest
}

// --- arbitraries ---

const bytesOf = (min: number, max: number): fc.Arbitrary<Buffer> =>
  fc.uint8Array({ minLength: min, maxLength: max }).map((a) => Buffer.from(a))
const digest = bytesOf(64, 64)
const uint32 = fc.integer({ min: 0, max: UINT32 })
const fileSize = fc.integer({ min: 0, max: MAX_FILE_SIZE })

/** Code points that name and string checks care about, mixed with arbitrary ones. */
const trickyUnit = fc.oneof(
  fc.constantFrom('a', 'Z', '0', '-', '_', '.', '..', '/', '\\', ' ', '\u0000', '\n', '\t', '\u001f', '\u007f', '\u0085',
    '\u009f', '\u00a0', 'é', '\u2028', '\ufffd', '\ud800', '\udfff', '😀', '\u{10ffff}'),
  fc.string({ unit: 'binary', minLength: 1, maxLength: 1 })
)
/** Strings near the 255-byte limit as often as short ones. */
const trickyString = fc.tuple(fc.nat({ max: 260 }), fc.string({ unit: trickyUnit, maxLength: 12 }), fc.boolean())
  .map(([n, tail, front]) => front ? tail + 'x'.repeat(n) : 'x'.repeat(n) + tail)

const validName = fc.oneof(
  fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 }),
  trickyString
).filter(isValidName)

/** An agent name as a hello carries it: printable, at most 64 bytes. */
const agentName = fc.string({ unit: 'grapheme', maxLength: 20 })
  .filter((s) => Buffer.byteLength(s) <= MAX_AGENT_NAME_BYTES && !/[\u0000-\u001f\u007f]/.test(s))

const entry: fc.Arbitrary<FileEntry> = fc.record({
  name: validName,
  size: fileSize,
  blake2b: digest,
  sha512: fc.oneof(digest, fc.constant(Buffer.alloc(0)))
})

/** A build entry as decoded: structure only (content bounds are the receiver's, entry by entry). */
const buildEntry = fc.record({
  blake2b: digest,
  size: fileSize,
  group: fc.string({ maxLength: 12 }),
  fields: fc.dictionary(fc.oneof(fc.constantFrom('CPV', 'USE', 'BUILD_ID', '__proto__', 'constructor'), fc.string({ maxLength: 8 })), fc.string({ maxLength: 20 }), { maxKeys: 6 }),
  builder: bytesOf(32, 32),
  signature: bytesOf(64, 64)
}).map((e) => ({ ...e, fields: Object.fromEntries(Object.entries(e.fields)) }))

/** Every message type, each obeying the bounds a decoded message obeys. */
const validMessage: fc.Arbitrary<Message> = fc.oneof(
  fc.record({ type: fc.constant('hello' as const), version: uint32, proof: bytesOf(32, 32), name: agentName, dataPort: fc.integer({ min: 0, max: 65535 }), dataOnly: fc.boolean(), seeder: fc.boolean() }),
  fc.record({ type: fc.constant('inventory' as const), reset: fc.boolean(), added: fc.array(entry, { maxLength: 4 }), removed: fc.array(digest, { maxLength: 4 }) }),
  fc.record({ type: fc.constant('request' as const), id: uint32, blake2b: digest, offset: fileSize, length: fc.integer({ min: 1, max: MAX_REQUEST_LENGTH }) }),
  fc.record({ type: fc.constant('data' as const), id: uint32, offset: fileSize, bytes: fc.oneof({ arbitrary: bytesOf(0, 300), weight: 20 }, { arbitrary: fc.constant(Buffer.alloc(MAX_DATA_CHUNK, 7)), weight: 1 }) }),
  fc.record({ type: fc.constant('cancel' as const), id: uint32 }),
  fc.record({
    type: fc.constant('error' as const),
    code: fc.constantFrom(...CODE_NAMES),
    id: uint32,
    message: fc.oneof(fc.string({ maxLength: 40 }), fc.string({ unit: 'binary', maxLength: MAX_ERROR_MESSAGE / 2 }))
      .filter((s) => s.length <= MAX_ERROR_MESSAGE)
  }),
  fc.record({ type: fc.constant('report' as const), blake2b: digest }),
  fc.integer({ min: MIN_PIECE_SIZE, max: MAX_PIECE_SIZE }).chain((pieceSize) => fc.record({
    type: fc.constant('hash-request' as const),
    id: uint32,
    blake2b: digest,
    offset: fileSize,
    pieceSize: fc.constant(pieceSize),
    length: fc.integer({ min: 1, max: Math.min(MAX_FILE_SIZE, pieceSize * MAX_HASH_PIECES) })
  })),
  fc.record({ type: fc.constant('hashes' as const), id: uint32, hashes: fc.array(bytesOf(PIECE_HASH_BYTES, PIECE_HASH_BYTES), { maxLength: 8 }) }),
  fc.record({
    type: fc.constant('peer-addresses' as const),
    addresses: fc.array(fc.record({ publicKey: bytesOf(32, 32), host: fc.oneof(fc.ipV4(), fc.ipV6()), port: fc.integer({ min: 1, max: 65535 }) }), { maxLength: 4 })
  }),
  fc.record({ type: fc.constant('builds' as const), reset: fc.boolean(), added: fc.array(buildEntry, { maxLength: 3 }), removed: fc.array(digest, { maxLength: 4 }) }),
  fc.record({ type: fc.constantFrom('ping' as const, 'pong' as const), id: uint32, time: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }) }),
  fc.integer({ min: 1, max: 64 }).chain((pieces) => fc.record({
    type: fc.constant('piece-map' as const),
    blake2b: digest,
    size: fc.constant(pieces * MIN_PIECE_SIZE),
    pieceSize: fc.constant(MIN_PIECE_SIZE),
    reset: fc.boolean(),
    have: bytesOf(0, Math.ceil(pieces / 8)).map((b) => { if (b.byteLength === Math.ceil(pieces / 8) && pieces % 8 !== 0) b[b.byteLength - 1]! &= ~(0xff >> (pieces % 8)) & 0xff; return b }),
    added: fc.array(fc.integer({ min: 0, max: pieces - 1 }), { maxLength: 8 })
  }))
)

/** A change to a valid encoding: what a buggy or hostile peer, or a bad link, would send instead. */
type Mutation =
  | { kind: 'flip', at: number, bit: number }
  | { kind: 'truncate', at: number }
  | { kind: 'extend', bytes: Uint8Array }
  | { kind: 'insert', at: number, bytes: Uint8Array }
  | { kind: 'set', at: number, value: number }

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('extend' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.constantFrom(0x00, 0x7f, 0x80, 0xff) })
)

function mutate (input: Buffer, m: Mutation): Buffer {
  const at = input.length === 0 ? 0 : ('at' in m ? m.at % input.length : 0)
  const out = Buffer.from(input)
  switch (m.kind) {
    case 'flip': if (out.length > 0) out[at]! ^= 1 << m.bit; return out
    case 'set': if (out.length > 0) out[at] = m.value; return out
    case 'truncate': return out.subarray(0, at)
    case 'extend': return Buffer.concat([out, m.bytes])
    case 'insert': return Buffer.concat([out.subarray(0, at), m.bytes, out.subarray(at)])
  }
}

// --- the contract a decoded message keeps ---

const isWellFormed = (s: string): boolean => !/\p{Cs}/u.test(s)
const isUint = (n: number, max: number): boolean => Number.isSafeInteger(n) && n >= 0 && n <= max
const isBuf = (b: unknown, ...lengths: number[]): boolean => Buffer.isBuffer(b) && (lengths.length === 0 || lengths.includes(b.byteLength))

/** Every bound of limits.ts, and strings that encode back to themselves. */
function boundsBroken (m: Message): string | null {
  switch (m.type) {
    case 'hello':
      if (!isUint(m.version, UINT32)) return 'version'
      if (!isBuf(m.proof, 32)) return 'proof'
      if (Buffer.byteLength(m.name) > MAX_AGENT_NAME_BYTES || /[\u0000-\u001f\u007f]/.test(m.name) || !isWellFormed(m.name)) return 'name'
      if (!isUint(m.dataPort, 65535)) return 'dataPort'
      return typeof m.dataOnly === 'boolean' && typeof m.seeder === 'boolean' ? null : 'flags'
    case 'inventory':
      if (m.added.length + m.removed.length > MAX_INVENTORY_BATCH) return 'batch'
      for (const e of m.added) {
        if (!isValidName(e.name) || !isUint(e.size, MAX_FILE_SIZE) || !isBuf(e.blake2b, 64) || !isBuf(e.sha512, 0, 64)) return `entry ${e.name}`
      }
      return m.removed.every((d) => isBuf(d, 64)) ? null : 'removed'
    case 'request':
      if (!isUint(m.id, UINT32) || !isBuf(m.blake2b, 64) || !isUint(m.offset, MAX_FILE_SIZE)) return 'request'
      return m.length >= 1 && isUint(m.length, MAX_REQUEST_LENGTH) ? null : 'length'
    case 'data':
      return isUint(m.id, UINT32) && isUint(m.offset, MAX_FILE_SIZE) && isBuf(m.bytes) && m.bytes.byteLength <= MAX_DATA_CHUNK ? null : 'data'
    case 'cancel':
      return isUint(m.id, UINT32) ? null : 'id'
    case 'error':
      if (!CODE_NAMES.includes(m.code) || !isUint(m.id, UINT32)) return 'error'
      return m.message.length <= MAX_ERROR_MESSAGE && isWellFormed(m.message) ? null : 'message'
    case 'report':
      return isBuf(m.blake2b, 64) ? null : 'report'
    case 'hash-request':
      if (!isUint(m.id, UINT32) || !isBuf(m.blake2b, 64) || !isUint(m.offset, MAX_FILE_SIZE) || !isUint(m.length, MAX_FILE_SIZE) || m.length < 1) return 'hash-request'
      return m.pieceSize >= MIN_PIECE_SIZE && m.pieceSize <= MAX_PIECE_SIZE && Math.ceil(m.length / m.pieceSize) <= MAX_HASH_PIECES ? null : 'pieceSize'
    case 'hashes':
      return isUint(m.id, UINT32) && m.hashes.length <= MAX_HASH_PIECES && m.hashes.every((h) => isBuf(h, PIECE_HASH_BYTES)) ? null : 'hashes'
    case 'peer-addresses':
      return m.addresses.length <= MAX_PEER_ADDRESSES && m.addresses.every((a) => isBuf(a.publicKey, 32) && isIP(a.host) !== 0 && a.port >= 1 && a.port <= 65535) ? null : 'peer-addresses'
    case 'builds':
      if (m.added.length + m.removed.length > MAX_BUILDS_BATCH || !m.removed.every((d) => isBuf(d, 64))) return 'builds'
      for (const e of m.added) {
        if (!isBuf(e.blake2b, 64) || !isBuf(e.builder, 32) || !isBuf(e.signature, 64) || !isUint(e.size, MAX_FILE_SIZE) || !isWellFormed(e.group)) return 'build entry'
        if (!Object.entries(e.fields).every(([k, v]) => typeof v === 'string' && isWellFormed(k) && isWellFormed(v))) return 'build fields'
      }
      return null
    case 'ping':
    case 'pong':
      return isUint(m.id, UINT32) && isUint(m.time, Number.MAX_SAFE_INTEGER) ? null : m.type
    case 'piece-map': {
      const pieces = Math.ceil(m.size / m.pieceSize)
      if (!isBuf(m.blake2b, 64) || !isUint(m.size, MAX_FILE_SIZE) || m.size < 1 || m.pieceSize < MIN_PIECE_SIZE || m.pieceSize > MAX_PIECE_SIZE || pieces > MAX_HASH_PIECES) return 'piece-map'
      return isBuf(m.have) && m.have.byteLength <= Math.ceil(pieces / 8) && m.added.length <= MAX_PIECE_MAP_ADDED && m.added.every((i) => isUint(i, pieces - 1)) ? null : 'piece-map bits'
    }
  }
}

/** A message with its buffers as hex: deep equality of big buffers element by element is slow. */
function plain (value: unknown): unknown {
  if (Buffer.isBuffer(value)) return `hex:${toHex(value)}`
  if (Array.isArray(value)) return value.map(plain)
  if (typeof value === 'object' && value !== null) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]))
  return value
}

/**
 * What every payload must come to: a message that keeps every bound and
 * encodes back to itself, or a ProtocolError with a decoder code. Never
 * another exception.
 */
function checkDecode (payload: Uint8Array): void {
  let msg: Message
  try {
    msg = decodeMessage(payload)
  } catch (err) {
    expectProtocolError(err, DECODE_CODES)
    return
  }
  expect(boundsBroken(msg), `decoded ${msg.type} breaks a bound`).toBeNull()
  const again = encodeMessage(msg)
  expect(again.byteLength).toBeLessThanOrEqual(HEADER + MAX_FRAME_SIZE)
  expect(plain(decodeMessage(again.subarray(HEADER)))).toEqual(plain(msg))
}

/**
 * Envelopes with every field set to any value of its wire type, encoded with
 * the generated codec: reaches the validation behind the protobuf layer far
 * more often than random bytes do.
 */
const anyBytes = fc.oneof(bytesOf(0, 70), digest, bytesOf(31, 33))
const anyNumber = fc.oneof(uint32, fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), fc.constantFrom(0, 1, 65535, 65536, MAX_FILE_SIZE, MAX_FILE_SIZE + 1, MAX_REQUEST_LENGTH + 1, 2 ** 32))
const anyString = fc.oneof(fc.string({ maxLength: 20 }), trickyString)
const anyEntry = fc.record({ name: anyString, size: anyNumber, blake2b: anyBytes, sha512: anyBytes }, { requiredKeys: [] })
const anyEnvelope: fc.Arbitrary<wire.Envelope> = fc.oneof(
  fc.record({ hello: fc.record({ version: anyNumber, proof: anyBytes, name: anyString, data_port: anyNumber, data_only: fc.boolean(), seeder: fc.boolean() }, { requiredKeys: [] }) }),
  fc.record({ inventory: fc.record({ reset: fc.boolean(), added: fc.array(anyEntry, { maxLength: 3 }), removed: fc.array(anyBytes, { maxLength: 3 }) }, { requiredKeys: [] }) }),
  fc.record({ request: fc.record({ id: anyNumber, blake2b: anyBytes, offset: anyNumber, length: anyNumber }, { requiredKeys: [] }) }),
  fc.record({ data: fc.record({ id: anyNumber, offset: anyNumber, bytes: anyBytes }, { requiredKeys: [] }) }),
  fc.record({ cancel: fc.record({ id: anyNumber }, { requiredKeys: [] }) }),
  fc.record({ error: fc.record({ code: fc.integer({ min: 0, max: 20 }), id: anyNumber, message: fc.oneof(anyString, fc.constantFrom('😀'.repeat(600), 'a' + '😀'.repeat(600))) }, { requiredKeys: [] }) }),
  fc.record({ report: fc.record({ blake2b: anyBytes }, { requiredKeys: [] }) }),
  fc.record({ hash_request: fc.record({ id: anyNumber, blake2b: anyBytes, offset: anyNumber, length: anyNumber, piece_size: anyNumber }, { requiredKeys: [] }) }),
  fc.record({ hashes: fc.record({ id: anyNumber, hashes: fc.array(anyBytes, { maxLength: 3 }) }, { requiredKeys: [] }) }),
  fc.record({
    peer_addresses: fc.record({
      addresses: fc.array(fc.record({ public_key: anyBytes, host: fc.oneof(anyString, fc.ipV4(), fc.ipV6()), port: anyNumber }, { requiredKeys: [] }), { maxLength: 3 })
    }, { requiredKeys: [] })
  }),
  fc.record({
    builds: fc.record({
      reset: fc.boolean(),
      added: fc.array(fc.record({
        blake2b: anyBytes,
        size: anyNumber,
        group: anyString,
        fields: fc.array(fc.record({ key: fc.oneof(anyString, fc.constantFrom('CPV', '__proto__')), value: anyString }, { requiredKeys: [] }), { maxLength: 4 }),
        builder: anyBytes,
        signature: anyBytes
      }, { requiredKeys: [] }), { maxLength: 3 }),
      removed: fc.array(anyBytes, { maxLength: 3 })
    }, { requiredKeys: [] })
  }),
  fc.record({ ping: fc.record({ id: anyNumber, time: anyNumber }, { requiredKeys: [] }) }),
  fc.record({ pong: fc.record({ id: anyNumber, time: anyNumber }, { requiredKeys: [] }) }),
  fc.record({
    piece_map: fc.record({
      blake2b: anyBytes, size: anyNumber, piece_size: fc.oneof(anyNumber, fc.constant(MIN_PIECE_SIZE)), reset: fc.boolean(), have: anyBytes, added: fc.array(anyNumber, { maxLength: 3 })
    }, { requiredKeys: [] })
  })
)


/**
 * readInventory against decodeMessage on the same bytes: an Inventory it
 * accepts is the one decodeMessage gives, field for field; what it refuses
 * is refused with a ProtocolError (it is stricter: wrong wire types, fields
 * past their message, two bodies); null when decodeMessage gives no
 * Inventory either, or one only by reading the envelope askew.
 */
export function checkReadInventory (payload: Uint8Array): void {
  let view: ReturnType<typeof readInventory> = null
  const err = thrown(() => { view = readInventory(payload) })
  let msg: Message | undefined
  const decodeErr = thrown(() => { msg = decodeMessage(payload) })
  if (err !== undefined) {
    expectProtocolError(err, ['ERR_DECODE', 'ERR_BAD_MESSAGE'])
    return
  }
  if (view === null) {
    // The generated decoder can read an Inventory where there is none: a body before it whose last field runs past its
    // length throws its offsets askew (Peer refuses such a frame). The Inventory it found, written plainly, reads the same here.
    if (msg?.type === 'inventory') checkReadInventory(encodeMessage(msg).subarray(HEADER))
    return
  }
  expect(decodeErr).toBeUndefined()
  const v = view as NonNullable<ReturnType<typeof readInventory>>
  expect(plain({ type: v.type, reset: v.reset, added: [...v.added], removed: [...v.removed] })).toEqual(plain(msg))
  // The in-place reading sees the same entries.
  const raw: unknown[] = []
  v.eachAdded((e) => raw.push(plain({ name: e.name ?? Buffer.from(e.buf.subarray(e.nameAt, e.nameAt + e.nameLen)).toString(), size: e.size, blake2b: e.buf.subarray(e.blake2bAt, e.blake2bAt + 64), sha: e.sha512At < 0 ? null : e.buf.subarray(e.sha512At, e.sha512At + 64) })))
  expect(raw).toEqual([...v.added].map((e) => plain({ name: e.name, size: e.size, blake2b: e.blake2b, sha: e.sha512.byteLength === 0 ? null : e.sha512 })))
}

/** Inventories, valid or near it, and a second body or unknown fields beside them in the envelope. */
const inventoryish: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.tuple(validMessage.filter((m) => m.type === 'inventory'), fc.array(mutation, { maxLength: 3 })).map(([msg, ms]) => ms.reduce((p, m) => mutate(p, m), encodeMessage(msg).subarray(HEADER))),
  anyEnvelope.filter((e) => e.inventory !== undefined).map((e) => wire.Envelope.encode(e)),
  fc.tuple(fc.record({ type: fc.constant('inventory' as const), reset: fc.boolean(), added: fc.array(entry, { maxLength: 3 }), removed: fc.array(digest, { maxLength: 2 }) }), fc.array(fc.oneof(fc.uint8Array({ maxLength: 12 }), validMessage.map((m) => encodeMessage(m).subarray(HEADER))), { maxLength: 2 }), fc.boolean())
    .map(([msg, extra, before]) => {
      const inv = encodeMessage(msg).subarray(HEADER)
      return Buffer.concat(before ? [...extra, inv] : [inv, ...extra])
    })
)

const anyName = fc.oneof(trickyString, fc.string({ unit: 'binary', maxLength: 20 }), fc.string({ unit: trickyUnit, maxLength: 6 }))
const hexish = fc.string({ unit: fc.constantFrom(...'0123456789abcdefABCDEFgG \n\u212a\u0130xX'), minLength: 126, maxLength: 130 })

const property = <T>(p: FuzzProperty<T>): FuzzProperty => p

/** Every fuzzed property; names are stable, as saved regressions refer to them. */
export const PROPERTIES: readonly FuzzProperty[] = [
  property({
    group: 'FrameDecoder',
    name: 'reassembles any frames split at any points, holding less than one frame meanwhile',
    weight: 1,
    input: fc.tuple(
      fc.integer({ min: 0, max: 512 }),
      fc.array(fc.uint8Array({ maxLength: 512 }), { maxLength: 8 }),
      fc.array(fc.nat(), { maxLength: 12 })),
    check: ([max, raw, cuts]) => {
      const payloads = raw.map((p) => Buffer.from(p.subarray(0, max)))
      const stream = Buffer.concat(payloads.map((p) => encodeFrame(p)))
      const points = [...new Set(cuts.map((c) => stream.length === 0 ? 0 : c % stream.length))].sort((a, b) => a - b)
      const dec = new FrameDecoder(max)
      const frames: Buffer[] = []
      let from = 0
      for (const to of [...points, stream.length]) {
        frames.push(...dec.push(stream.subarray(from, to)))
        from = to
        expect(dec.pending).toBeLessThan(HEADER + max)
      }
      expect(frames).toEqual(payloads)
      expect(dec.pending).toBe(0)
    }
  }),
  property({
    group: 'FrameDecoder',
    name: 'turns any bytes in any chunks into frames or ERR_FRAME_TOO_LARGE, never allocating past a frame plus a chunk',
    weight: 1,
    input: fc.tuple(
      fc.integer({ min: 0, max: 300 }),
      fc.array(fc.oneof(fc.uint8Array({ maxLength: 64 }), fc.uint8Array({ minLength: 200, maxLength: 700 })), { maxLength: 16 })),
    check: ([max, chunks]) => {
      const dec = new FrameDecoder(max)
      let failure: unknown
      const biggestChunk = Math.max(0, ...chunks.map((c) => c.byteLength))
      const allocated = largestAllocation(() => {
        for (const chunk of chunks) {
          let frames: Buffer[] | undefined
          const err = thrown(() => { frames = dec.push(chunk) })
          if (frames) {
            expect(failure, 'a failed decoder must keep failing').toBeUndefined()
            for (const f of frames) expect(f.byteLength).toBeLessThanOrEqual(max)
            expect(dec.pending).toBeLessThan(HEADER + max)
            continue
          }
          expectProtocolError(err, ['ERR_FRAME_TOO_LARGE'])
          if (failure !== undefined) expect(err).toBe(failure)
          failure = err
          expect(dec.pending).toBe(0)
        }
      })
      expect(allocated).toBeLessThanOrEqual(HEADER + max + biggestChunk)
    }
  }),
  property({
    group: 'FrameDecoder',
    name: 'refuses any length over the limit from the header alone, however the header is split',
    weight: 1,
    input: fc.tuple(
      fc.integer({ min: 0, max: MAX_FRAME_SIZE }),
      fc.oneof(fc.integer({ min: 1, max: 2 ** 16 }), fc.integer({ min: 2 ** 16, max: UINT32 })),
      fc.integer({ min: 0, max: HEADER - 1 }),
      fc.uint8Array({ maxLength: 32 })),
    check: ([max, over, cut, tail]) => {
      const length = Math.min(max + over, UINT32)
      fc.pre(length > max)
      const header = Buffer.alloc(HEADER)
      header.writeUInt32BE(length)
      const dec = new FrameDecoder(max)
      const allocated = largestAllocation(() => {
        expect(dec.push(header.subarray(0, cut))).toEqual([])
        expectProtocolError(thrown(() => dec.push(Buffer.concat([header.subarray(cut), tail]))), ['ERR_FRAME_TOO_LARGE'])
      })
      expect(dec.pending).toBe(0)
      // The header and the tail, copied once at most: nothing sized by the claimed length.
      expect(allocated).toBeLessThanOrEqual(2 * (HEADER + tail.byteLength))
    }
  }),
  property({
    group: 'decodeMessage',
    name: 'decodes any bytes to a bounded message or a ProtocolError',
    weight: 1,
    input: fc.oneof(fc.uint8Array({ maxLength: 300 }), fc.uint8Array({ minLength: 1000, maxLength: 3000 })),
    check: (payload) => { checkDecode(payload) }
  }),
  property({
    group: 'decodeMessage',
    name: 'survives bit flips, truncations and extensions of valid encodings of every message type',
    weight: 4,
    input: fc.tuple(validMessage, fc.array(mutation, { minLength: 1, maxLength: 4 })),
    check: ([msg, mutations]) => {
      let payload = encodeMessage(msg).subarray(HEADER)
      for (const m of mutations) payload = mutate(payload, m)
      checkDecode(payload)
    }
  }),
  property({
    group: 'decodeMessage',
    name: 'accepts or refuses any field values of every envelope with a ProtocolError',
    weight: 2,
    input: anyEnvelope,
    check: (env) => { checkDecode(wire.Envelope.encode(env)) }
  }),
  property({
    group: 'decodeMessage',
    name: 'round-trips every valid message exactly',
    weight: 1,
    input: validMessage,
    check: (msg) => {
      const frames = new FrameDecoder().push(encodeMessage(msg))
      expect(frames).toHaveLength(1)
      expect(plain(decodeMessage(frames[0]!))).toEqual(plain(msg))
    }
  }),
  property({
    group: 'readInventory',
    name: 'reads any bytes as decodeMessage reads an Inventory, or refuses them, never looser',
    weight: 1,
    input: fc.oneof(fc.uint8Array({ maxLength: 300 }), inventoryish),
    check: (payload) => { checkReadInventory(payload) }
  }),
  property({
    group: 'names and digests',
    name: 'nameProblem, isValidName and assertValidName agree, and a valid name stays in its dir',
    weight: 4,
    input: anyName,
    check: (name) => {
      const problem = nameProblem(name)
      expect(isValidName(name)).toBe(problem === null)
      const err = thrown(() => assertValidName(name))
      if (problem !== null) {
        expect(typeof problem).toBe('string')
        expectProtocolError(err, ['ERR_INVALID_NAME'])
        return
      }
      expect(err).toBeUndefined()
      const path = posix.join('/cache', name)
      expect(posix.dirname(path)).toBe('/cache')
      expect(posix.basename(path)).toBe(name)
      expect(name.startsWith('.')).toBe(false)
      expect(Buffer.byteLength(name)).toBeLessThanOrEqual(MAX_NAME_BYTES)
      expect(/[\u0000-\u001f\u007f-\u009f]/.test(name)).toBe(false)
      // The bytes a filesystem (or a peer) gets decode back to the very name.
      expect(Buffer.from(name).toString()).toBe(name)
    }
  }),
  property({
    group: 'names and digests',
    name: 'a valid name travels in an inventory unchanged',
    weight: 1,
    input: fc.tuple(anyName.filter(isValidName), digest),
    check: ([name, blake2b]) => {
      const msg: Message = { type: 'inventory', reset: false, removed: [], added: [{ name, size: 1, blake2b, sha512: Buffer.alloc(0) }] }
      expect(decodeMessage(encodeMessage(msg).subarray(HEADER))).toEqual(msg)
    }
  }),
  property({
    group: 'names and digests',
    name: 'parseHexDigest takes exactly 128 hex digits of either case; isHexDigest only lowercase',
    weight: 2,
    input: fc.oneof(hexish, fc.string({ maxLength: 140 }), digest.map(toHex)),
    check: (text) => {
      expect(isHexDigest(text)).toBe(/^[0-9a-f]{128}$/.test(text))
      const err = thrown(() => parseHexDigest(text))
      if (!/^[0-9a-fA-F]{128}$/.test(text)) {
        expectProtocolError(err, ['ERR_INVALID_DIGEST'])
        return
      }
      expect(err).toBeUndefined()
      const bytes = parseHexDigest(text)
      expect(bytes.byteLength).toBe(64)
      expect(toHex(bytes)).toBe(text.toLowerCase())
    }
  })
]
