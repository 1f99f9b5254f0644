import type { z } from 'zod';
import { ConfigError, loadEnv } from './env.ts';
import { createLogger, type Logger } from './logger.ts';

/**
 * The lifecycle every service entry point shares:
 *
 *   parse env ──fail──▶ log which variable, exit 2
 *      │
 *   start(env) ──fail──▶ log, exit 1 (a ConfigError: log which variable, exit 2)
 *      │
 *   running ──SIGTERM/SIGINT──▶ stop() (stop taking work, finish what is in flight) ──▶ exit 0
 *                               stop() taking longer than the grace period: exit 1
 *
 *   starting ──SIGTERM/SIGINT──▶ exit 0 at once (nothing runs yet that a stop would finish)
 *
 * Further signals while stopping are ignored: a terminal's Ctrl-C reaches every process of the group
 * and `npm start` forwards a SIGTERM as well, so two signals are the normal case.
 *
 * The handlers are installed before start(): as PID 1 of a container, Node has no default action for
 * SIGTERM, so a service still waiting in start() (for NATS, say) would otherwise ignore `docker stop`
 * and be killed at the end of its timeout.
 */
export interface RunningService {
  stop(): Promise<void>;
}

export interface ServiceDefinition<S extends z.ZodObject> {
  name: string;
  env: S;
  /** Read from the parsed env; defaults to LOG_LEVEL when the schema has it. */
  logLevel?: (env: z.output<S>) => string;
  start(env: z.output<S>, log: Logger): Promise<RunningService>;
  shutdownGraceMs?: number;
}

export async function runService<S extends z.ZodObject>(def: ServiceDefinition<S>): Promise<void> {
  let env: z.output<S>;
  try {
    env = loadEnv(def.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      createLogger(def.name).fatal({ variables: err.variables }, err.message);
      process.exit(2);
    }
    throw err;
  }
  const level = def.logLevel?.(env) ?? (env as { LOG_LEVEL?: string }).LOG_LEVEL ?? 'info';
  const log = createLogger(def.name, level);
  let running: RunningService | null = null;
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    if (running === null) {
      log.info({ signal }, 'shutting down while starting');
      process.exit(0);
    }
    const service = running;
    log.info({ signal }, 'shutting down');
    const timer = setTimeout(() => {
      log.error('shutdown took too long: exiting');
      process.exit(1);
    }, def.shutdownGraceMs ?? 30_000);
    timer.unref();
    service.stop().then(
      () => {
        log.info('stopped');
        process.exit(0);
      },
      (err: unknown) => {
        log.error({ err }, 'error while stopping');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  try {
    running = await def.start(env, log);
  } catch (err) {
    // A setting found wrong only at start (a file a variable names, the machine id): exit 2 as well.
    if (err instanceof ConfigError) {
      log.fatal({ variables: err.variables }, err.message);
      process.exit(2);
    }
    log.fatal({ err }, `${def.name} failed to start`);
    process.exit(1);
  }
}
