import { exitCodeOf, helpText, parse, type Command, type IO } from './command.js'

/**
 * Each command by name, in the order help lists them, and where its code is.
 * A command's module, and the packages it pulls in (the agent, hyperswarm, the
 * local test net…), is imported only when that command runs, or when every
 * command is listed (help, completion, the docs): `distswarm agent` then
 * starts its first index before it has loaded what only `demo` or `doctor` use.
 */
const LOADERS: ReadonlyArray<readonly [string, () => Promise<Command>]> = [
  ['init', async () => (await import('./commands/init.js')).initCommand],
  ['agent', async () => (await import('./commands/agent.js')).agentCommand],
  ['seed', async () => (await import('./commands/agent.js')).seedCommand],
  ['bootstrap', async () => (await import('./commands/bootstrap.js')).bootstrapCommand],
  ['status', async () => (await import('./commands/query.js')).statusCommand],
  ['peers', async () => (await import('./commands/query.js')).peersCommand],
  ['ls', async () => (await import('./commands/query.js')).lsCommand],
  ['where', async () => (await import('./commands/query.js')).whereCommand],
  ['binpkgs', async () => (await import('./commands/binpkgs.js')).binpkgsCommand],
  ['fetch', async () => (await import('./commands/query.js')).fetchCommand],
  ['verify', async () => (await import('./commands/query.js')).verifyCommand],
  ['gc', async () => (await import('./commands/gc.js')).gcCommand],
  ['portage-fetch', async () => (await import('./commands/portage.js')).portageFetchCommand],
  ['portage-config', async () => (await import('./commands/portage.js')).portageConfigCommand],
  ['doctor', async () => (await import('./commands/doctor.js')).doctorCommand],
  ['demo', async () => (await import('./commands/demo.js')).demoCommand],
  ['completion', async () => (await import('./commands/completion.js')).completionCommand(loadCommands)]
]

/** The command names, without loading any command. */
export const COMMAND_NAMES: readonly string[] = LOADERS.map(([name]) => name)

/** The command of this name (its module loaded), or undefined. */
export async function loadCommand (name: string): Promise<Command | undefined> {
  return await LOADERS.find(([n]) => n === name)?.[1]()
}

/** Every command, each module loaded: for help, completion and the docs. */
export async function loadCommands (): Promise<Command[]> {
  return await Promise.all(LOADERS.map(([, load]) => load()))
}

async function usage (): Promise<string> {
  const commands = await loadCommands()
  const width = Math.max(...commands.map((c) => c.meta.name.length))
  return [
    'distswarm: a peer-to-peer cache of Gentoo distfiles for the boxes of one LAN', '',
    'usage: distswarm COMMAND [options]   (distswarm COMMAND --help for more)', '',
    'commands:', ...commands.map((c) => `  ${c.meta.name.padEnd(width)}  ${c.meta.summary}`), '',
    'exit codes: 0 success, 1 operation failed, 2 usage or configuration error, 3 agent unreachable', ''
  ].join('\n')
}

function processIO (): IO {
  const ac = new AbortController()
  // First signal: shut down cleanly. A second one gets Node's default: exit now.
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => ac.abort())
  return { stdout: process.stdout, stderr: process.stderr, env: process.env, signal: ac.signal }
}

/** Runs one CLI invocation; returns the exit code. Only bin/distswarm.js exits the process. */
export async function run (argv: string[], io: IO = processIO()): Promise<number> {
  const [name, ...rest] = argv
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    (name === undefined ? io.stderr : io.stdout).write(await usage())
    return name === undefined ? 2 : 0
  }
  const cmd = await loadCommand(name)
  if (!cmd) {
    io.stderr.write(`distswarm: unknown command ${JSON.stringify(name)}\n\n${await usage()}`)
    return 2
  }
  try {
    const args = parse(cmd, rest)
    if (args.values.help) {
      io.stdout.write(helpText(cmd))
      return 0
    }
    return await cmd.run(args, io)
  } catch (err) {
    io.stderr.write(`distswarm ${cmd.meta.name}: ${(err as Error).message}\n`)
    return exitCodeOf(err)
  }
}
