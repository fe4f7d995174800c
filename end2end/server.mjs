// Starts the already-built Deferral (target/debug/deferral) on a fresh SQLite file in a
// temporary folder, for Playwright's webServer (which passes the secrets in the environment).
// Removes the folder when stopped.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const binary = join(root, 'target/debug/deferral');
if (!existsSync(binary) || !existsSync(join(root, 'target/site/pkg/deferral.wasm'))) {
  console.error(`${binary} or target/site/pkg is missing: run \`cargo leptos build\` first`);
  process.exit(1);
}
const dir = mkdtempSync(join(tmpdir(), 'deferral-e2e-'));
const port = process.env.E2E_PORT;
const child = spawn(binary, [], {
  stdio: 'inherit',
  env: {
    ...process.env,
    DATABASE_URL: `sqlite://${join(dir, 'deferral.db')}`,
    LEPTOS_SITE_ADDR: `127.0.0.1:${port}`,
    LEPTOS_SITE_ROOT: join(root, 'target/site'),
    // Events created in the future wait (scheduled); the others run at once.
    DEFERRAL_PROCESS_DELAY: '1s',
    DEFERRAL_RETRY_INITIAL_INTERVAL: process.env.DEFERRAL_RETRY_INITIAL_INTERVAL ?? '1s',
    DEFERRAL_POLL_INTERVAL: '200ms',
    RUST_LOG: process.env.RUST_LOG ?? 'warn',
    // Plain HTTP: session cookies without `Secure`, as `deferral dev` sets it.
    DEFERRAL_INSECURE_COOKIES: '1',
  },
});
const stop = () => child.kill('SIGTERM');
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
child.on('exit', (code) => {
  rmSync(dir, { recursive: true, force: true });
  process.exit(code ?? 0);
});
