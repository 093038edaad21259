/**
 * The parts of docs/cli.md made from the code: each command's usage and
 * flags (from its declaration) and the error codes with their exit codes
 * (from the CODES table). `npm run docs -w @distswarm/cli` rewrites them;
 * a test fails when the file and the code differ.
 */
import { readFile, writeFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { CODES, type Code } from '@distswarm/protocol'
import { exitCodeOf, flagText, type Command } from './command.js'

export const DOCS_PATH = fileURLToPath(new URL('../../../docs/cli.md', import.meta.url))

const cell = (text: string): string => text.replaceAll('|', '\\|')

/** The exit code of an error of `code`. */
export const exitCodeOfCode = (code: Code): number => exitCodeOf({ code })

/** Every code a command can end with, its exit code and its meaning, as a markdown table. */
export function codesTable (): string {
  const rows = (Object.entries(CODES) as Array<[Code, string]>).map(([code, meaning]) => `| \`${code}\` | ${exitCodeOfCode(code)} | ${cell(meaning)} |`)
  return ['| code | exit | meaning |', '|---|---|---|', ...rows].join('\n')
}

/** Each command: its usage line, what it does, and a table of its flags. */
export function flagsReference (commands: readonly Command[]): string {
  return commands.map((c) => [
    `### ${c.meta.name}`, '',
    `\`${c.meta.usage}\``, '',
    `${c.meta.summary[0]!.toUpperCase()}${c.meta.summary.slice(1)}.`, '',
    '| flag | meaning |', '|---|---|',
    ...Object.entries(c.args).map(([name, a]) => `| \`${cell(flagText(name, a))}\` | ${cell(a.description)} |`)
  ].join('\n')).join('\n\n')
}

/** `text` with the block between `<!-- generated: NAME -->` and `<!-- end: NAME -->` replaced by `body`. */
export function replaceBlock (text: string, name: string, body: string): string {
  const begin = `<!-- generated: ${name} -->`
  const end = `<!-- end: ${name} -->`
  const a = text.indexOf(begin)
  const b = text.indexOf(end)
  if (a === -1 || b < a) throw new Error(`docs/cli.md has no ${begin} … ${end} block`)
  return `${text.slice(0, a + begin.length)}\n${body}\n${text.slice(b)}`
}

/** docs/cli.md as the code says it is. */
export function generatedDocs (text: string, commands: readonly Command[]): string {
  return replaceBlock(replaceBlock(text, 'codes', codesTable()), 'commands', flagsReference(commands))
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { loadCommands } = await import('./main.js')
  const text = await readFile(DOCS_PATH, 'utf8')
  const next = generatedDocs(text, await loadCommands())
  if (next !== text) await writeFile(DOCS_PATH, next)
  process.stdout.write(`${next === text ? 'unchanged' : 'rewrote'} ${DOCS_PATH}\n`)
}
