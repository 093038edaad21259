import { isIP } from 'node:net'
import * as wire from './generated/distswarm.cjs'
import { ProtocolError } from './errors.js'
import { encodeFrame } from './framing.js'
import { nameProblem } from './names.js'
import { sortedKeys, type BuildEntry } from './builds.js'
import {
  BLAKE2B_BYTES, MAX_AGENT_NAME_BYTES, MAX_BUILDS_BATCH, SIGNATURE_BYTES, MAX_DATA_CHUNK, MAX_ERROR_MESSAGE, MAX_FILE_SIZE,
  MAX_HASH_PIECES, MAX_HOST_CHARS, MAX_PIECE_MAP_ADDED, MAX_INVENTORY_BATCH, MAX_PEER_ADDRESSES, PUBLIC_KEY_BYTES, MAX_PIECE_SIZE, MAX_REQUEST_LENGTH, MIN_PIECE_SIZE, PIECE_HASH_BYTES, PROOF_BYTES, SHA512_BYTES
} from './limits.js'

/** Error codes carried by an ErrorReply, as named in the schema. */
export const ErrorCode = wire.ErrorReply.Code
export type ErrorCodeName = keyof typeof ErrorCode

/** A file as advertised: the BLAKE2B digest is its address. */
export interface FileEntry {
  name: string
  size: number
  blake2b: Buffer
  /** Empty when the holder does not know it. */
  sha512: Buffer
}

export interface HelloMessage { type: 'hello', version: number, proof: Buffer, name: string, dataPort: number, dataOnly: boolean, seeder: boolean }
export interface InventoryMessage { type: 'inventory', reset: boolean, added: FileEntry[], removed: Buffer[] }
export interface RequestMessage { type: 'request', id: number, blake2b: Buffer, offset: number, length: number }
export interface DataMessage { type: 'data', id: number, offset: number, bytes: Buffer }
export interface CancelMessage { type: 'cancel', id: number }
export interface ErrorMessage { type: 'error', code: ErrorCodeName, id: number, message: string }
export interface ReportMessage { type: 'report', blake2b: Buffer }
export interface HashRequestMessage { type: 'hash-request', id: number, blake2b: Buffer, offset: number, length: number, pieceSize: number }
export interface HashesMessage { type: 'hashes', id: number, hashes: Buffer[] }
/** A member the sender is connected to: its key, and its data port at an IP literal. */
export interface PeerAddress { publicKey: Buffer, host: string, port: number }
export interface PeerAddressesMessage { type: 'peer-addresses', addresses: PeerAddress[] }
/** Binary packages the sender holds: like an inventory, `reset` replaces what is known of the sender. */
export interface BuildsMessage { type: 'builds', reset: boolean, added: BuildEntry[], removed: Buffer[] }
/** `time`: the sender's wall clock, ms since the Unix epoch. */
export interface PingMessage { type: 'ping', id: number, time: number }
export interface PongMessage { type: 'pong', id: number, time: number }
/**
 * Verified pieces of a file the sender is downloading (swarming): with
 * `reset`, `have` (a bitfield, piece i at bit 7 - i % 8 of byte i / 8)
 * replaces what is known; otherwise the pieces in `added` join it.
 */
export interface PieceMapMessage { type: 'piece-map', blake2b: Buffer, size: number, pieceSize: number, reset: boolean, have: Buffer, added: number[] }

/** Pieces of `pieceSize` bytes from `offset` up to `offset + length`, the last maybe shorter: what a HashRequest covers. */
export interface PieceRange {
  offset: number
  length: number
  pieceSize: number
}

/** Every message of the protocol, validated: a decoded Message obeys every bound in limits.ts. */
export type Message =
  | HelloMessage | InventoryMessage | RequestMessage | DataMessage | CancelMessage | ErrorMessage | ReportMessage
  | HashRequestMessage | HashesMessage | PeerAddressesMessage | BuildsMessage | PingMessage | PongMessage | PieceMapMessage

const EMPTY = Buffer.alloc(0)
const UINT32_MAX = 0xffff_ffff
const CODE_NAMES = new Map<number, ErrorCodeName>(
  Object.entries(ErrorCode).map(([name, value]) => [value, name as ErrorCodeName]))

function bytes (value: Uint8Array | null | undefined): Buffer {
  if (!value) return EMPTY
  return Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength)
}

function check (ok: boolean, type: string, why: string): void {
  if (!ok) throw ProtocolError.BAD_MESSAGE(type, why)
}

/** A BLAKE2B digest field: exactly 64 bytes. */
function digestField (value: Uint8Array | null | undefined, type: string): Buffer {
  const d = bytes(value)
  check(d.byteLength === BLAKE2B_BYTES, type, `digest of ${d.byteLength} bytes`)
  return d
}

function uint (value: number | undefined, max: number): number {
  const n = value ?? 0
  return Number.isSafeInteger(n) && n >= 0 && n <= max ? n : -1
}

/** A uint32 field: the protobuf decoder takes varints of up to 8 bytes, so a peer can send far more. */
function uint32 (value: number | undefined, type: string, field: string): number {
  const n = uint(value, UINT32_MAX)
  check(n >= 0, type, `${field} out of range`)
  return n
}

/** At most `max` UTF-16 units, never half a surrogate pair (it would not encode back to itself). */
function truncate (text: string, max: number): string {
  if (text.length <= max) return text
  const code = text.charCodeAt(max - 1)
  return text.slice(0, code >= 0xd800 && code <= 0xdbff ? max - 1 : max)
}

function toEnvelope (msg: Message): wire.Envelope {
  switch (msg.type) {
    case 'hello': return { hello: { version: msg.version, proof: msg.proof, name: msg.name, data_port: msg.dataPort, data_only: msg.dataOnly, seeder: msg.seeder } }
    case 'inventory': return { inventory: { reset: msg.reset, added: msg.added, removed: msg.removed } }
    case 'request': return { request: { id: msg.id, blake2b: msg.blake2b, offset: msg.offset, length: msg.length } }
    case 'data': return { data: { id: msg.id, offset: msg.offset, bytes: msg.bytes } }
    case 'cancel': return { cancel: { id: msg.id } }
    case 'error': return { error: { code: ErrorCode[msg.code], id: msg.id, message: truncate(msg.message, MAX_ERROR_MESSAGE) } }
    case 'report': return { report: { blake2b: msg.blake2b } }
    case 'hash-request': return { hash_request: { id: msg.id, blake2b: msg.blake2b, offset: msg.offset, length: msg.length, piece_size: msg.pieceSize } }
    case 'hashes': return { hashes: { id: msg.id, hashes: msg.hashes } }
    case 'peer-addresses': return { peer_addresses: { addresses: msg.addresses.map((a) => ({ public_key: a.publicKey, host: a.host, port: a.port })) } }
    case 'builds': return { builds: { reset: msg.reset, added: msg.added.map(wireBuild), removed: msg.removed } }
    case 'ping': return { ping: { id: msg.id, time: msg.time } }
    case 'pong': return { pong: { id: msg.id, time: msg.time } }
    case 'piece-map': return { piece_map: { blake2b: msg.blake2b, size: msg.size, piece_size: msg.pieceSize, reset: msg.reset, have: msg.have, added: msg.added } }
  }
}

function wireBuild (e: BuildEntry): wire.BuildEntry {
  const fields = sortedKeys(e.fields).map((key) => ({ key, value: e.fields[key]! }))
  return { blake2b: e.blake2b, size: e.size, group: e.group, fields, builder: e.builder, signature: e.signature }
}

/** Protobuf varint of a non-negative safe integer (arithmetic, not bitwise: offsets pass 2^32). */
function varint (n: number): number[] {
  const out: number[] = []
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80)
    n = Math.floor(n / 0x80)
  }
  out.push(n)
  return out
}

/**
 * A complete Data frame with its `length` bytes left to fill: a sender
 * reads the file straight into `body` instead of into a buffer that
 * encoding would copy twice more (`alloc`: where the frame goes, e.g. a
 * stream's own send buffer). Byte for byte what encodeMessage gives
 * for the same message (a test holds the two equal).
 */
export function allocDataFrame (id: number, offset: number, length: number, alloc: (size: number) => Buffer = Buffer.allocUnsafe): { frame: Buffer, body: Buffer } {
  check(length <= MAX_DATA_CHUNK, 'data', `chunk of ${length} bytes exceeds ${MAX_DATA_CHUNK}`)
  // Envelope field 4 (Data): id = 1, offset = 2, bytes = 3, in field order as the generated encoder writes them.
  const head = [0x08, ...varint(id), 0x10, ...varint(offset), 0x1a, ...varint(length)]
  const envelope = [0x22, ...varint(head.length + length)]
  const payload = envelope.length + head.length + length
  const frame = alloc(4 + payload)
  frame.writeUInt32BE(payload, 0)
  frame.set(envelope, 4)
  frame.set(head, 4 + envelope.length)
  return { frame, body: frame.subarray(4 + envelope.length + head.length) }
}

/** Encodes one message as a complete frame, ready to write to a stream. */
export function encodeMessage (msg: Message): Buffer {
  return encodeFrame(wire.Envelope.encode(toEnvelope(msg)))
}

/** A FileEntry as the wire gave it, checked: the one validation of an advertised entry (also inventory.ts's). */
export function fileEntry (e: wire.FileEntry): FileEntry {
  const name = e.name ?? ''
  const problem = nameProblem(name)
  check(problem === null, 'inventory', `entry name ${JSON.stringify(name.slice(0, 300))} is ${problem}`)
  const size = uint(e.size, MAX_FILE_SIZE)
  check(size >= 0, 'inventory', `entry ${name} has size out of range`)
  const blake2b = bytes(e.blake2b)
  check(blake2b.byteLength === BLAKE2B_BYTES, 'inventory', `entry ${name} has a BLAKE2B digest of ${blake2b.byteLength} bytes`)
  const sha512 = bytes(e.sha512)
  check(sha512.byteLength === 0 || sha512.byteLength === SHA512_BYTES, 'inventory', `entry ${name} has a SHA512 digest of ${sha512.byteLength} bytes`)
  return { name, size, blake2b, sha512 }
}

/**
 * A build entry's structure: digests, key and signature of their sizes, a
 * size in range, each key once. Bounds on its content (field count, bytes,
 * key syntax) are the receiver's to apply entry by entry (buildProblem).
 */
function buildEntry (e: wire.BuildEntry): BuildEntry {
  const blake2b = digestField(e.blake2b, 'builds')
  const size = uint(e.size, MAX_FILE_SIZE)
  check(size >= 0, 'builds', 'entry size out of range')
  const builder = bytes(e.builder)
  check(builder.byteLength === PUBLIC_KEY_BYTES, 'builds', `builder key of ${builder.byteLength} bytes`)
  const signature = bytes(e.signature)
  check(signature.byteLength === SIGNATURE_BYTES, 'builds', `signature of ${signature.byteLength} bytes`)
  const list = e.fields ?? []
  // fromEntries defines own properties: a key "__proto__" is data, never the prototype.
  const fields = Object.fromEntries(list.map((f) => [f.key ?? '', f.value ?? ''])) as Record<string, string>
  check(Object.keys(fields).length === list.length, 'builds', 'a field key given twice')
  return { blake2b, size, group: e.group ?? '', fields, builder, signature }
}

function fromEnvelope (env: wire.Envelope): Message {
  if (env.hello) {
    const h = env.hello
    const name = h.name ?? ''
    const proof = bytes(h.proof)
    check(proof.byteLength === PROOF_BYTES, 'hello', `proof of ${proof.byteLength} bytes`)
    check(Buffer.byteLength(name) <= MAX_AGENT_NAME_BYTES, 'hello', 'agent name too long')
    const dataPort = h.data_port ?? 0
    check(dataPort <= 65535, 'hello', `data port ${dataPort} out of range`)
    return { type: 'hello', version: uint32(h.version, 'hello', 'version'), proof, name: name.replace(/[\u0000-\u001f\u007f]/g, '?'), dataPort, dataOnly: h.data_only ?? false, seeder: h.seeder ?? false }
  }
  if (env.inventory) {
    const inv = env.inventory
    const added = inv.added ?? []
    const removed = inv.removed ?? []
    check(added.length + removed.length <= MAX_INVENTORY_BATCH, 'inventory', `more than ${MAX_INVENTORY_BATCH} entries`)
    const removedBytes = removed.map(bytes)
    check(removedBytes.every((d) => d.byteLength === BLAKE2B_BYTES), 'inventory', 'a removed digest is not 64 bytes')
    return { type: 'inventory', reset: inv.reset ?? false, added: added.map(fileEntry), removed: removedBytes }
  }
  if (env.request) {
    const r = env.request
    const blake2b = digestField(r.blake2b, 'request')
    const offset = uint(r.offset, MAX_FILE_SIZE)
    const length = uint(r.length, MAX_REQUEST_LENGTH)
    check(offset >= 0, 'request', 'offset out of range')
    check(length > 0, 'request', `length must be 1..${MAX_REQUEST_LENGTH}`)
    return { type: 'request', id: uint32(r.id, 'request', 'id'), blake2b, offset, length }
  }
  if (env.data) {
    const d = env.data
    const chunk = bytes(d.bytes)
    check(chunk.byteLength <= MAX_DATA_CHUNK, 'data', `chunk of ${chunk.byteLength} bytes exceeds ${MAX_DATA_CHUNK}`)
    const offset = uint(d.offset, MAX_FILE_SIZE)
    check(offset >= 0, 'data', 'offset out of range')
    return { type: 'data', id: uint32(d.id, 'data', 'id'), offset, bytes: chunk }
  }
  if (env.cancel) return { type: 'cancel', id: uint32(env.cancel.id, 'cancel', 'id') }
  if (env.error) {
    const e = env.error
    return {
      type: 'error',
      code: CODE_NAMES.get(e.code ?? 0) ?? 'UNSPECIFIED',
      id: uint32(e.id, 'error', 'id'),
      message: truncate(e.message ?? '', MAX_ERROR_MESSAGE)
    }
  }
  if (env.report) {
    return { type: 'report', blake2b: digestField(env.report.blake2b, 'report') }
  }
  if (env.hash_request) {
    const r = env.hash_request
    const blake2b = digestField(r.blake2b, 'hash-request')
    const offset = uint(r.offset, MAX_FILE_SIZE)
    const length = uint(r.length, MAX_FILE_SIZE)
    const pieceSize = uint32(r.piece_size, 'hash-request', 'piece_size')
    check(offset >= 0 && length > 0, 'hash-request', 'range out of bounds')
    check(pieceSize >= MIN_PIECE_SIZE && pieceSize <= MAX_PIECE_SIZE, 'hash-request', `piece size must be ${MIN_PIECE_SIZE}..${MAX_PIECE_SIZE}`)
    check(Math.ceil(length / pieceSize) <= MAX_HASH_PIECES, 'hash-request', `more than ${MAX_HASH_PIECES} pieces`)
    return { type: 'hash-request', id: uint32(r.id, 'hash-request', 'id'), blake2b, offset, length, pieceSize }
  }
  if (env.hashes) {
    const hashes = (env.hashes.hashes ?? []).map(bytes)
    check(hashes.length <= MAX_HASH_PIECES, 'hashes', `more than ${MAX_HASH_PIECES} hashes`)
    check(hashes.every((h) => h.byteLength === PIECE_HASH_BYTES), 'hashes', `a hash is not ${PIECE_HASH_BYTES} bytes`)
    return { type: 'hashes', id: uint32(env.hashes.id, 'hashes', 'id'), hashes }
  }
  if (env.peer_addresses) {
    const list = env.peer_addresses.addresses ?? []
    check(list.length <= MAX_PEER_ADDRESSES, 'peer-addresses', `more than ${MAX_PEER_ADDRESSES} addresses`)
    const addresses = list.map((a) => {
      const publicKey = bytes(a.public_key)
      check(publicKey.byteLength === PUBLIC_KEY_BYTES, 'peer-addresses', `public key of ${publicKey.byteLength} bytes`)
      const host = a.host ?? ''
      // An IP literal only: a name would make the receiver resolve what a peer chose.
      check(host.length <= MAX_HOST_CHARS && isIP(host) !== 0, 'peer-addresses', `host ${JSON.stringify(host.slice(0, 60))} is not an IP address`)
      const port = uint32(a.port, 'peer-addresses', 'port')
      check(port >= 1 && port <= 65535, 'peer-addresses', `port ${port} out of range`)
      return { publicKey, host, port }
    })
    return { type: 'peer-addresses', addresses }
  }
  if (env.builds) {
    const b = env.builds
    const added = b.added ?? []
    const removed = (b.removed ?? []).map(bytes)
    check(added.length + removed.length <= MAX_BUILDS_BATCH, 'builds', `more than ${MAX_BUILDS_BATCH} entries`)
    check(removed.every((d) => d.byteLength === BLAKE2B_BYTES), 'builds', 'a removed digest is not 64 bytes')
    return { type: 'builds', reset: b.reset ?? false, added: added.map(buildEntry), removed }
  }
  for (const type of ['ping', 'pong'] as const) {
    const p = env[type]
    if (!p) continue
    const time = uint(p.time, Number.MAX_SAFE_INTEGER)
    check(time >= 0, type, 'time out of range')
    return { type, id: uint32(p.id, type, 'id'), time }
  }
  if (env.piece_map) return pieceMap(env.piece_map)
  throw ProtocolError.UNKNOWN_TYPE()
}

/** A PieceMap within its bounds: a piece count a HashRequest could cover, a bitfield no longer than it, indexes below it. */
function pieceMap (m: wire.PieceMap): PieceMapMessage {
  const type = 'piece-map'
  const blake2b = digestField(m.blake2b, type)
  const size = uint(m.size, MAX_FILE_SIZE)
  check(size > 0, type, 'size out of range')
  const pieceSize = uint32(m.piece_size, type, 'piece_size')
  check(pieceSize >= MIN_PIECE_SIZE && pieceSize <= MAX_PIECE_SIZE, type, `piece size must be ${MIN_PIECE_SIZE}..${MAX_PIECE_SIZE}`)
  const pieces = Math.ceil(size / pieceSize)
  check(pieces <= MAX_HASH_PIECES, type, `more than ${MAX_HASH_PIECES} pieces`)
  const have = bytes(m.have)
  check(have.byteLength <= Math.ceil(pieces / 8), type, `a bitfield of ${have.byteLength} bytes for ${pieces} pieces`)
  // Bits past the last piece: a sender that writes them does not know the file's size.
  check(have.byteLength < Math.ceil(pieces / 8) || pieces % 8 === 0 || (have[have.byteLength - 1]! & (0xff >> (pieces % 8))) === 0, type, 'a bit set past the last piece')
  const added = m.added ?? []
  check(added.length <= MAX_PIECE_MAP_ADDED, type, `more than ${MAX_PIECE_MAP_ADDED} pieces added`)
  check(added.every((i) => Number.isSafeInteger(i) && i >= 0 && i < pieces), type, 'a piece index past the last piece')
  return { type, blake2b, size, pieceSize, reset: m.reset ?? false, have, added: [...added] }
}

/**
 * Decodes one frame's payload. Throws ProtocolError: ERR_DECODE for bytes that
 * are not an Envelope, ERR_UNKNOWN_TYPE for an envelope with no body we know,
 * ERR_BAD_MESSAGE for a message that breaks a bound.
 */
export function decodeMessage (payload: Uint8Array): Message {
  let env: wire.Envelope
  try {
    env = wire.Envelope.decode(payload)
  } catch (err) {
    throw ProtocolError.DECODE_FAILED(err)
  }
  return fromEnvelope(env)
}
