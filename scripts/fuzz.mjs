#!/usr/bin/env node
// npm run fuzz -- --runs N [--seed S] [--suite protocol,binpkg,gateway] [--grep PATTERN]
//
// Runs every fuzzed property N times (through vitest, as `npm test` does, one
// file at a time in one worker): the protocol's (framing, messages, names),
// binpkg's (the Packages reader, the binhost's merged index) and the
// gateway's (HTTP requests against a real Gateway on 127.0.0.1). Prints
// inputs per second and the seed, and saves a failing input under the
// suite's test/regressions/, where `npm test` replays it. The seed is random
// unless given; it is printed first, so a run that failed can be run again
// as it was. --grep runs only the properties whose full name (suite, group,
// property) matches PATTERN, a regular expression (vitest's -t): say
// `--grep decodeMessage` for the message decoder's properties.
import { spawn } from 'node:child_process'
import { randomInt } from 'node:crypto'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

const USAGE = 'usage: npm run fuzz -- --runs N [--seed S] [--suite protocol,binpkg,gateway] [--grep PATTERN]'
const DEFAULT_RUNS = 10_000
/** Each suite's fuzz file; --suite picks some (default: all). */
const SUITES = {
  protocol: 'packages/protocol/test/fuzz.test.ts',
  binpkg: 'packages/binpkg/test/fuzz.test.ts',
  gateway: 'packages/gateway/test/fuzz.test.ts'
}

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
  ({ values } = parseArgs({ options: { runs: { type: 'string' }, seed: { type: 'string' }, suite: { type: 'string' }, grep: { type: 'string' }, help: { type: 'boolean', short: 'h' } } }))
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
const suites = values.suite === undefined ? Object.keys(SUITES) : values.suite.split(',')
for (const s of suites) {
  if (!Object.hasOwn(SUITES, s)) {
    console.error(`--suite: no suite ${JSON.stringify(s)} (${Object.keys(SUITES).join(', ')})\n${USAGE}`)
    process.exit(2)
  }
}

if (values.grep !== undefined) {
  try {
    new RegExp(values.grep) // eslint-disable-line no-new
  } catch (err) {
    console.error(`--grep: ${err.message}\n${USAGE}`)
    process.exit(2)
  }
}

const root = fileURLToPath(new URL('..', import.meta.url))
const again = `npm run fuzz -- --runs ${runs} --seed ${seed}${values.suite === undefined ? '' : ` --suite ${values.suite}`}${values.grep === undefined ? '' : ` --grep '${values.grep}'`}`
const which = values.grep === undefined ? suites.join(', ') : `${suites.join(', ')} matching /${values.grep}/`
console.log(`fuzz: seed ${seed}, ${runs} runs a property of ${which} (again: ${again})`)
const started = Date.now()
// vitest's own bin, not npx: one process less holding memory for the whole run.
const vitest = join(dirname(createRequire(import.meta.url).resolve('vitest/package.json')), 'vitest.mjs')
// One file at a time: the suite's memory is one worker's, whatever the runs.
const child = spawn(process.execPath, [vitest, 'run', '--no-file-parallelism', '--maxWorkers', '1', ...(values.grep === undefined ? [] : ['-t', values.grep]), ...suites.map((s) => SUITES[s])], {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, DISTSWARM_FUZZ_RUNS: String(runs), DISTSWARM_FUZZ_SEED: String(seed), DISTSWARM_FUZZ_SAVE: '1' }
})
child.on('exit', (code, signal) => {
  const s = (Date.now() - started) / 1000
  const how = code === 0 ? 'passed' : `FAILED (${signal ?? `exit ${code}`}); a failing input is saved under the suite's test/regressions/`
  console.log(`fuzz: ${how} in ${s.toFixed(0)} s, seed ${seed}, ${runs} runs a property of ${which}`)
  process.exit(code ?? 1)
})
