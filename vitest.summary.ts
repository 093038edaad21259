import type { Reporter, TestModule } from 'vitest/node'

/** Ends the run with one plain line, "tests: N passed, N failed, N skipped", for CI logs. */
export default class SummaryReporter implements Reporter {
  onTestRunEnd (modules: ReadonlyArray<TestModule>): void {
    const counts = { passed: 0, failed: 0, skipped: 0, pending: 0 }
    for (const m of modules) {
      for (const t of m.children.allTests()) counts[t.result().state]++
    }
    process.stdout.write(`\ntests: ${counts.passed} passed, ${counts.failed} failed, ${counts.skipped + counts.pending} skipped\n`)
  }
}
