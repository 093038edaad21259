#!/usr/bin/env node
// npm run fuzz -- --runs N [--seed S]
//
// Runs every fuzzed property of packages/protocol N times (through vitest, as
// `npm test` does, in one worker), prints inputs per second and the seed, and
// saves a failing input under packages/protocol/test/regressions/, where
// `npm test` replays it. The seed is random unless given; it is printed first,
// so a run that failed can be run again as it was.
import { spawn } from 'node:child_process'
import { randomInt } from 'node:crypto'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

const USAGE = 'usage: npm run fuzz -- --runs N [--seed S]'
const DEFAULT_RUNS = 10_000

function int (name, text, fallback) {
  if (text === undefined) return fallback
  const n = Number(text)
  if (!Number.isSafeInteger(n) || n < 0) {
    console.error(`--${name} must be a non-negative integer, got ${JSON.stringify(text)}\n${USAGE}`)
    process.exit(2)
  }
  return n
}

let values
try {
  ({ values } = parseArgs({ options: { runs: { type: 'string' }, seed: { type: 'string' }, help: { type: 'boolean', short: 'h' } } }))
} catch (err) {
  console.error(`${err.message}\n${USAGE}`)
  process.exit(2)
}
if (values.help) {
  console.log(USAGE)
  process.exit(0)
}
const runs = int('runs', values.runs, DEFAULT_RUNS)
const seed = int('seed', values.seed, randomInt(2 ** 31))
if (runs === 0) {
  console.error(`--runs must be at least 1\n${USAGE}`)
  process.exit(2)
}

const root = fileURLToPath(new URL('..', import.meta.url))
console.log(`fuzz: seed ${seed}, ${runs} runs a property (again: npm run fuzz -- --runs ${runs} --seed ${seed})`)
const started = Date.now()
// vitest's own bin, not npx: one process less holding memory for the whole run.
const vitest = join(dirname(createRequire(import.meta.url).resolve('vitest/package.json')), 'vitest.mjs')
const child = spawn(process.execPath, [vitest, 'run', '--project', '@distswarm/protocol', 'packages/protocol/test/fuzz.test.ts'], {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, DISTSWARM_FUZZ_RUNS: String(runs), DISTSWARM_FUZZ_SEED: String(seed), DISTSWARM_FUZZ_SAVE: '1' }
})
child.on('exit', (code, signal) => {
  const s = (Date.now() - started) / 1000
  const how = code === 0 ? 'passed' : `FAILED (${signal ?? `exit ${code}`}); a failing input is saved under packages/protocol/test/regressions/`
  console.log(`fuzz: ${how} in ${s.toFixed(0)} s, seed ${seed}, ${runs} runs a property`)
  process.exit(code ?? 1)
})
