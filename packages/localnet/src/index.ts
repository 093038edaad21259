/**
 * A distswarm network on loopback made of real processes: a bootstrap node
 * and agents, each agent with its own dirs under one root. The demo, the
 * end-to-end tests and the benchmarks all run on it.
 */
import { randomBytes, randomFillSync } from 'node:crypto'
import { once } from 'node:events'
import { mkdir, mkdtemp, open, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { startProc, untilAnswering, type AgentProc, type Proc } from './proc.js'

export { startProc, untilAnswering, waitFor } from './proc.js'
export type { Proc, AgentProc } from './proc.js'

export interface LocalNetInit {
  /** Path of bin/distswarm.js to run. */
  bin: string
  /** Directory for every agent's dirs. Default: a new temp dir, removed by close(). */
  root?: string
  /** Lines of every process's stderr, with its label. Default: kept in memory only. */
  onLog?: (label: string, line: string) => void
  /** Extra environment for every process. */
  env?: NodeJS.ProcessEnv
}

export interface AgentSpec {
  name: string
  /** Default: the network's own key. */
  networkKey?: string
  /** Extra `distswarm agent` flags. */
  args?: string[]
  /** Pass the network's bootstrap node. Default true; false for agents that meet by --peer alone. */
  bootstrap?: boolean
  /** Extra environment for this agent's process. */
  env?: NodeJS.ProcessEnv
}

/** Writes `size` random bytes to a new file, 1 MiB at a time. */
export async function writeRandomFile (path: string, size: number): Promise<void> {
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

export class LocalNet {
  readonly root: string
  /** The network key agents get unless told otherwise. */
  readonly networkKey = randomBytes(32).toString('hex')
  bootstrap: string | null = null
  /** The running bootstrap node's process, so a test can kill it. */
  bootstrapProc: Proc | null = null
  private readonly init: LocalNetInit
  private readonly ownsRoot: boolean
  private readonly procs: Proc[] = []

  private constructor (init: LocalNetInit, root: string, ownsRoot: boolean) {
    this.init = init
    this.root = root
    this.ownsRoot = ownsRoot
  }

  static async create (init: LocalNetInit): Promise<LocalNet> {
    const root = init.root ?? await mkdtemp(join(tmpdir(), 'distswarm-net-'))
    return new LocalNet(init, root, init.root === undefined)
  }

  /** Starts `distswarm ARGS…` and tracks it for close(). */
  spawn (label: string, args: string[], env: NodeJS.ProcessEnv = {}): Proc {
    const proc = startProc(label, process.execPath, [this.init.bin, ...args], { ...this.init.env, ...env }, this.init.onLog)
    this.procs.push(proc)
    return proc
  }

  /**
   * Starts the bootstrap node on 127.0.0.1; resolves to "host:port". Port 0
   * (the default): any free port; pass the old one to restart it in place.
   */
  async startBootstrap (port = 0): Promise<string> {
    const proc = this.bootstrapProc = this.spawn('bootstrap', ['bootstrap', '--host', '127.0.0.1', '--port', String(port), '--json'])
    const lines = createInterface({ input: proc.child.stdout! })
    const [line] = await Promise.race([
      once(lines, 'line') as Promise<[string]>,
      once(proc.child, 'exit').then(() => { throw new Error(`bootstrap node exited: ${proc.log.join('\n')}`) })
    ])
    const bound = JSON.parse(line) as { host: string, port: number }
    this.bootstrap = `${bound.host}:${bound.port}`
    return this.bootstrap
  }

  /** Dirs of the agent called `name` (made on demand), so files can be put in place before it starts. */
  async dirs (name: string): Promise<Pick<AgentProc, 'dir' | 'distdir' | 'cacheDir' | 'stateDir' | 'control'>> {
    const dir = join(this.root, name)
    const distdir = join(dir, 'distfiles')
    await mkdir(distdir, { recursive: true })
    return { dir, distdir, cacheDir: join(dir, 'cache'), stateDir: join(dir, 'state'), control: join(dir, 'control.sock') }
  }

  /** Starts an agent and resolves once its control socket answers. */
  async startAgent (spec: AgentSpec, readyMs = 30_000): Promise<AgentProc> {
    const useBootstrap = spec.bootstrap ?? true
    if (useBootstrap && !this.bootstrap) throw new Error('startBootstrap() first')
    const d = await this.dirs(spec.name)
    const proc = this.spawn(spec.name, [
      // not the box's config file (/etc/distswarm/distswarm.toml as root): only what is given here
      'agent', '--config', '/dev/null', '--name', spec.name, ...(useBootstrap ? ['--bootstrap', this.bootstrap!] : []), '--distdir', d.distdir,
      '--cache-dir', d.cacheDir, '--state-dir', d.stateDir, '--control', d.control,
      // its own gateway on any free port: agents of one box never race for the default one
      ...(spec.args?.includes('--http') === true ? [] : ['--http', '127.0.0.1:0']), ...(spec.args ?? [])
    ], { ...spec.env, DISTSWARM_NETWORK_KEY: spec.networkKey ?? this.networkKey })
    return { ...proc, ...d, ...await untilAnswering(proc, d.control, readyMs), name: spec.name }
  }

  /** Stops every process, then removes the root it made unless `keepRoot`. Idempotent. */
  async close (opts: { keepRoot?: boolean } = {}): Promise<void> {
    await Promise.all(this.procs.map((p) => p.stop()))
    if (this.ownsRoot && !opts.keepRoot) await rm(this.root, { recursive: true, force: true })
  }
}

export { LanLab, LAB_PREFIX, LAB_SUBNET, removeLeftovers } from './lab.js'
export type { LanLabInit, LabBox, LinkShape, BoxSpec, Result } from './lab.js'
