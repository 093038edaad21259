/**
 * One binary package as a stanza describes it, checked: a CPV Portage would
 * accept, a PATH that stays inside PKGDIR, numbers that are numbers and
 * hashes that are hex. Nothing here touches the disk.
 */
import { BinpkgError } from './errors.js'
import type { Fields } from './index-file.js'

export type BinpkgFormat = 'gpkg' | 'xpak'

export interface Cpv {
  category: string
  /** Package name. */
  pn: string
  /** Version with revision: `11.4.5-r1`. */
  pvr: string
  /** `pn-pvr`. */
  pf: string
}

export interface Build {
  cpv: string
  parsed: Cpv
  /** Null when the stanza has none (Portage without binpkg-multi-instance). */
  buildId: number | null
  size: number
  /** Relative to PKGDIR. */
  path: string
  format: BinpkgFormat
  md5: string | null
  sha1: string | null
  /** Seconds; null when the stanza has none. */
  mtime: number | null
  /** The stanza's other fields, as read (USE, IUSE, SLOT, *DEPEND, …). */
  fields: Fields
}

const CATEGORY = /^[A-Za-z0-9_][A-Za-z0-9+_.-]*$/
// PMS: a name must not end in something that looks like a version.
const PF = /^([A-Za-z0-9_][A-Za-z0-9+_-]*?)-([0-9]+(?:\.[0-9]+)*[a-z]?(?:_(?:alpha|beta|pre|rc|p)[0-9]*)*(?:-r[0-9]+)?)$/
const MAX_PATH = 1024
const MD5 = /^[0-9a-f]{32}$/
const SHA1 = /^[0-9a-f]{40}$/
const DIGITS = /^\d{1,15}$/

export function parseCpv (cpv: string): Cpv | null {
  const slash = cpv.indexOf('/')
  if (slash === -1 || cpv.length > 256) return null
  const category = cpv.slice(0, slash)
  const pf = cpv.slice(slash + 1)
  const m = PF.exec(pf)
  if (!CATEGORY.test(category) || m === null) return null
  return { category, pn: m[1]!, pvr: m[2]!, pf }
}

/** Why a PATH from an index may not be joined to PKGDIR, or null. */
export function pathProblem (path: string): string | null {
  if (path === '' || path.length > MAX_PATH) return 'an empty or over-long PATH'
  if (path.startsWith('/')) return 'an absolute PATH'
  if (path.includes('\\') || path.includes('\0')) return 'a PATH with a backslash or NUL'
  for (const part of path.split('/')) {
    if (part === '' || part === '.' || part === '..') return `a PATH with a ${JSON.stringify(part)} segment`
  }
  return null
}

export function formatOf (path: string): BinpkgFormat | null {
  if (path.endsWith('.gpkg.tar')) return 'gpkg'
  if (path.endsWith('.tbz2') || path.endsWith('.xpak')) return 'xpak'
  return null
}

function wholeNumber (fields: Fields, key: string, cpv: string, required: boolean): number | null {
  const text = fields[key]
  if (text === undefined || text === '') {
    if (required) throw BinpkgError.BAD_BUILD(cpv, `no ${key}`)
    return null
  }
  if (!DIGITS.test(text)) throw BinpkgError.BAD_BUILD(cpv, `${key} ${JSON.stringify(text.slice(0, 32))} is not a whole number`)
  return Number(text)
}

function hash (fields: Fields, key: string, pattern: RegExp, cpv: string): string | null {
  const text = fields[key]
  if (text === undefined || text === '') return null
  const lower = text.toLowerCase()
  if (!pattern.test(lower)) throw BinpkgError.BAD_BUILD(cpv, `${key} is not a hex digest of the right length`)
  return lower
}

/** A checked Build from a stanza; throws ERR_BAD_BUILD naming what is wrong. */
export function buildFromStanza (fields: Fields): Build {
  const cpv = fields.CPV ?? ''
  const parsed = parseCpv(cpv)
  if (parsed === null) throw BinpkgError.BAD_BUILD(cpv || '(no CPV)', 'not a category/name-version Portage would accept')
  const buildId = wholeNumber(fields, 'BUILD_ID', cpv, false)
  const size = wholeNumber(fields, 'SIZE', cpv, true)!
  // Without PATH, Portage looks for the old layout's file.
  const path = fields.PATH || `${cpv}.tbz2`
  const problem = pathProblem(path)
  if (problem !== null) throw BinpkgError.BAD_BUILD(cpv, problem)
  const format = formatOf(path)
  if (format === null) throw BinpkgError.BAD_BUILD(cpv, 'a PATH that is neither .gpkg.tar nor .xpak/.tbz2')
  return {
    cpv,
    parsed,
    buildId,
    size,
    path,
    format,
    md5: hash(fields, 'MD5', MD5, cpv),
    sha1: hash(fields, 'SHA1', SHA1, cpv),
    mtime: wholeNumber(fields, 'MTIME', cpv, false),
    fields
  }
}
