/**
 * How Portage runs FETCHCOMMAND (lib/portage/package/ebuild/fetch.py):
 * `varexpand` the template with URI, DISTDIR, FILE and DIGESTS, split it
 * with `shlex.split`, and spawn the words without a shell.
 */

/** Portage's default commands (make.globals). */
export const PORTAGE_FETCHCOMMAND = 'wget -t 3 -T 60 --passive-ftp -O "${DISTDIR}/${FILE}" "${URI}"'
export const PORTAGE_RESUMECOMMAND = 'wget -c -t 3 -T 60 --passive-ftp -O "${DISTDIR}/${FILE}" "${URI}"'

/** Portage's temporary name for a file being downloaded. */
export const DOWNLOAD_SUFFIX = '.__download__'

/** Replaces ${VAR} and $VAR with their values; unknown variables become empty, as in Portage's varexpand. */
export function varexpand (template: string, vars: Record<string, string>): string {
  return template.replace(/\$\{(\w+)\}|\$(\w+)/g, (_, braced?: string, bare?: string) => vars[(braced ?? bare)!] ?? '')
}

/**
 * Python's shlex.split (POSIX mode), which Portage uses: whitespace separates
 * words; single quotes are literal; in double quotes a backslash escapes only
 * " and \ (unlike a shell, \$ stays \$); outside quotes it escapes anything.
 */
export function shlexSplit (text: string): string[] {
  const words: string[] = []
  let word = ''
  let inWord = false
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!
    if (c === "'") {
      const end = text.indexOf("'", i + 1)
      if (end === -1) throw new Error('no closing quotation')
      word += text.slice(i + 1, end)
      i = end
      inWord = true
    } else if (c === '"') {
      inWord = true
      for (i++; ; i++) {
        if (i >= text.length) throw new Error('no closing quotation')
        const d = text[i]!
        if (d === '"') break
        if (d === '\\' && i + 1 < text.length && '\\"'.includes(text[i + 1]!)) word += text[++i]!
        else word += d
      }
    } else if (c === '\\') {
      if (i + 1 >= text.length) throw new Error('no escaped character')
      word += text[++i]!
      inWord = true
    } else if (/\s/.test(c)) {
      if (inWord) words.push(word)
      word = ''
      inWord = false
    } else {
      word += c
      inWord = true
    }
  }
  if (inWord) words.push(word)
  return words
}

/** Parses ${DIGESTS}: "blake2b:<hex> sha512:<hex> …" → { blake2b, sha512, … } (lowercase names and hex). */
export function parseDigests (text: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const token of text.trim().split(/\s+/)) {
    const m = /^([a-z0-9_-]+):([0-9a-fA-F]+)$/i.exec(token)
    if (m) out[m[1]!.toLowerCase()] = m[2]!.toLowerCase()
  }
  return out
}

/**
 * One word of a command inside a make.conf double-quoted value: as it is when
 * plain, else wrapped in \" \" (make.conf is read once, then shlex-split).
 * Returns null for a word with quotes, $, ` or \\, which we do not try to escape.
 */
export function makeConfWord (word: string): string | null {
  if (/["$`\\]/.test(word)) return null
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `\\"${word}\\"`
}
