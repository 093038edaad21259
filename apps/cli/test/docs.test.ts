/**
 * docs/cli.md and --help against the code: the error codes a command can end
 * with are the CODES table, each with the exit code the CLI gives it; the
 * flags listed are the flags declared; a usage line names no flag the
 * command does not take.
 */
import { describe, expect, it } from 'vitest'
import { readFile } from 'node:fs/promises'
import { CODES } from '@distswarm/protocol'
import { exitCodeOf } from '../src/command.js'
import { flagsOf } from '../src/commands/completion.js'
import { loadCommands } from '../src/main.js'
import { DOCS_PATH, generatedDocs } from '../src/reference.js'

const COMMANDS = await loadCommands()

describe('docs/cli.md', () => {
  it('lists every error code of the CODES table, and no other, with the exit code a command ends with', async () => {
    const text = await readFile(DOCS_PATH, 'utf8')
    const section = text.split(/^## /m).find((s) => s.startsWith('Error codes\n'))
    expect(section, 'docs/cli.md has a section "## Error codes"').toBeDefined()
    const rows = [...section!.matchAll(/^\| `(ERR_\w+)` \| (\d) \| (.+) \|$/gm)].map((m) => [m[1], Number(m[2]), m[3]])
    expect(rows.map(([code]) => code).sort()).toEqual(Object.keys(CODES).sort())
    for (const [code, exit, meaning] of rows) {
      expect(exit, String(code)).toBe(exitCodeOf({ code }))
      expect(meaning).toBe(CODES[code as keyof typeof CODES].replaceAll('|', '\\|'))
    }
    // the ones people meet most, as the contract says
    expect(exitCodeOf({ code: 'ERR_AGENT_UNREACHABLE' })).toBe(3)
    expect(exitCodeOf({ code: 'ERR_AGENT_NOT_STARTED' })).toBe(3)
    expect(exitCodeOf({ code: 'ERR_BAD_REPLY' })).toBe(1)
  })

  it('has the flags of every command as they are declared (npm run docs -w @distswarm/cli rewrites them)', async () => {
    const text = await readFile(DOCS_PATH, 'utf8')
    expect(text === generatedDocs(text, COMMANDS), 'docs/cli.md differs from the code: run `npm run build && npm run docs -w @distswarm/cli`').toBe(true)
  })

  it("names in each usage line only flags the command takes", () => {
    for (const c of COMMANDS) {
      const named = [...c.meta.usage.matchAll(/(?<![\w-])--[a-z][a-z0-9-]*/g)].map((m) => m[0])
      const takes = flagsOf(c)
      expect(named.filter((f) => !takes.includes(f)), c.meta.name).toEqual([])
    }
  })
})
