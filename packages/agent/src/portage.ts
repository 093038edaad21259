/**
 * What Portage says of this box, for the defaults of `pkgdir` and `chost`:
 * `portageq envvar` (Portage's own view: make.conf over the profile), run
 * once, at start, and only when an option is left to its default.
 */
import { execFile } from 'node:child_process'
import { stat } from 'node:fs/promises'

/** portageq starts a Python interpreter and reads the profile: a second or two. */
const PORTAGEQ_TIMEOUT_MS = 15_000
export const DEFAULT_PKGDIR = '/var/cache/binpkgs'

export interface PortageView {
  pkgdir: string | null
  chost: string | null
  /** why Portage could not be asked (not installed, failed), null when it answered */
  problem: string | null
}

/** PKGDIR and CHOST as Portage sees them; nulls and a problem when portageq is missing or fails. */
export function askPortage (): Promise<PortageView> {
  return new Promise((resolve) => {
    execFile('portageq', ['envvar', 'PKGDIR', 'CHOST'], { timeout: PORTAGEQ_TIMEOUT_MS, maxBuffer: 64 * 1024 }, (err, stdout) => {
      if (err) {
        const code = (err as NodeJS.ErrnoException).code
        resolve({ pkgdir: null, chost: null, problem: code === 'ENOENT' ? 'Portage is not installed (no portageq)' : `portageq failed: ${err.message.split('\n')[0]}` })
        return
      }
      const [pkgdir, chost] = stdout.split('\n').map((l) => l.trim())
      resolve({ pkgdir: pkgdir?.startsWith('/') ? pkgdir : null, chost: chost && /^[A-Za-z0-9_][A-Za-z0-9_.+-]*$/.test(chost) ? chost : null, problem: null })
    })
  })
}

/** Portage's PKGDIR when it is a directory: [it], else []. */
export async function defaultPkgdirs (view: PortageView): Promise<string[]> {
  const dir = view.pkgdir ?? DEFAULT_PKGDIR
  const st = await stat(dir).catch(() => null)
  return st?.isDirectory() === true ? [dir] : []
}
