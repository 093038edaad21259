import {
  BLAKE2B_BYTES, MAX_BUILD_BYTES, MAX_BUILD_FIELDS, MAX_BUILD_GROUP_BYTES, MAX_FILE_SIZE, PUBLIC_KEY_BYTES, SIGNATURE_BYTES
} from './limits.js'

/**
 * A binary package as its builder advertises it (the Builds message's
 * BuildEntry): the file's BLAKE2B address and size, its compatibility group,
 * its Packages stanza, and the builder's key and signature over all of it.
 */
export interface BuildEntry {
  blake2b: Buffer
  size: number
  group: string
  /** The stanza, KEY -> value. An own property per key (no prototype keys are read). */
  fields: Record<string, string>
  /** 32 bytes: the builder's ed25519 public key. */
  builder: Buffer
  /** 64 bytes: see buildSigningPayload. */
  signature: Buffer
}

/** A key of a Packages stanza, as Portage writes them (and as @distswarm/binpkg reads them). */
const KEY = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/
const DOMAIN = Buffer.from('distswarm/build/v1\u0000')

const byteCompare = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b))

/** The entry's keys, sorted by their UTF-8 bytes: the order of the signed encoding and of the wire. */
export function sortedKeys (fields: Record<string, string>): string[] {
  return Object.keys(fields).sort(byteCompare)
}

/**
 * Why an entry breaks a bound a sender keeps (and a receiver enforces by
 * ignoring the entry), or null. Does not check the signature.
 */
export function buildProblem (e: BuildEntry): string | null {
  if (e.blake2b?.byteLength !== BLAKE2B_BYTES) return 'a BLAKE2B digest that is not 64 bytes'
  if (e.builder?.byteLength !== PUBLIC_KEY_BYTES) return 'a builder key that is not 32 bytes'
  if (e.signature?.byteLength !== SIGNATURE_BYTES) return 'a signature that is not 64 bytes'
  if (!Number.isSafeInteger(e.size) || e.size < 0 || e.size > MAX_FILE_SIZE) return `size ${e.size} out of range`
  if (typeof e.group !== 'string') return 'no group'
  let bytes = Buffer.byteLength(e.group)
  if (bytes > MAX_BUILD_GROUP_BYTES) return `a group of ${bytes} bytes (at most ${MAX_BUILD_GROUP_BYTES})`
  const keys = Object.keys(e.fields ?? {})
  if (keys.length > MAX_BUILD_FIELDS) return `${keys.length} fields (at most ${MAX_BUILD_FIELDS})`
  for (const key of keys) {
    if (!KEY.test(key)) return `a field key ${JSON.stringify(key.slice(0, 70))} that is no Packages key`
    const value = e.fields[key]
    if (typeof value !== 'string') return `field ${key} is not a string`
    bytes += key.length + Buffer.byteLength(value)
  }
  if (bytes > MAX_BUILD_BYTES) return `${bytes} bytes of fields and group (at most ${MAX_BUILD_BYTES})`
  return null
}

function u32 (n: number): Buffer {
  const b = Buffer.allocUnsafe(4)
  b.writeUInt32BE(n)
  return b
}

/** A string's UTF-8 bytes after their u32 length. */
function counted (text: string): Buffer[] {
  const b = Buffer.from(text)
  return [u32(b.byteLength), b]
}

/**
 * The bytes a builder signs: a domain tag, then every field of the entry but
 * the signature, in a fixed order (see BuildEntry in protocols/distswarm.proto).
 */
export function buildSigningPayload (e: Omit<BuildEntry, 'signature'>): Buffer {
  const size = Buffer.allocUnsafe(8)
  size.writeBigUInt64BE(BigInt(e.size))
  const keys = sortedKeys(e.fields)
  const parts = [DOMAIN, e.blake2b, size, ...counted(e.group), u32(keys.length)]
  for (const key of keys) parts.push(...counted(key), ...counted(e.fields[key]!))
  parts.push(e.builder)
  return Buffer.concat(parts)
}

/** An upper estimate of an entry's bytes in a Builds message, for a sender cutting its batches. */
export function buildWireBytes (e: BuildEntry): number {
  let n = 200 + Buffer.byteLength(e.group)
  for (const key of Object.keys(e.fields)) n += 16 + key.length + Buffer.byteLength(e.fields[key]!)
  return n
}
