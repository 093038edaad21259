import { lstat, opendir, unlink } from 'node:fs/promises'
import { isValidName, type Logger } from '@distswarm/protocol'

/** Portage's in-progress download suffix (`${FILE}` of FETCHCOMMAND). */
export const DOWNLOAD_SUFFIX = '.__download__'
/** Portage renames a file that failed its checksum to `<name>._checksum_failure_.<random>`. */
const CHECKSUM_FAILURE = '._checksum_failure_.'

/** True for a name that can be a finished distfile: not a dot-file, not one of Portage's temporaries. */
export function isDistfileName (name: string): boolean {
  return isValidName(name) && !name.endsWith(DOWNLOAD_SUFFIX) && !name.includes(CHECKSUM_FAILURE)
}

/**
 * What decides whether a file must be hashed again. mtime is kept in
 * nanoseconds as the filesystem reports it (stat with bigint): with
 * milliseconds, a same-size rewrite within one millisecond of the previous
 * write would look unchanged, and the extra precision costs nothing. ctime is
 * left out on purpose: chmod/chown (Portage fixes distfile permissions) and
 * link(2) change it without changing a byte. A rewrite that keeps the inode
 * and size and restores the mtime (touch -r) is not noticed, as with rsync.
 * Note: st_dev of btrfs subvolumes may differ across reboots; such a box
 * re-hashes once after the reboot.
 */
export interface StatKey {
  dev: bigint
  ino: bigint
  size: bigint
  mtimeNs: bigint
}

export function sameStat (a: StatKey, b: StatKey): boolean {
  return a.ino === b.ino && a.mtimeNs === b.mtimeNs && a.size === b.size && a.dev === b.dev
}

/** A regular file as a dir listing found it. */
export interface ListedFile {
  name: string
  stat: StatKey
}

/** The StatKey of a regular file at `path`, never following a symlink; null for anything else or nothing. */
export async function statFile (path: string): Promise<StatKey | null> {
  const st = await lstat(path, { bigint: true }).catch(() => null)
  if (!st?.isFile()) return null
  return { dev: st.dev, ino: st.ino, size: st.size, mtimeNs: st.mtimeNs }
}

/**
 * False when `dir` holds nothing but subdirs (or does not exist): nothing a
 * listing would find, so no hash thread need start for it. True otherwise,
 * also when it cannot be read: the listing reports why.
 */
export async function mayHoldFiles (dir: string): Promise<boolean> {
  try {
    // The loop closes the dir however it ends.
    for await (const e of await opendir(dir)) if (!e.isDirectory()) return true
    return false
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ENOENT'
  }
}

/**
 * The finished distfiles of a flat dir's listing (HashPool.scan), by name.
 * The listing has regular files only, never symlinks: Portage links RO-dir
 * files into DISTDIR, and a link could point anywhere on the box, so
 * following one could serve a file that is no distfile.
 */
export function pickDistfiles (listed: ListedFile[]): ListedFile[] {
  return listed.filter((f) => isDistfileName(f.name)).sort(byName)
}

/** Orders by name, code unit by code unit (not by locale): the one order of file names everywhere. */
export function byName (a: { name: string }, b: { name: string }): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0
}

/**
 * Deletes the file at `path` unless it is gone or another file took its name
 * since it was looked at (`seen`: its dev and inode then; null: any file).
 * True when deleted; an unlink that fails is logged (warn) and false.
 */
export async function unlinkIfSame (path: string, seen: { dev: bigint, ino: bigint } | null, logger: Logger): Promise<boolean> {
  const now = await statFile(path)
  if (now === null) return false
  if (seen !== null && (now.dev !== seen.dev || now.ino !== seen.ino)) return false
  try {
    await unlink(path)
  } catch (err) {
    logger.warn('file.remove-failed', { path, error: (err as Error).message })
    return false
  }
  return true
}
