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
 * `runs` inputs of `p` from `seed`. Nothing is kept per input (fc.check
 * without verbose holds only the current one), so memory stays flat however
 * many runs. On a failure, saves the shrunk input under `saveDir` when given,
 * and throws fast-check's report with the file's name.
 */
export function runProperty (p: FuzzProperty, opts: { seed: number, runs: number, saveDir?: string | undefined, progress?: (inputs: number, ms: number) => void, progressEvery?: number }): RunResult {
  const started = performance.now()
  const every = opts.progressEvery ?? 100_000
  let inputs = 0
  const details = fc.check(fc.property(p.input, (input) => {
    if (opts.progress && ++inputs % every === 0) opts.progress(inputs, performance.now() - started)
    p.check(input)
  }), { seed: opts.seed, numRuns: opts.runs })
  const ms = performance.now() - started
  if (!details.failed) return { runs: details.numRuns, skipped: details.numSkips, ms }
  let saved = ''
  if (opts.saveDir !== undefined && details.counterexample !== null) {
    const error = details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance)
    const file = saveRegression(opts.saveDir, {
      property: p.name, seed: opts.seed, path: details.counterexamplePath, error: error.slice(0, 2000), input: toJson(details.counterexample[0])
    })
    saved = `\nfailing input saved as ${file} (a regression case npm test replays)`
  }
  throw new Error(`${fc.defaultReportMessage(details) ?? 'property failed'}${saved}`)
}
