/**
 * Portage's `Packages` index: `KEY: value` lines, a blank line ending the
 * header and each stanza. Read as Portage reads it (the first `:` splits a
 * line, one character after it is dropped, a stanza without `CPV` is
 * skipped), but stricter where Portage would let a broken or hostile file
 * through: a duplicate key, a control character, an over-long value or a
 * line that is not UTF-8 skips its stanza with a reason; a header without
 * `TIMESTAMP` or with a `VERSION` above 0 refuses the whole file.
 */
import { TextDecoder } from 'node:util'
import { BinpkgError } from './errors.js'

/** One stanza (or the header): keys as written, values without the separator. */
export type Fields = Record<string, string>

export interface IndexProblem {
  /** 1-based line where the stanza (or header) starts. */
  line: number
  cpv: string | null
  reason: string
}

export interface PackagesIndex {
  header: Fields
  /** Stanzas with a CPV that passed every check, in file order. */
  stanzas: Fields[]
  /** Stanzas skipped, each with why. */
  problems: IndexProblem[]
}

export interface ReadLimits {
  /** Bytes of the whole file. */
  maxBytes?: number
  /** Characters of one value (DEPEND strings run to a few KiB). */
  maxValue?: number
  /** Keys in one stanza. */
  maxKeys?: number
  /** Stanzas in the file. */
  maxStanzas?: number
}

export const MAX_INDEX_BYTES = 256 * 1024 * 1024
export const MAX_VALUE_CHARS = 64 * 1024
export const MAX_KEYS = 128
export const MAX_STANZAS = 200_000
/** Header and stanza keys: Portage's are upper case with underscores; `repository` is written `REPO`. */
const KEY = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/
// Tab is allowed: nothing Portage writes holds one, but it is harmless in a value.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000a-\u001f\u007f]/

/** Why `value` may not stand in an index, or null: it would split a line or smuggle a key. */
export function valueProblem (value: string, max = MAX_VALUE_CHARS): string | null {
  if (value.length > max) return `a value of ${value.length} characters (at most ${max})`
  if (CONTROL.test(value)) return 'a value with a control character (a newline would inject a key)'
  return null
}

export function isValidKey (key: string): boolean {
  return KEY.test(key)
}

/** Reads a Packages file. Throws ERR_PACKAGES_INVALID when the file as a whole cannot be used. */
export function readPackagesIndex (data: Buffer | string, limits: ReadLimits = {}): PackagesIndex {
  const maxBytes = limits.maxBytes ?? MAX_INDEX_BYTES
  const maxValue = limits.maxValue ?? MAX_VALUE_CHARS
  const maxKeys = limits.maxKeys ?? MAX_KEYS
  const maxStanzas = limits.maxStanzas ?? MAX_STANZAS
  const bytes = typeof data === 'string' ? Buffer.from(data) : data
  if (bytes.length > maxBytes) throw BinpkgError.INDEX_INVALID(`${bytes.length} bytes, more than the ${maxBytes} allowed`)

  const decoder = new TextDecoder('utf-8', { fatal: true })
  // A blank first line is an empty header to Portage, not a skipped line.
  if (bytes[0] === 0x0a) throw BinpkgError.INDEX_INVALID('the header is empty')
  const blocks = splitBlocks(bytes)
  const first = blocks.shift()
  if (first === undefined) throw BinpkgError.INDEX_INVALID('empty: no header')
  const header = readBlock(first, decoder, maxValue, maxKeys)
  if (typeof header === 'string') throw BinpkgError.INDEX_INVALID(`header: ${header}`)
  const version = header.VERSION
  if (version === undefined || !/^-?\d+$/.test(version) || Number(version) > 0) {
    throw BinpkgError.INDEX_INVALID(`header VERSION ${JSON.stringify(version ?? null)}: Portage reads only VERSION 0 or below`)
  }
  if (header.TIMESTAMP === undefined || !/^\d+$/.test(header.TIMESTAMP)) {
    throw BinpkgError.INDEX_INVALID(`header TIMESTAMP ${JSON.stringify(header.TIMESTAMP ?? null)}: a whole number of seconds is required`)
  }

  const stanzas: Fields[] = []
  const problems: IndexProblem[] = []
  for (const block of blocks) {
    if (stanzas.length + problems.length >= maxStanzas) {
      problems.push({ line: block.line, cpv: null, reason: `more than ${maxStanzas} stanzas; the rest are ignored` })
      break
    }
    const fields = readBlock(block, decoder, maxValue, maxKeys)
    if (typeof fields === 'string') {
      problems.push({ line: block.line, cpv: cpvIn(block, decoder), reason: fields })
    } else if (fields.CPV === undefined || fields.CPV === '') {
      problems.push({ line: block.line, cpv: null, reason: 'no CPV' })
    } else {
      stanzas.push(fields)
    }
  }
  return { header, stanzas, problems }
}

interface Block { line: number, lines: Buffer[] }

/** Splits at blank lines; runs of blank lines count as one (Portage stops a stanza at the first). */
function splitBlocks (bytes: Buffer): Block[] {
  const blocks: Block[] = []
  let current: Block | null = null
  let start = 0
  let lineNo = 1
  while (start < bytes.length) {
    let end = bytes.indexOf(0x0a, start)
    if (end === -1) end = bytes.length
    const line = bytes.subarray(start, end)
    if (line.length === 0) {
      if (current) blocks.push(current)
      current = null
    } else {
      current ??= { line: lineNo, lines: [] }
      current.lines.push(line)
    }
    start = end + 1
    lineNo++
  }
  if (current) blocks.push(current)
  return blocks
}

/** A block's fields, or why it is refused. */
function readBlock (block: Block, decoder: TextDecoder, maxValue: number, maxKeys: number): Fields | string {
  const fields: Fields = Object.create(null) as Fields
  let count = 0
  for (const raw of block.lines) {
    let text: string
    try {
      text = decoder.decode(raw)
    } catch {
      return 'a line that is not UTF-8'
    }
    const colon = text.indexOf(':')
    if (colon === -1) continue // Portage skips such lines too
    const key = text.slice(0, colon)
    const value = text.slice(colon + 2)
    if (!isValidKey(key)) return `a key ${JSON.stringify(key.slice(0, 64))} that is not a plain name`
    if (Object.hasOwn(fields, key)) return `key ${key} twice`
    const problem = valueProblem(value, maxValue)
    if (problem !== null) return `${key}: ${problem}`
    if (++count > maxKeys) return `more than ${maxKeys} keys`
    fields[key] = value
  }
  return fields
}

/** The CPV of a refused stanza, if one can be read, for the problem report. */
function cpvIn (block: Block, decoder: TextDecoder): string | null {
  for (const raw of block.lines) {
    if (raw.subarray(0, 5).toString('latin1') !== 'CPV: ') continue
    try {
      const cpv = decoder.decode(raw.subarray(5))
      return valueProblem(cpv, 256) === null ? cpv : null
    } catch {
      return null
    }
  }
  return null
}

/**
 * Writes an index as Portage does: header keys sorted, then each stanza with
 * its keys sorted; empty values left out. A key or value that could break
 * the document throws ERR_PACKAGES_VALUE: the caller has validated what it
 * passes, so this is the last guard against an injected line.
 */
export function writePackagesIndex (header: Fields, stanzas: readonly Fields[]): string {
  let out = block(header)
  for (const s of stanzas) out += block(s)
  return out
}

/** One block of a Packages file (the header or a stanza): its keys sorted, empty values left out, a blank line after. */
export function block (fields: Fields): string {
  let out = ''
  for (const key of Object.keys(fields).sort()) {
    const value = fields[key]!
    if (value === '') continue
    if (!isValidKey(key)) throw BinpkgError.VALUE(key, 'not a plain key name')
    const problem = valueProblem(value)
    if (problem !== null) throw BinpkgError.VALUE(key, problem)
    out += `${key}: ${value}\n`
  }
  return out + '\n'
}
