import { defineConfig } from '@playwright/test';
import { API_TOKEN, BASE_URL, CONSOLE_PASSWORD, PORT, STRIPE_DOWN_PORT, STRIPE_DOWN_URL, VIEWER_PASSWORD, WEBHOOK_SECRET } from './env';

// Debian's Chromium, never a downloaded browser.
const chromium = {
  executablePath: '/usr/bin/chromium',
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--disable-quic',
    '--no-first-run',
  ],
};

const secrets = {
  STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET,
  DEFERRAL_CONSOLE_PASSWORD: CONSOLE_PASSWORD,
  DEFERRAL_CONSOLE_VIEWER_PASSWORD: VIEWER_PASSWORD,
  DEFERRAL_API_TOKEN: API_TOKEN,
};

export default defineConfig({
  testDir: './tests',
  // One server and one database for the whole run: tests run one at a time.
  workers: 1,
  fullyParallel: false,
  timeout: 30_000,
  expect: { timeout: 10_000 },
  forbidOnly: !!process.env.CI,
  reporter: [['list']],
  use: {
    baseURL: BASE_URL,
    launchOptions: chromium,
    trace: 'retain-on-failure',
  },
  projects: [
    { name: 'chromium', use: { javaScriptEnabled: true } },
    // The same flows as plain HTML: GET forms and form posts, no wasm.
    { name: 'chromium-no-js', use: { javaScriptEnabled: false } },
  ],
  webServer: [
    {
      command: 'node ./server.mjs',
      url: `${BASE_URL}/healthz`,
      reuseExistingServer: false,
      timeout: 60_000,
      stdout: 'ignore',
      stderr: 'pipe',
      env: { ...secrets, E2E_PORT: String(PORT) },
    },
    {
      command: 'node ./server.mjs',
      url: `${STRIPE_DOWN_URL}/healthz`,
      reuseExistingServer: false,
      timeout: 60_000,
      stdout: 'ignore',
      stderr: 'ignore',
      env: {
        ...secrets,
        E2E_PORT: String(STRIPE_DOWN_PORT),
        // A key makes every execution read its event from the API; nothing listens on port 9.
        STRIPE_SECRET_KEY: 'sk_test_e2e_stripe_down',
        STRIPE_API_BASE: 'http://127.0.0.1:9',
        DEFERRAL_RETRY_INITIAL_INTERVAL: '60s',
        DEFERRAL_RECONCILE_INTERVAL: '0',
      },
    },
  ],
});
