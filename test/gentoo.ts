/**
 * A fake but faithful Gentoo box for tests: an ebuild repo whose package
 * Manifests carry real-format DIST lines, plus an "upstream mirror" HTTP
 * server on 127.0.0.1 that counts what it serves.
 */
import { execFileSync, spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { expect, onTestFinished } from 'vitest'
import { cli } from './harness.js'

export interface Distfile {
  name: string
  data: Buffer
  blake2b: string
  sha512: string
}

export function distfile (name: string, data: Buffer = randomBytes(256 * 1024 + Math.floor(Math.random() * 4096))): Distfile {
  return {
    name,
    data,
    blake2b: createHash('blake2b512').update(data).digest('hex'),
    sha512: createHash('sha512').update(data).digest('hex')
  }
}

/** The DIST line Portage's Manifest has for a file: hash names sorted. */
export const distLine = (f: Distfile): string => `DIST ${f.name} ${f.data.length} BLAKE2B ${f.blake2b} SHA512 ${f.sha512}`

/** ${DIGESTS} as Portage passes it to FETCHCOMMAND. */
export const digestsOf = (f: Distfile): string => `blake2b:${f.blake2b} sha512:${f.sha512}`

/** Writes <repo>/<cat>/<pkg>/Manifest files holding `files`, one package each. */
export async function writeRepo (repo: string, files: Distfile[]): Promise<void> {
  await mkdir(join(repo, 'metadata'), { recursive: true })
  await writeFile(join(repo, 'metadata', 'layout.conf'), 'masters = \n')
  for (const [i, f] of files.entries()) {
    const dir = join(repo, `cat-${i % 3}`, `pkg-${i}`)
    await mkdir(dir, { recursive: true })
    await writeFile(join(dir, 'Manifest'), `${distLine(f)}\nEBUILD pkg-${i}-1.ebuild 123 BLAKE2B ${'0'.repeat(128)} SHA512 ${'0'.repeat(128)}\n`)
  }
}

export interface Mirror {
  url: (name: string) => string
  requests: Map<string, number>
}

/** An HTTP mirror on 127.0.0.1 serving `files` by name; 404 for anything else. */
export async function mirror (files: Distfile[]): Promise<Mirror> {
  const byName = new Map(files.map((f) => [f.name, f]))
  const requests = new Map<string, number>()
  const server: Server = createServer((req, res) => {
    const name = decodeURIComponent((req.url ?? '/').slice(1))
    requests.set(name, (requests.get(name) ?? 0) + 1)
    const f = byName.get(name)
    if (!f) {
      res.writeHead(404).end()
      return
    }
    res.writeHead(200, { 'content-length': f.data.length }).end(f.data)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const { port } = server.address() as AddressInfo
  return { url: (name) => `http://127.0.0.1:${port}/${encodeURIComponent(name)}`, requests }
}

// Portage: varexpand the template, then shlex.split (Python's), then spawn without a shell.
const PORTAGE_SPLIT = `
import json, re, shlex, sys
template, variables = sys.argv[1], json.loads(sys.argv[2])
expanded = re.sub(r'\\$\\{(\\w+)\\}|\\$(\\w+)', lambda m: variables.get(m.group(1) or m.group(2), ''), template)
print(json.dumps(shlex.split(expanded)))
`

/**
 * The argv Portage would spawn for `variable` (FETCHCOMMAND or RESUMECOMMAND)
 * of these make.conf lines: bash reads make.conf's quoting, python's shlex
 * splits the expanded command, as portage.util.shlex_split does.
 */
export function portageArgv (makeConf: string, variable: string, vars: Record<string, string>): string[] {
  const template = execFileSync('bash', ['-c', `${makeConf}\nprintf %s "$${variable}"`], { encoding: 'utf8' })
  return JSON.parse(execFileSync('python3', ['-c', PORTAGE_SPLIT, template, JSON.stringify(vars)], { encoding: 'utf8' })) as string[]
}

/** Runs the argv Portage would spawn, without a shell; resolves to its exit code and stderr. */
export async function spawnLikePortage (argv: string[]): Promise<{ code: number | null, stderr: string }> {
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d })
  child.stdout.resume()
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
  const [code] = await once(child, 'close') as [number | null] // 'close': after stdout and stderr are read to the end
  clearTimeout(timer)
  return { code, stderr }
}

/** The make.conf lines `distswarm portage-config` prints for the agent at `control`. */
export async function makeConf (control: string): Promise<string> {
  const r = await cli(['portage-config', '--control', control, '--cache-dir', '/var/cache/distswarm'])
  expect(r.code, r.stderr).toBe(0)
  return r.stdout
}

/** What emerge does for one distfile: FETCHCOMMAND with FILE=<name>.__download__ in DISTDIR. */
export async function emergeFetch (conf: string, distdir: string, f: Distfile, url: string, digests = digestsOf(f)) {
  const file = `${f.name}.__download__`
  const argv = portageArgv(conf, 'FETCHCOMMAND', { URI: url, DISTDIR: distdir, FILE: file, DIGESTS: digests })
  const result = await spawnLikePortage(argv)
  const placed = await readFile(join(distdir, file)).catch(() => null)
  return { ...result, argv, placed }
}
