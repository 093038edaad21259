/**
 * Runs a FuzzProperty at any scale, and keeps what a failure found: the
 * shrunk input is saved as a JSON regression case that regressions.test.ts
 * replays on every `npm test`, whatever the seed or the arbitraries become.
 */
import { createHash } from 'node:crypto'
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import fc from 'fast-check'
import type { FuzzProperty } from './properties.js'

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

/** Runs a saved input through its property's check: throws as the check does. An input a precondition skips passes. */
export function replay (p: FuzzProperty, r: Regression): void {
  try {
    p.check(fromJson(r.input))
  } catch (err) {
    if (fc.PreconditionFailure.isFailure(err)) return
    throw err
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
  const property = fc.property(p.input, (input) => { p.check(input) })
  let runs = 0
  let skipped = 0
  for (let k = 0; runs < opts.runs; k++) {
    const seed = batchSeed(opts.seed, k)
    const details = fc.check(property, { seed, numRuns: opts.runs - runs, interruptAfterTimeLimit: opts.batchMs ?? BATCH_MS, markInterruptAsFailure: false })
    // A batch cut before its first input ends as "failed" with nothing to show: not a failure.
    if (details.failed && !(details.interrupted && details.counterexample === null)) {
      let saved = ''
      if (opts.saveDir !== undefined && details.counterexample !== null) {
        const error = details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance)
        const file = saveRegression(opts.saveDir, {
          property: p.name, seed, path: details.counterexamplePath, error: error.slice(0, 2000), input: toJson(details.counterexample[0])
        })
        saved = `\nfailing input saved as ${file} (a regression case npm test replays)`
      }
      throw new Error(`after ${runs} inputs of run seed ${opts.seed}, batch ${k}: ${fc.defaultReportMessage(details) ?? 'property failed'}${saved}`)
    }
    const before = runs
    runs += details.numRuns
    skipped += details.numSkips
    if (opts.progress && Math.floor(runs / every) > Math.floor(before / every) && runs < opts.runs) opts.progress(runs, performance.now() - started)
    await new Promise<void>((resolve) => setImmediate(resolve))
  }
  return { runs, skipped, ms: performance.now() - started }
}
