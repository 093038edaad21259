import { join } from 'node:path'
import { forEachBounded, toHex, type FileEntry, type Logger } from '@distswarm/protocol'
import { LOOK_AGAIN, type HashOutcome, type HashPool } from './pool.js'
import { byName, pickDistfiles, statFile, unlinkIfSame } from './scan.js'

/** Reads of one file that keep finding it written to before it is called unreadable. */
const HASH_ATTEMPTS = 3

/** A cache file whose bytes are not what they should be. */
export interface BadFile {
  path: string
  name: string
  /** hex BLAKE2B it should have (the index's record, or the Manifest's); null when nothing says */
  expected: string | null
  /** hex BLAKE2B of its bytes now; null when they could not be read */
  actual: string | null
  /** changed: not the bytes the index recorded; manifest: contradicts the Manifest entry of its name; unreadable: could not be read whole */
  reason: 'changed' | 'manifest' | 'unreadable'
  /** for people */
  detail: string
  /** deleted from the cache dir (verify with `remove`) */
  removed: boolean
}

export interface VerifyReport {
  cacheDir: string
  /** files re-hashed */
  checked: number
  /** bytes read to hash them */
  bytes: number
  bad: BadFile[]
}

export interface VerifyOptions {
  /** Delete each bad file from the cache dir, and so withdraw it from peers. Default false: report only, change nothing. */
  remove?: boolean
  /**
   * A second check of a file by its actual digests (the agent's Manifest):
   * why it is not the file its name stands for, or null. Default: none.
   */
  judge?: (file: FileEntry) => { expected: string | null, detail: string } | null
}

/** What verify needs of the Store. */
export interface VerifyContext {
  cacheDir: string
  pool: HashPool
  /** Files hashed at once. */
  window: number
  /** What the index recorded for a path, if it tracks it. */
  recorded: (path: string) => FileEntry | undefined
  /** A path deleted by verify: drop it from the inventory now, not at its fs event. */
  forget: (path: string) => void
  logger: Logger
}

/** Hashes one listed file, reading again when it changes under the read; null when it is gone. */
async function hashListed (pool: HashPool, path: string): Promise<HashOutcome | null> {
  let out: HashOutcome | null = null
  for (let attempt = 0; attempt < HASH_ATTEMPTS; attempt++) {
    const stat = await statFile(path)
    if (stat === null) return null
    out = await pool.hash(path, { dev: stat.dev, ino: stat.ino })
    if (out.ok || out.code !== 'ECHANGED') break
  }
  // Gone or no longer a file: nothing to verify. Still changing after every attempt: reported unreadable.
  if (out && !out.ok && out.code !== 'ECHANGED' && LOOK_AGAIN.has(out.code)) return null
  return out
}

/**
 * Re-hashes every file in the cache dir, whatever its stat says, and
 * compares it with the digests the index recorded and with `judge`. Only
 * the cache dir: files in distdirs are Portage's, never deleted here.
 */
export async function verifyCacheDir (ctx: VerifyContext, options: VerifyOptions = {}): Promise<VerifyReport> {
  const report: VerifyReport = { cacheDir: ctx.cacheDir, checked: 0, bytes: 0, bad: [] }
  const listed = pickDistfiles(await ctx.pool.scan(ctx.cacheDir))
  await forEachBounded(listed, ctx.window, async ({ name }) => {
    const path = join(ctx.cacheDir, name)
    const out = await hashListed(ctx.pool, path)
    if (out === null) return
    report.checked++
    const recorded = ctx.recorded(path)
    const expected = recorded ? toHex(recorded.blake2b) : null
    let bad: Omit<BadFile, 'removed'> | null = null
    if (!out.ok) {
      bad = { path, name, expected, actual: null, reason: 'unreadable', detail: `${out.code}: ${out.message}` }
    } else {
      report.bytes += out.size
      const actual = toHex(out.blake2b)
      const changed = recorded !== undefined &&
        (!recorded.blake2b.equals(out.blake2b) || (recorded.sha512.byteLength > 0 && !recorded.sha512.equals(out.sha512)))
      const judged = changed ? null : options.judge?.({ name, size: out.size, blake2b: out.blake2b, sha512: out.sha512 }) ?? null
      if (changed) bad = { path, name, expected, actual, reason: 'changed', detail: 'its bytes changed since they were verified' }
      else if (judged) bad = { path, name, expected: judged.expected, actual, reason: 'manifest', detail: judged.detail }
    }
    if (bad === null) return
    ctx.logger.warn('verify.bad-file', { path, reason: bad.reason, detail: bad.detail })
    report.bad.push({ ...bad, removed: options.remove === true && await remove(ctx, path, out) })
  })
  report.bad.sort(byName)
  return report
}

/** Deletes a bad file, unless another file took its name since it was read. */
async function remove (ctx: VerifyContext, path: string, read: HashOutcome): Promise<boolean> {
  if (!await unlinkIfSame(path, read.ok ? read.stat : null, ctx.logger)) return false
  ctx.forget(path)
  return true
}
