import { describe, expect, it } from 'vitest'
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { FetchResult, PeerInfo } from '@distswarm/agent'
import { cli, cliJson, connectionsTo, localNet, waitFor, whileStopped } from '../harness.js'
import { distfile, emergeFetch, makeConf, mirror } from '../gentoo.js'

const MiB = 1024 * 1024
const JOBS = 10

/** A box whose seeder a test freezes (SIGSTOP) for seconds: not taken for dead after the default 3 s of silence. */
const FROZEN_SEEDER_OK = ['--dead-peer-ms', '120000']

describe('concurrent fetches at one agent', () => {
  // Portage itself never runs two FETCHCOMMANDs for one file in one DISTDIR:
  // FEATURES=distlocks (on by default) locks DISTDIR/.locks/<file>, and the
  // second job waits, then finds the file. Ten at once for one file come from
  // ten Portage instances (LXC guests, chroots) asking one agent, each with
  // its own DISTDIR: that is what this runs.
  it(`${JOBS} portage-fetch processes for one file: one download over the swarm, ${JOBS} whole verified copies`, async () => {
    const net = await localNet()
    const f = distfile('popular-1.0.tar.xz', Buffer.alloc(16 * MiB + 5, 0x70))
    const up = await mirror([f])
    await writeFile(join((await net.dirs('seeder')).distdir, f.name), f.data)
    // The seeder is frozen below for as long as ten jobs take to start: the box must not take it for dead (--dead-peer-ms).
    const [seeder, box] = await Promise.all([net.startAgent({ name: 'seeder' }), net.startAgent({ name: 'box', args: FROZEN_SEEDER_OK })])
    await waitFor(async () => (await cli(['where', f.name, '--control', box.control])).code === 0, 30_000, 'the seeder\'s inventory at box')
    // The download goes over the TCP fast path, which a freeze of seconds does not break (a hyperswarm stream gives up after ~18 s without acknowledgements).
    await waitFor(async () => (await cliJson<PeerInfo[]>(['peers', '--control', box.control, '--json'])).find((p) => p.name === 'seeder')?.path === 'tcp', 30_000, 'a fast-path link from box to the seeder')
    const conf = await makeConf(box.control)
    const distdirs = Array.from({ length: JOBS }, (_, i) => join(net.root, `guest-${i}`, 'distfiles'))
    for (const d of distdirs) await mkdir(d, { recursive: true })

    // The seeder is frozen until every job has reached the agent: then all ten
    // ask while the one download cannot have finished, however slowly they start.
    let ended = 0 // a job that could not wait (it fell back) counts as having asked
    const jobs = await whileStopped(seeder, async () => {
      const started = distdirs.map((d) => emergeFetch(conf, d, f, up.url(f.name)).finally(() => { ended++ }))
      await waitFor(async () => await connectionsTo(box.control) + ended === JOBS, 30_000, `${JOBS} jobs to ask the agent`)
      return started
    })
    const results = await Promise.all(jobs)

    for (const r of results) {
      expect(r.code, r.stderr).toBe(0)
      expect(r.stderr).toMatch(/popular-1\.0\.tar\.xz: from the swarm/)
      expect(r.placed?.equals(f.data)).toBe(true)
    }
    expect(up.requests.size).toBe(0) // no job fell back to the mirror
    const { fetches } = await box.status()
    expect(fetches).toMatchObject({ completed: 1, failed: 0, inFlight: 0, bytesFetched: f.data.length })
  })

  it('fetches of different files run side by side', async () => {
    const net = await localNet()
    const files = [distfile('left-1.0.tar.xz', Buffer.alloc(32 * MiB, 0x6c)), distfile('right-1.0.tar.xz', Buffer.alloc(32 * MiB, 0x72))]
    const seed = await net.dirs('seeder')
    for (const f of files) await writeFile(join(seed.distdir, f.name), f.data)
    // Over the hyperswarm stream, slower than the fast path: the downloads last long enough to be seen.
    const [seeder, box] = await Promise.all([net.startAgent({ name: 'seeder', args: ['--data-port', 'off'] }), net.startAgent({ name: 'box', args: FROZEN_SEEDER_OK })])
    for (const f of files) await waitFor(async () => (await cli(['where', f.name, '--control', box.control])).code === 0, 30_000, `${f.name} at box`)

    // When each download was seen under way: its partial file holding some bytes, not all.
    const seen = new Map<string, { first: number, last: number }>()
    const partialDir = join(box.cacheDir, '.partial')
    const sample = async (): Promise<void> => {
      const now = performance.now()
      for (const p of await readdir(partialDir).catch(() => [])) {
        const size = (await stat(join(partialDir, p)).catch(() => null))?.size ?? 0
        const f = files.find((x) => x.blake2b === p)
        if (!f || size === 0 || size === f.data.length) continue
        const s = seen.get(f.name)
        if (s) s.last = now
        else seen.set(f.name, { first: now, last: now })
      }
    }
    // Both are asked for while the seeder is frozen, so neither can be over before the other began.
    let done = false
    const [fetching] = await whileStopped(seeder, async () => {
      const started = Promise.all(files.map(async (f) => {
        const c = await box.client()
        try {
          return await c.call('fetch', { query: f.name }) as FetchResult
        } finally {
          c.close()
        }
      })).finally(() => { done = true })
      await waitFor(async () => (await box.status()).fetches.inFlight === files.length, 30_000, 'both fetches to begin')
      return [started] // in an array: returned bare, the promise would be awaited while the seeder is stopped
    })
    const sampling = (async () => {
      for (let i = 0; i < 100_000 && !done; i++) {
        await sample()
        await new Promise((resolve) => setTimeout(resolve, 10))
      }
    })()
    const results = await fetching
    await sampling

    for (const [i, r] of results.entries()) expect((await readFile(r.path)).equals(files[i]!.data)).toBe(true)
    const [a, b] = files.map((f) => seen.get(f.name))
    expect(a, 'left seen under way').toBeDefined()
    expect(b, 'right seen under way').toBeDefined()
    // Each was under way before the other was finished.
    expect(a!.first).toBeLessThanOrEqual(b!.last)
    expect(b!.first).toBeLessThanOrEqual(a!.last)
  })
})
