import { createSecureContext } from 'node:tls';
import { ConfigError } from '@nebula/service-kit';
import { readConfigFile } from './bus-keys.ts';
import type { ServerTls } from './http/listener.ts';

const BOTH = ['API_TLS_CERT', 'API_TLS_KEY'];

/**
 * The certificate and key the API serves HTTPS with (API_TLS_CERT, API_TLS_KEY: paths of PEM
 * files), read once at start; undefined when neither is set (plain HTTP). One without the other, a
 * file that cannot be read, or a key that is not the certificate's: a ConfigError naming the
 * variables (never the key's text), so the API does not start. New certificates need a restart.
 */
export function apiTlsFromEnv(env: { API_TLS_CERT?: string | undefined; API_TLS_KEY?: string | undefined }, read = readConfigFile): ServerTls | undefined {
  const { API_TLS_CERT: certFile, API_TLS_KEY: keyFile } = env;
  if (certFile === undefined && keyFile === undefined) return undefined;
  if (certFile === undefined || keyFile === undefined) {
    throw new ConfigError(`API_TLS_CERT and API_TLS_KEY must be set together (only ${certFile === undefined ? 'API_TLS_KEY' : 'API_TLS_CERT'} is set)`, BOTH);
  }
  const tls = { cert: read(certFile, 'API_TLS_CERT'), key: read(keyFile, 'API_TLS_KEY') };
  try {
    createSecureContext(tls);
  } catch (err) {
    // OpenSSL's reason (e.g. "key values mismatch", "no start line"), which quotes no key material.
    const reason = err instanceof Error ? err.message : String(err);
    throw new ConfigError(`API_TLS_CERT / API_TLS_KEY: not a PEM certificate and its private key (${reason})`, BOTH);
  }
  return tls;
}
