/**
 * The GENTOO_MIRRORS line of `distswarm portage-config`: the agent's HTTP
 * gateway first, then the mirrors this box uses now.
 */
import { readdir, readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import type { StatusResult } from '@distswarm/agent'

/** Portage's own default (make.globals), used when no make.conf sets GENTOO_MIRRORS. */
export const DEFAULT_GENTOO_MIRRORS = 'http://distfiles.gentoo.org'
/** The gateway's default address (the agent's `http` option), when no agent answers. */
export const DEFAULT_GATEWAY_URL = 'http://127.0.0.1:49740'

/** make.conf, or each file of a make.conf directory in name order, as Portage reads them. */
async function makeConfTexts (configRoot: string): Promise<string[]> {
  const path = join(configRoot, 'etc/portage/make.conf')
  const st = await stat(path).catch(() => null)
  if (!st) return []
  const files = st.isDirectory() ? (await readdir(path)).filter((n) => !n.startsWith('.') && !n.endsWith('~')).sort().map((n) => join(path, n)) : [path]
  return Promise.all(files.map((f) => readFile(f, 'utf8').catch(() => '')))
}

/** The last GENTOO_MIRRORS assignment in make.conf (quoted or bare), or null. */
export async function currentMirrors (configRoot: string): Promise<string | null> {
  let value: string | null = null
  for (const text of await makeConfTexts(configRoot)) {
    for (const line of text.split('\n')) {
      const m = /^\s*(?:export\s+)?GENTOO_MIRRORS\s*=\s*(?:"([^"]*)"|'([^']*)'|(\S*))\s*(?:#.*)?$/.exec(line)
      if (m) value = (m[1] ?? m[2] ?? m[3] ?? '').trim().split(/\s+/).join(' ')
    }
  }
  return value
}

/** The gateway's URL as a client on this box reaches it: a wildcard bind address is reached through loopback. */
export function gatewayUrl (status: Pick<StatusResult, 'url'> | null): string | null {
  if (status === null) return DEFAULT_GATEWAY_URL
  const url = (status as { url?: string | null }).url
  if (!url) return null
  return url.replace('://0.0.0.0:', '://127.0.0.1:').replace('://[::]:', '://[::1]:')
}

export async function gentooMirrorsLine (status: Pick<StatusResult, 'url'> | null, env: NodeJS.ProcessEnv): Promise<string[]> {
  const url = gatewayUrl(status)
  if (url === null) return ['# (the agent runs without its HTTP gateway, http = "off": no GENTOO_MIRRORS line)']
  const current = (await currentMirrors(env.PORTAGE_CONFIGROOT ?? '/')) ?? DEFAULT_GENTOO_MIRRORS
  const mirrors = [url, ...current.split(' ').filter((m) => m !== '' && m.replace(/\/$/, '') !== url)]
  return [
    '# The agent as the first Gentoo mirror (its layout.conf asks for files by BLAKE2B): a file no peer has is a',
    '# 404 at once and Portage goes on to the next mirror. Portage skips GENTOO_MIRRORS for RESTRICT="mirror" or',
    '# "fetch" packages: those still come through FETCHCOMMAND above, so keep it.',
    `GENTOO_MIRRORS="${mirrors.join(' ')}"`
  ]
}
