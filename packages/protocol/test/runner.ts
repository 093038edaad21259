/**
 * Runs a FuzzProperty at any scale, and keeps what a failure found: the
 * shrunk input is saved as a JSON regression case that the suite's
 * regressions test replays on every `npm test`, whatever the seed or the
 * arbitraries become. Shared by every package's fuzz suite (the protocol's,
 * binpkg's, the gateway's): defineFuzzSuite and replayRegressions.
 */
import { createHash } from 'node:crypto'
import { mkdirSync, readdirSync, readFileSync, writeFileSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import fc from 'fast-check'
import { afterAll, describe, expect, it } from 'vitest'

/**
 * One fuzzed property: inputs drawn from `input`, each given to `check`,
 * which throws (or rejects, with `async`) on a broken contract.
 */
export interface FuzzProperty<T = any> {
  group: string
  name: string
  /** Runs relative to the others in the default (short) run: the larger input spaces get more. */
  weight: number
  input: fc.Arbitrary<T>
  /** True when `check` returns a promise (a real server, a socket): run as fast-check's asyncProperty. */
  async?: boolean
  check: (input: T) => void | Promise<void>
}

/** Where saved regression cases live, committed with the tests. */
export const REGRESSIONS_DIR = fileURLToPath(new URL('./regressions/', import.meta.url))

export interface Regression {
  property: string
  seed: number
  path: string | null
  error: string
  /** The failing input, buffers tagged (see toJson). */
  input: unknown
}

/** JSON for a fuzz input: buffers and the numbers JSON lacks are tagged, so the very input comes back. */
export function toJson (value: unknown): unknown {
  if (Buffer.isBuffer(value)) return { $buffer: value.toString('hex') }
  if (value instanceof Uint8Array) return { $uint8array: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('hex') }
  if (value === undefined) return { $undefined: true }
  if (typeof value === 'number' && (!Number.isFinite(value) || Object.is(value, -0))) return { $number: Object.is(value, -0) ? '-0' : String(value) }
  if (typeof value === 'bigint') return { $bigint: value.toString() }
  if (Array.isArray(value)) return value.map(toJson)
  if (typeof value === 'object' && value !== null) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toJson(v)]))
  return value
}

export function fromJson (value: unknown): unknown {
  if (Array.isArray(value)) return value.map(fromJson)
  if (typeof value !== 'object' || value === null) return value
  const v = value as Record<string, unknown>
  if (typeof v.$buffer === 'string') return Buffer.from(v.$buffer, 'hex')
  if (typeof v.$uint8array === 'string') return new Uint8Array(Buffer.from(v.$uint8array, 'hex'))
  if (v.$undefined === true) return undefined
  if (typeof v.$number === 'string') return v.$number === '-0' ? -0 : Number(v.$number)
  if (typeof v.$bigint === 'string') return BigInt(v.$bigint)
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, fromJson(x)]))
}

/** Saves a failing input; the file name is stable for the same input, so a second find does not duplicate it. */
export function saveRegression (dir: string, r: Regression): string {
  mkdirSync(dir, { recursive: true })
  const text = JSON.stringify(r, null, 2) + '\n'
  const slug = r.property.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 60)
  const id = createHash('sha256').update(JSON.stringify([r.property, r.input])).digest('hex').slice(0, 12)
  const file = join(dir, `${slug}-${id}.json`)
  writeFileSync(file, text)
  return file
}

export function loadRegressions (dir: string): Array<{ file: string, regression: Regression }> {
  let names: string[]
  try {
    names = readdirSync(dir).filter((n) => n.endsWith('.json')).sort()
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw err
  }
  return names.map((file) => ({ file, regression: JSON.parse(readFileSync(join(dir, file), 'utf8')) as Regression }))
}

/** Runs a saved input through its property's check: throws (or rejects) as the check does. An input a precondition skips passes. */
export function replay (p: FuzzProperty, r: Regression): void | Promise<void> {
  const unlessSkipped = (err: unknown): void => { if (!fc.PreconditionFailure.isFailure(err)) throw err }
  let result: void | Promise<void>
  try {
    result = p.check(fromJson(r.input))
  } catch (err) {
    return unlessSkipped(err)
  }
  if (result instanceof Promise) return result.catch(unlessSkipped)
}

/** A sync property's check, refusing a promise: fast-check would take it for a pass without awaiting it. */
function syncCheck (p: FuzzProperty): (input: unknown) => void {
  return (input) => {
    if (p.check(input) instanceof Promise) throw new Error(`property ${JSON.stringify(p.name)} returned a promise: mark it async: true`)
  }
}

export interface RunResult { runs: number, skipped: number, ms: number }

/**
 * Wall time of one fc.check call. Between two the run yields to the event
 * loop: vitest's worker answers its RPC only then, and fails a run it has not
 * heard from for 60 s, however well the properties went.
 */
const BATCH_MS = 5000

/** The seed of batch `k` of a run: batch 0 is the run's own seed, so a run that fits in one batch is fc.check(seed) exactly. */
export function batchSeed (seed: number, k: number): number {
  if (k === 0) return seed
  let x = (seed ^ Math.imul(k, 0x9e3779b9)) >>> 0
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b) >>> 0
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35) >>> 0
  return (x ^ (x >>> 16)) >>> 1
}

/**
 * `runs` inputs of `p` from `seed`, in batches of BATCH_MS, each from its
 * own seed (batchSeed). Nothing is kept per input (fc.check without verbose
 * holds only the current one), so memory stays flat however many runs. On a
 * failure, saves the shrunk input under `saveDir` when given, and throws
 * fast-check's report (the seed in it is the failing batch's: with it, and
 * as many runs as the path's first number, the same input comes back).
 */
export async function runProperty (p: FuzzProperty, opts: {
  seed: number
  runs: number
  saveDir?: string | undefined
  progress?: (inputs: number, ms: number) => void
  progressEvery?: number
  batchMs?: number
}): Promise<RunResult> {
  const started = performance.now()
  const every = opts.progressEvery ?? 100_000
  const check = p.async === true ? null : syncCheck(p)
  let runs = 0
  let skipped = 0
  for (let k = 0; runs < opts.runs; k++) {
    const seed = batchSeed(opts.seed, k)
    const params = { seed, numRuns: opts.runs - runs, interruptAfterTimeLimit: opts.batchMs ?? BATCH_MS, markInterruptAsFailure: false }
    const details = check === null
      ? await fc.check(fc.asyncProperty(p.input, async (input) => { await p.check(input) }), params)
      : fc.check(fc.property(p.input, check), params)
    // A batch cut before its first input ends as "failed" with nothing to show: not a failure.
    if (details.failed && !(details.interrupted && details.counterexample === null)) {
      let saved = ''
      const error = details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance)
      if (opts.saveDir !== undefined && details.counterexample !== null) {
        const file = saveRegression(opts.saveDir, {
          property: p.name, seed, path: details.counterexamplePath, error: error.slice(0, 2000), input: toJson(details.counterexample[0])
        })
        saved = `\nfailing input saved as ${file} (a regression case npm test replays)`
      }
      throw new Error(`after ${runs} inputs of run seed ${opts.seed}, batch ${k}: ${fc.defaultReportMessage(details) ?? 'property failed'}\nGot: ${error.slice(0, 2000)}${saved}`)
    }
    const before = runs
    runs += details.numRuns
    skipped += details.numSkips
    if (opts.progress && Math.floor(runs / every) > Math.floor(before / every) && runs < opts.runs) opts.progress(runs, performance.now() - started)
    await new Promise<void>((resolve) => setImmediate(resolve))
  }
  return { runs, skipped, ms: performance.now() - started }
}

function envInt (name: string, fallback: number): number {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  const n = Number(raw)
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got ${JSON.stringify(raw)}`)
  return n
}

/**
 * The vitest suite of a package's fuzzed properties, one test each, grouped.
 * By default each property runs 500 inputs times its weight (a few seconds
 * in all, for `npm test`). `npm run fuzz -- --runs N [--seed S]` sets
 * DISTSWARM_FUZZ_RUNS (every property runs exactly that many, with progress
 * every 100 000), DISTSWARM_FUZZ_SEED and DISTSWARM_FUZZ_SAVE=1 (a failing
 * input is saved under `regressionsDir`, which replayRegressions replays).
 */
export function defineFuzzSuite (opts: { title: string, properties: readonly FuzzProperty[], regressionsDir: string }): void {
  const seed = envInt('DISTSWARM_FUZZ_SEED', 0x5eed)
  const asked = envInt('DISTSWARM_FUZZ_RUNS', 0)
  /** Runs of a property: exactly the number asked for, else 500 times its weight. */
  const runsOf = (p: FuzzProperty): number => asked > 0 ? asked : 500 * p.weight
  const saveDir = process.env.DISTSWARM_FUZZ_SAVE === '1' ? opts.regressionsDir : undefined
  /** A bound on each test that grows with the runs asked for: a long fuzz run is not a timeout. */
  const timeout = 30_000 + (asked > 0 ? asked : 500) * 4 * 50
  let inputs = 0
  let seconds = 0

  afterAll(() => {
    if (inputs === 0) return
    const rss = process.resourceUsage().maxRSS / 1024
    console.info(`fuzz: ${opts.title}: ${inputs} inputs in ${seconds.toFixed(1)} s (${Math.round(inputs / seconds)}/s), seed ${seed}, peak RSS of this worker ${rss.toFixed(0)} MiB`)
  })

  describe(`fuzz ${opts.title} (seed ${seed}, ${asked > 0 ? asked : '500 × weight'} runs a property; DISTSWARM_FUZZ_SEED / DISTSWARM_FUZZ_RUNS to change)`, () => {
    for (const group of new Set(opts.properties.map((p) => p.group))) {
      describe(group, () => {
        for (const p of opts.properties.filter((x) => x.group === group)) {
          it(p.name, async () => {
            // A long run says how far it got, every 100 000 inputs; straight to stderr, as vitest
            // holds a test's console output until the event loop turns, which a sync property never lets it.
            const progress = asked >= 100_000
              ? (n: number, ms: number): void => { writeSync(2, `fuzz: ${p.name}: ${n} inputs, ${Math.round(n / (ms / 1000))}/s, RSS ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB\n`) }
              : undefined
            const r = await runProperty(p, { seed, runs: runsOf(p), saveDir, progress })
            inputs += r.runs
            seconds += r.ms / 1000
            const rss = process.memoryUsage().rss / 2 ** 20
            if (asked > 0) console.info(`fuzz: ${p.name}: ${r.runs} inputs (${r.skipped} skipped) in ${(r.ms / 1000).toFixed(1)} s, ${Math.round(r.runs / (r.ms / 1000))}/s, seed ${seed}, RSS ${rss.toFixed(0)} MiB`)
          }, timeout)
        }
      })
    }
  })
}

/** Replays every input a fuzz run saved under `dir` against its property, found by name (names must be unique). */
export function replayRegressions (properties: readonly FuzzProperty[], dir: string): void {
  const byName = new Map(properties.map((p) => [p.name, p]))
  describe('fuzz regressions', () => {
    for (const { file, regression } of loadRegressions(dir)) {
      it(`${file}: ${regression.property}`, async () => {
        const p = byName.get(regression.property)
        expect(p, `no property named ${JSON.stringify(regression.property)}`).toBeDefined()
        await replay(p!, regression)
      })
    }

    it('property names are unique (a saved case finds its property by name)', () => {
      expect(byName.size).toBe(properties.length)
    })
  })
}
