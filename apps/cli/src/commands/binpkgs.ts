import type { BuildInfo, BuildsResult } from '@distswarm/agent'
import { UsageError } from '../command.js'
import { formatBytes, paintFor, shortKey, table, type Paint } from '../format.js'
import { defineQuery } from './query.js'

/** An atom as `distswarm binpkgs` takes one: `pkg`, `cat/pkg` or `cat/pkg-version`, no operators or spaces. */
const ATOM = /^[A-Za-z0-9_][A-Za-z0-9+_.-]*(\/[A-Za-z0-9_][A-Za-z0-9+_.-]*)?$/

/**
 * Each build's USE as shown: its flags, those that not every instance of its
 * CPV shares highlighted, and the flags other instances have and it lacks
 * appended as `-flag`, so two builds of one version read apart at a glance.
 */
export function useColumn (builds: readonly BuildInfo[], paint: Paint): string[] {
  const byCpv = new Map<string, Array<Set<string>>>()
  const sets = builds.map((b) => new Set(b.use.split(/\s+/).filter(Boolean)))
  builds.forEach((b, i) => byCpv.set(b.cpv, [...byCpv.get(b.cpv) ?? [], sets[i]!]))
  return builds.map((b, i) => {
    const own = sets[i]!
    const all = byCpv.get(b.cpv)!
    if (all.length < 2) return [...own].join(' ')
    const differs = (flag: string): boolean => !all.every((s) => s.has(flag))
    const lacking = new Set(all.flatMap((s) => [...s]).filter((f) => !own.has(f)))
    return [
      ...[...own].map((f) => differs(f) ? paint.yellow(paint.bold(f)) : f),
      ...[...lacking].sort().map((f) => paint.yellow(paint.bold(`-${f}`)))
    ].join(' ')
  })
}

export const binpkgsCommand = defineQuery({
  meta: {
    name: 'binpkgs',
    summary: 'list the binary packages across the network: CPV, BUILD_ID, USE (flags that differ between instances highlighted), size, builder, holders',
    usage: 'distswarm binpkgs [ATOM] [--control PATH | --config FILE] [--json]',
    examples: [
      'distswarm binpkgs',
      'distswarm binpkgs dev-db/mariadb',
      'distswarm binpkgs --json | jq -r ".builds[] | select(.skipped == null) | .path"'
    ]
  },
  positionals: [0, 1],
  check ([atom]) {
    if (atom !== undefined && !ATOM.test(atom)) throw new UsageError(`ATOM must be pkg, cat/pkg or cat/pkg-version, got ${JSON.stringify(atom)}`)
  },
  ask: (c, [atom]) => c.call('binpkgs', atom === undefined ? {} : { atom }),
  show (r: BuildsResult, io) {
    const p = paintFor(io.stdout, io.env)
    const head = r.unavailable !== null
      ? p.red(`this box's binhost serves no builds: ${r.unavailable}`)
      : `binhost: CHOST ${r.chost ?? '-'}, group ${r.group ?? '-'}; ${r.builds.filter((b) => b.skipped === null).length} of ${r.builds.length} builds served`
    if (r.builds.length === 0) {
      io.stdout.write(`${head}\nno builds\n`)
      return
    }
    const use = useColumn(r.builds, p)
    io.stdout.write(`${head}\n` + table(['CPV', 'BUILD_ID', 'USE', 'SIZE', 'BUILDER', 'HOLDERS', 'SERVED'], r.builds.map((b, i) => [
      b.cpv,
      String(b.buildId),
      use[i]!,
      formatBytes(b.size),
      `${b.builderName ?? shortKey(b.builder)}${b.trusted ? '' : ' (untrusted)'}`,
      b.holders.join(', ') || '-',
      b.skipped === null ? 'yes' : p.dim(`no: ${b.skipped}`)
    ]), { right: [1, 3], header: p.bold }))
  }
})
