import { defineConfig } from 'vitest/config'
import SummaryReporter from './vitest.summary.js'

// One run over every workspace: the packages' unit tests and the multi-agent
// tests in test/. Each project may add its own vitest.config.ts.
export default defineConfig({
  test: {
    projects: ['packages/*', 'apps/*', 'test'],
    reporters: ['default', new SummaryReporter()]
  }
})
