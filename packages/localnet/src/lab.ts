/**
 * The LAN lab: real boxes on one machine. Each box is a network namespace
 * with one interface (eth0, 10.77.0.x/24) on a bridge that lives in a
 * namespace of its own, so nothing the lab does touches the machine's own
 * interfaces, and no packet can reach any address outside the lab (the
 * boxes have no default route). Links can be shaped (rate with tbf, loss
 * with nftables, delay with netem where the kernel has it), cut and healed;
 * real agent processes run inside with `ip netns exec`.
 *
 * Everything is torn down on close(), on a failed create(), on process exit
 * and on SIGINT/SIGTERM; create() first removes what a crashed earlier run
 * left (namespaces named LAB_PREFIX<pid>-… whose process is gone).
 */
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startProc, untilAnswering, type AgentProc, type Proc } from './proc.js'

/** Every namespace the lab makes is named LAB_PREFIX<pid>-<n>-…; a leftover's pid tells whether its run is gone. */
export const LAB_PREFIX = 'dsw-lab-'
/** The only addresses the lab gives out. */
export const LAB_SUBNET = '10.77.0.0/24'
const FIRST_HOST = 10
const STOP_GRACE_MS = 5000

/** Shaping of one box's link, both directions. */
export interface LinkShape {
  /** tbf rate, as tc writes it: '100mbit', '10mbit'. */
  rate?: string
  /** Percent of packets dropped each way (nftables numgen), 0-100. */
  loss?: number
  /** One-way delay, as tc writes it ('5ms'); needs netem in the kernel. */
  delay?: string
}

export interface BoxSpec {
  name: string
  /** 10.77.0.x; default 10.77.0.(10 + index). */
  address?: string
  shape?: LinkShape
}

export interface LanLabInit {
  /** Path of bin/distswarm.js to run. */
  bin: string
  boxes: BoxSpec[]
  /** Lines of every process's stderr, with its label. */
  onLog?: (label: string, line: string) => void
  /** Extra environment for every process. */
  env?: NodeJS.ProcessEnv
}

export interface LabBox {
  name: string
  /** Its network namespace. */
  ns: string
  address: string
  /** Its dir on the shared filesystem (dirs, config, control socket). */
  dir: string
  /** Its link's end on the bridge, in the hub namespace. */
  port: string
}

export interface Result { code: number | null, stdout: string, stderr: string }

function run (argv: string[], input?: string): string {
  try {
    return execFileSync(argv[0]!, argv.slice(1), { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] })
  } catch (err) {
    const e = err as { stderr?: string, message: string }
    throw new Error(`${argv.join(' ')}: ${(e.stderr ?? '').trim() || e.message}`)
  }
}

const quietly = (argv: string[]): void => { try { run(argv) } catch {} }

function alive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

function namespaces (): string[] {
  try {
    return run(['ip', 'netns', 'list']).split('\n').map((l) => l.split(' ')[0]!).filter(Boolean)
  } catch {
    return []
  }
}

/** Kills what still runs in a namespace, then deletes it. */
function removeNamespace (ns: string): void {
  try {
    for (const pid of run(['ip', 'netns', 'pids', ns]).split('\n').filter(Boolean)) {
      try { process.kill(Number(pid), 'SIGKILL') } catch {}
    }
  } catch {}
  quietly(['ip', 'netns', 'del', ns])
}

/** The pid in a name of the lab's making, when that process is gone. */
function deadRun (name: string): boolean {
  const m = new RegExp(`^${LAB_PREFIX}(\\d+)-`).exec(name)
  return m !== null && !alive(Number(m[1]))
}

/** Removes the namespaces and dirs of lab runs whose process is gone (a crash, a kill -9). */
export function removeLeftovers (): string[] {
  const gone: string[] = []
  for (const ns of namespaces().filter(deadRun)) {
    removeNamespace(ns)
    gone.push(ns)
  }
  for (const dir of readdirSync(tmpdir()).filter(deadRun)) {
    rmSync(join(tmpdir(), dir), { recursive: true, force: true })
    gone.push(dir)
  }
  return gone
}

const live = new Set<LanLab>()
let handlersInstalled = false

function installHandlers (): void {
  if (handlersInstalled) return
  handlersInstalled = true
  process.on('exit', () => { for (const lab of live) lab.closeSync() })
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    const onSignal = (): void => {
      for (const lab of live) lab.closeSync()
      // Die of the signal as we would have without this handler (unless someone else handles it too).
      process.off(signal, onSignal)
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal)
    }
    process.on(signal, onSignal)
  }
}

let labs = 0

export class LanLab {
  readonly boxes: LabBox[] = []
  readonly hub: string
  /** LAB_PREFIX<pid>-<n>: the start of every namespace name of this lab. */
  private readonly id: string
  readonly root: string
  private readonly init: LanLabInit
  private readonly procs: Proc[] = []
  private readonly made: string[] = []
  private closed = false

  private constructor (init: LanLabInit, root: string) {
    this.init = init
    this.root = root
    this.id = `${LAB_PREFIX}${process.pid}-${labs++}`
    this.hub = `${this.id}-hub`
  }

  /** Whether the lab can run here (root, iproute2, network namespaces), and if not, why. */
  static available (): { ok: boolean, reason: string } {
    if (process.platform !== 'linux') return { ok: false, reason: 'the LAN lab needs Linux network namespaces' }
    if (process.getuid?.() !== 0) return { ok: false, reason: 'the LAN lab needs root (network namespaces)' }
    try {
      run(['ip', '-V'])
    } catch {
      return { ok: false, reason: 'the LAN lab needs `ip` (iproute2)' }
    }
    const probe = `${LAB_PREFIX}${process.pid}-probe-${randomBytes(3).toString('hex')}`
    try {
      run(['ip', 'netns', 'add', probe])
      run(['ip', '-n', probe, 'link', 'add', 'br0', 'type', 'bridge'])
      return { ok: true, reason: '' }
    } catch (err) {
      return { ok: false, reason: `cannot make a network namespace with a bridge: ${(err as Error).message}` }
    } finally {
      quietly(['ip', 'netns', 'del', probe])
    }
  }

  /** Whether links can lose packets (nftables), and if not, why. */
  static lossAvailable (): { ok: boolean, reason: string } {
    try {
      run(['nft', '--version'])
      return { ok: true, reason: '' }
    } catch {
      return { ok: false, reason: 'packet loss in the LAN lab needs `nft` (nftables)' }
    }
  }

  /** Makes the namespaces, the bridge and the links. A failure removes what was made. */
  static async create (init: LanLabInit): Promise<LanLab> {
    removeLeftovers()
    const root = await mkdtemp(join(tmpdir(), `${LAB_PREFIX}${process.pid}-`))
    const lab = new LanLab(init, root)
    live.add(lab)
    installHandlers()
    try {
      await lab.build()
    } catch (err) {
      await lab.close()
      throw err
    }
    return lab
  }

  private async build (): Promise<void> {
    const names = new Set<string>()
    const addresses = new Set<string>()
    this.made.push(this.hub)
    run(['ip', 'netns', 'add', this.hub])
    // No IGMP snooping: the bridge floods multicast, as a plain switch does.
    run(['ip', '-n', this.hub, 'link', 'add', 'br0', 'type', 'bridge', 'mcast_snooping', '0'])
    run(['ip', '-n', this.hub, 'link', 'set', 'br0', 'up'])
    for (const [i, spec] of this.init.boxes.entries()) {
      const address = spec.address ?? `10.77.0.${FIRST_HOST + i}`
      const m = /^10\.77\.0\.(\d{1,3})$/.exec(address)
      if (!m || Number(m[1]) < 2 || Number(m[1]) > 254) throw new Error(`lab box ${spec.name}: ${address} is not a host of ${LAB_SUBNET}`)
      if (!/^[\w-]{1,32}$/.test(spec.name) || names.has(spec.name) || addresses.has(address)) throw new Error(`lab box ${spec.name} (${address}): a unique name of letters, digits, - and _ and a unique address, please`)
      names.add(spec.name)
      addresses.add(address)
      const ns = `${this.id}-${i}`
      const port = `h${i}`
      this.made.push(ns)
      run(['ip', 'netns', 'add', ns])
      run(['ip', '-n', this.hub, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns])
      run(['ip', '-n', this.hub, 'link', 'set', port, 'master', 'br0'])
      run(['ip', '-n', this.hub, 'link', 'set', port, 'up'])
      run(['ip', '-n', ns, 'addr', 'add', `${address}/24`, 'dev', 'eth0'])
      run(['ip', '-n', ns, 'link', 'set', 'eth0', 'up'])
      run(['ip', '-n', ns, 'link', 'set', 'lo', 'up'])
      const dir = join(this.root, spec.name)
      await mkdir(dir, { recursive: true })
      const box = { name: spec.name, ns, address, dir, port }
      this.boxes.push(box)
      if (spec.shape) this.shape(box, spec.shape)
    }
  }

  box (name: string): LabBox {
    const box = this.boxes.find((b) => b.name === name)
    if (!box) throw new Error(`no lab box ${name}`)
    return box
  }

  private of (box: LabBox | string): LabBox {
    return typeof box === 'string' ? this.box(box) : box
  }

  /** Starts COMMAND… inside the box and tracks it for close(). */
  spawnIn (box: LabBox | string, label: string, argv: string[], env: NodeJS.ProcessEnv = {}): Proc {
    if (this.closed) throw new Error('lab closed')
    // ip netns exec execs the command: the child is the command itself, signals reach it.
    const proc = startProc(label, 'ip', ['netns', 'exec', this.of(box).ns, ...argv], { ...this.init.env, ...env }, this.init.onLog)
    this.procs.push(proc)
    return proc
  }

  /** Starts `distswarm ARGS…` inside the box. */
  spawn (box: LabBox | string, label: string, args: string[], env: NodeJS.ProcessEnv = {}): Proc {
    return this.spawnIn(box, label, [process.execPath, this.init.bin, ...args], env)
  }

  /** Runs COMMAND… inside the box to completion (killed after `timeoutMs`). */
  async exec (box: LabBox | string, argv: string[], opts: { env?: NodeJS.ProcessEnv, timeoutMs?: number } = {}): Promise<Result> {
    const proc = this.spawnIn(this.of(box), argv[0] ?? 'exec', argv, opts.env)
    let stdout = ''
    proc.child.stdout!.setEncoding('utf8').on('data', (d: string) => { stdout += d })
    const timer = setTimeout(() => proc.child.kill('SIGKILL'), opts.timeoutMs ?? 60_000)
    const code = await new Promise<number | null>((resolve) => proc.child.once('close', (c: number | null) => resolve(c)))
    clearTimeout(timer)
    return { code, stdout, stderr: proc.log.join('\n') }
  }

  /** Runs `distswarm ARGS…` inside the box to completion. */
  cli (box: LabBox | string, args: string[], opts: { env?: NodeJS.ProcessEnv, timeoutMs?: number } = {}): Promise<Result> {
    return this.exec(box, [process.execPath, this.init.bin, ...args], opts)
  }

  /**
   * Starts an agent in the box with its dirs under the box's dir and no
   * config file, bound as on a LAN (all interfaces, unless `args` say), and
   * resolves once its control socket answers.
   */
  async startAgent (box: LabBox | string, spec: { networkKey: string, args?: string[], env?: NodeJS.ProcessEnv }, readyMs = 30_000): Promise<AgentProc> {
    const b = this.of(box)
    const d = await this.dirs(b)
    return await this.startAgentWith(b, [
      'agent', '--config', '/dev/null', '--name', b.name, '--distdir', d.distdir, '--cache-dir', d.cacheDir,
      '--state-dir', d.stateDir, '--control', d.control, ...(spec.args ?? [])
    ], d, { ...spec.env, DISTSWARM_NETWORK_KEY: spec.networkKey }, readyMs)
  }

  /**
   * Starts `distswarm ARGS…` in the box as an agent whose control socket is
   * `control` (a command `init` printed, say), and resolves once it answers.
   */
  async startAgentWith (box: LabBox | string, args: string[], d: Pick<AgentProc, 'dir' | 'distdir' | 'cacheDir' | 'stateDir' | 'control'>, env: NodeJS.ProcessEnv = {}, readyMs = 30_000): Promise<AgentProc> {
    const b = this.of(box)
    const proc = this.spawn(b, b.name, args, env)
    return { ...proc, ...d, ...await untilAnswering(proc, d.control, readyMs), name: b.name }
  }

  /** The box's agent dirs (the distdir made), so files can be put in place before it starts. */
  async dirs (box: LabBox | string): Promise<Pick<AgentProc, 'dir' | 'distdir' | 'cacheDir' | 'stateDir' | 'control'>> {
    const dir = this.of(box).dir
    const distdir = join(dir, 'distfiles')
    await mkdir(distdir, { recursive: true })
    return { dir, distdir, cacheDir: join(dir, 'cache'), stateDir: join(dir, 'state'), control: join(dir, 'control.sock') }
  }

  /** Shapes the box's link both ways, replacing any shaping before; null removes it. */
  shape (box: LabBox | string, shape: LinkShape | null): void {
    const b = this.of(box)
    const ends: Array<[string, string]> = [[b.ns, 'eth0'], [this.hub, b.port]]
    for (const [ns, dev] of ends) {
      quietly(['tc', '-n', ns, 'qdisc', 'del', 'dev', dev, 'root'])
      quietly(['ip', 'netns', 'exec', ns, 'nft', 'delete', 'table', 'netdev', `lab_${dev}`])
    }
    if (!shape) return
    const { rate, loss, delay } = shape
    if (rate !== undefined && !/^\d+(\.\d+)?[kmg]?bit$/.test(rate)) throw new Error(`link rate ${rate}: expected like 100mbit`)
    if (delay !== undefined && !/^\d+(\.\d+)?(us|ms|s)$/.test(delay)) throw new Error(`link delay ${delay}: expected like 5ms`)
    if (loss !== undefined && !(loss >= 0 && loss <= 100)) throw new Error(`link loss ${loss}: expected a percentage 0-100`)
    for (const [ns, dev] of ends) {
      if (delay !== undefined) {
        try {
          run(['tc', '-n', ns, 'qdisc', 'add', 'dev', dev, 'root', 'netem', 'delay', delay, ...(rate ? ['rate', rate] : [])])
        } catch (err) {
          throw new Error(`link delay needs netem in the kernel (CONFIG_NET_SCH_NETEM): ${(err as Error).message}`)
        }
      } else if (rate !== undefined) {
        // A bucket of 1/100 s of the rate (at least 64 KiB): full speed for TCP, a little queue.
        const bits = Number(rate.replace(/[kmg]?bit$/, '')) * ({ k: 1e3, m: 1e6, g: 1e9 }[/([kmg])bit$/.exec(rate)?.[1] ?? ''] ?? 1)
        const burst = Math.max(64 * 1024, Math.ceil(bits / 8 / 100))
        run(['tc', '-n', ns, 'qdisc', 'add', 'dev', dev, 'root', 'tbf', 'rate', rate, 'burst', String(burst), 'latency', '50ms'])
      }
      if (loss) {
        // Packets arriving on each end of the link: both directions, on the wire.
        run(['ip', 'netns', 'exec', ns, 'nft', '-f', '-'], [
          `table netdev lab_${dev} {`,
          `  chain loss { type filter hook ingress device "${dev}" priority 0; numgen random mod 10000 < ${Math.round(loss * 100)} drop; }`,
          '}'
        ].join('\n'))
      }
    }
  }

  /** Cuts the box's cable (its end on the bridge goes down); heal() plugs it back. */
  cut (box: LabBox | string): void {
    run(['ip', '-n', this.hub, 'link', 'set', this.of(box).port, 'down'])
  }

  heal (box: LabBox | string): void {
    run(['ip', '-n', this.hub, 'link', 'set', this.of(box).port, 'up'])
  }

  /** Stops every process (SIGTERM, then SIGKILL), deletes every namespace and the dirs. Idempotent. */
  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    await Promise.all(this.procs.map((p) => p.stop(STOP_GRACE_MS)))
    this.teardown()
    await rm(this.root, { recursive: true, force: true })
  }

  /** For exit and signal handlers: the same, at once and synchronously. */
  closeSync (): void {
    this.closed = true
    for (const p of this.procs) {
      if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL')
    }
    this.teardown()
    rmSync(this.root, { recursive: true, force: true })
  }

  private teardown (): void {
    for (const ns of this.made.reverse()) removeNamespace(ns)
    this.made.length = 0
    live.delete(this)
  }
}
