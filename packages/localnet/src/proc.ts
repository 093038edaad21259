/** Processes of a test network: started, logged, stopped. */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import { ControlClient, type StatusResult } from '@distswarm/agent'

const STOP_GRACE_MS = 5000

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

/** Polls `check` every `everyMs` until it holds; throws after `ms`. */
export async function waitFor (check: () => Promise<boolean> | boolean, ms: number, what: string, everyMs = 100): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, everyMs))
  }
}

/**
 * Starts COMMAND ARGS… with the environment less the box's own DISTSWARM_*
 * settings (a seed switch, a LAN peer, a fixed port must not leak into a
 * test network), its stderr kept line by line.
 */
export function startProc (label: string, command: string, args: string[], env: NodeJS.ProcessEnv, onLog?: (label: string, line: string) => void): Proc {
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('DISTSWARM_')))
  const child = spawn(command, args, { env: { ...inherited, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  const log: string[] = []
  createInterface({ input: child.stderr! }).on('line', (line) => {
    log.push(line)
    onLog?.(label, line)
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
  return { label, child, log, stop }
}

/** The control handles of an agent process; resolves once its socket answers (throws when it exits first, or after `readyMs`). */
export async function untilAnswering (proc: Proc, control: string, readyMs: number): Promise<Pick<AgentProc, 'client' | 'status'>> {
  const client = (): Promise<ControlClient> => ControlClient.connect(control)
  const status = async (): Promise<StatusResult> => {
    const c = await client()
    try {
      return await c.call('status', {})
    } finally {
      c.close()
    }
  }
  await waitFor(async () => {
    if (proc.child.exitCode !== null || proc.child.signalCode !== null) throw new Error(`agent ${proc.label} exited: ${proc.log.join('\n')}`)
    return status().then(() => true, () => false)
  }, readyMs, `agent ${proc.label} to answer`)
  return { client, status }
}

