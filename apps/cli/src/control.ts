import { isAbsolute, resolve } from 'node:path'
import { AgentError, ControlClient, defaultControlPath, loadOptions } from '@distswarm/agent'

/** The control socket a command uses, and what said so. */
export interface ControlChoice {
  path: string
  /** '--control', 'DISTSWARM_CONTROL', the config file's "path:line", or null for the built-in default */
  origin: string | null
}

/**
 * Where the agent answers: --control, else $DISTSWARM_CONTROL, else the
 * `control` of the config file (--config, $DISTSWARM_CONFIG, or the one
 * `distswarm agent` reads by default), else the default path. The config
 * file is read only when it decides.
 */
export async function findControl (values: { control?: string | undefined, config?: string | undefined }, env: NodeJS.ProcessEnv): Promise<ControlChoice> {
  if (values.control !== undefined) return { path: values.control, origin: '--control' }
  if (values.config === undefined && env.DISTSWARM_CONTROL) return { path: env.DISTSWARM_CONTROL, origin: 'DISTSWARM_CONTROL' }
  const loaded = await loadOptions({ config: values.config === undefined ? undefined : resolve(values.config), env })
  const path = loaded.options.control
  const origin = loaded.origins.control ?? null
  if (path === undefined) return { path: defaultControlPath(env), origin: null }
  if (typeof path !== 'string' || !isAbsolute(path)) throw AgentError.BAD_OPTION('control', origin, 'expected the absolute path of the control socket')
  return { path, origin }
}

/** Connects, runs `use`, and closes the connection, whatever `use` does. */
export async function withClient<T> (path: string, use: (client: ControlClient) => Promise<T>): Promise<T> {
  const client = await ControlClient.connect(path)
  try {
    return await use(client)
  } finally {
    client.close()
  }
}
