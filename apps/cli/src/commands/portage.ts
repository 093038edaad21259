import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { once } from 'node:events'
import { createReadStream } from 'node:fs'
import { link, open, rename, rm, stat } from 'node:fs/promises'
import { isAbsolute, join } from 'node:path'
import { Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { fileURLToPath } from 'node:url'
import { ControlClient, defaultControlPath, defaultCacheDir, type FetchResult, type StatusResult } from '@distswarm/agent'
import { DistswarmError, isValidName } from '@distswarm/protocol'
import { CONTROL_ARGS, defineCommand, UsageError, type IO } from '../command.js'
import { findControl, withClient } from '../control.js'
import { formatBytes, formatDuration, movedText } from '../format.js'
import { DEFAULT_GATEWAY_URL, gatewayUrl, gentooMirrorsLine } from '../mirrors.js'
import {
  DOWNLOAD_SUFFIX, makeConfWord, parseDigests, PORTAGE_FETCHCOMMAND, PORTAGE_RESUMECOMMAND, shlexSplit, varexpand
} from '../portage.js'

const BIN = fileURLToPath(new URL('../../bin/distswarm.js', import.meta.url))

/**
 * Puts the verified file at `target` whole or not at all: a hard link when
 * the filesystem and the kernel allow it, else a copy that is hashed as it is
 * written; either lands under a temporary dot-name first, then is renamed.
 */
async function place (source: FetchResult, target: string, dir: string): Promise<'link' | 'copy'> {
  const temp = join(dir, `.distswarm-${process.pid}-${Date.now()}.tmp`)
  try {
    try {
      await link(source.path, temp)
      await rename(temp, target)
      return 'link'
    } catch (err) {
      // EXDEV: another filesystem; EPERM: fs.protected_hardlinks and a file portage does not own
      if (!['EXDEV', 'EPERM', 'EACCES', 'EMLINK'].includes((err as NodeJS.ErrnoException).code ?? '')) throw err
    }
    const hash = createHash('blake2b512')
    const out = await open(temp, 'wx', 0o664)
    try {
      await pipeline(
        createReadStream(source.path),
        new Transform({ transform (chunk: Buffer, _, done) { hash.update(chunk); done(null, chunk) } }),
        out.createWriteStream({ autoClose: false })
      )
      await out.sync()
    } finally {
      await out.close()
    }
    if (hash.digest('hex') !== source.blake2b) throw new Error(`the copy of ${source.path} does not match its BLAKE2B digest`)
    await rename(temp, target)
    return 'copy'
  } finally {
    await rm(temp, { force: true })
  }
}

async function runFallback (template: string, vars: Record<string, string>, io: IO): Promise<number> {
  const argv = shlexSplit(varexpand(template, vars))
  if (argv.length === 0) throw new UsageError('the fallback command is empty')
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'inherit', 'inherit'], env: io.env })
  const [code, signal] = await Promise.race([
    once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>,
    once(child, 'error').then(([err]) => { throw new UsageError(`cannot run the fallback ${argv[0]}: ${(err as Error).message}`) })
  ])
  if (signal) return 128 + (signal === 'SIGKILL' ? 9 : signal === 'SIGTERM' ? 15 : 1)
  return code ?? 1
}

/** Longest wait for the agent to take a report of upstream bytes: emerge must not wait on a stuck agent. */
const REPORT_TIMEOUT_MS = 2000

const sizeOf = async (path: string): Promise<number> => (await stat(path).catch(() => null))?.size ?? 0

/** Tells the agent how many bytes the fallback downloaded, for its status; best effort, silent on failure. */
async function reportUpstream (control: string, name: string, bytes: number): Promise<void> {
  const clients: ControlClient[] = []
  let timer: NodeJS.Timeout | undefined
  const report = async (): Promise<void> => {
    const client = await ControlClient.connect(control)
    clients.push(client)
    await client.call('upstream', { name, bytes })
  }
  try {
    await Promise.race([report(), new Promise((resolve) => { timer = setTimeout(resolve, REPORT_TIMEOUT_MS) })])
  } catch {
    // no agent, or an old one: the download itself is done and fine
  } finally {
    clearTimeout(timer)
    for (const c of clients) c.close()
  }
}

export const portageFetchCommand = defineCommand({
  meta: {
    name: 'portage-fetch',
    summary: "Portage's FETCHCOMMAND/RESUMECOMMAND: from the swarm when a peer has the file, else the normal download",
    usage: 'distswarm portage-fetch [--resume] [--control PATH] [--fallback CMD] URI DISTDIR FILE [DIGESTS]',
    examples: [
      'FETCHCOMMAND="distswarm portage-fetch \\"\\${URI}\\" \\"\\${DISTDIR}\\" \\"\\${FILE}\\" \\"\\${DIGESTS}\\""   # see distswarm portage-config'
    ]
  },
  args: {
    resume: { type: 'boolean', description: "fall back to Portage's RESUMECOMMAND (wget -c) instead of FETCHCOMMAND" },
    fallback: { type: 'string', valueName: 'CMD', description: 'fallback command template with ${URI} ${DISTDIR} ${FILE} ${DIGESTS} (env DISTSWARM_FALLBACK; default: Portage\'s wget line)' },
    control: { type: 'string', valueName: 'PATH', description: 'agent control socket (env DISTSWARM_CONTROL; distswarm portage-config writes it in)' }
  },
  positionals: [3, 4],
  async run ({ values, positionals }, io) {
    const [uri = '', distdir = '', file = '', digestText = ''] = positionals // parse() checked there are 3 or 4
    if (!isAbsolute(distdir)) throw new UsageError(`DISTDIR must be an absolute path, got ${JSON.stringify(distdir)}`)
    const name = file.endsWith(DOWNLOAD_SUFFIX) ? file.slice(0, -DOWNLOAD_SUFFIX.length) : file
    if (!isValidName(file) || !isValidName(name)) throw new UsageError(`FILE must be a plain file name, got ${JSON.stringify(file)}`)
    const digests = parseDigests(digestText)
    const say = (line: string): void => { io.stderr.write(`>>> distswarm: ${line}\n`) }

    const control = values.control ?? defaultControlPath(io.env)
    // Any failure on the swarm path means the normal download: emerge must behave as without distswarm.
    try {
      const started = Date.now()
      // The digest is the address: a peer's file of the same name but other content is never used.
      const result = await withClient(control, (c) => c.call('fetch', { query: digests.blake2b ?? name, sha512: digests.sha512, name }))
      const how = await place(result, join(distdir, file), distdir)
      say(`${name}: ${result.source === 'swarm' ? `from the swarm, ${formatBytes(result.size)} ${movedText(result)}` : 'already on this box'}; ${how} into DISTDIR in ${formatDuration(Date.now() - started)}`)
      return 0
    } catch (err) {
      say(`${name}: not from the swarm (${missText(err, name, digests.blake2b)}); normal download`)
    }
    const template = values.fallback ?? io.env.DISTSWARM_FALLBACK ?? (values.resume ? PORTAGE_RESUMECOMMAND : PORTAGE_FETCHCOMMAND)
    const target = join(distdir, file)
    // wget -c continues what is there; a fresh fetch writes the file anew
    const before = values.resume ? await sizeOf(target) : 0
    const code = await runFallback(template, { URI: uri, DISTDIR: distdir, FILE: file, DIGESTS: digestText }, io)
    if (code === 0) await reportUpstream(control, name, Math.max(0, await sizeOf(target) - before))
    return code
  }
})

/** Why the swarm did not give `name`, in the words of the file Portage asked for: its name, not the digest it was asked by. */
function missText (err: unknown, name: string, digest: string | undefined): string {
  if (err instanceof DistswarmError && err.code === 'ERR_NOT_FOUND') return 'no peer has it'
  const message = err instanceof Error ? err.message : String(err)
  return digest ? message.replaceAll(digest, name) : message
}

/** The running agent's cache dir, or null when no agent answers at `control`. */
/** The running agent's status, or null when no agent answers at `control`. */
async function agentStatus (control: string): Promise<StatusResult | null> {
  return await withClient(control, async (c) => await c.call('status', {})).catch(() => null)
}

/** The first lines of what portage-config prints: where PORTAGE_RO_DISTDIRS and FETCHCOMMAND point. */
export const PORTAGE_CONFIG_HEADER = '# distswarm: take distfiles from the LAN swarm first, then the normal download.'

/** Where `--binrepos` output goes: Portage reads every file of this directory. */
export const BINREPOS_FILE = '/etc/portage/binrepos.conf/distswarm.conf'
/** Above the local PKGDIR's own builds it never goes; among binrepos, before a remote binhost of the distribution. */
export const BINREPO_PRIORITY = 10

/**
 * The binrepos.conf section for the agent's binhost (`/binpkgs/` on its
 * gateway), with the signing path and the unsigned path explained.
 */
export function binreposSection (status: StatusResult | null, unsigned: boolean): string[] {
  const url = gatewayUrl(status)
  return [
    '# distswarm: the binary packages of the LAN\'s trusted builders, from this box\'s agent (its binhost at /binpkgs/).',
    `# Save as ${BINREPOS_FILE}, then emerge with --getbinpkg (or FEATURES="getbinpkg").`,
    ...(status === null ? ['# No agent answered: the address below is the default; run distswarm portage-config --binrepos again once it runs.'] : []),
    ...(url === null ? ['# The agent runs without its HTTP gateway (http = "off"): set http = "127.0.0.1:49740" for the binhost to answer.'] : []),
    '# Signed path (recommended): each build host signs its gpkg (FEATURES="binpkg-signing", BINPKG_GPG_SIGNING_KEY); every',
    '#   box imports those public keys into /etc/portage/gnupg (getuto, then gpg --homedir /etc/portage/gnupg --import KEY and',
    '#   --lsign-key it) and keeps verify-signature = true. distswarm passes gpkg bytes through unchanged, so signatures verify.',
    '# Unsigned path: builds nobody signed install only with verify-signature = false, which this prints with --unsigned;',
    '#   keep it to this repo. Trust then rests on binpkg-trust: the agent serves only builds of the keys listed there.',
    '[distswarm]',
    `sync-uri = ${(url ?? DEFAULT_GATEWAY_URL).replace(/\/+$/, '')}/binpkgs`,
    `priority = ${BINREPO_PRIORITY}`,
    `verify-signature = ${unsigned ? 'false' : 'true'}`
  ]
}

export const portageConfigCommand = defineCommand({
  meta: {
    name: 'portage-config',
    summary: 'print the make.conf lines that make emerge take distfiles from the swarm first; with --binrepos, the binrepos.conf section of its binhost',
    usage: 'distswarm portage-config [--cache-dir DIR] [--binrepos [--unsigned]] [--control PATH | --config FILE]',
    examples: [
      'distswarm portage-config >> /etc/portage/make.conf',
      `distswarm portage-config --binrepos > ${BINREPOS_FILE}`,
      'distswarm portage-config --config /etc/distswarm/lan.toml   # the agent of that config'
    ]
  },
  args: {
    'cache-dir': { type: 'string', valueName: 'DIR', description: "the agent's cache dir (default: what the running agent says, else the agent's default)" },
    binrepos: { type: 'boolean', description: `print the binrepos.conf section of the agent's binhost instead (for ${BINREPOS_FILE})` },
    unsigned: { type: 'boolean', description: 'with --binrepos: verify-signature = false, for builds nobody signed (this repo only)' },
    ...CONTROL_ARGS
  },
  async run ({ values }, io) {
    if (values.unsigned && !values.binrepos) throw new UsageError('--unsigned goes with --binrepos')
    const control = await findControl(values, io.env)
    const status = await agentStatus(control.path)
    if (values.binrepos) {
      io.stdout.write([...binreposSection(status, values.unsigned === true), ''].join('\n'))
      return 0
    }
    const reached = status?.cacheDir ?? null
    const cacheDir = values['cache-dir'] ?? reached ?? defaultCacheDir(io.env)
    const prefix = [process.execPath, BIN, 'portage-fetch']
    // The socket reached (or asked for): Portage runs the command as another user, with another environment and defaults.
    const bake = reached !== null || control.origin !== null
    if (bake) prefix.push('--control', control.path)
    const words = prefix.map(makeConfWord)
    const bad = prefix.find((_, i) => words[i] === null)
    if (bad !== undefined || /["$`\\]/.test(cacheDir)) throw new UsageError(`${JSON.stringify(bad ?? cacheDir)} has characters that cannot go into make.conf`)
    const args = '\\"\\${URI}\\" \\"\\${DISTDIR}\\" \\"\\${FILE}\\" \\"\\${DIGESTS}\\"'
    const cmd = (resume: boolean): string => [...words.slice(0, 3), ...(resume ? ['--resume'] : []), ...words.slice(3), args].join(' ')
    io.stdout.write([
      PORTAGE_CONFIG_HEADER,
      '# If PORTAGE_RO_DISTDIRS is set already, add the cache dir to it instead.',
      ...(reached === null ? [`# No agent answered on ${control.path}: start it, then run distswarm portage-config again.`] : []),
      `PORTAGE_RO_DISTDIRS="${cacheDir}"`,
      `FETCHCOMMAND="${cmd(false)}"`,
      `RESUMECOMMAND="${cmd(true)}"`,
      ...await gentooMirrorsLine(status, io.env),
      `# Binary packages from the swarm's builders: distswarm portage-config --binrepos > ${BINREPOS_FILE}`,
      ''
    ].join('\n'))
    return 0
  }
})
