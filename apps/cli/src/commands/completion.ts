import { defineCommand, UsageError, type Command } from '../command.js'

const SHELLS = ['bash']

/** Every flag a command takes, long and short, as typed. */
export function flagsOf (cmd: Command): string[] {
  return Object.entries(cmd.args).flatMap(([name, a]) => [`--${name}`, ...(a.short ? [`-${a.short}`] : [])])
}

/**
 * A bash completion script for these commands: the command names in the
 * first place, then the flags of the command typed; anything else falls
 * back to file names (-o default). Made from the command definitions, so it
 * lists what the parser takes.
 */
export function bashCompletion (commands: Command[]): string {
  // Names and flags are [a-z0-9-]: nothing in them needs quoting in a case pattern or a word list.
  const cases = commands.map((c) => `    ${c.meta.name}) words=${JSON.stringify(flagsOf(c).join(' '))} ;;`)
  return [
    '# bash completion for distswarm; load it with:',
    '#   source <(distswarm completion bash)',
    '# or save it as /usr/share/bash-completion/completions/distswarm',
    '_distswarm () {',
    '  local cur=${COMP_WORDS[COMP_CWORD]} words',
    '  COMPREPLY=()',
    '  if [[ $COMP_CWORD -eq 1 ]]; then',
    `    COMPREPLY=($(compgen -W ${JSON.stringify(commands.map((c) => c.meta.name).join(' '))} -- "$cur"))`,
    '    return 0',
    '  fi',
    '  case ${COMP_WORDS[1]} in',
    ...cases,
    '    *) return 0 ;;',
    '  esac',
    '  if [[ ${COMP_WORDS[1]} == completion && $COMP_CWORD -eq 2 && $cur != -* ]]; then',
    `    COMPREPLY=($(compgen -W ${JSON.stringify(SHELLS.join(' '))} -- "$cur"))`,
    '  elif [[ $cur == -* ]]; then',
    '    COMPREPLY=($(compgen -W "$words" -- "$cur"))',
    '  fi',
    '  return 0',
    '}',
    'complete -o default -F _distswarm distswarm',
    ''
  ].join('\n')
}

/** `distswarm completion bash`; `commands` gives the full list (this one among them) when it runs. */
export function completionCommand (commands: () => Promise<Command[]>): Command {
  return defineCommand({
    meta: {
      name: 'completion',
      summary: 'print a shell completion script (bash): command names and their flags',
      usage: 'distswarm completion bash',
      examples: [
        'source <(distswarm completion bash)                                    # in this shell',
        'distswarm completion bash > /usr/share/bash-completion/completions/distswarm   # for everyone'
      ]
    },
    args: {},
    positionals: [1, 1],
    async run ({ positionals: [shell] }, io) {
      if (!SHELLS.includes(shell!)) throw new UsageError(`no completion for ${JSON.stringify(shell)} (known: ${SHELLS.join(', ')})`)
      io.stdout.write(bashCompletion(await commands()))
      return 0
    }
  })
}
