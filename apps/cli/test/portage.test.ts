import { describe, expect, it } from 'vitest'
import { execFileSync } from 'node:child_process'
import { makeConfWord, parseDigests, PORTAGE_FETCHCOMMAND, shlexSplit, varexpand } from '../src/portage.js'

/** Python's own shlex.split, the one Portage calls. */
function pythonShlex (text: string): string[] {
  return JSON.parse(execFileSync('python3', ['-c', 'import json,shlex,sys; print(json.dumps(shlex.split(sys.argv[1])))', text], { encoding: 'utf8' })) as string[]
}

describe('portage command lines', () => {
  it.each([
    'wget -t 3 -T 60 --passive-ftp -O "/var/cache/distfiles/a b.tar.gz.__download__" "https://x/a%20b.tar.gz"',
    `a 'single "quoted"' "double \\"escaped\\" \\$HOME \\\\ \\x" plain\\ space`,
    '  leading   and trailing  ',
    '"" \'\' empty-words',
    'mixed"quo"ted\'parts\''
  ])('splits %j exactly like python shlex', (text) => {
    expect(shlexSplit(text)).toEqual(pythonShlex(text))
  })

  it('refuses unterminated quotes', () => {
    expect(() => shlexSplit('"open')).toThrow(/no closing quotation/)
    expect(() => shlexSplit("'open")).toThrow(/no closing quotation/)
  })

  it('expands Portage variables; unknown ones become empty', () => {
    const vars = { DISTDIR: '/d', FILE: 'f.__download__', URI: 'http://127.0.0.1/f' }
    expect(shlexSplit(varexpand(PORTAGE_FETCHCOMMAND, vars))).toEqual(['wget', '-t', '3', '-T', '60', '--passive-ftp', '-O', '/d/f.__download__', 'http://127.0.0.1/f'])
    expect(varexpand('x${NOPE}y $DISTDIR', vars)).toBe('xy /d')
  })

  it('parses ${DIGESTS} as Portage writes it', () => {
    expect(parseDigests(`blake2b:${'AB'.repeat(64)} sha512:${'cd'.repeat(64)} sha256:${'ef'.repeat(32)}`)).toEqual({
      blake2b: 'ab'.repeat(64), sha512: 'cd'.repeat(64), sha256: 'ef'.repeat(32)
    })
    expect(parseDigests('')).toEqual({})
  })

  it('quotes make.conf words it can, refuses the rest', () => {
    expect(makeConfWord('/usr/bin/node')).toBe('/usr/bin/node')
    expect(makeConfWord('/opt/my tools/distswarm.js')).toBe('\\"/opt/my tools/distswarm.js\\"')
    expect(makeConfWord('/opt/$x')).toBeNull()
  })
})
