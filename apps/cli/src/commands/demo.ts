import { spawn, type ChildProcess } from 'node:child_process'
import { randomFillSync } from 'node:crypto'
import { once } from 'node:events'
import { mkdir, mkdtemp, open, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { ControlClient, generateNetworkKey, type StatusResult } from '@distswarm/agent'
import { defineCommand, type IO } from '../command.js'
import { formatBytes, formatDuration, formatRate } from '../format.js'
import { statusCommand } from './query.js'

const BIN = fileURLToPath(new URL('../../bin/distswarm.js', import.meta.url))

/** Distfiles the seeding agent holds: names as Portage has them, random contents made now. */
const DEMO_FILES: Array<[string, number]> = [
  ['hello-2.12.1.tar.gz', 1_034_726],
  ['zlib-1.3.1.tar.xz', 1_305_740],
  ['demo-kernel-6.12.tar.xz', 48 * 1024 * 1024]
]

async function writeRandomFile (path: string, size: number): Promise<void> {
  const fh = await open(path, 'wx')
  try {
    const buf = Buffer.allocUnsafe(1024 * 1024)
    for (let done = 0; done < size;) {
      const n = Math.min(buf.length, size - done)
      await fh.write(randomFillSync(buf, 0, n), 0, n)
      done += n
    }
  } finally {
    await fh.close()
  }
}

/** Starts `distswarm ARGS…` with its stderr lines prefixed into ours. */
function startChild (io: IO, label: string, args: string[], env: NodeJS.ProcessEnv): ChildProcess {
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...io.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  createInterface({ input: child.stderr! }).on('line', (line) => io.stderr.write(`  [${label}] ${line}\n`))
  return child
}

async function stopChild (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = once(child, 'exit')
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
  await exited
  clearTimeout(timer)
}

/** Polls the agent at `control` until `ready` holds for its status; bounded by `ms`. */
async function waitForAgent (control: string, ready: (s: StatusResult) => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms
  for (;;) {
    try {
      const client = await ControlClient.connect(control)
      try {
        if (ready(await client.call('status', {}))) return
      } finally {
        client.close()
      }
    } catch (err) {
      if ((err as { code?: string }).code !== 'ERR_AGENT_UNREACHABLE') throw err
    }
    if (Date.now() > deadline) throw new Error(`demo: gave up waiting for ${what} after ${ms} ms`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

export const demoCommand = defineCommand({
  name: 'demo',
  summary: 'run a local demo swarm on 127.0.0.1: a bootstrap node, a seeding agent and an agent that fetches from it',
  usage: 'distswarm demo [--keep]',
  examples: ['distswarm demo', 'distswarm demo --keep   # leave the demo dirs for a look'],
  options: {
    keep: { type: 'boolean', description: 'keep the temporary dirs afterwards' },
    help: { type: 'boolean', short: 'h', description: 'show this help' }
  },
  async run ({ values }, io) {
    const say = (line: string): void => { io.stdout.write(line + '\n') }
    const root = await mkdtemp(join(tmpdir(), 'distswarm-demo-'))
    const children: ChildProcess[] = []
    try {
      const seedDist = join(root, 'seeder', 'distfiles')
      await mkdir(seedDist, { recursive: true })
      for (const [name, size] of DEMO_FILES) await writeRandomFile(join(seedDist, name), size)
      say(`demo dir ${root}: seeder holds ${DEMO_FILES.length} distfiles (${formatBytes(DEMO_FILES.reduce((n, [, s]) => n + s, 0))})`)

      const boot = startChild(io, 'bootstrap', ['bootstrap', '--host', '127.0.0.1', '--port', '0', '--json'], {})
      children.push(boot)
      const [line] = await once(createInterface({ input: boot.stdout! }), 'line') as [string]
      const { host, port } = JSON.parse(line) as { host: string, port: number }
      say(`bootstrap node on ${host}:${port}`)

      const env = { DISTSWARM_NETWORK_KEY: generateNetworkKey().toString('hex') }
      const agents = ['seeder', 'laptop'].map((name) => {
        const dir = join(root, name)
        const control = join(dir, 'control.sock')
        children.push(startChild(io, name, [
          'agent', '--name', name, '--bootstrap', `${host}:${port}`, '--distdir', join(dir, 'distfiles'),
          '--cache-dir', join(dir, 'cache'), '--state-dir', join(dir, 'state'), '--control', control
        ], env))
        return { name, control }
      })
      const laptop = agents[1]!
      await waitForAgent(laptop.control, (s) => s.peers > 0, 30_000, 'the agents to meet')
      say('agents "seeder" and "laptop" found each other over the swarm and proved the network key')

      const client = await ControlClient.connect(laptop.control)
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
      await Promise.all(children.map(stopChild))
      if (values.keep) say(`kept ${root}`)
      else await rm(root, { recursive: true, force: true })
    }
  }
})
