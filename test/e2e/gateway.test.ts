/**
 * The HTTP gateway with real agents and real clients: Portage's mirror
 * logic (layout.conf, content-hash BLAKE2B 8:16 from a Manifest line) run
 * faithfully and fetched with Portage's default FETCHCOMMAND (wget), a
 * RESUMECOMMAND resume (wget -c), concurrent curls sharing one swarm
 * download, a client that leaves mid-fetch, /metrics, portage-config.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { StatusResult } from '@distswarm/agent'
import { cli, cliJson, localNet, tempDir, waitFor, type AgentProc } from '../harness.js'
import { distfile, distLine, writeRepo } from '../gentoo.js'

/** Runs a command to its end; stdout and stderr as text. */
async function run (cmd: string, args: string[], opts: { timeoutMs?: number } = {}): Promise<{ code: number | null, stdout: string, stderr: string }> {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d })
  child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d })
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000)
  const [code] = await once(child, 'close') as [number | null]
  clearTimeout(timer)
  return { code, stdout, stderr }
}

/** Reads a Manifest DIST line as Portage does: name, size, then hash name/value pairs. */
function parseDistLine (line: string): { name: string, size: number, digests: Record<string, string> } {
  const [kind, name, size, ...rest] = line.trim().split(/\s+/)
  expect(kind).toBe('DIST')
  const digests: Record<string, string> = {}
  for (let i = 0; i + 1 < rest.length; i += 2) digests[rest[i]!] = rest[i + 1]!
  return { name: name!, size: Number(size), digests }
}

/**
 * Portage's mirror layout logic (fetch.py: MirrorLayoutConfig, FlatLayout,
 * ContentHashLayout): the [structure] entries in key order, the first one
 * this file can use; content-hash cuts the hex digest at each cutoff (bits,
 * 4 a hex digit) into directories, then appends the whole digest.
 */
function portageLayoutPath (layoutConf: string, entry: ReturnType<typeof parseDistLine>): string {
  const structure: Array<[number, string[]]> = []
  let section = ''
  for (const line of layoutConf.split('\n')) {
    const s = /^\s*\[(.+)\]\s*$/.exec(line)
    if (s) { section = s[1]!; continue }
    const kv = /^\s*(\d+)\s*=\s*(.+?)\s*$/.exec(line)
    if (section === 'structure' && kv) structure.push([Number(kv[1]), kv[2]!.split(/\s+/)])
  }
  structure.sort((a, b) => a[0] - b[0])
  for (const [, [kind, algo, cutoffs]] of structure) {
    if (kind === 'flat') return entry.name
    if (kind === 'content-hash' && algo !== undefined && cutoffs !== undefined && entry.digests[algo.toUpperCase()] !== undefined) {
      let digest = entry.digests[algo.toUpperCase()]!.toLowerCase()
      let path = ''
      for (const c of cutoffs.split(':').map(Number)) {
        path += `${digest.slice(0, c / 4)}/`
        digest = digest.slice(c / 4)
      }
      return path + entry.digests[algo.toUpperCase()]!.toLowerCase()
    }
  }
  return entry.name
}

async function gatewayUrl (agent: AgentProc): Promise<string> {
  const s = await cliJson<StatusResult>(['status', '--control', agent.control])
  expect(s.url).toMatch(/^http:\/\/127\.0\.0\.1:[1-9]\d*$/)
  expect(s.httpAddress).toBe(s.url!.slice('http://'.length))
  return s.url!
}

/** A seeder holding `f` in its DISTDIR and a box that sees it; the box's gateway URL. */
async function seederAndBox (f: { name: string, data: Buffer }): Promise<{ seeder: AgentProc, box: AgentProc, url: string }> {
  const net = await localNet()
  await writeFile(join((await net.dirs('seeder')).distdir, f.name), f.data)
  const [seeder, box] = await Promise.all([net.startAgent({ name: 'seeder' }), net.startAgent({ name: 'box' })])
  await waitFor(async () => (await cli(['where', f.name, '--control', box.control])).code === 0, 30_000, 'the seeder\'s inventory at box')
  return { seeder, box, url: await gatewayUrl(box) }
}

describe('HTTP gateway', () => {
  it('serves a peer\'s file to wget at the path Portage builds from a Manifest line, then locally; by name to curl; an unknown digest is a 404', async () => {
    const net = await localNet()
    const f = distfile('gw-hello-1.0.tar.xz')
    const byName = distfile('gw-byname-2.0.tar.gz')
    const repo = join(net.root, 'repos', 'gentoo')
    await writeRepo(repo, [f, byName])
    const seed = await net.dirs('seeder')
    for (const x of [f, byName]) await writeFile(join(seed.distdir, x.name), x.data)
    const [seeder, box] = await Promise.all([
      net.startAgent({ name: 'seeder', args: ['--repo', repo] }),
      net.startAgent({ name: 'box', args: ['--repo', repo] })
    ])
    await waitFor(async () => (await cli(['where', f.name, '--control', box.control])).code === 0, 30_000, 'the seeder\'s inventory at box')
    const url = await gatewayUrl(box)

    // Portage: read layout.conf, build the path from the Manifest's DIST line, run its default FETCHCOMMAND.
    const layout = await (await fetch(`${url}/distfiles/layout.conf`)).text()
    const manifestLine = (await readFile(join(repo, 'cat-0', 'pkg-0', 'Manifest'), 'utf8')).split('\n').find((l) => l.startsWith('DIST '))!
    expect(manifestLine).toBe(distLine(f))
    const path = portageLayoutPath(layout, parseDistLine(manifestLine))
    expect(path).toBe(`${f.blake2b.slice(0, 2)}/${f.blake2b.slice(2, 6)}/${f.blake2b}`)
    const distdir = await tempDir()
    const out = join(distdir, `${f.name}.__download__`)
    const seederBefore = (await seeder.status()).traffic.servedToPeers
    const wget = await run('wget', ['-t', '3', '-T', '60', '--passive-ftp', '-O', out, `${url}/distfiles/${path}`])
    expect(wget.code, wget.stderr).toBe(0)
    expect(wget.stderr).toContain('200 OK')
    expect((await readFile(out)).equals(f.data)).toBe(true)
    const afterFirst = await box.status()
    expect(afterFirst.fetches.completed).toBe(1)
    const served = (await seeder.status()).traffic.servedToPeers - seederBefore
    expect(served).toBeGreaterThanOrEqual(f.data.length)

    // The second time it comes from this box's cache dir: no swarm fetch, nothing more from the seeder.
    const again = await run('wget', ['-t', '3', '-T', '60', '--passive-ftp', '-O', out, `${url}/distfiles/${path}`])
    expect(again.code).toBe(0)
    expect((await readFile(out)).equals(f.data)).toBe(true)
    expect((await box.status()).fetches.completed).toBe(1)
    expect((await seeder.status()).traffic.servedToPeers - seederBefore).toBe(served)

    // By name (the flat layout), with curl.
    const curl = await run('curl', ['-sS', '-f', '-o', join(distdir, byName.name), '-w', '%{http_code}', `${url}/distfiles/${byName.name}`])
    expect([curl.code, curl.stdout]).toEqual([0, '200'])
    expect((await readFile(join(distdir, byName.name))).equals(byName.data)).toBe(true)
    expect((await box.status()).fetches.completed).toBe(2)

    // A digest nobody has: a 404 from memory, timed here for the record (not asserted: the machine is shared).
    const unknown = `${'0'.repeat(2)}/${'0'.repeat(4)}/${'0'.repeat(128)}`
    const t0 = performance.now()
    const miss = await fetch(`${url}/distfiles/${unknown}`)
    const ms = performance.now() - t0
    expect(miss.status).toBe(404)
    console.log(`gateway: unknown digest answered 404 in ${ms.toFixed(1)} ms`)
    const missWget = await run('wget', ['-t', '1', '-T', '60', '-O', join(distdir, 'x'), `${url}/distfiles/${unknown}`])
    expect(missWget.code).toBe(8) // wget: server issued an error response
    expect((await box.status()).fetches.completed).toBe(2)
  })

  it('ten concurrent requests for one file: one swarm download; wget -c resumes a cut download with 206', async () => {
    const f = distfile('gw-shared-3.0.tar.xz', Buffer.alloc(24 * 1024 * 1024 + 11, 0x42))
    const { seeder, box, url } = await seederAndBox(f)
    const dir = await tempDir()
    const path = `${f.blake2b.slice(0, 2)}/${f.blake2b.slice(2, 6)}/${f.blake2b}`
    const servedBefore = (await seeder.status()).traffic.servedToPeers

    const curls = await Promise.all(Array.from({ length: 10 }, (_, i) =>
      run('curl', ['-sS', '-f', '-o', join(dir, `copy-${i}`), '-w', '%{http_code}', `${url}/distfiles/${i % 2 === 0 ? path : f.name}`])))
    expect(curls.map((c) => [c.code, c.stdout])).toEqual(Array.from({ length: 10 }, () => [0, '200']))
    for (let i = 0; i < 10; i++) expect((await readFile(join(dir, `copy-${i}`))).equals(f.data)).toBe(true)
    const status = await box.status()
    expect(status.fetches).toMatchObject({ completed: 1, failed: 0, inFlight: 0 })
    const served = (await seeder.status()).traffic.servedToPeers - servedBefore
    expect(served).toBeGreaterThanOrEqual(f.data.length)
    expect(served).toBeLessThan(2 * f.data.length)

    // RESUMECOMMAND: a download cut at 5 MiB, continued by wget -c.
    const partial = join(dir, `${f.name}.__download__`)
    await writeFile(partial, f.data.subarray(0, 5 * 1024 * 1024))
    const resume = await run('wget', ['-c', '-t', '3', '-T', '60', '--passive-ftp', '-O', partial, `${url}/distfiles/${f.name}`])
    expect(resume.code, resume.stderr).toBe(0)
    expect(resume.stderr).toContain('206 Partial Content')
    expect((await readFile(partial)).equals(f.data)).toBe(true)
  })

  it('a client that leaves while its file is fetched: the fetch completes and is published for the next caller', async () => {
    const f = distfile('gw-left-1.0.tar.xz', Buffer.alloc(32 * 1024 * 1024, 0x17))
    const { box, url } = await seederAndBox(f)
    const controller = new AbortController()
    const pending = fetch(`${url}/distfiles/${f.name}`, { signal: controller.signal }).catch((e: unknown) => e)
    await waitFor(async () => (await box.status()).fetches.inFlight === 1 || (await box.status()).fetches.completed === 1, 30_000, 'the fetch to start')
    controller.abort()
    await pending
    await waitFor(async () => (await box.status()).fetches.completed === 1, 60_000, 'the fetch to complete without its client')
    const published = join(box.cacheDir, f.name)
    expect((await stat(published)).size).toBe(f.data.length)
    const r = await fetch(`${url}/distfiles/${f.name}`)
    expect(Buffer.from(await r.arrayBuffer()).equals(f.data)).toBe(true)
    expect((await box.status()).fetches.completed).toBe(1)
  })

  it('serves /metrics (distswarm_* and the process metrics), /api/status, and portage-config prints GENTOO_MIRRORS with the agent first', async () => {
    const net = await localNet()
    const box = await net.startAgent({ name: 'box', args: ['--http-allow', '127.0.0.1', '--http-allow', '::1'] })
    const url = await gatewayUrl(box)
    const m = await fetch(`${url}/metrics`)
    expect(m.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8')
    const text = await m.text()
    for (const family of ['distswarm_fetches_total', 'distswarm_transfer_duration_seconds', 'process_cpu_seconds_total', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_seconds']) {
      expect(text).toContain(`# TYPE ${family} `)
    }
    const api = await (await fetch(`${url}/api/status`)).json() as StatusResult
    expect([api.name, api.url]).toEqual(['box', url])
    // the status page, mounted on the gateway
    const page = await fetch(`${url}/`)
    expect([page.status, page.headers.get('content-type')?.startsWith('text/html')]).toEqual([200, true])
    await page.text()
    expect(await (await fetch(`${url}/api/peers`)).json()).toEqual([])

    const human = await cli(['status', '--control', box.control])
    expect(human.stdout).toContain(`${url}/`)

    const root = await tempDir()
    await mkdir(join(root, 'etc/portage'), { recursive: true })
    await writeFile(join(root, 'etc/portage/make.conf'), 'FOO=1\nGENTOO_MIRRORS="https://mirror.example/gentoo  http://other.example/"\n')
    const conf = await cli(['portage-config', '--control', box.control], { env: { PORTAGE_CONFIGROOT: root } })
    expect(conf.code).toBe(0)
    expect(conf.stdout).toContain(`GENTOO_MIRRORS="${url} https://mirror.example/gentoo http://other.example/"`)
    expect(conf.stdout).toMatch(/RESTRICT="mirror"/)
    const none = await cli(['portage-config', '--control', box.control], { env: { PORTAGE_CONFIGROOT: join(root, 'nothing') } })
    expect(none.stdout).toContain(`GENTOO_MIRRORS="${url} http://distfiles.gentoo.org"`)
  })

  it('an --http address in use is a start failure naming it; "off" runs without one', async () => {
    const net = await localNet()
    const first = await net.startAgent({ name: 'first' })
    const taken = (await gatewayUrl(first)).slice('http://'.length)
    const second = await net.startAgent({ name: 'second', args: ['--http', taken] }).catch((e: unknown) => e)
    // (the code itself, ERR_HTTP_LISTEN, is asserted where it is thrown: packages/gateway, packages/agent/test/http.test.ts)
    expect(String(second)).toContain(`cannot serve HTTP on ${taken}`)
    const off = await net.startAgent({ name: 'off', args: ['--http', 'off'] })
    const s = await off.status()
    expect([s.url, s.httpAddress]).toEqual([null, null])
  })
})
