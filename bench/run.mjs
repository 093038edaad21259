#!/usr/bin/env node
// Runs every benchmark; `--quick` for smaller sizes. Each prints a Markdown table.
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const quick = process.argv.includes('--quick')
const here = (f) => fileURLToPath(new URL(f, import.meta.url))
const runs = [
  ['--expose-gc', here('./manifest-load.mjs'), ...(quick ? ['5000', '17500'] : [])],
  [here('./store-restart.mjs'), ...(quick ? ['5000'] : [])],
  [here('./transfer.mjs'), ...(quick ? ['256', '3'] : ['1024', '3'])]
]
let failed = 0
for (const args of runs) {
  const r = spawnSync(process.execPath, args, { stdio: 'inherit' })
  if (r.status !== 0) failed++
  console.log()
}
process.exit(failed ? 1 : 0)
