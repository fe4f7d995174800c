import { defineConfig } from '@playwright/test';
import { API_TOKEN, BASE_URL, CONSOLE_PASSWORD, PORT, VIEWER_PASSWORD, WEBHOOK_SECRET } from './env';

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
  webServer: {
    command: 'node ./server.mjs',
    url: `${BASE_URL}/healthz`,
    reuseExistingServer: false,
    timeout: 60_000,
    stdout: 'ignore',
    stderr: 'pipe',
    env: {
      E2E_PORT: String(PORT),
      STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET,
      DEFERRAL_CONSOLE_PASSWORD: CONSOLE_PASSWORD,
      DEFERRAL_CONSOLE_VIEWER_PASSWORD: VIEWER_PASSWORD,
      DEFERRAL_API_TOKEN: API_TOKEN,
    },
  },
});
