import { ProtocolError } from './errors.js'
import { BLAKE2B_BYTES, MAX_NAME_BYTES } from './limits.js'

// C0 controls, DEL and C1 controls: never part of a distfile name.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/
// Half a surrogate pair is no character: it reaches the disk and the wire as U+FFFD, another name.
const LONE_SURROGATE = /\p{Cs}/u

/**
 * Why `name` is not a safe distfile name, or null when it is one: a plain
 * basename that can never become a path outside the directory it is put in.
 */
export function nameProblem (name: string): string | null {
  if (name.length === 0) return 'empty'
  if (Buffer.byteLength(name) > MAX_NAME_BYTES) return `longer than ${MAX_NAME_BYTES} bytes`
  if (name === '.' || name === '..') return 'a directory reference'
  if (name.includes('/')) return 'contains "/"'
  if (CONTROL.test(name)) return 'contains a control character'
  if (LONE_SURROGATE.test(name)) return 'not well-formed Unicode'
  if (name.startsWith('.')) return 'starts with "."'
  return null
}

export function isValidName (name: string): boolean {
  return nameProblem(name) === null
}

/** Throws ProtocolError ERR_INVALID_NAME unless `name` is a safe basename. */
export function assertValidName (name: string): string {
  const problem = nameProblem(name)
  if (problem !== null) throw ProtocolError.INVALID_NAME(name, problem)
  return name
}

const HEX_DIGEST = new RegExp(`^[0-9a-f]{${BLAKE2B_BYTES * 2}}$`)

/** True for a lowercase hex BLAKE2B-512 (or SHA512) digest. */
export function isHexDigest (text: string): boolean {
  return HEX_DIGEST.test(text)
}

/** Parses a hex digest (either case) into bytes; throws ERR_INVALID_DIGEST. */
export function parseHexDigest (text: string): Buffer {
  const lower = text.toLowerCase()
  if (!isHexDigest(lower)) throw ProtocolError.INVALID_DIGEST(`expected ${BLAKE2B_BYTES * 2} hex characters, got ${JSON.stringify(text.slice(0, 140))}`)
  return Buffer.from(lower, 'hex')
}

export function toHex (bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex')
}

/** "host:port", with brackets around an IPv6 host: how every address is shown and logged. */
export const hostPort = (host: string, port: number): string => host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`
