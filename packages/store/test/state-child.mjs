// A process that churns a Store's state files for crash.test.ts: each round
// changes some files, starts a Store (which saves the hash index), uses
// every cache file and stops it (which saves the use times), then says
// `round N`. Runs the built package (npm test builds first). Events of the
// store's logger are printed as JSON lines.
import { randomBytes } from 'node:crypto'
import { rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Store } from '@distswarm/store'

const [dist, cache, state, roundsArg] = process.argv.slice(2)
const rounds = Number(roundsArg)
const print = (level) => (event, fields = {}) => process.stdout.write(`${JSON.stringify({ level, event, ...fields })}\n`)
const logger = { error: print('error'), warn: print('warn'), info: print('info'), debug: print('debug'), child: () => logger }

for (let round = 0; round < rounds; round++) {
  // New content and a new size for a few names, one name gone: the index changes every round.
  for (let i = 0; i < 4; i++) await writeFile(join(i % 2 === 0 ? dist : cache, `f-${(round + i) % 6}.tar`), randomBytes(1000 + ((round * 7 + i) % 50)))
  await rm(join(dist, `f-${(round + 5) % 6}.tar`), { force: true })
  const store = new Store({ distdirs: [dist], cacheDir: cache, stateDir: state, watch: false, rescanIntervalMs: 3_600_000, logger })
  await store.start()
  for (const f of store.cacheFiles()) store.touch(f.blake2b)
  await store.stop()
  process.stdout.write(`round ${round} ${store.size}\n`)
}
