import { nameProblem } from '@distswarm/protocol'

/** Manifest text: DIST lines to entries, or to problems that say what is wrong with them. */

/** One distfile as a Manifest's DIST line describes it. */
export interface ManifestEntry {
  name: string
  size: number
  /** Lowercase hex (128 characters), or null when the entry has none. */
  blake2b: string | null
  sha512: string | null
  /** Other hashes (SHA256, WHIRLPOOL…) by name, lowercase hex; absent in the common case. */
  other?: Record<string, string>
}

/** What is wrong; stable, unlike `reason`, which is for people. */
export type ManifestProblemCode =
  /** DIST lines: */
  | 'ERR_TOO_FEW_FIELDS' | 'ERR_ODD_HASH_FIELDS' | 'ERR_INVALID_NAME' | 'ERR_BAD_SIZE' | 'ERR_BAD_HASH'
  | 'ERR_DUPLICATE_HASH'
  /** A second DIST line for a name, which cannot be the same file as the first. */
  | 'ERR_CONFLICT'
  /** Files and dirs (line 0): */
  | 'ERR_NO_REPO' | 'ERR_UNREADABLE' | 'ERR_NOT_A_FILE' | 'ERR_TOO_LARGE'

/** A line that was skipped (`line` is 1-based), or a file or dir that was not read (`line` is 0). */
export interface ManifestProblem {
  file: string
  line: number
  code: ManifestProblemCode
  reason: string
}

export interface Bad {
  code: ManifestProblemCode
  reason: string
}

export function bad (code: ManifestProblemCode, reason: string): Bad {
  return { code, reason }
}

export interface ManifestParse {
  entries: ManifestEntry[]
  problems: ManifestProblem[]
}

// Hex digits per algorithm, for the algorithms Portage knows. Others: any even length.
const HEX_LENGTHS = new Map([
  ['BLAKE2B', 128], ['BLAKE2S', 64], ['MD5', 32], ['RMD160', 40], ['SHA1', 40], ['SHA256', 64],
  ['SHA512', 128], ['SHA3_256', 64], ['SHA3_512', 128], ['STREEBOG256', 64], ['STREEBOG512', 128],
  ['WHIRLPOOL', 128]
])
const HASH_NAME = /^[A-Z][A-Z0-9_]*$/
const HEX = /^[0-9a-fA-F]+$/
const DIGITS = /^[0-9]+$/
const SPACE = /\s+/

/** Quotes a token of a bad line for a problem, cut short: a line may be any length. */
function show (token: string): string {
  return JSON.stringify(token.length > 40 ? `${token.slice(0, 40)}…` : token)
}

/** One line: an entry, a reason it is malformed, or null when it is no DIST line. */
function parseLine (raw: string): ManifestEntry | Bad | null {
  const line = raw.trim()
  if (!line.startsWith('DIST')) return null
  // Split on any whitespace, as Portage does (str.split()).
  const fields = line.split(SPACE)
  if (fields[0] !== 'DIST') return null
  if (fields.length < 5) return bad('ERR_TOO_FEW_FIELDS', `too few fields: expected DIST <name> <size> <hash> <hex>..., got ${fields.length}`)
  if ((fields.length - 3) % 2 !== 0) return bad('ERR_ODD_HASH_FIELDS', `odd number of hash fields (${fields.length - 3}): each hash name needs a value`)
  const name = fields[1]!
  const why = nameProblem(name)
  if (why !== null) return bad('ERR_INVALID_NAME', `invalid file name ${show(name)}: ${why}`)
  const sizeText = fields[2]!
  const size = Number(sizeText)
  if (!DIGITS.test(sizeText)) return bad('ERR_BAD_SIZE', `size ${show(sizeText)} is not a non-negative integer`)
  if (!Number.isSafeInteger(size)) return bad('ERR_BAD_SIZE', `size ${show(sizeText)} is too large`)
  const entry: ManifestEntry = { name, size, blake2b: null, sha512: null }
  const seen = new Set<string>()
  for (let i = 3; i < fields.length; i += 2) {
    const algo = fields[i]!
    const hex = fields[i + 1]!
    if (!HASH_NAME.test(algo)) return bad('ERR_BAD_HASH', `invalid hash name ${show(algo)}`)
    if (seen.has(algo)) return bad('ERR_DUPLICATE_HASH', `duplicate ${algo} hash`)
    seen.add(algo)
    const want = HEX_LENGTHS.get(algo)
    if (!HEX.test(hex)) return bad('ERR_BAD_HASH', `${algo} value ${show(hex)} is not hex`)
    if (want !== undefined ? hex.length !== want : hex.length % 2 !== 0) {
      return bad('ERR_BAD_HASH', `${algo} value has ${hex.length} hex digits, expected ${want ?? 'an even number'}`)
    }
    const value = hex.toLowerCase()
    if (algo === 'BLAKE2B') entry.blake2b = value
    else if (algo === 'SHA512') entry.sha512 = value
    else (entry.other ??= {})[algo] = value
  }
  return entry
}

/**
 * Parses one Manifest's text. Only DIST lines matter; other lines are
 * ignored. Never throws: a malformed DIST line becomes a problem and is
 * skipped. A name listed twice is merged when both lines describe the same
 * file; a later line that contradicts an earlier one is a problem.
 */
export function parseManifest (text: string, file: string): ManifestParse {
  const entries: ManifestEntry[] = []
  const problems: ManifestProblem[] = []
  const seen = new Map<string, { index: number, line: number }>()
  let start = 0 // a byte order mark goes with trim(), which parseLine does
  for (let line = 1; start <= text.length; line++) {
    let end = text.indexOf('\n', start)
    if (end === -1) end = text.length
    const parsed = parseLine(text.slice(start, end))
    start = end + 1
    if (parsed === null) continue
    if ('code' in parsed) {
      problems.push({ file, line, ...parsed })
      continue
    }
    const first = seen.get(parsed.name)
    if (first === undefined) {
      seen.set(parsed.name, { index: entries.length, line })
      entries.push(parsed)
      continue
    }
    const merged = combine(entries[first.index]!, parsed)
    if (merged === null) problems.push({ file, line, code: 'ERR_CONFLICT', reason: `contradicts the DIST line ${first.line} for ${show(parsed.name)}` })
    else entries[first.index] = merged
  }
  return { entries, problems }
}

function hashesOf (e: ManifestEntry): Map<string, string> {
  const hashes = new Map<string, string>()
  if (e.blake2b !== null) hashes.set('BLAKE2B', e.blake2b)
  if (e.sha512 !== null) hashes.set('SHA512', e.sha512)
  for (const [algo, hex] of Object.entries(e.other ?? {})) hashes.set(algo, hex)
  return hashes
}

/**
 * The union of two entries for one name when they describe the same file:
 * same size, a hash in common and no common hash that differs. Null
 * otherwise: without a common hash nothing shows they are the same file.
 */
export function combine (a: ManifestEntry, b: ManifestEntry): ManifestEntry | null {
  if (a.size !== b.size) return null
  const hashes = hashesOf(a)
  let common = 0
  for (const [algo, hex] of hashesOf(b)) {
    const mine = hashes.get(algo)
    if (mine === undefined) hashes.set(algo, hex)
    else if (mine !== hex) return null
    else common++
  }
  if (common === 0) return null
  const merged: ManifestEntry = { name: a.name, size: a.size, blake2b: null, sha512: null }
  for (const [algo, hex] of hashes) {
    if (algo === 'BLAKE2B') merged.blake2b = hex
    else if (algo === 'SHA512') merged.sha512 = hex
    else (merged.other ??= {})[algo] = hex
  }
  return merged
}

/**
 * A copy of a string that shares no memory with the text it was cut from:
 * V8 keeps a substring of 13+ characters as a view of its parent, so one kept
 * name would keep its whole Manifest alive. The UTF-8 round trip is exact for
 * text that was decoded from UTF-8, which Manifest text always is here.
 */
export function detach (s: string): string {
  return Buffer.from(s, 'utf8').toString('utf8')
}

/** Problems of a load: the first `max` kept, all counted. */
export class ProblemLog {
  readonly kept: ManifestProblem[] = []
  count = 0

  constructor (private readonly max: number) {}

  add (file: string, line: number, { code, reason }: Bad): void {
    this.count++
    if (this.kept.length < this.max) this.kept.push({ file, line, code, reason: detach(reason) })
  }
}

