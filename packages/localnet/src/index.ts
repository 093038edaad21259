/**
 * A distswarm network on loopback made of real processes: a bootstrap node
 * and agents, each agent with its own dirs under one root. The demo, the
 * end-to-end tests and the benchmarks all run on it.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes, randomFillSync } from 'node:crypto'
import { once } from 'node:events'
import { mkdir, mkdtemp, open, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { ControlClient, type StatusResult } from '@distswarm/agent'

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

export interface Proc {
  label: string
  child: ChildProcess
  /** stderr lines so far */
  log: string[]
  /** SIGTERM, then SIGKILL after `graceMs`. Resolves once it exited. Idempotent. */
  stop: (graceMs?: number) => Promise<void>
}

export interface AgentProc extends Proc {
  name: string
  dir: string
  distdir: string
  cacheDir: string
  stateDir: string
  control: string
  /** Connects to this agent's control socket; close the client when done. */
  client: () => Promise<ControlClient>
  status: () => Promise<StatusResult>
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

const STOP_GRACE_MS = 5000

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

/** Polls `check` every `everyMs` until it holds; throws after `ms`. */
export async function waitFor (check: () => Promise<boolean> | boolean, ms: number, what: string, everyMs = 100): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, everyMs))
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
    // The box's own DISTSWARM_* settings (a seed switch, a LAN peer, a fixed port) must not leak into a loopback net.
    const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('DISTSWARM_')))
    const child = spawn(process.execPath, [this.init.bin, ...args], {
      env: { ...inherited, ...this.init.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    const log: string[] = []
    createInterface({ input: child.stderr! }).on('line', (line) => {
      log.push(line)
      this.init.onLog?.(label, line)
    })
    const exited = once(child, 'exit').then(() => undefined)
    const stop = async (graceMs = STOP_GRACE_MS): Promise<void> => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM')
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
        await exited
        clearTimeout(timer)
      }
    }
    const proc = { label, child, log, stop }
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
    const client = (): Promise<ControlClient> => ControlClient.connect(d.control)
    const status = async (): Promise<StatusResult> => {
      const c = await client()
      try {
        return await c.call('status', {})
      } finally {
        c.close()
      }
    }
    const agent: AgentProc = { ...proc, ...d, name: spec.name, client, status }
    await waitFor(async () => {
      if (proc.child.exitCode !== null) throw new Error(`agent ${spec.name} exited: ${proc.log.join('\n')}`)
      return status().then(() => true, () => false)
    }, readyMs, `agent ${spec.name} to answer`)
    return agent
  }

  /** Stops every process, then removes the root it made unless `keepRoot`. Idempotent. */
  async close (opts: { keepRoot?: boolean } = {}): Promise<void> {
    await Promise.all(this.procs.map((p) => p.stop()))
    if (this.ownsRoot && !opts.keepRoot) await rm(this.root, { recursive: true, force: true })
  }
}
