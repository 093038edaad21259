/**
 * The agent's lifecycle, in this process: start() and stop() are
 * idempotent, and a start that fails stops whatever it had started (the
 * store's watchers and timers, the Manifest watcher, the swarm).
 */
import { describe, expect, it, onTestFinished } from 'vitest'
import { createHash, randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Agent, type AgentConfig } from '../src/index.js'
import { agentConfig } from './util.js'

/** A config for an agent on loopback that meets nobody (no DHT; a data port others could dial), in a temp dir removed after the test. */
async function config (): Promise<AgentConfig> {
  const dir = await mkdtemp(join(tmpdir(), 'distswarm-lifecycle-'))
  onTestFinished(() => rm(dir, { recursive: true, force: true }))
  const repo = join(dir, 'repo')
  await mkdir(join(repo, 'app-misc', 'hello'), { recursive: true })
  await writeFile(join(repo, 'app-misc', 'hello', 'Manifest'), `DIST hello-1.0.tar.gz 5 BLAKE2B ${'ab'.repeat(64)} SHA512 ${'cd'.repeat(64)}\n`)
  const distdir = join(dir, 'distfiles')
  await mkdir(distdir)
  await writeFile(join(distdir, 'hello-1.0.tar.gz'), 'hello')
  return agentConfig(dir, {
    distdirs: [distdir],
    cacheMaxBytes: 1024 * 1024,
    networkKey: randomBytes(32),
    name: 'lifecycle',
    repos: [repo],
    metrics: { host: '127.0.0.1', port: 0 },
    http: { host: '127.0.0.1', port: 0, given: true },
    // As configs without these options: the defaults looked up at start.
    pkgdirs: undefined,
    chost: undefined,
    binpkgGroup: undefined,
    binpkgTrust: undefined
  })
}

/**
 * What of the agent could still run in this process, though none of it keeps
 * the process alive (all unref'd): OS threads (the store's hash workers),
 * inotify watches (the store's dir watchers), and listening sockets.
 */
async function running (): Promise<{ threads: number, watches: number, listening: number }> {
  // A worker's thread is joined a moment after terminate() resolves: let closes settle.
  await new Promise((resolve) => setImmediate(resolve))
  let watches = 0
  let listening = 0
  for (const fd of await readdir('/proc/self/fd')) {
    const target = await readlink(join('/proc/self/fd', fd)).catch(() => '')
    if (target === 'anon_inode:inotify') watches += (await readFile(join('/proc/self/fdinfo', fd), 'utf8')).split('\n').filter((l) => l.startsWith('inotify wd:')).length
  }
  const sockets = new Set<string>()
  for (const fd of await readdir('/proc/self/fd')) {
    const m = /^socket:\[(\d+)\]$/.exec(await readlink(join('/proc/self/fd', fd)).catch(() => ''))
    if (m) sockets.add(m[1]!)
  }
  for (const table of ['tcp', 'tcp6', 'unix']) {
    for (const line of (await readFile(`/proc/net/${table}`, 'utf8')).split('\n').slice(1)) {
      const f = line.trim().split(/\s+/)
      // tcp: st 0A is LISTEN, inode in column 9; unix: flags 00010000 is __SO_ACCEPTCON, inode in column 6
      if (table === 'unix' ? f[3] === '00010000' && sockets.has(f[6] ?? '') : f[3] === '0A' && sockets.has(f[9] ?? '')) listening++
    }
  }
  return { threads: (await readdir('/proc/self/task')).length, watches, listening }
}

async function listen (path: string): Promise<Server> {
  const server = createServer((s) => s.destroy())
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(path, resolve))
  onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return server
}

describe('Agent lifecycle', () => {
  it('fails to start with ERR_CONTROL_IN_USE when another process answers on the control socket, and leaves nothing running', async () => {
    const cfg = await config()
    await listen(cfg.control)
    const before = await running()
    const agent = new Agent(cfg)
    const err = await agent.start().then(() => null, (e: unknown) => e)
    expect((err as { code?: string } | null)?.code).toBe('ERR_CONTROL_IN_USE')
    // The store, its hash workers and watchers, the Manifest watcher, the swarm: all stopped again.
    expect(await running()).toEqual(before)
    await expect(agent.start()).rejects.toMatchObject({ code: 'ERR_CONTROL_IN_USE' })
    expect(() => agent.status()).toThrow(expect.objectContaining({ code: 'ERR_AGENT_NOT_STARTED' }))
    await agent.stop()
    expect(await running()).toEqual(before)
  })

  it('starts once and stops once however often each is called; a stopped agent does not start again', async () => {
    const cfg = await config()
    const before = await running()
    const agent = new Agent(cfg)
    expect(() => agent.status()).toThrow(expect.objectContaining({ code: 'ERR_AGENT_NOT_STARTED' }))
    const starts = [agent.start(), agent.start()]
    expect(starts[0]).toBe(starts[1])
    await Promise.all(starts)
    await agent.start()
    const s = agent.status()
    expect(s.files).toBe(1)
    expect(s.dataPort).toBeGreaterThan(0)
    expect(s.metricsAddress).toMatch(/^127\.0\.0\.1:\d+$/)
    expect(s.manifest.names).toBe(1)
    await Promise.all([agent.stop(), agent.stop()])
    await agent.close()
    expect(await running()).toEqual(before)
    await expect(agent.start()).rejects.toMatchObject({ code: 'ERR_AGENT_NOT_STARTED' })
    expect(() => agent.status()).toThrow(expect.objectContaining({ code: 'ERR_AGENT_NOT_STARTED' }))
  })

  it('tells the status page what no download reports: a local hit, a miss, an upstream fallback', async () => {
    const agent = new Agent(await config())
    onTestFinished(() => agent.stop())
    const seen: unknown[] = []
    agent.on('lookup', (e) => seen.push(['lookup', e]))
    agent.on('upstream', (e) => seen.push(['upstream', e]))
    await agent.start()
    // By digest: the fixture's Manifest line has made-up hashes, so by name it would not match.
    await agent.fetch({ query: createHash('blake2b512').update('hello').digest('hex') })
    await expect(agent.fetch({ query: 'nobody-1.0.tar.gz' })).rejects.toMatchObject({ code: 'ERR_NOT_FOUND' })
    agent.upstream({ name: 'far-2.0.tar.gz', bytes: 42 })
    expect(seen).toEqual([
      ['lookup', { name: 'hello-1.0.tar.gz', outcome: 'local', bytes: 5 }],
      ['lookup', { name: 'nobody-1.0.tar.gz', outcome: 'miss' }],
      ['upstream', { name: 'far-2.0.tar.gz', bytes: 42 }]
    ])
  })

  it('stops an agent that never started, which then does not start', async () => {
    const cfg = await config()
    const before = await running()
    const agent = new Agent(cfg)
    await agent.stop()
    await expect(agent.start()).rejects.toMatchObject({ code: 'ERR_AGENT_NOT_STARTED' })
    expect(await running()).toEqual(before)
  })
})
