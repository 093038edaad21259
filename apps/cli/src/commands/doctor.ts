/**
 * `distswarm doctor`: what a user gets wrong setting up a box, checked one
 * by one, each failure with its fix in one line. Exit 0 only when none fails.
 */
import { lookup } from 'node:dns/promises'
import { readdir, readFile, stat } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import HyperDHT from 'hyperdht'
import {
  defaultConfigPath, loadOptions, resolveConfig, type AgentConfig, type HostPort, type PeerInfo, type StatusResult
} from '@distswarm/agent'
import { CONTROL_ARGS, defineCommand, writeJson, type IO } from '../command.js'
import { findControl, withClient } from '../control.js'
import { paintFor } from '../format.js'
import { hostPort } from '../net.js'
import { shlexSplit } from '../portage.js'

export interface Check {
  name: 'config' | 'agent' | 'socket-access' | 'cache-dir' | 'make-conf' | 'bootstrap' | 'peers' | 'clock'
  status: 'ok' | 'fail' | 'skip'
  detail: string
  /** For a failure: what to do, in one line. */
  fix?: string
}

const DEFAULT_PORTAGE_DIR = '/etc/portage'
const DEFAULT_PORTAGE_USER = 'portage'
/** How long a bootstrap node has to answer a ping. */
const PING_TIMEOUT_MS = 3000
/**
 * Clocks this far apart fail the clock check. LAN discovery's tags rotate
 * every 10 min and tolerate one rotation, so boxes 10 min apart no longer
 * hear each other; a minute apart already means a box keeps no time.
 */
export const MAX_CLOCK_SKEW_MS = 60_000
/** distswarm's own files: installed (or built) before now, whatever the clock says. */
const OWN_FILES = [fileURLToPath(import.meta.url), fileURLToPath(new URL('../../package.json', import.meta.url))]
const CLOCK_FIX = 'run NTP on every box (chronyd, ntpd or systemd-timesyncd), then check with: date'

/** A user as the kernel checks its access: uid, and every group it is in. */
interface User { name: string, uid: number, gids: number[] }

/** The user `name` from /etc/passwd and /etc/group, or null when there is none. */
async function findUser (name: string): Promise<User | null> {
  const passwd = await readFile('/etc/passwd', 'utf8').catch(() => '')
  const entry = passwd.split('\n').map((l) => l.split(':')).find((f) => f[0] === name)
  if (!entry) return null
  const gids = [Number(entry[3])]
  const groups = await readFile('/etc/group', 'utf8').catch(() => '')
  for (const f of groups.split('\n').map((l) => l.split(':'))) {
    if (f[3]?.split(',').includes(name)) gids.push(Number(f[2]))
  }
  return { name, uid: Number(entry[2]), gids }
}

/** Whether `user` may `want` (a mask of 4 read, 2 write, 1 search) `path`, by its mode bits (root may all). */
async function may (user: User, path: string, want: number): Promise<boolean> {
  const st = await stat(path)
  if (user.uid === 0) return true
  const bits = st.uid === user.uid ? (st.mode >> 6) & 7 : user.gids.includes(st.gid) ? (st.mode >> 3) & 7 : st.mode & 7
  return (bits & want) === want
}

/** The first dir on the way to `path` that `user` cannot pass, or null. */
async function blockedOnTheWay (user: User, path: string): Promise<string | null> {
  const dirs: string[] = []
  for (let d = dirname(resolve(path)); ; d = dirname(d)) {
    dirs.unshift(d)
    if (d === dirname(d)) break
  }
  for (const d of dirs) if (!await may(user, d, 1)) return d
  return null
}

/** The values Portage's make.conf (a file, or a dir of files) sets, of the variables asked; null when there is none. */
export async function readMakeConf (portageDir: string, names: string[]): Promise<{ path: string, values: Map<string, string> } | null> {
  const path = join(portageDir, 'make.conf')
  const st = await stat(path).catch(() => null)
  if (!st) return null
  const files = st.isDirectory() ? (await readdir(path)).sort().map((f) => join(path, f)) : [path]
  const values = new Map<string, string>()
  for (const file of files) {
    const text = await readFile(file, 'utf8').catch(() => '')
    for (const name of names) {
      const re = new RegExp(`^[ \\t]*(?:export[ \\t]+)?${name}=(?:"((?:\\\\[\\s\\S]|[^"\\\\])*)"|'([^']*)'|(\\S*))`, 'gm')
      for (const m of text.matchAll(re)) {
        // in double quotes, a backslash keeps the next character as it is (\" \$ \\)
        values.set(name, m[1] !== undefined ? m[1].replace(/\\([\s\S])/g, '$1') : m[2] ?? m[3] ?? '')
      }
    }
  }
  return { path, values }
}

/** The control socket a FETCHCOMMAND's portage-fetch is given, '' for none, or null when it runs no portage-fetch. */
export function bakedControl (command: string): string | null {
  let words: string[]
  try {
    words = shlexSplit(command)
  } catch {
    return null
  }
  const at = words.indexOf('portage-fetch')
  if (at === -1) return null
  const flag = words.indexOf('--control', at)
  return flag === -1 ? '' : words[flag + 1] ?? ''
}

/** Whether a DHT node answers a ping at `to` (the address is resolved first). */
async function pingDht (to: HostPort): Promise<boolean> {
  const host = (await lookup(to.host, { family: 4 }).catch(() => null))?.address
  if (!host) return false
  // bound where the ping goes out: loopback for a node on this box, so nothing else is sent anywhere
  const node = new HyperDHT({ bootstrap: [], ephemeral: true, host: host.startsWith('127.') ? '127.0.0.1' : '0.0.0.0', port: 0 })
  let timer: NodeJS.Timeout | undefined
  try {
    await node.ready()
    return await Promise.race([
      node.ping({ host, port: to.port }).then(() => true, () => false),
      new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(false), PING_TIMEOUT_MS) })
    ])
  } finally {
    clearTimeout(timer)
    await node.destroy()
  }
}

const seconds = (ms: number): string => `${Math.round(Math.abs(ms) / 1000)} s`

/**
 * The clock: against each connected peer's (measured by Ping over the
 * connection), and against the modification times of files that cannot be
 * from the future (the config file, distswarm's own files), which also
 * catches a box without a real-time clock that booted in 1970.
 */
export async function clockCheck (peers: PeerInfo[] | null, files: string[], now = Date.now()): Promise<Check> {
  const measured = (peers ?? []).filter((p) => typeof p.clockOffsetMs === 'number')
  const worst = measured.reduce<PeerInfo | null>((w, p) => w && Math.abs(w.clockOffsetMs!) >= Math.abs(p.clockOffsetMs!) ? w : p, null)
  if (worst && Math.abs(worst.clockOffsetMs!) > MAX_CLOCK_SKEW_MS) {
    const off = worst.clockOffsetMs!
    // The peer's offset from us: positive, it is ahead, so this box is behind it.
    return { name: 'clock', status: 'fail', detail: `this box's clock is ${seconds(off)} ${off > 0 ? 'behind' : 'ahead of'} ${worst.name || '?'}'s (${worst.address ?? '?'}): LAN discovery fails when clocks are 10 min apart`, fix: CLOCK_FIX }
  }
  let newest: { path: string, mtimeMs: number } | null = null
  for (const path of files) {
    const st = await stat(path).catch(() => null)
    if (st && (!newest || st.mtimeMs > newest.mtimeMs)) newest = { path, mtimeMs: st.mtimeMs }
  }
  if (newest && newest.mtimeMs - now > MAX_CLOCK_SKEW_MS) {
    return { name: 'clock', status: 'fail', detail: `this box's clock is at least ${seconds(newest.mtimeMs - now)} behind: ${newest.path} was modified at ${new Date(newest.mtimeMs).toISOString()}, after now (${new Date(now).toISOString()})`, fix: CLOCK_FIX }
  }
  const against = worst
    ? `within ${seconds(worst.clockOffsetMs!)} of ${measured.length === 1 ? "1 peer's clock" : `${measured.length} peers' clocks`}`
    : 'no peer to compare with'
  return { name: 'clock', status: 'ok', detail: `${against}; no file from the future (${files.length} checked)` }
}

export async function diagnose (values: { control?: string | undefined, config?: string | undefined, 'portage-dir'?: string | undefined, 'portage-user'?: string | undefined }, io: IO): Promise<Check[]> {
  const checks: Check[] = []
  const add = (c: Check): void => { checks.push(c) }
  const env = io.env

  // 1. the config file
  let config: AgentConfig | null = null
  const explicit = values.config ?? (env.DISTSWARM_CONFIG || undefined)
  const configPath = explicit === undefined ? defaultConfigPath(env) : resolve(explicit)
  try {
    const loaded = await loadOptions({ config: explicit === undefined ? undefined : configPath, env })
    if (loaded.configPath === null) {
      add({ name: 'config', status: 'fail', detail: `no config file at ${configPath}`, fix: 'write one: distswarm init (or distswarm init --join KEY on a box joining a network)' })
    } else {
      config = resolveConfig(loaded.options, loaded.origins)
      add({ name: 'config', status: 'ok', detail: `${loaded.configPath}: readable and valid` })
    }
  } catch (err) {
    const denied = /EACCES|permission denied/i.test((err as Error).message)
    add({
      name: 'config',
      status: 'fail',
      detail: (err as Error).message,
      fix: denied ? 'run distswarm doctor as root (or as the user the agent runs as)' : `correct it in ${configPath}, or write a new one: distswarm init --force`
    })
  }

  // 2. the agent, on the socket Portage will use
  const portageDir = values['portage-dir'] ?? (env.DISTSWARM_PORTAGE_DIR || DEFAULT_PORTAGE_DIR)
  const makeConf = await readMakeConf(portageDir, ['PORTAGE_RO_DISTDIRS', 'FETCHCOMMAND', 'RESUMECOMMAND'])
  const baked = makeConf ? bakedControl(makeConf.values.get('FETCHCOMMAND') ?? '') : null
  const found = await findControl(values, env).catch(() => null)
  const socket = baked || (found?.path ?? config?.control ?? null)
  let status: StatusResult | null = null
  // the peers (for the clock check) are asked on the same connection, when the agent answered
  let peers: PeerInfo[] | null = null
  if (socket === null) {
    add({ name: 'agent', status: 'fail', detail: 'no control socket known', fix: 'give --control PATH or --config FILE' })
  } else {
    const answers = await withClient(socket, async (c) => {
      const status = await c.call('status', {})
      return { status, peers: status ? await c.call('peers', {}).catch(() => null) : null }
    }).catch(() => null)
    status = answers?.status ?? null
    peers = Array.isArray(answers?.peers) ? answers.peers : null
    const whose = baked ? `${socket} (FETCHCOMMAND's)` : socket
    if (!status) {
      add({ name: 'agent', status: 'fail', detail: `no agent answers on ${whose}`, fix: 'start it: systemctl start distswarm, rc-service distswarm start, or distswarm agent' })
    } else if (config && resolve(status.control) !== resolve(config.control)) {
      add({ name: 'agent', status: 'fail', detail: `the agent on ${whose} is not this config's (its socket: ${config.control})`, fix: 'restart the agent with this config, or run distswarm portage-config again and replace the lines in make.conf' })
    } else {
      add({ name: 'agent', status: 'ok', detail: `${status.name} answers on ${whose}` })
    }
  }

  // 3. Portage's user may reach the socket and read the cache dir
  const userName = values['portage-user'] ?? DEFAULT_PORTAGE_USER
  const user = await findUser(userName)
  const cacheDir = status?.cacheDir ?? config?.cacheDir ?? null
  if (!user) {
    add({ name: 'socket-access', status: 'skip', detail: `no user ${userName} on this box` })
    add({ name: 'cache-dir', status: 'skip', detail: `no user ${userName} on this box` })
  } else {
    const groupFix = `run the agent with group ${userName} (the contrib/ services do), or chgrp ${userName}`
    if (socket === null || !status) {
      add({ name: 'socket-access', status: 'skip', detail: 'no agent to check' })
    } else {
      const blocked = await blockedOnTheWay(user, socket)
      if (blocked) add({ name: 'socket-access', status: 'fail', detail: `${userName} cannot pass ${blocked} to reach ${socket}`, fix: `${groupFix} ${blocked} && chmod g+x ${blocked}` })
      else if (!await may(user, socket, 6)) add({ name: 'socket-access', status: 'fail', detail: `${userName} may not connect to ${socket} (it needs read and write)`, fix: `${groupFix} ${socket}` })
      else add({ name: 'socket-access', status: 'ok', detail: `${userName} may connect to ${socket}` })
    }
    if (cacheDir === null) {
      add({ name: 'cache-dir', status: 'skip', detail: 'no cache dir known (no config, no agent)' })
    } else {
      const blocked = await blockedOnTheWay(user, cacheDir).catch(() => null)
      const readable = await may(user, cacheDir, 5).catch(() => false)
      if (blocked) add({ name: 'cache-dir', status: 'fail', detail: `${userName} cannot pass ${blocked} to reach ${cacheDir}`, fix: `chmod o+x ${blocked} (or ${groupFix} it)` })
      else if (!readable) add({ name: 'cache-dir', status: 'fail', detail: `${userName} cannot read ${cacheDir}`, fix: `${groupFix} ${cacheDir} && chmod g+rx ${cacheDir}` })
      else add({ name: 'cache-dir', status: 'ok', detail: `${userName} may read ${cacheDir}` })
    }
  }

  // 4. make.conf points Portage at this agent
  const portageExists = await stat(portageDir).then((s) => s.isDirectory(), () => false)
  if (!portageExists) {
    add({ name: 'make-conf', status: 'skip', detail: `no ${portageDir} (not a Gentoo box?)` })
  } else {
    const conf = join(portageDir, 'make.conf')
    const fix = `append the lines of distswarm portage-config to ${conf} (distswarm portage-config >> ${conf}), replacing old ones`
    const ro = makeConf?.values.get('PORTAGE_RO_DISTDIRS')?.split(/\s+/).filter(Boolean) ?? []
    const resume = makeConf ? bakedControl(makeConf.values.get('RESUMECOMMAND') ?? '') : null
    const problems = [
      ...(cacheDir !== null && !ro.some((d) => resolve(d) === resolve(cacheDir)) ? [`PORTAGE_RO_DISTDIRS lacks the cache dir ${cacheDir}`] : []),
      ...(baked === null ? ['FETCHCOMMAND does not run distswarm portage-fetch'] : []),
      ...(resume === null ? ['RESUMECOMMAND does not run distswarm portage-fetch'] : []),
      ...(baked === '' && socket !== null ? [`FETCHCOMMAND gives portage-fetch no --control: run as ${userName}, it looks for the agent at that user's default, not ${socket}`] : []),
      ...(baked && config && resolve(baked) !== resolve(config.control) ? [`FETCHCOMMAND's --control ${baked} is not the agent's socket ${config.control}`] : [])
    ]
    if (problems.length) add({ name: 'make-conf', status: 'fail', detail: problems.join('; '), fix })
    else add({ name: 'make-conf', status: 'ok', detail: `${makeConf!.path}: PORTAGE_RO_DISTDIRS, FETCHCOMMAND and RESUMECOMMAND point at this agent` })
  }

  // 5. the bootstrap node, and the peers found through it
  if (!config) {
    add({ name: 'bootstrap', status: 'skip', detail: 'no valid config' })
  } else if (config.bootstrap.length === 0) {
    add({ name: 'bootstrap', status: 'skip', detail: 'no bootstrap node configured (static peers or a fixed data port)' })
  } else {
    const answering: string[] = []
    for (const b of config.bootstrap) if (await pingDht(b)) answering.push(hostPort(b.host, b.port))
    const all = config.bootstrap.map((b) => hostPort(b.host, b.port)).join(', ')
    if (answering.length) add({ name: 'bootstrap', status: 'ok', detail: `${answering.join(', ')} answers` })
    else add({ name: 'bootstrap', status: 'fail', detail: `no bootstrap node answers (${all})`, fix: 'start it on its box (systemctl start distswarm-bootstrap, or distswarm bootstrap --host ADDR) and let UDP to its port through' })
  }
  if (!status) add({ name: 'peers', status: 'skip', detail: 'no agent to ask' })
  else if (status.peers > 0) add({ name: 'peers', status: 'ok', detail: `${status.peers} peer${status.peers === 1 ? '' : 's'} connected` })
  else add({ name: 'peers', status: 'fail', detail: 'no peer connected', fix: 'give every box the same network key and a reachable bootstrap node or --peer; distswarm agent --log-level debug says why connections fail' })

  // 6. the clock
  add(await clockCheck(peers, [...(config ? [configPath] : []), ...OWN_FILES]))
  return checks
}

export const doctorCommand = defineCommand({
  meta: {
    name: 'doctor',
    summary: "check this box's setup: config, agent, Portage's access, make.conf, bootstrap node, peers, clock; each problem with its fix",
    usage: 'distswarm doctor [--control PATH | --config FILE] [--portage-dir DIR] [--portage-user NAME] [--json]',
    examples: ['sudo distswarm doctor', 'distswarm doctor --json | jq -r \'.checks[] | select(.status == "fail") | .fix\'']
  },
  args: {
    ...CONTROL_ARGS,
    'portage-dir': { type: 'string', valueName: 'DIR', description: `Portage's config dir, whose make.conf is checked (env DISTSWARM_PORTAGE_DIR; default ${DEFAULT_PORTAGE_DIR})` },
    'portage-user': { type: 'string', valueName: 'NAME', description: `the user Portage fetches as (default ${DEFAULT_PORTAGE_USER})` },
    json: { type: 'boolean', description: 'print one JSON document: {ok, checks[]} (fields: docs/cli.md)' }
  },
  async run ({ values }, io) {
    const checks = await diagnose(values, io)
    const ok = checks.every((c) => c.status !== 'fail')
    if (values.json) {
      writeJson(io, { ok, checks })
    } else {
      const p = paintFor(io.stdout, io.env)
      const width = Math.max(...checks.map((c) => c.name.length))
      for (const c of checks) {
        const mark = c.status === 'ok' ? p.green('ok  ') : c.status === 'fail' ? p.red('FAIL') : p.dim('skip')
        io.stdout.write(`${mark}  ${c.name.padEnd(width)}  ${c.detail}\n${c.fix ? `      ${' '.repeat(width)}  fix: ${c.fix}\n` : ''}`)
      }
    }
    return ok ? 0 : 1
  }
})
