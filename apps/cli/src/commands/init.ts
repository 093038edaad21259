import { link, mkdir, rename, rm, stat, writeFile } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import {
  AgentError, defaultCacheDir, defaultConfigPath, defaultControlPath, defaultStateDir, generateNetworkKey, loadOrCreateIdentity,
  optionsFromFlags, renderConfig, resolveConfig, type HostPort
} from '@distswarm/agent'
import { CONFIG_ARG, defineCommand, UsageError, writeJson, type IO } from '../command.js'
import { isThisBox, lanAddresses } from '../net.js'
import { optionFlags } from './agent.js'
import { DEFAULT_BOOTSTRAP_PORT } from './bootstrap.js'

/** init's own flags; every other one is an agent option, written into the file. */
const OWN = ['join', 'config', 'force', 'example', 'json', 'help']

/** This box's first non-loopback IPv4 address: what the other boxes of a LAN reach it at, most likely. */
const lanAddress = (): string | undefined => lanAddresses()[0]

/** A word as a POSIX shell reads it back. */
const shellWord = (w: string): string => /^[\w@%+=:,./-]+$/.test(w) ? w : `'${w.replaceAll("'", "'\\''")}'`

/** Writes a new file of mode 0600 whole (temp file, then link or rename); without `force`, never over an existing one. */
async function writeSecretFile (path: string, text: string, force: boolean): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o755 })
  const temp = `${path}.${process.pid}.tmp`
  await writeFile(temp, text, { mode: 0o600, flag: 'wx' })
  try {
    if (force) {
      await rename(temp, path)
    } else {
      await link(temp, path).catch((err: NodeJS.ErrnoException) => {
        throw err.code === 'EEXIST' ? AgentError.CONFIG_EXISTS(path) : err
      })
    }
  } finally {
    await rm(temp, { force: true })
  }
}

export const initCommand = defineCommand({
  meta: {
    name: 'init',
    summary: "write this box's config file: a new network (with a new random key), or --join an existing one",
    usage: 'distswarm init [--join KEY] [--config FILE] [--state-dir DIR] [--bootstrap HOST:PORT]… [--force] [agent options]',
    examples: [
      'distswarm init                                   # a new network; this box will run the bootstrap node',
      'distswarm init --bootstrap 192.168.1.10:49737    # a new network; the bootstrap node runs on 192.168.1.10 (this box or another)',
      'distswarm init --join 5f3a…e1 --bootstrap 192.168.1.10:49737   # on each other box: what init printed',
      'distswarm init --example > distswarm.toml        # print the documented example config, write nothing'
    ]
  },
  args: {
    join: { type: 'string', valueName: 'KEY', description: 'join the network of this key (what `distswarm init` printed on the first box)' },
    config: { ...CONFIG_ARG, description: 'the config file to write (default /etc/distswarm/distswarm.toml as root, else $XDG_CONFIG_HOME/distswarm/distswarm.toml)' },
    force: { type: 'boolean', description: 'replace an existing config file (and its network key)' },
    example: { type: 'boolean', description: 'print the documented example config (every option commented out) and write nothing' },
    json: { type: 'boolean', description: 'print what was written as one JSON document' },
    ...optionFlags(['network-key'])
  },
  async run ({ values }, io) {
    if (values.example) {
      io.stdout.write(renderConfig())
      return 0
    }
    const path = resolve(values.config ?? (io.env.DISTSWARM_CONFIG || defaultConfigPath(io.env)))
    const force = values.force === true
    if (!force && await stat(path).then(() => true, () => false)) throw AgentError.CONFIG_EXISTS(path)

    const joining = values.join !== undefined
    const written: Record<string, unknown> = Object.fromEntries(Object.entries(values).filter(([k, v]) => !OWN.includes(k) && v !== undefined))
    // Ports as TOML numbers, not the strings flags give.
    for (const k of ['port', 'data-port']) if (typeof written[k] === 'string' && /^\d+$/.test(written[k])) written[k] = Number(written[k])
    written['network-key'] = joining ? values.join : generateNetworkKey().toString('hex')
    // This user's default paths, written down: the service may run as another user, with other defaults.
    written['state-dir'] ??= defaultStateDir(io.env)
    written['cache-dir'] ??= defaultCacheDir(io.env)
    written.control ??= defaultControlPath(io.env)
    if (!joining && written.bootstrap === undefined && written.peer === undefined && written['data-port'] === undefined) {
      const address = lanAddress()
      if (!address) throw new UsageError("cannot tell this box's LAN address; pass --bootstrap HOST:PORT of the box that will run `distswarm bootstrap`")
      written.bootstrap = [`${address}:${DEFAULT_BOOTSTRAP_PORT}`]
    }
    // Refuse now what the agent would refuse at start.
    const { options, origins } = optionsFromFlags(written)
    const config = resolveConfig(options, { ...origins, networkKey: joining ? '--join' : 'generated' })

    await mkdir(config.stateDir, { recursive: true, mode: 0o700 })
    await writeSecretFile(path, renderConfig(written), force)

    // This box runs the bootstrap node when one of the addresses is its own: the one init picked, or one given.
    const bootstrapHere = config.bootstrap.find((b) => isThisBox(b.host)) ?? null
    const key = config.networkKey.toString('hex')
    const dialable = config.dataPort && config.bootstrap.length === 0 ? lanAddress() : undefined
    const join = [
      'init', '--join', key,
      ...config.bootstrap.flatMap((b) => ['--bootstrap', `${b.host}:${b.port}`]),
      ...config.staticPeers.flatMap((p) => ['--peer', `${p.host}:${p.port}`]),
      ...(dialable ? ['--peer', `${dialable}:${config.dataPort}`] : [])
    ]
    const start = ['agent', ...(path === resolve(defaultConfigPath(io.env)) ? [] : ['--config', path])]
    // The first box is often the build host: its key (made now, kept for its agent) is what the others put in binpkg-trust.
    const builder = joining ? null : (await loadOrCreateIdentity(config.stateDir)).publicKey.toString('hex')
    if (values.json) {
      writeJson(io, { config: path, stateDir: config.stateDir, joined: joining, bootstrapHere: bootstrapHere?.host ?? null, start, join, binpkgTrust: builder })
      return 0
    }
    show(io, { path, stateDir: config.stateDir, joining, bootstrapHere, start, join, builder })
    return 0
  }
})

function show (io: IO, r: { path: string, stateDir: string, joining: boolean, bootstrapHere: HostPort | null, start: string[], join: string[], builder: string | null }): void {
  const command = (argv: string[]): string => ['distswarm', ...argv].map(shellWord).join(' ')
  const lines = [
    `wrote ${r.path} (mode 0600) ${r.joining ? 'to join an existing network' : 'for a new network'}; state dir ${r.stateDir}`,
    ...(r.bootstrapHere
      ? ['', 'This box runs the network\'s bootstrap node (the distswarm-bootstrap service, or):', `  ${command(['bootstrap', '--host', r.bootstrapHere.host, '--port', String(r.bootstrapHere.port)])}`]
      : []),
    '', 'Start the agent (the distswarm service, or):', `  ${command(r.start)}`,
    '', 'On each other box, run (keep the key secret: it is the membership of your network):', `  ${command(r.join)}`,
    ...(r.builder
      ? ['', 'If this box builds binary packages (FEATURES="buildpkg"), the others take them only when they trust its key:',
          `add  --binpkg-trust ${r.builder}  to the command above, or this line to their config:`, `  binpkg-trust = ["${r.builder}"]`]
      : [])
  ]
  io.stdout.write(lines.join('\n') + '\n')
}
