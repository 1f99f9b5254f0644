import type { PostgresCursor, PostgresPool, PostgresPoolClient, PostgresQueryResult } from 'kysely';
import type pg from 'pg';
import { preparedName } from './prepared.ts';

/**
 * PostgreSQL could not answer in time, or not at all: the pool's waiters are full, a connection could
 * not be opened in time, a query got no answer (a black-holed server), the server cancelled a
 * statement that ran too long, or the connection was lost. Worth retrying a little later (the API
 * answers 503); the pg error is kept as `cause`.
 */
export type DatabaseUnavailableReason = 'pool-full' | 'connect-timeout' | 'query-timeout' | 'statement-timeout' | 'connection-lost';

export class DatabaseUnavailableError extends Error {
  override name = 'DatabaseUnavailableError';
  readonly retryable = true;
  readonly reason: DatabaseUnavailableReason;
  constructor(reason: DatabaseUnavailableReason, message: string, options?: ErrorOptions) {
    super(message, options);
    this.reason = reason;
  }
}

/** SQLSTATE classes and codes that say "the server cannot serve this now", not "this query is wrong". */
const UNAVAILABLE_CODES: Record<string, DatabaseUnavailableReason> = {
  '57014': 'statement-timeout', // query_canceled (statement_timeout)
  '25P03': 'connection-lost', // idle_in_transaction_session_timeout: the server closed the session
  '57P01': 'connection-lost', // admin_shutdown
  '57P02': 'connection-lost', // crash_shutdown
  '57P03': 'connection-lost', // cannot_connect_now (starting up, recovering)
  '53300': 'connection-lost', // too_many_connections
};

const CONNECTION_MESSAGES = [
  /^Connection terminated/,
  /^timeout expired$/,
  /^timeout exceeded when trying to connect$/,
  /ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|EHOSTUNREACH/,
  /^Client has encountered a connection error/,
  /^Client was closed and is not queryable$/,
];

/**
 * The named error for a pg failure that means "unavailable", or null for any other (a unique
 * violation, a syntax error...), which callers match on and must get unchanged.
 */
export function unavailableError(err: unknown, during: 'connect' | 'query'): DatabaseUnavailableError | null {
  if (err instanceof DatabaseUnavailableError) return err;
  if (!(err instanceof Error)) return null;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') {
    const reason = UNAVAILABLE_CODES[code] ?? (code.startsWith('08') ? 'connection-lost' : undefined);
    if (reason) return new DatabaseUnavailableError(reason, `database unavailable: ${err.message}`, { cause: err });
    if (!/^E[A-Z]+$/.test(code)) return null;
  }
  if (err.message === 'Query read timeout')
    return new DatabaseUnavailableError('query-timeout', 'database unavailable: no answer to a query in time', { cause: err });
  if (CONNECTION_MESSAGES.some((re) => re.test(err.message)) || typeof code === 'string') {
    const reason = during === 'connect' && /timeout/.test(err.message) ? 'connect-timeout' : 'connection-lost';
    return new DatabaseUnavailableError(reason, `database unavailable: ${err.message}`, { cause: err });
  }
  return null;
}

function isCursor(v: unknown): v is PostgresCursor<unknown> {
  return typeof v === 'object' && v !== null && typeof (v as { read?: unknown }).read === 'function';
}

/**
 * One checked-out connection. A query that got no answer leaves the connection mid-protocol (the
 * server may answer later, or never): it is marked broken, later queries on it fail at once (the
 * transaction's ROLLBACK, say, instead of waiting out a second timeout), and it is destroyed on
 * release instead of going back to the pool.
 */
class GuardedClient implements PostgresPoolClient {
  readonly #client: pg.PoolClient;
  #broken: DatabaseUnavailableError | null = null;
  /**
   * The pool listens for errors only on idle connections. One checked out can still get an 'error'
   * event (the server ends a session idle in a transaction, or restarts): without a listener that
   * event would crash the process. It marks the connection broken instead.
   */
  readonly #onError = (err: Error) => {
    this.#broken ??= unavailableError(err, 'query') ?? new DatabaseUnavailableError('connection-lost', `database unavailable: ${err.message}`, { cause: err });
  };
  constructor(client: pg.PoolClient) {
    this.#client = client;
    client.on('error', this.#onError);
  }

  query<R>(sql: string, parameters: ReadonlyArray<unknown>): Promise<PostgresQueryResult<R>>;
  query<R>(cursor: PostgresCursor<R>): PostgresCursor<R>;
  query<R>(sqlOrCursor: string | PostgresCursor<R>, parameters?: ReadonlyArray<unknown>): Promise<PostgresQueryResult<R>> | PostgresCursor<R> {
    if (isCursor(sqlOrCursor)) return (this.#client as unknown as { query(c: unknown): PostgresCursor<R> }).query(sqlOrCursor);
    if (this.#broken) return Promise.reject(this.#broken);
    const values = parameters as unknown[];
    const name = preparedName(sqlOrCursor);
    const run = name === undefined ? this.#client.query(sqlOrCursor, values) : this.#client.query({ name, text: sqlOrCursor, values });
    return (run as unknown as Promise<PostgresQueryResult<R>>).catch((err: unknown) => {
      if (
        name !== undefined &&
        (err as { code?: unknown }).code === '0A000' &&
        /cached plan must not change result type/.test(String((err as Error).message))
      ) {
        // "cached plan must not change result type": a migration changed a table under a prepared
        // statement. This connection keeps the stale statement: it goes, the next is prepared anew.
        this.#broken = new DatabaseUnavailableError('connection-lost', 'database unavailable: the schema changed under a prepared statement', { cause: err });
        throw this.#broken;
      }
      const unavailable = unavailableError(err, 'query');
      if (!unavailable) throw err;
      if (unavailable.reason !== 'statement-timeout') this.#broken = unavailable;
      throw unavailable;
    });
  }

  release(): void {
    // A broken one is destroyed and may still report its end: it keeps the listener.
    if (this.#broken) {
      this.#client.release(this.#broken);
      return;
    }
    this.#client.off('error', this.#onError);
    this.#client.release();
  }
}

/**
 * pg.Pool with a bounded queue of waiters in front: when `maxWaiting` callers already wait for a
 * connection, the next one is refused at once (DatabaseUnavailableError 'pool-full') instead of
 * joining a queue that only grows while PostgreSQL is slow. Waiting itself is bounded by the pool's
 * `connectionTimeoutMillis`.
 */
export class BoundedPool implements PostgresPool {
  readonly #pool: pg.Pool;
  readonly #maxWaiting: number;
  constructor(pool: pg.Pool, maxWaiting: number) {
    this.#pool = pool;
    this.#maxWaiting = maxWaiting;
  }

  get waitingCount(): number {
    return this.#pool.waitingCount;
  }

  async connect(): Promise<PostgresPoolClient> {
    if (this.#pool.waitingCount >= this.#maxWaiting) {
      throw new DatabaseUnavailableError('pool-full', `database unavailable: ${this.#pool.waitingCount} callers already wait for a connection`);
    }
    try {
      return new GuardedClient(await this.#pool.connect());
    } catch (err) {
      throw unavailableError(err, 'connect') ?? err;
    }
  }

  end(): Promise<void> {
    return this.#pool.end();
  }
}
