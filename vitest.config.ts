import { defineConfig } from 'vitest/config'
import SummaryReporter from './vitest.summary.js'

// One run over every workspace: the packages' unit tests and the multi-agent
// tests in test/. Each project may add its own vitest.config.ts.
export default defineConfig({
  test: {
    projects: ['packages/*', 'apps/*', 'test'],
    // Two files at a time even on two cores (the default would be one): the
    // multi-agent tests mostly wait on processes, sockets and timers.
    maxWorkers: 2,
    reporters: ['default', new SummaryReporter()]
  }
})
