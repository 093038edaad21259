import { expect, it } from 'vitest'
import { randomBytes } from 'node:crypto'
import { readFile, readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { ControlClient, type FetchResult } from '@distswarm/agent'
import { alterInPlace, localNet, waitFor, type AgentProc } from '../harness.js'
import { distfile, writeRepo, type Distfile } from '../gentoo.js'

/**
 * Five agents, a few hundred distfiles, random fetches while agents are
 * killed (-9) and restarted, and while bytes of their distfiles rot in place
 * (same size, same timestamps: the agent that holds one does not notice, and
 * serves wrong bytes until told). DISTSWARM_SOAK_SECONDS: how long the chaos
 * lasts (default 60). DISTSWARM_SOAK_SEED: the same files, and the same
 * sequences of choices (their interleaving still follows timing).
 */
const SECONDS = Number(process.env.DISTSWARM_SOAK_SECONDS ?? 60)
const SEED = Number(process.env.DISTSWARM_SOAK_SEED ?? randomBytes(4).readUInt32LE())
const AGENTS = 5
const FILES = 300
const WORKERS = 3
const MAX_FETCHES = 50 * SECONDS // a bound on the loop, well above what the pauses allow
const FETCH_TIMEOUT_MS = 60_000
const MAX_DOWN = 2
/** Peak resident set of any agent process (VmHWM), MiB: a leak or an unbounded buffer shows here. */
const MAX_RSS_MIB = 200
const KiB = 1024
const MiB = 1024 * KiB

/** mulberry32: a small seeded PRNG, so a failing run can be replayed with its seed. */
function prng (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Peak RSS of a live process in MiB, from /proc; 0 once it is gone. */
async function peakRssMiB (pid: number | undefined): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '')
  const kb = /^VmHWM:\s+(\d+) kB/m.exec(status)?.[1]
  return kb ? Number(kb) / 1024 : 0
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

it(`soak: ${AGENTS} agents, ${FILES} files, random fetches while agents are killed and restarted`, { timeout: (SECONDS + 180) * 1000 }, async () => {
  // One stream of choices each for the files, the fetches, the kills and the rot.
  const [random, fetchRandom, killRandom, rotRandom] = [0, 1, 2, 3].map((k) => prng(SEED + k)) as [() => number, () => number, () => number, () => number]
  const pick = <T>(xs: readonly T[], r = random): T => xs[Math.floor(r() * xs.length)]!
  console.info(`soak: seed ${SEED} (DISTSWARM_SOAK_SEED=${SEED} for the same files and choices), ${SECONDS} s`)

  // Mostly small, some medium, a few MiB-sized; each on one or two boxes.
  const files: Distfile[] = []
  const holders = new Map<string, Set<number>>()
  const net = await localNet()
  const names = Array.from({ length: AGENTS }, (_, i) => `box${i}`)
  for (let i = 0; i < FILES; i++) {
    const r = random()
    const size = r < 0.9 ? 1 + Math.floor(random() * 64 * KiB) : r < 0.98 ? 64 * KiB + Math.floor(random() * 448 * KiB) : MiB + Math.floor(random() * 3 * MiB)
    const f = distfile(`pkg${i}-${size}.tar.gz`, randomBytes(size))
    files.push(f)
    const on = new Set([Math.floor(random() * AGENTS)])
    if (random() < 0.3) on.add(Math.floor(random() * AGENTS))
    holders.set(f.name, on)
    for (const a of on) await writeFile(join((await net.dirs(names[a]!)).distdir, f.name), f.data)
  }
  const byName = new Map(files.map((f) => [f.name, f]))
  const controls = await Promise.all(names.map(async (name) => (await net.dirs(name)).control))
  // As on a Gentoo box: Manifests name every file, so a fetch by name is pinned to its digests.
  // (Without them, a name means whatever peers hold under it, rotten copies re-indexed included.)
  const repo = join(net.root, 'repo')
  await writeRepo(repo, files)
  const start = (i: number): Promise<AgentProc> => net.startAgent({ name: names[i]!, args: ['--repo', repo] })

  const agents: Array<AgentProc | null> = await Promise.all(names.map((_, i) => start(i)))
  const fullMesh = (): Promise<void> => waitFor(async () => {
    const counts = await Promise.all(agents.map(async (a) => (await a!.status()).peers))
    return counts.every((n) => n === AGENTS - 1)
  }, 60_000, 'every agent to meet the others', 500)
  await fullMesh()

  let maxRss = 0
  const noteRss = async (a: AgentProc | null): Promise<void> => { if (a) maxRss = Math.max(maxRss, await peakRssMiB(a.child.pid)) }
  const deadline = Date.now() + SECONDS * 1000
  const tally = new Map<string, number>()
  const count = (code: string): void => { tally.set(code, (tally.get(code) ?? 0) + 1) }
  let fetches = 0
  let kills = 0
  const rotten = new Set<string>()
  const wrong: string[] = []

  /** One fetch at a random agent (up or down) of a file it does not hold itself; its outcome is counted. */
  const fetchOne = async (): Promise<void> => {
    const i = Math.floor(fetchRandom() * AGENTS)
    const f = pick(files.filter((x) => !holders.get(x.name)!.has(i)), fetchRandom)
    fetches++
    let timer: NodeJS.Timeout | undefined
    try {
      const client = await ControlClient.connect(controls[i]!)
      try {
        const r = await Promise.race([
          client.call('fetch', { query: f.name }) as Promise<FetchResult>,
          new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(Object.assign(new Error('no answer'), { code: 'HANG' })), FETCH_TIMEOUT_MS) })
        ])
        if (r.blake2b !== f.blake2b || r.size !== f.data.length) wrong.push(`${names[i]}: ${f.name} answered as ${r.blake2b.slice(0, 16)}`)
        count('ok')
      } finally {
        client.close()
      }
    } catch (err) {
      count((err as { code?: string }).code ?? 'NO_CODE')
    } finally {
      clearTimeout(timer)
    }
  }

  const workers = Array.from({ length: WORKERS }, async () => {
    while (Date.now() < deadline && fetches < MAX_FETCHES) {
      await fetchOne()
      await sleep(fetchRandom() * 300)
    }
  })

  // kill -9 a random live agent every 2–6 s (at most MAX_DOWN down at once); it comes back 1–4 s later.
  const restarts: Array<Promise<void>> = []
  const killer = (async () => {
    while (Date.now() < deadline) {
      await sleep(2000 + killRandom() * 4000)
      if (Date.now() >= deadline) break
      const up = agents.flatMap((a, i) => a ? [i] : [])
      if (AGENTS - up.length >= MAX_DOWN) continue
      const i = pick(up, killRandom)
      const victim = agents[i]!
      await noteRss(victim)
      agents[i] = null
      victim.child.kill('SIGKILL')
      await victim.stop()
      kills++
      const downMs = 1000 + killRandom() * 3000
      restarts.push(sleep(downMs).then(async () => { agents[i] = await start(i) }))
    }
  })()
  // Every 3–8 s one byte of a random distfile on a random box goes bad.
  const rot = (async () => {
    while (Date.now() < deadline) {
      await sleep(3000 + rotRandom() * 5000)
      if (Date.now() >= deadline) break
      const f = pick(files, rotRandom)
      const on = pick([...holders.get(f.name)!], rotRandom)
      const at = Math.floor(rotRandom() * f.data.length)
      await alterInPlace(join((await net.dirs(names[on]!)).distdir, f.name), (d) => { d[at] = d[at]! ^ 0xff })
      rotten.add(f.name)
    }
  })()
  const sampler = (async () => {
    while (Date.now() < deadline) {
      for (const a of agents) await noteRss(a)
      await sleep(1000)
    }
  })()

  await Promise.all([...workers, killer, rot, sampler])
  await Promise.all(restarts)
  for (const a of agents) await noteRss(a)

  // After the storm, every box fetches again (a file that never rotted): the network recovered.
  await fullMesh()
  for (const [i, a] of agents.entries()) {
    const f = pick(files.filter((x) => !holders.get(x.name)!.has(i) && !rotten.has(x.name)), fetchRandom)
    await waitFor(async () => {
      const client = await a!.client()
      try {
        return (await client.call('fetch', { query: f.name })).blake2b === f.blake2b
      } catch {
        return false // e.g. the holder's inventory not in yet
      } finally {
        client.close()
      }
    }, 30_000, `${a!.name} to fetch ${f.name} after the storm`, 500)
  }

  // Stopped, then every published file re-hashed here: nothing in any cache dir may differ from its distfile.
  await Promise.all(agents.map((a) => a!.stop()))
  let checked = 0
  const corrupt: string[] = []
  for (const a of agents) {
    for (const name of await readdir(a!.cacheDir)) {
      if (name === '.partial') continue
      checked++
      const want = byName.get(name)
      const got = distfile(name, await readFile(join(a!.cacheDir, name)))
      if (!want || got.blake2b !== want.blake2b || got.sha512 !== want.sha512) corrupt.push(`${a!.name}/${name}`)
    }
  }

  const failures = [...tally].filter(([code]) => code !== 'ok')
  const failed = failures.reduce((n, [, k]) => n + k, 0)
  console.info(`soak: ${fetches} fetches, ${kills} kills, ${failed} failures ${JSON.stringify(Object.fromEntries(failures))}, ${corrupt.length} corrupt, max RSS ${maxRss.toFixed(0)} MiB; ${rotten.size} distfiles rotted, ${checked} cached files re-hashed, seed ${SEED}`)

  expect(corrupt).toEqual([])
  expect(wrong).toEqual([])
  expect(tally.get('ok') ?? 0).toBeGreaterThan(0)
  // Each failure names its cause: no hang, no error without a code, nothing unclassified.
  for (const [code] of failures) expect(code, `failure code ${code}`).toMatch(/^ERR_(?!INTERNAL$)[A-Z0-9_]+$/)
  expect(maxRss).toBeGreaterThan(0)
  expect(maxRss).toBeLessThan(MAX_RSS_MIB)
})
