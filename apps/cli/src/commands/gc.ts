import type { GcResult } from '@distswarm/agent'
import { formatBytes, table } from '../format.js'
import { defineQuery } from './query.js'

const REASONS: Record<GcResult['files'][number]['reason'], string> = {
  unreferenced: 'no Manifest lists it',
  'least-recently-used': 'least recently used'
}

export const gcCommand = defineQuery({
  meta: {
    name: 'gc',
    summary: "apply the cache quota (cache-max-size) now: remove cache files, least recently used first; --dry-run only lists them",
    usage: 'distswarm gc [--dry-run] [--control PATH | --config FILE] [--json]',
    examples: ['distswarm gc --dry-run', 'distswarm gc --json | jq .bytesAfter']
  },
  args: { 'dry-run': { type: 'boolean', description: 'list what would be removed, remove nothing' } },
  ask: (c, _, values) => c.call('gc', values['dry-run'] === true ? { dryRun: true } : {}),
  show (r, io) {
    const sizeOf = (files: number, bytes: number): string => `${files} files, ${formatBytes(bytes)}`
    const limit = r.maxBytes === null ? 'no limit' : `limit ${formatBytes(r.maxBytes)}`
    if (r.files.length > 0) {
      io.stdout.write(`over the quota by ${formatBytes(r.overBy)}\n`)
      io.stdout.write(table(['', 'NAME', 'SIZE', 'WHY', 'LAST USED'], r.files.map((f) => [
        r.dryRun ? 'would remove' : f.removed ? 'removed' : 'kept (changed meanwhile)',
        f.name,
        formatBytes(f.size),
        REASONS[f.reason] + (f.peers === 0 ? ', the last copy: no connected peer holds it' : ''),
        f.lastUsed
      ])))
    }
    io.stdout.write(`${r.cacheDir}: ${sizeOf(r.filesBefore, r.bytesBefore)} before, ${sizeOf(r.filesAfter, r.bytesAfter)} ${r.dryRun ? 'after a gc' : 'now'} (${limit})\n`)
  }
})
