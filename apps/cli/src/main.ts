import { exitCodeOf, helpText, parse, type Command, type IO } from './command.js'
import { agentCommand, seedCommand } from './commands/agent.js'
import { binpkgsCommand } from './commands/binpkgs.js'
import { bootstrapCommand } from './commands/bootstrap.js'
import { completionCommand } from './commands/completion.js'
import { demoCommand } from './commands/demo.js'
import { doctorCommand } from './commands/doctor.js'
import { gcCommand } from './commands/gc.js'
import { initCommand } from './commands/init.js'
import { portageConfigCommand, portageFetchCommand } from './commands/portage.js'
import { fetchCommand, lsCommand, peersCommand, statusCommand, verifyCommand, whereCommand } from './commands/query.js'

export const COMMANDS: Command[] = [
  initCommand, agentCommand, seedCommand, bootstrapCommand, statusCommand, peersCommand, lsCommand, whereCommand, binpkgsCommand, fetchCommand, verifyCommand, gcCommand,
  portageFetchCommand, portageConfigCommand, doctorCommand, demoCommand, completionCommand(() => COMMANDS)
]

function usage (): string {
  const width = Math.max(...COMMANDS.map((c) => c.meta.name.length))
  return [
    'distswarm: a peer-to-peer cache of Gentoo distfiles for the boxes of one LAN', '',
    'usage: distswarm COMMAND [options]   (distswarm COMMAND --help for more)', '',
    'commands:', ...COMMANDS.map((c) => `  ${c.meta.name.padEnd(width)}  ${c.meta.summary}`), '',
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
    (name === undefined ? io.stderr : io.stdout).write(usage())
    return name === undefined ? 2 : 0
  }
  const cmd: Command | undefined = COMMANDS.find((c) => c.meta.name === name)
  if (!cmd) {
    io.stderr.write(`distswarm: unknown command ${JSON.stringify(name)}\n\n${usage()}`)
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
