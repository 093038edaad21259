import { lstat, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { isValidName } from '@distswarm/protocol'

/** Portage's in-progress download suffix (`${FILE}` of FETCHCOMMAND). */
const DOWNLOAD_SUFFIX = '.__download__'
/** Portage renames a file that failed its checksum to `<name>._checksum_failure_.<random>`. */
const CHECKSUM_FAILURE = '._checksum_failure_.'

/** True for a name that can be a finished distfile: not a dot-file, not one of Portage's temporaries. */
export function isDistfileName (name: string): boolean {
  return isValidName(name) && !name.endsWith(DOWNLOAD_SUFFIX) && !name.includes(CHECKSUM_FAILURE)
}

export interface FoundFile {
  name: string
  path: string
  size: number
  mtimeMs: number
  dev: number
  ino: number
}

/**
 * Lists the finished distfiles of a flat directory: regular files only, never
 * symlinks: Portage links RO-dir files into DISTDIR, and a link could point
 * anywhere on the box, so following one could serve a file that is no distfile.
 * A directory that does not exist yields nothing.
 */
export async function scanDir (dir: string): Promise<FoundFile[]> {
  let names: string[]
  try {
    names = await readdir(dir)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw err
  }
  const found: FoundFile[] = []
  for (const name of names.sort()) {
    if (!isDistfileName(name)) continue
    const path = join(dir, name)
    const st = await lstat(path).catch(() => null)
    if (!st?.isFile()) continue
    found.push({ name, path, size: st.size, mtimeMs: st.mtimeMs, dev: st.dev, ino: st.ino })
  }
  return found
}
