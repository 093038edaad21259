import { expect, it, onTestFinished } from 'vitest'
import { randomBytes } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { readFile, readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { BAN_MS, ControlClient, MAX_FAULTS, type FetchResult } from '@distswarm/agent'
import { LocalNet } from '@distswarm/localnet'
import { alterInPlace, BIN, localNet, waitFor, type AgentProc } from '../harness.js'
import { distfile, writeRepo, type Distfile } from '../gentoo.js'

/**
 * Five agents, a few hundred distfiles, random fetches while agents are
 * killed (-9) and restarted, and while bytes of their distfiles rot in place
 * (same size, same timestamps: the agent that holds one does not notice, and
 * serves wrong bytes until told). DISTSWARM_SOAK_SECONDS: how long the chaos
 * lasts (default 120: the agents warm up for the first 20–30 s, and growth is
 * judged over the second half, which must lie past that; 480 or more for
 * RSS's trend to be judged too). DISTSWARM_SOAK_SEED: the same files, and
 * the same sequences of choices (their interleaving still follows timing).
 *
 * One agent (box0) is never killed, as on a box that runs for months: the
 * RSS and open descriptors of every agent, and box0's JS heap, are sampled
 * at an interval that scales with the run (each minute in an hour's run),
 * and the soak fails on a growth trend of that long-lived process, not only
 * on a peak. Its JS heap is judged in every run; its RSS only over a second
 * half of RSS_TREND_MIN_S or more (see there).
 *
 * DISTSWARM_SOAK_LOG=FILE: every process's stderr goes to FILE as it comes
 * (box0 at --log-level debug), so a long run that fails can be read after.
 */
const SECONDS = Number(process.env.DISTSWARM_SOAK_SECONDS ?? 120)
const SEED = Number(process.env.DISTSWARM_SOAK_SEED ?? randomBytes(4).readUInt32LE())
const LOG = process.env.DISTSWARM_SOAK_LOG
const AGENTS = 5
const FILES = 300
const WORKERS = 3
const MAX_FETCHES = 50 * SECONDS // a bound on the loop, well above what the pauses allow
const FETCH_TIMEOUT_MS = 60_000
const MAX_DOWN = 2
/** Peak resident set of any agent process (VmHWM), MiB: a leak or an unbounded buffer shows here. */
const MAX_RSS_MIB = 200
/** The agent that is never killed: its samples span the run, so a trend in them is a leak. */
const STEADY = 0
/** Trend samples: about SAMPLES a run, at most a minute apart, at least 2 s apart. */
const SAMPLES = 12
const SAMPLE_MS = Math.min(60_000, Math.max(2000, Math.floor(SECONDS * 1000 / SAMPLES)))
/** Least-squares growth over the second half above which the soak fails, MiB per 10 minutes (RSS, and JS heap)… */
const MAX_SLOPE_MIB_PER_10_MIN = 4
/** …once the growth it predicts over that half is also above what the GC's sawtooth alone gives. */
const RSS_NOISE_MIB = 12
/**
 * RSS is judged for a trend only over a second half this long, s (a run of
 * DISTSWARM_SOAK_SECONDS=480 or more has one, whatever the samples' jitter).
 * Under this load it climbs in steps for minutes, outside the JS heap, and
 * then stays: a shorter window cannot tell that from a leak. Seen on box0,
 * its heap flat: 5–12 MiB over 60–120 s of 120 s runs; 0.8 MiB over 300–600 s
 * of a 600 s run. (Receive buffers kept 4 instead of 40: the same steps.)
 */
const RSS_TREND_MIN_S = 200
/** What the old generation's ups and downs between full GCs alone give over a half (seen: under 2 MiB). */
const HEAP_NOISE_MIB = 4
/** Open descriptors the steady agent may gain over the second half (fitted): peers come and go, a leak only climbs. */
const MAX_FD_GROWTH = 8
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

/** Current RSS of a live process in MiB, and its open file descriptors, from /proc; null once it is gone. */
async function sample (pid: number | undefined): Promise<{ rss: number, fds: number } | null> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '')
  const kb = /^VmRSS:\s+(\d+) kB/m.exec(status)?.[1]
  const fds = await readdir(`/proc/${pid}/fd`).catch(() => null)
  return kb && fds ? { rss: Number(kb) / 1024, fds: fds.length } : null
}

/** MiB an agent's JS heap holds in its old generation, large objects included (where what is kept ends up), from its /metrics; null when it does not answer. */
async function oldHeapMiB (url: string | null): Promise<number | null> {
  if (url === null) return null
  const text = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5000) }).then(async (r) => await r.text()).catch(() => '')
  const used = (space: string): number | undefined => {
    const v = new RegExp(`^nodejs_heap_space_size_used_bytes\\{space="${space}"\\} (\\d+)$`, 'm').exec(text)?.[1]
    return v === undefined ? undefined : Number(v)
  }
  const [old, large] = [used('old'), used('large_object')]
  return old === undefined || large === undefined ? null : (old + large) / MiB
}

/** Least-squares slope of y over x. */
function slope (points: ReadonlyArray<readonly [number, number]>): number {
  const n = points.length
  if (n < 2) return 0
  const mx = points.reduce((s, [x]) => s + x, 0) / n
  const my = points.reduce((s, [, y]) => s + y, 0) / n
  const sxx = points.reduce((s, [x]) => s + (x - mx) ** 2, 0)
  return sxx === 0 ? 0 : points.reduce((s, [x, y]) => s + (x - mx) * (y - my), 0) / sxx
}

interface Sample { at: number, rss: number, fds: number, heap: number | null }

/**
 * The growth of one process over the samples given (the second half of a
 * run): least-squares slopes, the growth they predict over the samples' span,
 * and what of it breaks a bound.
 */
function trend (half: readonly Sample[]): { rssSlope: number, rssGrowth: number, heapGrowth: number, fdGrowth: number, window: number, problems: string[] } {
  const window = half.length > 1 ? half.at(-1)!.at - half[0]!.at : 0
  const perSecond = slope(half.map((s) => [s.at, s.rss]))
  const rssSlope = perSecond * 600
  const rssGrowth = perSecond * window
  const heaps = half.flatMap((s) => s.heap === null ? [] : [[s.at, s.heap] as const])
  const heapSlope = slope(heaps) * 600
  const heapGrowth = heapSlope * window / 600
  const fdGrowth = slope(half.map((s) => [s.at, s.fds])) * window
  const problems: string[] = []
  if (half.length < 3) problems.push(`${half.length} samples, too few for a trend`)
  if (half.length >= 3 && heaps.length < 3) problems.push(`the JS heap in ${heaps.length} of ${half.length} samples, too few for a trend`)
  if (window >= RSS_TREND_MIN_S && rssGrowth > RSS_NOISE_MIB && rssSlope > MAX_SLOPE_MIB_PER_10_MIN) problems.push(`RSS grows ${rssSlope.toFixed(1)} MiB per 10 min (${rssGrowth.toFixed(1)} MiB over ${window.toFixed(0)} s)`)
  if (heapGrowth > HEAP_NOISE_MIB && heapSlope > MAX_SLOPE_MIB_PER_10_MIN) problems.push(`the JS heap grows ${heapSlope.toFixed(1)} MiB per 10 min (${heapGrowth.toFixed(1)} MiB over ${window.toFixed(0)} s)`)
  if (fdGrowth > MAX_FD_GROWTH) problems.push(`open descriptors grow by ${fdGrowth.toFixed(1)} over ${window.toFixed(0)} s`)
  return { rssSlope, rssGrowth, heapGrowth, fdGrowth, window, problems }
}

it('the trend check fails a steady climb of RSS, JS heap or descriptors, and passes a flat sawtooth', () => {
  const run = (seconds: number, f: (i: number) => Partial<Sample>): Sample[] =>
    Array.from({ length: 31 }, (_, i) => ({ at: seconds / 2 + i * seconds / 60, rss: 150, fds: 40, heap: 10, ...f(i) }))
  const hour = (f: (i: number) => Partial<Sample>): Sample[] => run(3600, f)
  const sawtooth = (i: number): number => 150 + (i % 4) * 10 // a GC's ups and downs, 30 MiB wide, no trend
  expect(trend(hour((i) => ({ rss: sawtooth(i), fds: 40 + (i % 3), heap: 10 + (i % 2) }))).problems).toEqual([])
  // 1 MiB a minute: 10 MiB per 10 min, 30 MiB over the half hour.
  expect(trend(hour((i) => ({ rss: sawtooth(i) + i }))).problems).toEqual([expect.stringMatching(/^RSS grows 1\d\.\d MiB per 10 min/)])
  expect(trend(hour((i) => ({ heap: 10 + i }))).problems).toEqual([expect.stringMatching(/^the JS heap grows 1\d\.\d MiB per 10 min/)])
  // One descriptor lost every two minutes.
  expect(trend(hour((i) => ({ fds: 40 + Math.floor(i / 2) }))).problems).toEqual([expect.stringMatching(/^open descriptors grow by 15/)])
  // A two-minute run: RSS is not judged over its minute; its heap is, and a slow climb stays inside the noise.
  expect(trend(run(120, (i) => ({ rss: 150 + i }))).problems).toEqual([])
  expect(trend(run(120, (i) => ({ heap: 10 + i / 10 }))).problems).toEqual([])
  expect(trend(run(120, (i) => ({ heap: 10 + i / 2 }))).problems).toEqual([expect.stringMatching(/^the JS heap grows 150\.0 MiB per 10 min \(15\.0 MiB over 60 s\)/)])
  // Two samples are no trend; nor is a heap that answered twice (a sample it missed is no failure).
  expect(trend(hour(() => ({})).slice(0, 2)).problems).toEqual([expect.stringMatching(/too few/)])
  expect(trend(hour((i) => ({ heap: i === 3 ? null : 10 + i }))).problems).toEqual([expect.stringMatching(/^the JS heap grows/)])
  expect(trend(hour((i) => ({ heap: i < 2 ? 10 : null }))).problems).toEqual(['the JS heap in 2 of 31 samples, too few for a trend'])
})

/** Peak RSS of a live process in MiB, from /proc; 0 once it is gone. */
async function peakRssMiB (pid: number | undefined): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '')
  const kb = /^VmHWM:\s+(\d+) kB/m.exec(status)?.[1]
  return kb ? Number(kb) / 1024 : 0
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** The harness's network, or with LOG set one whose every stderr line goes to that file, time-stamped and labelled. */
async function soakNet (): Promise<LocalNet> {
  if (!LOG) return await localNet()
  const out = createWriteStream(LOG, { flags: 'a' })
  const net = await LocalNet.create({ bin: BIN, onLog: (label, line) => out.write(`${label} ${line}\n`) })
  onTestFinished(async () => {
    await net.close()
    await new Promise((resolve) => out.end(resolve))
  })
  await net.startBootstrap()
  return net
}

it(`soak: ${AGENTS} agents, ${FILES} files, random fetches while agents are killed and restarted`, { timeout: (SECONDS + 180) * 1000 }, async () => {
  // One stream of choices each for the files, the fetches, the kills and the rot.
  const [random, fetchRandom, killRandom, rotRandom] = [0, 1, 2, 3].map((k) => prng(SEED + k)) as [() => number, () => number, () => number, () => number]
  const pick = <T>(xs: readonly T[], r = random): T => xs[Math.floor(r() * xs.length)]!
  console.info(`soak: seed ${SEED} (DISTSWARM_SOAK_SEED=${SEED} for the same files and choices), ${SECONDS} s`)

  // Mostly small, some medium, a few MiB-sized; each on one or two boxes.
  const files: Distfile[] = []
  const holders = new Map<string, Set<number>>()
  const net = await soakNet()
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
  const start = (i: number): Promise<AgentProc> => net.startAgent({ name: names[i]!, args: ['--repo', repo, ...(LOG && i === STEADY ? ['--log-level', 'debug'] : [])] })

  // One after the other: five cold starts at once can take longer than a start may on a loaded machine.
  const agents: Array<AgentProc | null> = []
  for (const i of names.keys()) agents.push(await start(i))
  // A ban in force (wrong bytes, MAX_FAULTS times or more, from a peer that held a rotten copy) keeps a
  // pair apart for BAN_MS after its latest fault: by design, so the mesh after the storm is whole but for those.
  // Read from the agent's own log, this process's (bans live in memory): a fault at or past MAX_FAULTS bans or re-bans.
  const bannedBy = (a: AgentProc): Set<string> => {
    const now = Date.now()
    const keys = new Set<string>()
    for (const line of a.log) {
      const m = /^(\S+) .* peer\.fault peer=([0-9a-f]+) faults=(\d+)/.exec(line)
      if (m && Number(m[3]) >= MAX_FAULTS && Date.parse(m[1]!) + BAN_MS > now) keys.add(m[2]!)
    }
    return keys
  }
  const fullMesh = async (): Promise<Array<[number, number]>> => {
    const keys = await Promise.all(agents.map(async (a) => (await a!.status()).publicKey))
    const bans = agents.map((a) => bannedBy(a!))
    const apart = (i: number, j: number): boolean => bans[i]!.has(keys[j]!.slice(0, 12)) || bans[j]!.has(keys[i]!.slice(0, 12))
    const pairs: Array<[number, number]> = []
    for (const i of agents.keys()) for (const j of agents.keys()) if (i < j && apart(i, j)) pairs.push([i, j])
    if (pairs.length > 0) console.info(`soak: bans in force (no link expected): ${pairs.map(([i, j]) => `${names[i]}-${names[j]}`).join(' ')}`)
    const want = (i: number): string[] => names.filter((_, j) => j !== i && !apart(i, j))
    const seen = async (a: AgentProc): Promise<string[] | null> => {
      const client = await a.client().catch(() => null)
      const peers = await client?.call('peers', {}).catch(() => null) as Array<{ name?: string }> | null | undefined
      client?.close()
      return peers ? peers.map((x) => x.name ?? '?') : null
    }
    try {
      await waitFor(async () => {
        const lists = await Promise.all(agents.map((a) => seen(a!)))
        return lists.every((l, i) => l !== null && want(i).every((n) => l.includes(n)))
      }, 60_000, 'every agent to meet the others (but for bans in force)', 500)
    } catch (err) {
      // Who sees whom, so a failure says which links did not come back.
      const lists = await Promise.all(agents.map((a) => seen(a!)))
      const text = agents.map((a, i) => `${a!.name} (pid ${a!.child.pid}) sees ${lists[i] ? `[${lists[i]!.join(' ')}]` : 'no answer'}`)
      throw new Error(`${(err as Error).message}: ${text.join('; ')}`, { cause: err })
    }
    return pairs
  }
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
      const up = agents.flatMap((a, i) => a && i !== STEADY ? [i] : [])
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
  // RSS and descriptors of every live agent, and box0's JS heap, each SAMPLE_MS, from the start of the storm to its end (both included).
  const samples: Array<Sample & { round: number, agent: string, pid: number }> = []
  console.info(`soak: RSS MiB / open fds of each agent every ${SAMPLE_MS / 1000} s; * the agent never killed, and its JS heap's old generation`)
  const steadyUrl = (await agents[STEADY]!.status()).url
  const began = Date.now()
  let rounds = 0
  const takeSamples = async (): Promise<void> => {
    const round = rounds++
    const row: string[] = []
    for (const [i, a] of agents.entries()) {
      const at = (Date.now() - began) / 1000
      const s = a ? await sample(a.child.pid) : null
      if (!s) continue
      const heap = i === STEADY ? await oldHeapMiB(steadyUrl) : null
      samples.push({ round, at, agent: a!.name, pid: a!.child.pid!, ...s, heap })
      row.push(`${a!.name}${i === STEADY ? `* ${heap?.toFixed(1) ?? '?'}M heap` : ''} ${s.rss.toFixed(0)}M/${s.fds}fd`)
    }
    // As they come: a long run that dies still leaves its samples.
    console.info(`soak: t=${((Date.now() - began) / 1000).toFixed(0)}s ${row.join('  ')}`)
  }
  const sampler = (async () => {
    let next = began
    while (Date.now() < deadline) {
      if (Date.now() >= next) {
        await takeSamples()
        next += SAMPLE_MS
      }
      for (const a of agents) await noteRss(a)
      await sleep(Math.min(1000, Math.max(0, deadline - Date.now())))
    }
    await takeSamples()
  })()

  await Promise.all([...workers, killer, rot, sampler])
  const steadyPid = agents[STEADY]!.child.pid
  // The trend of the steady agent over the second half, when its heap has warmed up.
  const steady = samples.filter((s) => s.pid === steadyPid)
  const half = steady.filter((s) => s.at >= SECONDS / 2)
  const { rssSlope, rssGrowth, heapGrowth, fdGrowth, window, problems } = trend(half)
  const rssJudged = window >= RSS_TREND_MIN_S ? '' : ` (not judged: under ${RSS_TREND_MIN_S} s)`
  console.info(`soak: ${rounds} samples every ${SAMPLE_MS / 1000} s (RSS MiB / open fds; * the agent never killed); box${STEADY}, second half: ${half.length} samples over ${window.toFixed(0)} s, RSS slope ${rssSlope.toFixed(2)} MiB/10 min (fitted growth ${rssGrowth.toFixed(1)} MiB)${rssJudged}, fitted JS heap growth ${heapGrowth.toFixed(1)} MiB, fitted fd growth ${fdGrowth.toFixed(1)}`)
  console.info(`soak: storm over: ${fetches} fetches, ${kills} kills, outcomes ${JSON.stringify(Object.fromEntries(tally))}`)
  await Promise.all(restarts)
  for (const a of agents) await noteRss(a)

  // After the storm, every box fetches again (a file that never rotted): the network recovered.
  const apart = await fullMesh()
  for (const [i, a] of agents.entries()) {
    // A file that never rotted, held by a box this one is not kept apart from by a ban.
    const reachable = (h: number): boolean => !apart.some(([x, y]) => (x === i && y === h) || (x === h && y === i))
    const f = pick(files.filter((x) => !holders.get(x.name)!.has(i) && !rotten.has(x.name) && [...holders.get(x.name)!].some(reachable)), fetchRandom)
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
  // Growth of the agent that ran throughout, not only its peak (and enough samples to tell).
  expect(problems, `box${STEADY}`).toEqual([])
})
