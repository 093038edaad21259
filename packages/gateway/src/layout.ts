/**
 * The mirror's layout (GLEP 75) and how a `/distfiles/…` URL path maps to a
 * file key. No part of a URL ever becomes a filesystem path: a request is a
 * BLAKE2B digest or a plain basename, looked up in the agent's inventory.
 */
import { isHexDigest, isValidName } from '@distswarm/protocol'

/**
 * What Portage reads at `<mirror>/distfiles/layout.conf`: content-hash
 * first (Portage ≥ 3.0.15, files whose Manifest entry has BLAKE2B), flat
 * for the rest (older Portage, or an entry without BLAKE2B).
 */
export const LAYOUT_CONF = '[structure]\n0=content-hash BLAKE2B 8:16\n1=flat\n'

/** The cutoffs, in bits, of `content-hash BLAKE2B 8:16`. */
export const CONTENT_HASH_CUTOFFS: readonly number[] = [8, 16]

/** A file asked for: by its BLAKE2B (128 lowercase hex digits), or by its name. */
export type FileKey = { blake2b: string } | { name: string }

/**
 * The path Portage builds under `distfiles/` for a content-hash layout: the
 * hex digest cut at each cutoff (in bits, so 4 bits a hex digit) into
 * directories, then the whole digest. `8:16` gives `ab/cdef/abcdef…`.
 */
export function contentHashPath (hex: string, cutoffs: readonly number[] = CONTENT_HASH_CUTOFFS): string {
  const dirs: string[] = []
  let at = 0
  for (const bits of cutoffs) {
    const digits = bits / 4
    dirs.push(hex.slice(at, at + digits))
    at += digits
  }
  return [...dirs, hex].join('/')
}

export type DistfilesRequest =
  | { kind: 'layout' }
  | { kind: 'file', key: FileKey }
  | { kind: 'bad', status: 400 | 404, reason: string }

/** Decodes one path segment; null when its percent-encoding is broken. */
function decodeSegment (s: string): string | null {
  try {
    return decodeURIComponent(s)
  } catch {
    return null
  }
}

/**
 * Reads the path after `/distfiles/` (still percent-encoded, no query).
 * Segments are split before decoding, so an encoded slash stays inside its
 * segment, where a name check refuses it; a decoded `..`, NUL or control
 * character fails the same check.
 */
export function parseDistfilesPath (rest: string): DistfilesRequest {
  if (rest === 'layout.conf') return { kind: 'layout' }
  const raw = rest.split('/')
  const segments = raw.map(decodeSegment)
  if (segments.some((s) => s === null)) return { kind: 'bad', status: 400, reason: 'malformed percent-encoding' }
  const parts = segments as string[]
  if (parts.length === 1) {
    const name = parts[0]!
    if (name === '') return { kind: 'bad', status: 404, reason: 'no index of distfiles' }
    if (!isValidName(name)) return { kind: 'bad', status: 400, reason: 'not a plain file name' }
    return { kind: 'file', key: { name } }
  }
  if (parts.length === CONTENT_HASH_CUTOFFS.length + 1) {
    const hex = parts[parts.length - 1]!.toLowerCase()
    if (!isHexDigest(hex)) return { kind: 'bad', status: 400, reason: 'not a BLAKE2B digest (128 hex digits)' }
    if (contentHashPath(hex) !== parts.join('/').toLowerCase()) return { kind: 'bad', status: 400, reason: 'directories do not match the digest (content-hash BLAKE2B 8:16)' }
    return { kind: 'file', key: { blake2b: hex } }
  }
  return { kind: 'bad', status: 400, reason: 'neither a file name nor a content-hash path' }
}
