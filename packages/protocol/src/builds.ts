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

/**
 * The entry's keys in the order of the signed encoding and of the wire:
 * sorted by UTF-16 code units, which for the ASCII keys an entry may have
 * (buildProblem refuses others) is the order of their bytes.
 */
export function sortedKeys (fields: Record<string, string>): string[] {
  return Object.keys(fields).sort()
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

/**
 * The bytes a builder signs: a domain tag, then every field of the entry but
 * the signature, in a fixed order (see BuildEntry in protocols/distswarm.proto).
 * Written into one buffer: a receiver computes it for every entry it gets.
 */
export function buildSigningPayload (e: Omit<BuildEntry, 'signature'>): Buffer {
  const keys = sortedKeys(e.fields)
  let length = DOMAIN.byteLength + e.blake2b.byteLength + 8 + 4 + Buffer.byteLength(e.group) + 4 + e.builder.byteLength
  for (const key of keys) length += 8 + Buffer.byteLength(key) + Buffer.byteLength(e.fields[key]!)
  const out = Buffer.allocUnsafe(length)
  let at = DOMAIN.copy(out, 0)
  at += e.blake2b.copy(out, at)
  at = out.writeBigUInt64BE(BigInt(e.size), at)
  const text = (value: string): void => {
    const n = out.write(value, at + 4)
    out.writeUInt32BE(n, at)
    at += 4 + n
  }
  text(e.group)
  at = out.writeUInt32BE(keys.length, at)
  for (const key of keys) {
    text(key)
    text(e.fields[key]!)
  }
  at += e.builder.copy(out, at)
  return at === length ? out : out.subarray(0, at)
}

/** An upper estimate of an entry's bytes in a Builds message, for a sender cutting its batches. */
export function buildWireBytes (e: BuildEntry): number {
  let n = 200 + Buffer.byteLength(e.group)
  for (const key of Object.keys(e.fields)) n += 16 + key.length + Buffer.byteLength(e.fields[key]!)
  return n
}
