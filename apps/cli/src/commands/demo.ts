import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { LocalNet, waitFor, writeRandomFile } from '@distswarm/localnet'
import { defineCommand } from '../command.js'
import { formatBytes, formatDuration, formatRate } from '../format.js'
import { statusCommand } from './query.js'

const BIN = fileURLToPath(new URL('../../bin/distswarm.js', import.meta.url))

/** Distfiles the seeding agent holds: names as Portage has them, random contents made now. */
const DEMO_FILES: Array<[string, number]> = [
  ['hello-2.12.1.tar.gz', 1_034_726],
  ['zlib-1.3.1.tar.xz', 1_305_740],
  ['demo-kernel-6.12.tar.xz', 48 * 1024 * 1024]
]

export const demoCommand = defineCommand({
  meta: {
    name: 'demo',
    summary: 'run a local demo swarm on 127.0.0.1: a bootstrap node, a seeding agent and an agent that fetches from it',
    usage: 'distswarm demo [--keep]',
    examples: ['distswarm demo', 'distswarm demo --keep   # leave the demo dirs for a look']
  },
  args: {
    keep: { type: 'boolean', description: 'keep the temporary dirs afterwards' }
  },
  async run ({ values }, io) {
    const say = (line: string): void => { io.stdout.write(line + '\n') }
    const net = await LocalNet.create({ bin: BIN, onLog: (label, line) => io.stderr.write(`  [${label}] ${line}\n`) })
    try {
      const seed = await net.dirs('seeder')
      for (const [name, size] of DEMO_FILES) await writeRandomFile(join(seed.distdir, name), size)
      say(`demo dir ${net.root}: seeder holds ${DEMO_FILES.length} distfiles (${formatBytes(DEMO_FILES.reduce((n, [, s]) => n + s, 0))})`)
      say(`bootstrap node on ${await net.startBootstrap()}`)

      const [, laptop] = await Promise.all([net.startAgent({ name: 'seeder', args: ['--seed'] }), net.startAgent({ name: 'laptop' })])
      await waitFor(async () => (await laptop.status()).peers > 0, 30_000, 'the agents to meet')
      say('agents "seeder" and "laptop" found each other over the swarm and proved the network key')

      const client = await laptop.client()
      try {
        for (const [name] of DEMO_FILES) {
          const r = await client.call('fetch', { query: name })
          say(`laptop fetched ${name} (${formatBytes(r.size)}) in ${formatDuration(r.durationMs)}, ${formatRate(r.size, r.durationMs)}, verified BLAKE2B+SHA512 → ${r.path}`)
        }
      } finally {
        client.close()
      }
      say('\nlaptop status:')
      await statusCommand.run({ values: { control: laptop.control }, positionals: [] }, io)
      return 0
    } finally {
      await net.close({ keepRoot: values.keep === true })
      if (values.keep) say(`kept ${net.root}`)
    }
  }
})
