/**
 * Real `distswarm` processes for tests, on a LocalNet that is closed (every
 * process stopped, every dir removed) when the test ends, pass or fail.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { onTestFinished } from 'vitest'
import { LocalNet, type Proc } from '@distswarm/localnet'

const require = createRequire(import.meta.url)
const cliPkg = require.resolve('@distswarm/cli/package.json')
export const BIN = join(dirname(cliPkg), (require(cliPkg) as { bin: Record<string, string> }).bin.distswarm!)

export { waitFor, writeRandomFile } from '@distswarm/localnet'
export type { AgentProc } from '@distswarm/localnet'

export interface Result { code: number | null, stdout: string, stderr: string }

/**
 * LAN discovery off for commands run on this machine's own network stack,
 * unless a test says otherwise: an agent bound past loopback (a config that
 * `init` wrote without --bootstrap) would beacon on the machine's interfaces.
 * The LAN lab's boxes, in namespaces of their own, keep the default.
 */
const HOST_ENV: NodeJS.ProcessEnv = { DISTSWARM_LAN_DISCOVERY: 'off' }

/** Runs one CLI command to completion, killed after `timeoutMs`. */
export async function cli (args: string[], opts: { env?: NodeJS.ProcessEnv, timeoutMs?: number } = {}): Promise<Result> {
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...HOST_ENV, ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d })
  child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d })
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000)
  const [code] = await once(child, 'close') as [number | null] // 'close': after stdout and stderr are read to the end
  clearTimeout(timer)
  return { code, stdout, stderr }
}

/** A CLI command whose stdout and stderr are a terminal (util-linux `script` gives it a pseudo-terminal), killed when the test ends. */
export function cliTTY (args: string[], opts: { env?: NodeJS.ProcessEnv } = {}): { output: () => string, exited: Promise<number | null>, child: ChildProcess } {
  const quote = (w: string): string => `'${w.replaceAll("'", "'\\''")}'`
  // -e: script exits with the command's code; -f: output as it comes; the typescript file is thrown away
  const child = spawn('script', ['-qefc', [process.execPath, BIN, ...args].map(quote).join(' '), '/dev/null'], {
    env: { ...HOST_ENV, ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe']
  })
  let output = ''
  child.stdout.setEncoding('utf8').on('data', (d: string) => { output += d })
  child.stderr.setEncoding('utf8').on('data', (d: string) => { output += d })
  const exited = once(child, 'exit').then(([code]) => code as number | null)
  onTestFinished(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  return { output: () => output, exited, child }
}

/** `cli … --json` that must exit 0. */
export async function cliJson<T> (args: string[], env?: NodeJS.ProcessEnv): Promise<T> {
  const r = await cli([...args, '--json'], { env })
  if (r.code !== 0) throw new Error(`distswarm ${args.join(' ')} exited ${r.code}: ${r.stderr}${r.stdout.slice(0, 2000)}`)
  return JSON.parse(r.stdout) as T
}

/** A LocalNet with its bootstrap node running, closed when the test ends. */
export async function localNet (): Promise<LocalNet> {
  const net = await LocalNet.create({ bin: BIN })
  onTestFinished(() => net.close())
  await net.startBootstrap()
  return net
}

export async function tempDir (prefix = 'distswarm-e2e-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  onTestFinished(() => rm(dir, { recursive: true, force: true }))
  return dir
}

/**
 * Rewrites a file behind its indexer's back: same size, and its timestamps
 * restored to the nanosecond (touch -r; utimes only keeps microseconds), so
 * that nothing but its bytes changed.
 */
export async function alterInPlace (path: string, mutate: (data: Buffer) => void): Promise<void> {
  const ref = `${path}.timestamps`
  execFileSync('touch', ['-r', path, ref])
  const data = await readFile(path)
  mutate(data)
  await writeFile(path, data)
  execFileSync('touch', ['-r', ref, path])
  await rm(ref)
}

/** How a test gets a small, full-able filesystem: a real tmpfs, or ENOSPC injected into the agent process. */
export type SmallDiskKind = 'tmpfs' | 'injected'

/** The kinds this machine offers: a tmpfs needs root and a working mount(8); injection works anywhere. */
export function smallDiskKinds (): SmallDiskKind[] {
  if (process.getuid?.() !== 0) return ['injected']
  try {
    execFileSync('mount', ['--version'], { stdio: 'ignore' })
    return ['tmpfs', 'injected']
  } catch {
    return ['injected']
  }
}

/**
 * Makes `dir` a filesystem of `bytes` for the agent started with the
 * returned env: a tmpfs mounted there (lazily unmounted when the test ends,
 * so it goes even while a process still holds a file in it), or the
 * full-disk preload (test/reliability/full-disk.mjs), which fails writes
 * under `dir` with ENOSPC past `bytes`.
 */
export async function smallDisk (kind: SmallDiskKind, dir: string, bytes: number): Promise<NodeJS.ProcessEnv> {
  await mkdir(dir, { recursive: true })
  if (kind === 'injected') {
    const preload = pathToFileURL(join(import.meta.dirname, 'reliability', 'full-disk.mjs')).href
    return {
      NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import=${preload}`.trim(),
      DISTSWARM_TEST_FULL_DIR: dir,
      DISTSWARM_TEST_FULL_BYTES: String(bytes)
    }
  }
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes},mode=0755`, 'distswarm-test', dir])
  onTestFinished(() => { execFileSync('umount', ['--lazy', dir]) })
  return {}
}

/**
 * Clients connected to the Unix socket listening at `path` right now, from
 * /proc/net/unix: the accepted sockets carry the listener's path, state 03
 * (connected); the listener itself is 01.
 */
export async function connectionsTo (path: string): Promise<number> {
  const lines = (await readFile('/proc/net/unix', 'utf8')).split('\n')
  return lines.filter((l) => { const f = l.trim().split(/\s+/); return f[7] === path && f[5] === '03' }).length
}

/**
 * Runs `fn` while `proc` is frozen (SIGSTOP), and thaws it however `fn`
 * ends: to line events up in a test without timing them.
 */
export async function whileStopped<T> (proc: Proc, fn: () => Promise<T>): Promise<T> {
  proc.child.kill('SIGSTOP')
  try {
    return await fn()
  } finally {
    proc.child.kill('SIGCONT')
  }
}
